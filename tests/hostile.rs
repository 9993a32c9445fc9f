//! A hostile environment repository and a hostile network, with real
//! processes only: links planted where tidewatch writes, a human commit on
//! a pull request's branch, files made to crash or exhaust, a stale lock
//! on the remote, a registry sending a tag with a newline, floods of
//! connections and webhooks, replays, and secrets that must show nowhere.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use support::github::FakeGitHub;
use support::proxy::{Fault, ProxyBehavior, TestProxy};
use support::registry::{AuthMode, TestRegistry};
use support::{environment_repo as repository, git};
use tidewatch::config::Config;
use tidewatch::engine::{CycleReport, Engine, OnceOptions, Outcome};

struct Service(Child);
impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pod(image: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  containers:\n    - name: app\n      image: {image}\n")
}

fn show(bare: &Path, spec: &str) -> Option<String> {
    let out = Command::new("git")
        .args(["show", spec])
        .current_dir(bare)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("policies.yaml");
    std::fs::write(&path, body).unwrap();
    path
}

async fn once(config: &Path, workdir: &Path) -> CycleReport {
    let loaded = Config::load(config).unwrap_or_else(|e| panic!("{e}"));
    tidewatch::engine::once(
        &loaded,
        &OnceOptions {
            workdir: Some(workdir.to_path_buf()),
            ..OnceOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn outcome(report: &CycleReport, update: &str) -> Outcome {
    report
        .updates
        .iter()
        .find(|u| u.update == update)
        .map(|u| u.outcome.clone())
        .unwrap_or_else(|| panic!("no {update}: {report:?}"))
}

async fn app_registry(tags: &[&str]) -> (TestRegistry, String) {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    registry
        .push_image("team/app", tags, "2024-01-01T00:00:00Z", 1)
        .await;
    let image = format!("{}/team/app", registry.host);
    (registry, image)
}

#[tokio::test(flavor = "multi_thread")]
async fn planted_links_change_nothing_outside_and_no_mode_changes_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let (registry, image) = app_registry(&["1.0.0", "1.1.0"]).await;
    let victim = outside.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::write(
        outside.path().join("app.yaml"),
        pod(&format!("{image}:1.0.0")),
    )
    .unwrap();
    let (bare, human) = repository(
        dir.path(),
        &[("envs/dev/good.yaml", &pod(&format!("{image}:1.0.0")))],
    );
    // The old temporary name, and a parent directory, as committed links.
    std::os::unix::fs::symlink(&victim, human.join("envs/dev/.good.yaml.tidewatch-tmp")).unwrap();
    std::os::unix::fs::symlink(outside.path(), human.join("escape")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let file = human.join("envs/dev/good.yaml");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    git(&human, &["add", "."]);
    git(&human, &["commit", "-q", "-m", "links"]);
    git(&human, &["push", "-q", "origin", "HEAD:main"]);
    let config = write_config(
        dir.path(),
        &format!(
            "repository: {{ url: 'file://{}', branch: main }}\nregistries:\n  - {{ host: '{}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1 }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\n  - {{ name: escaped, paths: [escape/dev, escape], branch: escaped }}\n",
            bare.display(),
            registry.host
        ),
    );
    let report = once(&config, &dir.path().join("work")).await;
    assert!(
        matches!(outcome(&report, "dev"), Outcome::Committed { .. }),
        "{report:?}"
    );
    assert_eq!(outcome(&report, "escaped"), Outcome::UpToDate);
    // Nothing outside the repository changed.
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        std::fs::read_to_string(outside.path().join("app.yaml")).unwrap(),
        pod(&format!("{image}:1.0.0"))
    );
    // The commit changed good.yaml's content only: same mode, still a
    // file; the planted link is still a link.
    let summary = git(
        &bare,
        &["diff-tree", "-r", "--summary", "--raw", "main", "dev"],
    );
    assert!(
        summary.contains(":100755 100755 ") && summary.contains("envs/dev/good.yaml"),
        "{summary}"
    );
    assert!(
        !summary.contains("mode change") && !summary.contains("tidewatch-tmp"),
        "{summary}"
    );
    assert_eq!(
        summary.lines().filter(|l| l.starts_with(':')).count(),
        1,
        "{summary}"
    );
    assert!(show(&bare, "dev:envs/dev/good.yaml")
        .unwrap()
        .contains("team/app:1.1.0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_human_commit_on_the_head_branch_survives_and_the_pr_is_held_with_one_comment() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, image) = app_registry(&["1.0.0", "1.1.0"]).await;
    let (bare, human) = repository(
        dir.path(),
        &[("envs/prod/app.yaml", &pod(&format!("{image}:1.0.0")))],
    );
    let github = FakeGitHub::start("acme", "fleet", &bare, "gh-hostile-token").await;
    std::env::set_var("TW_HOSTILE_GH", "gh-hostile-token");
    let config = write_config(
        dir.path(),
        &format!(
            "repository:\n  url: 'file://{}'\n  branch: main\n  author: {{ name: tidewatch, email: tidewatch@example.com }}\n  github: {{ apiUrl: '{}', repository: acme/fleet, token: {{ env: TW_HOSTILE_GH }} }}\nregistries:\n  - {{ host: '{}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1 }}\nupdates:\n  - {{ name: prod, paths: [envs/prod], pullRequest: {{ base: main }} }}\n",
            bare.display(),
            github.api_base,
            registry.host
        ),
    );
    let loaded = Config::load(&config).unwrap();
    let engine = Engine::new(std::sync::Arc::new(tidewatch::engine::client_for(&loaded)));
    let options = OnceOptions {
        workdir: Some(dir.path().join("work")),
        ..OnceOptions::default()
    };
    let report = engine.cycle(&loaded, &options).await.unwrap();
    let Outcome::PullRequestOpened { number, .. } = outcome(&report, "prod") else {
        panic!("{report:?}")
    };
    // A human fixes something on the PR's branch.
    git(&human, &["fetch", "-q", "origin"]);
    git(
        &human,
        &["checkout", "-q", "-b", "fix", "origin/tidewatch/prod"],
    );
    std::fs::write(human.join("envs/prod/NOTES.md"), "tested by hand\n").unwrap();
    git(&human, &["add", "."]);
    git(&human, &["commit", "-q", "-m", "human: notes"]);
    git(&human, &["push", "-q", "origin", "HEAD:tidewatch/prod"]);
    let human_head = git(&bare, &["rev-parse", "tidewatch/prod"]);
    // A newer tag: tidewatch would rebuild the branch, but holds instead.
    registry
        .push_image("team/app", &["1.2.0"], "2024-02-01T00:00:00Z", 2)
        .await;
    for _ in 0..2 {
        let report = engine.cycle(&loaded, &options).await.unwrap();
        match outcome(&report, "prod") {
            Outcome::Held {
                number: held,
                reason,
            } => {
                assert_eq!(held, Some(number));
                assert!(
                    reason.contains("tidewatch did not make") && reason.contains("Human"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            git(&bare, &["rev-parse", "tidewatch/prod"]),
            human_head,
            "force-pushed"
        );
    }
    let pr = github.pr(number).unwrap();
    let held: Vec<&String> = pr
        .comments
        .iter()
        .filter(|c| c.contains("holding this pull request"))
        .collect();
    assert_eq!(held.len(), 1, "{:?}", pr.comments);
    assert_eq!(pr.state, "open");
}

#[tokio::test(flavor = "multi_thread")]
async fn files_made_to_crash_or_exhaust_and_broken_files_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, image) = app_registry(&["1.0.0", "1.1.0"]).await;
    let mut nested = String::from("image:\n");
    for depth in 0..10_000usize {
        nested.push_str(&" ".repeat(depth.min(2)));
        nested.push_str("- ");
    }
    nested.push_str(&format!("{image}:1.0.0\n"));
    let mut merges = format!("m0: &m0\n  repository: {image}\n  tag: 1.0.0\n");
    for i in 1..=10_000 {
        merges.push_str(&format!("m{i}: &m{i}\n  <<: *m{}\n", i - 1));
    }
    let mut deployment = format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: x}}\nspec:\n  template:\n    spec:\n      containers:\n        - &c0 {{name: app, image: '{image}:1.0.0'}}\n");
    for i in 1..=10_000 {
        deployment.push_str(&format!("        - &c{i} {{<<: *c{}}}\n", i - 1));
    }
    let broken = format!("image: {image}:1.0.0\n  bad: [indent\n");
    let with_nul = format!("image: {image}:1.0.0\n\0\n");
    let files: Vec<(&str, String)> = vec![
        ("envs/dev/good.yaml", pod(&format!("{image}:1.0.0"))),
        ("envs/dev/values-nested.yaml", nested),
        ("envs/dev/values-merges.yaml", merges),
        ("envs/dev/deploy-merges.yaml", deployment),
        ("envs/dev/broken.yaml", broken),
        ("envs/dev/nul.yaml", with_nul),
    ];
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let (bare, human) = repository(dir.path(), &refs);
    let mut latin1 = format!("image: {image}:1.0.0 # caf").into_bytes();
    latin1.extend_from_slice(b"\xe9\n");
    std::fs::write(human.join("envs/dev/latin1.yaml"), latin1).unwrap();
    git(&human, &["add", "."]);
    git(&human, &["commit", "-q", "-m", "more"]);
    git(&human, &["push", "-q", "origin", "HEAD:main"]);
    let config = write_config(
        dir.path(),
        &format!(
            "repository: {{ url: 'file://{}', branch: main }}\nregistries:\n  - {{ host: '{}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1 }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\n",
            bare.display(),
            registry.host
        ),
    );
    // The real binary, so an abort would show as a crash.
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["once", "-c", config.to_str().unwrap()])
        .args(["--workdir", dir.path().join("work").to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    for (file, why) in [
        ("values-nested.yaml", "nested more than 256 levels deep"),
        ("values-merges.yaml", "more than 1000 aliases"),
        ("deploy-merges.yaml", "more than 1000 aliases"),
        ("broken.yaml", "is not valid YAML"),
        ("latin1.yaml", "is not UTF-8"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&format!("envs/dev/{file}")) && l.contains(why)),
            "{file}: {stdout}"
        );
    }
    // Only the good file changed in the commit.
    let changed = git(&bare, &["diff", "--name-only", "main", "dev"]);
    assert_eq!(changed.trim(), "envs/dev/good.yaml", "{changed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_lock_on_the_remote_branch_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, image) = app_registry(&["1.0.0", "1.1.0"]).await;
    let (bare, human) = repository(
        dir.path(),
        &[("envs/dev/app.yaml", &pod(&format!("{image}:1.0.0")))],
    );
    git(&human, &["push", "-q", "origin", "HEAD:dev"]);
    // A push that was killed left the branch's lock behind on the remote.
    let lock = bare.join("refs/heads/dev.lock");
    std::fs::write(&lock, git(&bare, &["rev-parse", "dev"])).unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "repository: {{ url: 'file://{}', branch: main }}\nregistries:\n  - {{ host: '{}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1 }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\n",
            bare.display(),
            registry.host
        ),
    );
    let report = once(&config, &dir.path().join("work")).await;
    match outcome(&report, "dev") {
        Outcome::Failed { error } => {
            assert!(error.contains(&lock.display().to_string()), "{error}");
            assert!(
                error.contains("if no push to") && error.contains("delete"),
                "{error}"
            );
            assert!(!error.contains("changing too quickly"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_with_a_newline_is_skipped_and_never_reaches_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = app_registry(&["1.0.0", "1.1.0"]).await;
    let proxy = TestProxy::start(&registry.base_url(), ProxyBehavior::default()).await;
    let image = format!("{}/team/app", proxy.host);
    proxy.inject(
        "/v2/team/app/tags/list",
        vec![Fault::Json(
            r#"{"name":"team/app","tags":["1.0.0","1.1.0","1.9.9\nSigned-off-by: Mallory <m@evil>","1.9.9 x"]}"#.into(),
        )],
    );
    let (bare, _) = repository(
        dir.path(),
        &[("envs/dev/app.yaml", &pod(&format!("{image}:1.0.0")))],
    );
    let config = write_config(
        dir.path(),
        &format!(
            "repository: {{ url: 'file://{}', branch: main }}\nregistries:\n  - {{ host: '{}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1 }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\n",
            bare.display(),
            proxy.host
        ),
    );
    let report = once(&config, &dir.path().join("work")).await;
    assert!(
        matches!(outcome(&report, "dev"), Outcome::Committed { .. }),
        "{report:?}"
    );
    let dev = report.updates.iter().find(|u| u.update == "dev").unwrap();
    assert!(
        dev.notes
            .iter()
            .any(|n| n
                == "app: 2 tag(s) listed by the registry are not valid OCI tags and were skipped"),
        "{:?}",
        dev.notes
    );
    let message = git(&bare, &["log", "-1", "--format=%B", "dev"]);
    assert!(!message.contains("Mallory"), "{message}");
    assert!(show(&bare, "dev:envs/dev/app.yaml")
        .unwrap()
        .contains("team/app:1.1.0"));
}

/// Starts `run` on a fresh world; returns it with the HTTP base URL.
async fn service(
    dir: &Path,
    extra_server: &str,
    image_via: Option<&str>,
) -> (Service, String, TestRegistry, u32) {
    let (registry, image) = app_registry(&["1.0.0"]).await;
    let image = match image_via {
        Some(host) => image.replace(&registry.host, host),
        None => image,
    };
    let (bare, _) = repository(
        dir,
        &[("envs/dev/app.yaml", &pod(&format!("{image}:1.0.0")))],
    );
    let config = write_config(
        dir,
        &format!(
            "repository: {{ url: 'file://{}', branch: main }}\nregistries:\n  - {{ host: '{}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1, interval: 1h }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\nserver:\n{extra_server}",
            bare.display(),
            image.split('/').next().unwrap()
        ),
    );
    let port = support::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["run", "-c", config.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--workdir", dir.join("work").to_str().unwrap()])
        .env("TW_HOSTILE_WEBHOOK", "hostile-webhook-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = support::http_client();
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "service never ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (Service(child), base, registry, pid)
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

#[tokio::test(flavor = "multi_thread")]
async fn five_thousand_idle_connections_do_not_starve_healthz_or_memory() {
    // This test process needs descriptors for its own 5,000 sockets.
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut limit = getrlimit(Resource::Nofile);
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let dir = tempfile::tempdir().unwrap();
    let (_service, base, _registry, pid) =
        service(dir.path(), "  allowUnauthenticatedWebhooks: true\n", None).await;
    let addr = base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..5_000 {
        if let Ok(stream) = tokio::net::TcpStream::connect(&addr).await {
            idle.push(stream);
        }
    }
    assert!(
        idle.len() >= 4_900,
        "only {} connections opened",
        idle.len()
    );
    // Probes go on answering, quickly, while the idle connections stay open.
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let response = http.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        slowest < Duration::from_millis(100),
        "/healthz took {slowest:?}"
    );
    let rss = rss_mib(pid);
    assert!(rss < 64.0, "RSS {rss:.1} MiB with 5,000 idle connections");
    eprintln!("5,000 idle connections: /healthz slowest {slowest:?}, RSS {rss:.1} MiB");
    drop(idle);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_webhooks_in_two_seconds_give_at_most_two_scans() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = TestRegistry::start(AuthMode::Anonymous).await;
    upstream
        .push_image("team/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let proxy = TestProxy::start(&upstream.base_url(), ProxyBehavior::default()).await;
    let (_service, base, _registry, _) = service(
        dir.path(),
        "  allowUnauthenticatedWebhooks: true\n",
        Some(&proxy.host),
    )
    .await;
    let scans = || {
        proxy
            .requests()
            .iter()
            .filter(|r| r.path_and_query.starts_with("/v2/team/app/tags/list"))
            .count()
    };
    let before = scans();
    let body = format!(r#"{{"image": "{}/team/app", "tag": "1.0.0"}}"#, proxy.host);
    // Five senders (127.0.0.1 to .5), 200 each, within two seconds, each
    // over at most 16 connections at a time.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for sender in 1..=5u8 {
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
        let client = reqwest::Client::builder()
            .no_proxy()
            .local_address(std::net::IpAddr::from([127, 0, 0, sender]))
            .build()
            .unwrap();
        for _ in 0..200 {
            let (client, url, body) = (
                client.clone(),
                format!("{base}/webhook/generic"),
                body.clone(),
            );
            let slots = slots.clone();
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire_owned().await;
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }));
        }
    }
    let mut accepted = 0;
    for task in tasks {
        if task.await.unwrap() == 202 {
            accepted += 1;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        accepted, 1000,
        "every webhook was accepted (five senders stay under the rate limit)"
    );
    // Wait past the webhook window: one scan now, at most one at its end.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let during = scans() - before;
    assert!(
        (1..=2).contains(&during),
        "{during} scans for 1,000 webhooks"
    );
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_signed_webhook_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_service, base, _registry, _) = service(
        dir.path(),
        "  webhookSecret: { env: TW_HOSTILE_WEBHOOK }\n",
        None,
    )
    .await;
    let http = support::http_client();
    let body = br#"{"action":"published","package":{"package_type":"container","name":"app","namespace":"team","package_version":{"container_metadata":{"tag":{"name":"1.0.0"}}},"registry":{"url":"https://ghcr.io"}}}"#;
    let send = |delivery: &'static str| {
        let (http, url) = (http.clone(), format!("{base}/webhook/github"));
        async move {
            http.post(url)
                .header("content-type", "application/json")
                .header("x-github-event", "package")
                .header("x-github-delivery", delivery)
                .header(
                    "x-hub-signature-256",
                    github_signature("hostile-webhook-secret", body),
                )
                .body(body.to_vec())
                .send()
                .await
                .unwrap()
        }
    };
    let first = send("72d3162e-cc78-11e3-81ab-4c9367dc0958").await;
    assert!(first.status().is_success(), "{}", first.status());
    let replay = send("72d3162e-cc78-11e3-81ab-4c9367dc0958").await;
    assert_eq!(replay.status(), 409);
    let text = replay.text().await.unwrap();
    assert!(
        text.contains("refused as a replay") && text.contains("already received"),
        "{text}"
    );
    // A signed timestamp five minutes old is a replay too.
    let generic = r#"{"image": "ghcr.io/team/app", "tag": "1.0.0"}"#.to_string();
    let old = (jiff::Timestamp::now().as_second() - 600).to_string();
    let signed = format!("{old}.{generic}");
    let response = http
        .post(format!("{base}/webhook/generic"))
        .header("x-tidewatch-timestamp", &old)
        .header(
            "x-tidewatch-signature-256",
            github_signature("hostile-webhook-secret", signed.as_bytes()),
        )
        .body(generic.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409, "{:?}", response.text().await);
    // A fresh timestamp, signed with the body, is accepted.
    let now = jiff::Timestamp::now().as_second().to_string();
    let signed = format!("{now}.{generic}");
    let response = http
        .post(format!("{base}/webhook/generic"))
        .header("x-tidewatch-timestamp", &now)
        .header(
            "x-tidewatch-signature-256",
            github_signature("hostile-webhook-secret", signed.as_bytes()),
        )
        .body(generic)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_and_forge_engines_hold_no_secret_in_any_output() {
    // Secrets of every kind, then every output is searched for them.
    let dir = tempfile::tempdir().unwrap();
    let registry = TestRegistry::start(AuthMode::Htpasswd {
        user: "robot".into(),
        password: "REGISTRY-SECRET-4411".into(),
    })
    .await;
    registry
        .push_image("team/app", &["1.0.0", "1.1.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let image = format!("{}/team/app", registry.host);
    let (bare, _) = repository(
        dir.path(),
        &[
            ("envs/dev/app.yaml", &pod(&format!("{image}:1.0.0"))),
            ("envs/prod/app.yaml", &pod(&format!("{image}:1.0.0"))),
        ],
    );
    let github = FakeGitHub::start("acme", "fleet", &bare, "FORGE-SECRET-7788").await;
    let config = write_config(
        dir.path(),
        &format!(
            "repository:\n  url: 'file://{}'\n  branch: main\n  github: {{ apiUrl: '{}', repository: acme/fleet, token: {{ env: TW_SECRET_FORGE }} }}\nregistries:\n  - {{ host: '{}', insecure: true, credentials: {{ env: TW_SECRET_REGISTRY }} }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1, interval: 1h }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\n  - {{ name: prod, paths: [envs/prod], pullRequest: {{ base: main }} }}\nserver: {{ webhookSecret: {{ env: TW_SECRET_WEBHOOK }} }}\n",
            bare.display(),
            github.api_base,
            registry.host
        ),
    );
    let port = support::free_port();
    let log = dir.path().join("log.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args([
            "run",
            "--log-format",
            "json",
            "-c",
            config.to_str().unwrap(),
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--workdir", dir.path().join("work").to_str().unwrap()])
        .env("TIDEWATCH_LOG", "debug")
        .env("TW_SECRET_FORGE", "FORGE-SECRET-7788")
        .env("TW_SECRET_REGISTRY", "robot:REGISTRY-SECRET-4411")
        .env("TW_SECRET_WEBHOOK", "WEBHOOK-SECRET-9900")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _service = Service(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = support::http_client();
    let started = Instant::now();
    while github.prs().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "no PR opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A webhook with a wrong signature, so the error paths log too.
    let _ = http
        .post(format!("{base}/webhook/generic"))
        .header("x-tidewatch-signature-256", "sha256=00")
        .body("{}")
        .send()
        .await;
    let page = http
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = std::fs::read_to_string(&log).unwrap();
    let git_config = std::fs::read_to_string(dir.path().join("work/.git/config")).unwrap();
    let pr_bodies: String = github
        .prs()
        .iter()
        .map(|p| p.body.clone() + &p.title)
        .collect();
    assert!(logs.lines().count() > 5, "too few log lines:\n{logs}");
    for secret in [
        "REGISTRY-SECRET-4411",
        "FORGE-SECRET-7788",
        "WEBHOOK-SECRET-9900",
    ] {
        for (name, text) in [
            ("logs", &logs),
            ("status page", &page),
            ("metrics", &metrics),
            (".git/config", &git_config),
            ("pull requests", &pr_bodies),
        ] {
            assert!(!text.contains(secret), "{secret} in the {name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn once_exits_1_naming_the_registry_when_it_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let image = format!("127.0.0.1:{port}/team/app");
    let (bare, _) = repository(
        dir.path(),
        &[("envs/dev/app.yaml", &pod(&format!("{image}:1.0.0")))],
    );
    let config = write_config(
        dir.path(),
        &format!(
            "repository: {{ url: 'file://{}', branch: main }}\nregistries:\n  - {{ host: '127.0.0.1:{port}', insecure: true, maxAttempts: 1 }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1 }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\n",
            bare.display()
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["once", "-c", config.to_str().unwrap()])
        .args(["--workdir", dir.path().join("work").to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "policy app is unknown this cycle: cannot reach registry 127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    assert!(
        stdout.contains("note: app: not updated this cycle"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_index_lock_under_run_is_healed_and_shown_on_the_status_page() {
    let dir = tempfile::tempdir().unwrap();
    let (_service, base, registry, _) = service(
        dir.path(),
        "  webhookSecret: { env: TW_HOSTILE_WEBHOOK }\n",
        None,
    )
    .await;
    let http = support::http_client();
    // A killed git process left its lock behind in the service's clone.
    let lock = dir.path().join("work/.git/index.lock");
    std::fs::write(&lock, b"").unwrap();
    registry
        .push_image("team/app", &["1.1.0"], "2024-01-02T00:00:00Z", 2)
        .await;
    let body = format!(
        r#"{{"image": "{}/team/app", "tag": "1.1.0"}}"#,
        registry.host
    );
    let now = jiff::Timestamp::now().as_second().to_string();
    let response = http
        .post(format!("{base}/webhook/generic"))
        .header("x-tidewatch-timestamp", &now)
        .header(
            "x-tidewatch-signature-256",
            github_signature("hostile-webhook-secret", format!("{now}.{body}").as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    let bare = dir.path().join("fleet.git");
    let started = Instant::now();
    let page = loop {
        let page = http
            .get(format!("{base}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let landed =
            show(&bare, "dev:envs/dev/app.yaml").is_some_and(|f| f.contains("team/app:1.1.0"));
        if landed && page.contains("cloned afresh") {
            break page;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never healed: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(page.contains("index.lock"), "{page}");
    assert!(!lock.exists());
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}
