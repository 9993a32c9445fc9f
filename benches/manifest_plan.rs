//! Manifest benchmark: a generated repository of 10,000 realistic files
//! (Deployments, kustomizations, Helm values) with 100 references to the
//! watched images; scan + plan + apply, single-threaded. Target: < 1 s.
//!
//! Run: `cargo bench --bench manifest_plan` (env `BENCH_FILES`, `BENCH_EDITS`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tidewatch::manifest::{self, Scope, Watched};
use tidewatch::policy::Pick;
use tidewatch::reference::ImageName;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn deployment(i: usize, image: &str) -> String {
    format!(
        "# service {i}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{i}\n  labels: {{app: svc-{i}, tier: backend}}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: svc-{i}}}\n  template:\n    metadata:\n      labels: {{app: svc-{i}}}\n    spec:\n      containers:\n        - name: main\n          image: {image}\n          ports:\n            - containerPort: 8080\n          resources:\n            limits: {{cpu: 500m, memory: 256Mi}}\n        - name: proxy\n          image: docker.io/envoyproxy/envoy:v1.31.0\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\nspec:\n  ports: [{{port: 80, targetPort: 8080}}]\n"
    )
}

fn kustomization(i: usize, name: &str, tag: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\nimages:\n  - name: {name}\n    newTag: \"{tag}\"\nlabels:\n  - pairs: {{team: t{i}}}\n"
    )
}

fn values(name: &str, tag: &str) -> String {
    format!(
        "replicaCount: 2\nimage:\n  repository: {name}\n  tag: {tag} # current\n  pullPolicy: IfNotPresent\nservice:\n  type: ClusterIP\n  port: 80\nresources: {{}}\n"
    )
}

/// Writes service `i`: a Deployment, a kustomization or a values file, in
/// turn, each referring to the service's own image at 1.0.i.
fn write_service(root: &std::path::Path, i: usize) {
    let service = root.join(format!("apps/svc-{i:05}"));
    std::fs::create_dir_all(&service).expect("mkdir");
    let image = format!("registry.example.com/team/svc-{i:05}");
    let (name, text) = match i % 3 {
        0 => (
            "deployment.yaml",
            deployment(i, &format!("{image}:1.0.{i}")),
        ),
        1 => (
            "kustomization.yaml",
            kustomization(i, &image, &format!("1.0.{i}")),
        ),
        _ => ("values.yaml", values(&image, &format!("1.0.{i}"))),
    };
    std::fs::write(service.join(name), text).expect("write");
}

fn main() {
    let files = env_or("BENCH_FILES", 10_000);
    let edits = env_or("BENCH_EDITS", 100);
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    // Every file refers to its own image; the first `edits` images are
    // watched, and their picks differ from what the files hold.
    for i in 0..files {
        write_service(dir.path(), i);
    }
    println!(
        "generated {files} files in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let watched: Vec<Watched> = (0..edits)
        .map(|i| {
            let text = format!("registry.example.com/team/svc-{i:05}");
            Watched {
                policy: format!("svc-{i:05}"),
                image: ImageName::parse(&text).expect("image"),
                image_text: text,
            }
        })
        .collect();
    let picks: HashMap<String, Pick> = watched
        .iter()
        .map(|w| {
            (
                w.policy.clone(),
                Pick {
                    tag: "2.0.0".into(),
                    digest: None,
                },
            )
        })
        .collect();
    let all: HashSet<String> = watched.iter().map(|w| w.policy.clone()).collect();
    let paths = vec!["apps".to_string()];
    let scope = Scope {
        paths: &paths,
        watched: &watched,
        all_policies: &all,
        targets: &[],
        size_cap: manifest::DEFAULT_SIZE_CAP,
        foreign_paths: &[],
    };

    let mut times: Vec<Duration> = Vec::new();
    for run in 0..3 {
        // Reset the edited files so every run does the same work.
        if run > 0 {
            for i in 0..edits {
                write_service(dir.path(), i);
            }
        }
        let start = Instant::now();
        let scan = manifest::scan(dir.path(), &scope);
        let plan = scan.plan(&picks);
        let written = plan.apply(dir.path()).expect("apply");
        let took = start.elapsed();
        times.push(took);
        println!(
            "run {}: {} files seen, {} parsed after the prefilter, {} edits in {} files, {} notes: {:.1} ms",
            run + 1,
            scan.files_seen,
            scan.files_parsed,
            plan.edits().count(),
            written.len(),
            plan.notes.len(),
            took.as_secs_f64() * 1e3
        );
    }
    times.sort();
    println!(
        "scan + plan + apply, best of 3: {:.1} ms (target < 1000 ms)",
        times[0].as_secs_f64() * 1e3
    );
}
