//! A service that cannot hang, lose work or be led astray, shown with real
//! servers that misbehave on purpose: a git remote, a registry and a forge
//! that accept connections and never answer, a stale lock in the clone, a
//! second process on the same work directory, and links out of scope.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::git;
use support::git_http::GitHttpServer;
use support::github::FakeGitHub;
use support::proxy::{Fault, ProxyBehavior, TestProxy};
use support::registry::{AuthMode, TestRegistry};
use support::tcp::TcpFault;
use tidewatch::config::Config;
use tidewatch::engine::{CycleReport, Engine, OnceOptions, Outcome};

const GIT_USER: &str = "x-access-token";
const GIT_TOKEN: &str = "git-hardening-token-3b7e";

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

/// A bare repository `fleet.git` under `root` (clone in `root/human`) whose `envs/dev` and
/// `envs/prod` hold `image` at 1.0.0; returns its path.
fn seed_repository(root: &Path, image: &str) -> PathBuf {
    let app = pod(&format!("{image}:1.0.0"));
    support::environment_repo(
        root,
        &[("envs/dev/app.yaml", &app), ("envs/prod/app.yaml", &app)],
    )
    .0
}

fn file_on(bare: &Path, branch: &str, path: &str) -> Option<String> {
    let out = Command::new("git")
        .args(["show", &format!("{branch}:{path}")])
        .current_dir(bare)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn app_registry() -> (TestRegistry, String) {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    registry
        .push_image("team/app", &["1.0.0", "1.1.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let image = format!("{}/team/app", registry.host);
    (registry, image)
}

async fn healthz(http: &reqwest::Client, base: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    match http.get(format!("{base}/healthz")).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            (status, body, started.elapsed())
        }
        Err(_) => (0, String::new(), started.elapsed()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_remote_that_never_answers_bounds_the_cycle_and_healthz_tells_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let (_registry, image) = app_registry().await;
    seed_repository(dir.path(), &image);
    let server = GitHttpServer::start(dir.path(), GIT_USER, GIT_TOKEN).await;
    let target = server.base_url.trim_start_matches("http://").to_string();
    let fault = TcpFault::start(Some(target)).await;
    let url = format!("http://{}/fleet.git", fault.addr);
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!(
            "repository:\n  url: {url}\n  branch: main\n  timeoutSeconds: 3\n  auth: {{ token: {{ env: TW_HARD_GIT_TOKEN }} }}\nregistries:\n  - {{ host: '{host}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1, interval: 1s }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\nserver:\n  cycleTimeout: 1s\n  allowUnauthenticatedWebhooks: true\n",
            host = image.split('/').next().unwrap()
        ),
    )
    .unwrap();
    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["run", "-c", config.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--workdir", dir.path().join("work").to_str().unwrap()])
            .env("TW_HARD_GIT_TOKEN", GIT_TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = support::http_client();

    // The remote accepts and never answers. /healthz stays fast, and turns
    // 503 once the cycle is past its deadline (1 s) plus grace (1 s).
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let reason = loop {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never turned 503"
        );
        let (status, body, took) = healthz(&http, &base).await;
        if status != 0 {
            slowest = slowest.max(took);
        }
        if status == 503 {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "503 before deadline and grace: {:?}",
        started.elapsed()
    );
    assert!(
        slowest < Duration::from_millis(100),
        "/healthz took {slowest:?}"
    );
    assert!(
        reason.starts_with("unhealthy: cycle 1 started at"),
        "{reason}"
    );
    assert!(reason.contains("past its deadline of 1 s"), "{reason}");
    // The status page names what the abandoned cycle was doing, and whom.
    let page = http
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("abandoned") && page.contains(&fault.addr),
        "{page}"
    );

    // The remote comes back: a cycle succeeds and /healthz is green again.
    fault.forward();
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never green again"
        );
        let (status, _, took) = healthz(&http, &base).await;
        assert!(took < Duration::from_millis(100), "/healthz took {took:?}");
        if status == 200
            && file_on(&dir.path().join("fleet.git"), "dev", "envs/dev/app.yaml")
                .is_some_and(|f| f.contains("team/app:1.1.0"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_remote_that_never_answers_times_out_with_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_registry, image) = app_registry().await;
    let fault = TcpFault::start(None).await;
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!(
            "repository: {{ url: 'http://{}/fleet.git', branch: main, timeoutSeconds: 1 }}\nregistries:\n  - {{ host: '{}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1 }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\n",
            fault.addr,
            image.split('/').next().unwrap()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["once", "-c", config.to_str().unwrap()])
        .args(["--workdir", dir.path().join("work").to_str().unwrap()])
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        stderr.contains(&format!(
            "http://{}/fleet.git did not answer in time",
            fault.addr
        )),
        "{stderr}"
    );
    assert!(stderr.contains("repository.timeoutSeconds"), "{stderr}");
}

/// A world for in-process cycles: the real registry (optionally behind a
/// proxy), a bare repository with envs/dev and envs/prod, and the GitHub
/// stand-in for prod's pull requests.
struct World {
    dir: tempfile::TempDir,
    _bare: PathBuf,
    config: PathBuf,
    engine: Engine,
    _registry: TestRegistry,
    _github: FakeGitHub,
}

impl World {
    async fn new(
        registry_host: Option<&str>,
        github_api: Option<String>,
        extra_registry: &str,
    ) -> World {
        let dir = tempfile::tempdir().unwrap();
        let (registry, image) = app_registry().await;
        let host = registry_host.unwrap_or(&registry.host).to_string();
        let image = image.replace(&registry.host, &host);
        let bare = seed_repository(dir.path(), &image);
        let github = FakeGitHub::start("acme", "fleet", &bare, "gh-hard-token").await;
        std::env::set_var("TW_HARD_GH_TOKEN", "gh-hard-token");
        let api = github_api.unwrap_or_else(|| github.api_base.clone());
        let config = dir.path().join("policies.yaml");
        std::fs::write(
            &config,
            format!(
                "repository:\n  url: file://{bare}\n  branch: main\n  github: {{ apiUrl: '{api}', repository: acme/fleet, token: {{ env: TW_HARD_GH_TOKEN }}, timeoutSeconds: 1 }}\nregistries:\n  - {{ host: '{host}', insecure: true{extra_registry} }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1 }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\n  - {{ name: prod, paths: [envs/prod], pullRequest: {{ base: main }} }}\n",
                bare = bare.display()
            ),
        )
        .unwrap();
        let loaded = Config::load(&config).unwrap_or_else(|e| panic!("{e}"));
        let engine = Engine::new(std::sync::Arc::new(tidewatch::engine::client_for(&loaded)));
        World {
            dir,
            _bare: bare,
            config,
            engine,
            _registry: registry,
            _github: github,
        }
    }

    async fn cycle(&self) -> CycleReport {
        let config = Config::load(&self.config).unwrap_or_else(|e| panic!("{e}"));
        self.engine
            .cycle(
                &config,
                &OnceOptions {
                    workdir: Some(self.dir.path().join("work")),
                    dry_run: false,
                    only_policies: None,
                    deadline: Some((Instant::now() + Duration::from_secs(60)).into()),
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
            .unwrap_or_else(|| panic!("no {update} in {report:?}"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_never_answers_fails_its_policy_within_the_timeout() {
    let (registry, _) = app_registry().await;
    let proxy = TestProxy::start(&registry.base_url(), ProxyBehavior::default()).await;
    proxy.inject(
        "/v2/team/app/tags",
        vec![Fault::Hang(Duration::from_secs(60))],
    );
    let world = World::new(
        Some(&proxy.host),
        None,
        ", timeoutSeconds: 1, maxAttempts: 1",
    )
    .await;
    let started = Instant::now();
    let report = world.cycle().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let error = report.scan_errors.get("app").expect("app is unknown");
    assert_eq!(
        error,
        &format!(
            "registry {} timed out after 1 attempt(s); it may be overloaded or unreachable",
            proxy.host
        )
    );
    assert!(report.has_failures());
    assert_eq!(World::outcome(&report, "dev"), Outcome::UpToDate);
    drop(registry);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forge_that_never_answers_fails_only_the_pr_within_the_timeout() {
    let fault = TcpFault::start(None).await;
    let world = World::new(None, Some(format!("http://{}/", fault.addr)), "").await;
    let started = Instant::now();
    let report = world.cycle().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(World::outcome(&report, "dev"), Outcome::Committed { .. }),
        "{report:?}"
    );
    match World::outcome(&report, "prod") {
        Outcome::Failed { error } => {
            assert!(
                error.starts_with(&format!("cannot reach GitHub at http://{}/", fault.addr)),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_index_lock_is_recloned_once_and_the_cycle_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, image) = app_registry().await;
    let bare = seed_repository(dir.path(), &image);
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!(
            "repository: {{ url: 'file://{}', branch: main }}\nregistries:\n  - {{ host: '{}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1 }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\n",
            bare.display(),
            registry.host
        ),
    )
    .unwrap();
    let workdir = dir.path().join("work");
    let once = || {
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["once", "-c", config.to_str().unwrap()])
            .args(["--workdir", workdir.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let first = once();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // A killed process left its index lock behind.
    std::fs::write(workdir.join(".git/index.lock"), "").unwrap();
    registry
        .push_image("team/app", &["1.2.0"], "2024-02-01T00:00:00Z", 2)
        .await;
    let second = once();
    let stdout = String::from_utf8_lossy(&second.stdout);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stderr
            .matches("the work directory is unusable; cloning it afresh")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("index.lock"), "{stderr}");
    assert!(stdout.contains("update dev: committed"), "{stdout}");
    assert!(file_on(&bare, "dev", "envs/dev/app.yaml")
        .unwrap()
        .contains("team/app:1.2.0"));
    assert!(!workdir.join(".git/index.lock").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_on_the_same_workdir_exits_naming_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, image) = app_registry().await;
    let bare = seed_repository(dir.path(), &image);
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!(
            "repository: {{ url: 'file://{}', branch: main }}\nregistries:\n  - {{ host: '{}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1, interval: 1h }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\nserver: {{ allowUnauthenticatedWebhooks: true }}\n",
            bare.display(),
            registry.host
        ),
    )
    .unwrap();
    let workdir = dir.path().join("work");
    let port = support::free_port();
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["run", "-c", config.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--workdir", workdir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = support::http_client();
    let started = Instant::now();
    while healthz(&http, &format!("http://127.0.0.1:{port}")).await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "service never up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for args in [&["once"][..], &["run", "--listen", "127.0.0.1:0"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(args)
            .args(["-c", config.to_str().unwrap()])
            .args(["--workdir", workdir.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{}.lock", workdir.display()))
                && stderr.contains("in use by another tidewatch process"),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn links_out_of_scope_are_refused_and_nothing_outside_changes() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let (registry, image) = app_registry().await;
    let outside_file = outside.path().join("app.yaml");
    std::fs::write(&outside_file, pod(&format!("{image}:1.0.0"))).unwrap();

    // envs/dev/p -> ../prod (another update's), escape -> the outside dir,
    // all committed to the repository.
    let bare = seed_repository(dir.path(), &image);
    let seed = dir.path().join("human");
    std::os::unix::fs::symlink("../prod", seed.join("envs/dev/p")).unwrap();
    std::os::unix::fs::symlink(outside.path(), seed.join("escape")).unwrap();
    git(&seed, &["add", "."]);
    git(&seed, &["commit", "-q", "-m", "links"]);
    git(&seed, &["push", "-q", "origin", "HEAD:main"]);
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!(
            "repository: {{ url: 'file://{}', branch: main }}\nregistries:\n  - {{ host: '{}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1 }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\n  - {{ name: prod, paths: [envs/prod], branch: prod-branch }}\n  - {{ name: escaped, paths: [escape], branch: escaped }}\n",
            bare.display(),
            registry.host
        ),
    )
    .unwrap();
    let loaded = Config::load(&config).unwrap();
    let report = tidewatch::engine::once(
        &loaded,
        &OnceOptions {
            workdir: Some(dir.path().join("work")),
            ..OnceOptions::default()
        },
    )
    .await
    .unwrap();
    let notes = |update: &str| -> Vec<String> {
        report
            .updates
            .iter()
            .find(|u| u.update == update)
            .map(|u| u.notes.clone())
            .unwrap_or_default()
    };
    assert!(
        notes("dev").iter().any(|n| n.starts_with("envs/dev/p:0: is a symbolic link to ../prod (envs/prod), which belongs to another update's paths; refused")),
        "{:?}",
        notes("dev")
    );
    assert!(
        notes("escaped").iter().any(|n| n
            .starts_with("escape:0: resolves through a symbolic link to")
            && n.contains("outside the repository")),
        "{:?}",
        notes("escaped")
    );
    assert_eq!(World::outcome(&report, "escaped"), Outcome::UpToDate);
    // dev changed only its own file; the outside file is untouched.
    let dev = file_on(&bare, "dev", "envs/dev/app.yaml").unwrap();
    assert!(dev.contains("team/app:1.1.0"));
    assert!(file_on(&bare, "dev", "envs/prod/app.yaml")
        .unwrap()
        .contains("team/app:1.0.0"));
    assert_eq!(
        std::fs::read_to_string(&outside_file).unwrap(),
        pod(&format!("{image}:1.0.0"))
    );
    assert!(
        file_on(&bare, "escaped", "envs/dev/app.yaml").is_none(),
        "nothing was committed for the escaped update"
    );
}
