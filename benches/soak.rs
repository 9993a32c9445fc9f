//! Soak: `tidewatch run` for 10 minutes against 200 repositories on the
//! real registry, cycles every 10 s, 100 webhooks a second, a new tag
//! every 30 s, and `/healthz` probed every 100 ms. Reports the service's
//! RSS each minute and the `/healthz` latency percentiles.
//!
//! Run: `cargo bench --bench soak` (env `SOAK_SECONDS`, default 600;
//! `SOAK_REPOS`, default 200). Targets: RSS under 64 MiB and not growing
//! after the first minute; p99 of `/healthz` under 50 ms.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::registry::{AuthMode, TestRegistry};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=Seed", "-c", "user.email=seed@example.com"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "git {args:?}");
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::path::Path::new("/dev/shm").is_dir() && std::env::var_os("TMPDIR").is_none() {
        std::env::set_var("TMPDIR", "/dev/shm");
    }
    let seconds = env_or("SOAK_SECONDS", 600);
    let repos = env_or("SOAK_REPOS", 200) as usize;
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    for i in 0..repos {
        registry
            .push_image(
                &format!("soak/app-{i}"),
                &["1.0.0", "1.1.0"],
                "2024-01-01T00:00:00Z",
                i as u64,
            )
            .await;
    }
    let host = registry.host.clone();

    let bare = dir.path().join("fleet.git");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "--bare", "-q"]);
    let seed = dir.path().join("seed");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            seed.to_str().unwrap(),
        ],
    );
    std::fs::create_dir_all(seed.join("envs/dev")).unwrap();
    let mut images = String::new();
    for i in 0..repos {
        std::fs::write(
            seed.join(format!("envs/dev/app-{i}.yaml")),
            format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: app-{i}\nspec:\n  containers:\n    - name: app\n      image: {host}/soak/app-{i}:1.0.0\n"),
        )
        .unwrap();
        images.push_str(&format!(
            "  - {{ name: app-{i}, image: '{host}/soak/app-{i}', semver: ^1, interval: 10s }}\n"
        ));
    }
    git(&seed, &["add", "."]);
    git(&seed, &["commit", "-q", "-m", "seed"]);
    git(&seed, &["push", "-q", "origin", "HEAD:main"]);
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!(
            "repository: {{ url: 'file://{}', branch: main }}\nregistries:\n  - {{ host: '{host}', insecure: true }}\nimages:\n{images}updates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\nserver: {{ allowUnauthenticatedWebhooks: true }}\n",
            bare.display()
        ),
    )
    .unwrap();
    let port = support::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["run", "-c", config.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--workdir", dir.path().join("work").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tidewatch run");
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = Instant::now();
    while probe
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(started.elapsed() < Duration::from_secs(60), "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "soak: {repos} repositories, {seconds} s; ready after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let deadline = Instant::now() + Duration::from_secs(seconds);
    // Webhooks: 100 a second from four loopback addresses.
    let sent = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let hooks = {
        let (sent, accepted, base, host) =
            (sent.clone(), accepted.clone(), base.clone(), host.clone());
        tokio::spawn(async move {
            let clients: Vec<reqwest::Client> = (1..=4u8)
                .map(|n| {
                    reqwest::Client::builder()
                        .no_proxy()
                        .local_address(std::net::IpAddr::from([127, 0, 0, n]))
                        .build()
                        .unwrap()
                })
                .collect();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut n: u64 = 0;
            while Instant::now() < deadline {
                tick.tick().await;
                n += 1;
                let client = clients[(n % 4) as usize].clone();
                let body = format!(
                    r#"{{"image": "{host}/soak/app-{}", "tag": "1.1.0"}}"#,
                    n % repos as u64
                );
                let (url, sent, accepted) = (
                    format!("{base}/webhook/generic"),
                    sent.clone(),
                    accepted.clone(),
                );
                tokio::spawn(async move {
                    sent.fetch_add(1, Ordering::Relaxed);
                    if let Ok(r) = client.post(url).body(body).send().await {
                        if r.status() == 202 {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        })
    };
    // New tags now and then, so cycles commit.
    let tagger = {
        let registry_base = registry.base_url();
        let _ = registry_base;
        tokio::spawn(async move {
            let mut version = 2;
            while Instant::now() < deadline {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let tag = format!("1.{version}.0");
                registry
                    .push_image(
                        &format!("soak/app-{}", version as usize % repos),
                        &[&tag],
                        "2024-02-01T00:00:00Z",
                        10_000 + version,
                    )
                    .await;
                version += 1;
            }
            registry
        })
    };
    // Probes and RSS samples.
    let mut latencies: Vec<Duration> = Vec::new();
    let mut rss: Vec<(u64, f64)> = Vec::new();
    let mut next_sample = Instant::now();
    let mut failures = 0;
    while Instant::now() < deadline {
        let t = Instant::now();
        match probe.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status() == 200 => latencies.push(t.elapsed()),
            _ => failures += 1,
        }
        if Instant::now() >= next_sample {
            rss.push((started.elapsed().as_secs(), rss_mib(pid)));
            next_sample += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = hooks.await;
    let _registry = tagger.await;
    let metrics = probe
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metric = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("?")
            .to_string()
    };
    let _ = child.kill();
    let _ = child.wait();

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "healthz: {} probes, {failures} failed; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "webhooks: {} sent, {} accepted; cycles {}, commits {}",
        sent.load(Ordering::Relaxed),
        accepted.load(Ordering::Relaxed),
        metric("tidewatch_cycles_total"),
        metric("tidewatch_commits_total")
    );
    println!("RSS (MiB) by elapsed seconds:");
    for chunk in rss.chunks(6) {
        let line: Vec<String> = chunk
            .iter()
            .map(|(s, m)| format!("{s:>4}s {m:5.1}"))
            .collect();
        println!("  {}", line.join("  "));
    }
    let after_first_minute: Vec<f64> = rss
        .iter()
        .filter(|(s, _)| *s >= 60)
        .map(|(_, m)| *m)
        .collect();
    let peak = rss.iter().map(|(_, m)| *m).fold(0.0, f64::max);
    let (first, last) = (
        after_first_minute.first().copied().unwrap_or(f64::NAN),
        after_first_minute.last().copied().unwrap_or(f64::NAN),
    );
    println!("RSS peak {peak:.1} MiB; at 1 min {first:.1} MiB, at the end {last:.1} MiB");
    let ok = peak < 64.0 && last <= first * 1.1 + 1.0 && pct(0.99) < Duration::from_millis(50);
    println!(
        "targets (RSS < 64 MiB, flat after 1 min, p99 < 50 ms): {}",
        if ok { "met" } else { "NOT met" }
    );
}
