//! Monorepo benchmark: one environment repository with APPS apps, each its
//! own image on the real registry and its own update group committing
//! directly to `main`, delivered by `tidewatch once` against a local bare
//! remote. Cycle 1 has one change per group; cycle 2 has none.
//!
//! Run: `cargo bench --bench monorepo` (env `BENCH_APPS`, default 1000).
//! Targets: cycle 1 under 10 s, the no-change cycle under 2 s. It prints the
//! wall time of each cycle, the phases `once` reports on stderr (fetch,
//! scan, plan, commit, push) and the number of pushes the remote received.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use support::registry::{AuthMode, TestRegistry};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `tidewatch once`, returns (seconds, stdout, stderr).
fn once(config: &Path, workdir: &Path) -> (f64, String, String) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["once", "-c", config.to_str().expect("UTF-8 path")])
        .args(["--workdir", workdir.to_str().expect("UTF-8 path")])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tidewatch once");
    let took = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "once failed:\n{stdout}\n{stderr}");
    (took, stdout, stderr)
}

/// Pushes the bare remote has received to `main` (its reflog).
fn pushes(bare: &Path) -> usize {
    let out = Command::new("git")
        .args(["reflog", "show", "--format=%H", "refs/heads/main"])
        .current_dir(bare)
        .output()
        .expect("git reflog");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if Path::new("/dev/shm").is_dir() && std::env::var_os("TMPDIR").is_none() {
        std::env::set_var("TMPDIR", "/dev/shm");
    }
    let apps = env_or("BENCH_APPS", 1000);
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    let seeding = Instant::now();
    for i in 0..apps {
        registry
            .push_image(
                &format!("mono/app-{i}"),
                &["1.0.0", "1.1.0"],
                "2024-01-01T00:00:00Z",
                i as u64,
            )
            .await;
    }
    let host = registry.host.clone();
    let mut files = Vec::with_capacity(apps);
    let mut images = String::new();
    let mut updates = String::new();
    for i in 0..apps {
        files.push((
            format!("envs/app-{i}/deployment.yaml"),
            format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {host}/mono/app-{i}:1.0.0 # pinned\n"),
        ));
        images.push_str(&format!(
            "  - {{ name: app-{i}, image: '{host}/mono/app-{i}', semver: ^1 }}\n"
        ));
        updates.push_str(&format!(
            "  - {{ name: app-{i}, paths: [envs/app-{i}], images: [app-{i}], branch: main }}\n"
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let (bare, _) = support::environment_repo(dir.path(), &refs);
    support::git(&bare, &["config", "core.logAllRefUpdates", "always"]);
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!(
            "repository: {{ url: 'file://{}', branch: main, author: {{ name: tidewatch, email: tidewatch@example.com }} }}\nregistries:\n  - {{ host: '{host}', insecure: true }}\nimages:\n{images}updates:\n{updates}",
            bare.display()
        ),
    )
    .expect("write the policy file");
    println!(
        "monorepo: {apps} apps, {apps} update groups on main; seeded in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let workdir = dir.path().join("work");
    let before = pushes(&bare);
    let (first, stdout, stderr) = once(&config, &workdir);
    let committed = stdout.matches(": committed ").count();
    let after_first = pushes(&bare);
    println!(
        "cycle 1: {first:.2} s, {committed} group(s) committed, {} push(es) to main",
        after_first - before
    );
    for line in stderr.lines().chain(stdout.lines()) {
        if line.starts_with("phases:") {
            println!("  {line}");
        }
    }
    let (second, stdout, stderr) = once(&config, &workdir);
    let up_to_date = stdout.matches(": up to date").count();
    println!(
        "cycle 2 (no change): {second:.2} s, {up_to_date} group(s) up to date, {} push(es)",
        pushes(&bare) - after_first
    );
    for line in stderr.lines().chain(stdout.lines()) {
        if line.starts_with("phases:") {
            println!("  {line}");
        }
    }
    let ok = committed == apps && up_to_date == apps && first < 10.0 && second < 2.0;
    println!(
        "targets (every group committed once, cycle 1 < 10 s, no-change cycle < 2 s): {}",
        if ok { "met" } else { "NOT met" }
    );
}
