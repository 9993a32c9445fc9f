//! Registry scan benchmark: REPOS repositories × TAGS tags on a local CNCF
//! registry (Debian's `docker-registry`), compared in the same run with a
//! bare HTTP loop doing the same tags-list requests.
//!
//! Run: `cargo bench --bench registry_scan` (env `BENCH_REPOS`, `BENCH_TAGS`
//! change the size; defaults 1000 × 200). It reports, per cycle, wall time,
//! requests by kind and peak RSS, and checks the second (steady-state)
//! cycle's metadata requests (manifest and config GETs) are zero.
//!
//! The policies: every repository has a semver policy; 50 also follow the
//! digest of a tag; 20 also pick the newest build among ten filtered tags, so
//! metadata requests and the digest cache take part.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::registry::{AuthMode, TestRegistry};
use tidewatch::engine::scan::{scan, ScanTarget};
use tidewatch::policy::{Policy, PolicySpec};
use tidewatch::reference::ImageName;
use tidewatch::registry::{Client, HostSettings};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size of this process, from /proc (kB → MiB).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets the peak RSS so the seeding phase does not count (Linux ≥ 4.0).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn compile(spec: PolicySpec) -> Policy {
    Policy::compile(&PolicySpec {
        exclude_defaults: true,
        ..spec
    })
    .expect("benchmark policy compiles")
}

/// The same requests with nothing but an HTTP client: GET each tags list,
/// parse the JSON, with the same concurrency as tidewatch's default.
async fn bare_loop(base: &str, repos: &[String], concurrency: usize) -> (Duration, usize) {
    let http = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let repos = Arc::new(repos.to_vec());
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, next, repos, base) =
            (http.clone(), next.clone(), repos.clone(), base.to_string());
        workers.spawn(async move {
            let mut tags = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(repo) = repos.get(i) else { break };
                let body: serde_json::Value = http
                    .get(format!("{base}/v2/{repo}/tags/list"))
                    .send()
                    .await
                    .expect("bare GET")
                    .json()
                    .await
                    .expect("bare JSON");
                tags += body["tags"].as_array().map_or(0, Vec::len);
            }
            tags
        });
    }
    let mut total = 0;
    while let Some(n) = workers.join_next().await {
        total += n.expect("bare worker");
    }
    (started.elapsed(), total)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // The registry's storage on tmpfs seeds about 4x faster than on disk.
    if std::path::Path::new("/dev/shm").is_dir() && std::env::var_os("TMPDIR").is_none() {
        std::env::set_var("TMPDIR", "/dev/shm");
    }
    let repos_n = env_or("BENCH_REPOS", 1000);
    let tags_n = env_or("BENCH_TAGS", 200);
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    let seeding = Instant::now();
    let repos: Vec<String> = (0..repos_n).map(|i| format!("bench/repo-{i:04}")).collect();
    // Each push already sends its manifest PUTs concurrently.
    for repo in &repos {
        registry.push_many_tags(repo, "1.0.", tags_n).await;
    }
    println!(
        "seeded {repos_n} repositories x {tags_n} tags in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let settings = HostSettings {
        insecure: true,
        ..HostSettings::default()
    };
    let concurrency = settings.concurrency;
    let host = registry.host.clone();
    let semver = compile(PolicySpec {
        semver: Some("^1".into()),
        ..Default::default()
    });
    let digest = compile(PolicySpec {
        digest: Some("1.0.0".into()),
        ..Default::default()
    });
    let newest = compile(PolicySpec {
        pattern: Some(r"^1\.0\.1\d$".into()),
        order: Some("newest-build".parse().expect("order")),
        ..Default::default()
    });
    let mut targets = Vec::new();
    for (i, repo) in repos.iter().enumerate() {
        let image = ImageName::parse(&format!("{host}/{repo}")).expect("image name");
        let mut add = |kind: &str, selector: &Policy| {
            targets.push(ScanTarget {
                policy: format!("{kind}-{i}"),
                image: image.clone(),
                selector: selector.clone(),
                platforms: Vec::new(),
            })
        };
        add("semver", &semver);
        if i < 50 {
            add("digest", &digest);
        }
        if i < 20 {
            add("newest", &newest);
        }
    }

    // Warm the registry's own caches once with the bare loop, then alternate.
    bare_loop(&registry.base_url(), &repos, concurrency).await;
    let (bare_wall, bare_tags) = bare_loop(&registry.base_url(), &repos, concurrency).await;

    reset_peak_rss();
    let client = Arc::new(Client::new(
        [(host.clone(), settings.clone())].into_iter().collect(),
        settings,
    ));
    let mut previous = (0, 0, 0, 0, 0);
    for cycle in 1..=2 {
        let started = Instant::now();
        let results = scan(&client, &targets).await;
        let wall = started.elapsed();
        let failed = results.values().filter(|r| r.is_err()).count();
        let m = client.metrics();
        let now = (
            m.total(None),
            m.total(Some("tags")),
            m.total(Some("manifest-head")),
            m.total(Some("manifest")),
            m.total(Some("blob")),
        );
        println!(
            "cycle {cycle}: wall {:>7.1} ms  requests {:>5} (tags {}, HEAD {}, manifest GET {}, blob GET {})  metadata requests {}  failed policies {failed}  peak RSS {:.1} MiB",
            wall.as_secs_f64() * 1e3,
            now.0 - previous.0,
            now.1 - previous.1,
            now.2 - previous.2,
            now.3 - previous.3,
            now.4 - previous.4,
            (now.3 - previous.3) + (now.4 - previous.4),
            peak_rss_mib(),
        );
        previous = now;
    }
    // A semver-only cycle: exactly the bare loop's requests, for the ratio.
    let semver_only: Vec<ScanTarget> = targets
        .iter()
        .filter(|t| t.policy.starts_with("semver"))
        .cloned()
        .collect();
    let fresh = Arc::new(Client::new(
        [(
            host.clone(),
            HostSettings {
                insecure: true,
                ..HostSettings::default()
            },
        )]
        .into_iter()
        .collect(),
        HostSettings::default(),
    ));
    let started = Instant::now();
    scan(&fresh, &semver_only).await;
    let ours = started.elapsed();
    println!(
        "tags only: tidewatch {:>7.1} ms for {} requests; bare reqwest loop {:>7.1} ms for {} requests ({} tags); ratio {:.2}",
        ours.as_secs_f64() * 1e3,
        fresh.metrics().total(None),
        bare_wall.as_secs_f64() * 1e3,
        repos_n,
        bare_tags,
        ours.as_secs_f64() / bare_wall.as_secs_f64(),
    );
    println!(
        "peak RSS after all tidewatch cycles: {:.1} MiB",
        peak_rss_mib()
    );
}
