//! The cycle as a reconcile, end to end: the real CNCF registry (two of
//! them, the second behind a proxy that can fail), a real bare repository,
//! and the stateful GitHub stand-in. An unknown input never closes or
//! rewrites a pull request, declines are a floor, and a forge outage fails
//! only the pull requests.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::git;
use support::github::FakeGitHub;
use support::proxy::{Fault, ProxyBehavior, TestProxy};
use support::registry::{AuthMode, TestRegistry};
use tidewatch::config::Config;
use tidewatch::engine::{CycleReport, Engine, OnceOptions, Outcome};

const TOKEN: &str = "gh-reconcile-token-91c2";

fn manifest(app: &str, worker: Option<&str>) -> String {
    let mut text = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {app}\n"
    );
    if let Some(worker) = worker {
        text.push_str(&format!(
            "        - name: worker\n          image: {worker}\n"
        ));
    }
    text
}

struct World {
    dir: tempfile::TempDir,
    apps: TestRegistry,
    _workers: TestRegistry,
    proxy: TestProxy,
    bare: PathBuf,
    human: PathBuf,
    github: FakeGitHub,
    config_path: PathBuf,
    engine: Engine,
    app: String,
    worker: String,
}

impl World {
    /// `app` (1.0.0, 1.1.0) on one registry, `worker` (2.0.0, 2.1.0) on
    /// another behind a proxy. envs/dev holds app (direct commits to dev),
    /// envs/prod holds both (one pull request into main).
    async fn new(env_var: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let apps = TestRegistry::start(AuthMode::Anonymous).await;
        apps.push_image("team/app", &["1.0.0", "1.1.0"], "2024-01-01T00:00:00Z", 1)
            .await;
        let workers = TestRegistry::start(AuthMode::Anonymous).await;
        workers
            .push_image(
                "team/worker",
                &["2.0.0", "2.1.0"],
                "2024-01-01T00:00:00Z",
                2,
            )
            .await;
        let proxy = TestProxy::start(&workers.base_url(), ProxyBehavior::default()).await;
        let app = format!("{}/team/app", apps.host);
        let worker = format!("{}/team/worker", proxy.host);

        let dev = manifest(&format!("{app}:1.0.0"), None);
        let prod = manifest(&format!("{app}:1.0.0"), Some(&format!("{worker}:2.0.0")));
        let (bare, human) = support::environment_repo(
            dir.path(),
            &[("envs/dev/app.yaml", &dev), ("envs/prod/app.yaml", &prod)],
        );

        let github = FakeGitHub::start("acme", "fleet", &bare, TOKEN).await;
        std::env::set_var(env_var, TOKEN);
        let config_path = dir.path().join("policies.yaml");
        std::fs::write(
            &config_path,
            format!(
                r#"repository:
  url: file://{bare}
  branch: main
  author: {{ name: tidewatch, email: tidewatch@example.com }}
  github: {{ apiUrl: {api}, repository: acme/fleet, token: {{ env: {env_var} }} }}
registries:
  - {{ host: "{apps}", insecure: true }}
  - {{ host: "{proxy}", insecure: true, maxAttempts: 1 }}
images:
  - {{ name: app, image: {app}, semver: ^1 }}
  - {{ name: worker, image: {worker}, semver: ^2 }}
updates:
  - {{ name: dev, paths: [envs/dev], branch: dev, images: [app] }}
  - {{ name: prod, paths: [envs/prod], pullRequest: {{ base: main }} }}
"#,
                bare = bare.display(),
                api = github.api_base,
                apps = apps.host,
                proxy = proxy.host,
            ),
        )
        .unwrap();
        let config = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
        let engine = Engine::new(std::sync::Arc::new(tidewatch::engine::client_for(&config)));
        World {
            dir,
            apps,
            _workers: workers,
            proxy,
            bare,
            human,
            github,
            config_path,
            engine,
            app,
            worker,
        }
    }

    async fn cycle(&self) -> CycleReport {
        let config = Config::load(&self.config_path).unwrap_or_else(|e| panic!("{e}"));
        let options = OnceOptions {
            workdir: Some(self.dir.path().join("work")),
            dry_run: false,
            only_policies: None,
            deadline: None,
        };
        self.engine
            .cycle(&config, &options)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn outcome(report: &CycleReport, update: &str) -> Outcome {
        report
            .updates
            .iter()
            .find(|u| u.update == update)
            .map(|u| u.outcome.clone())
            .unwrap_or_else(|| panic!("no report for {update}: {report:?}"))
    }

    fn branch_sha(&self, branch: &str) -> Option<String> {
        let out = Command::new("git")
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("refs/heads/{branch}"))
            .current_dir(&self.bare)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn file_on(&self, branch: &str, path: &str) -> String {
        git(&self.bare, &["show", &format!("{branch}:{path}")])
    }

    /// A human commits `envs/prod/app.yaml` with these values to main.
    fn human_sets_prod(&self, app: &str, worker: &str) {
        git(&self.human, &["pull", "-q", "origin", "main"]);
        std::fs::write(
            self.human.join("envs/prod/app.yaml"),
            manifest(
                &format!("{}:{app}", self.app),
                Some(&format!("{}:{worker}", self.worker)),
            ),
        )
        .unwrap();
        git(
            &self.human,
            &["commit", "-q", "-am", &format!("prod: app {app}")],
        );
        git(&self.human, &["push", "-q", "origin", "HEAD:main"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_registry_holds_the_pr_while_the_direct_commit_still_lands() {
    let world = World::new("TW_RECONCILE_TOKEN_A").await;
    let report = world.cycle().await;
    let Outcome::PullRequestOpened { number, .. } = World::outcome(&report, "prod") else {
        panic!("{report:?}")
    };
    let before = world.github.pr(number).unwrap();
    let head_before = world.branch_sha("tidewatch/prod").unwrap();
    assert!(world
        .file_on("tidewatch/prod", "envs/prod/app.yaml")
        .contains("team/worker:2.1.0"));

    // app moves on; worker's registry answers 503 for this cycle.
    world
        .apps
        .push_image("team/app", &["1.2.0"], "2024-02-01T00:00:00Z", 3)
        .await;
    world.proxy.inject(
        "/v2/team/worker/tags",
        vec![Fault::Status {
            status: 503,
            retry_after: None,
        }],
    );
    let report = world.cycle().await;
    assert!(report.scan_errors.contains_key("worker"), "{report:?}");
    assert!(
        report.has_failures(),
        "an unknown input is a failure of the cycle"
    );
    match World::outcome(&report, "prod") {
        Outcome::Held {
            number: held,
            reason,
        } => {
            assert_eq!(held, Some(number));
            assert!(reason.contains("policy worker is unknown"), "{reason}");
            assert!(reason.contains("503"), "{reason}");
        }
        other => panic!("expected a hold, got {other:?}"),
    }
    let after = world.github.pr(number).unwrap();
    assert_eq!(after.state, "open");
    assert_eq!((&after.title, &after.body), (&before.title, &before.body));
    assert_eq!(
        world.branch_sha("tidewatch/prod").as_deref(),
        Some(head_before.as_str()),
        "the head branch was not touched"
    );
    // The direct group on the healthy registry committed in the same cycle.
    assert!(
        matches!(World::outcome(&report, "dev"), Outcome::Committed { .. }),
        "{report:?}"
    );
    assert!(world
        .file_on("dev", "envs/dev/app.yaml")
        .contains("team/app:1.2.0"));

    // Registry back: the PR is updated in place with both picks.
    let report = world.cycle().await;
    assert!(
        matches!(World::outcome(&report, "prod"), Outcome::PullRequestUpdated { number: n, .. } if n == number),
        "{report:?}"
    );
    let prod = world.file_on("tidewatch/prod", "envs/prod/app.yaml");
    assert!(
        prod.contains("team/app:1.2.0") && prod.contains("team/worker:2.1.0"),
        "{prod}"
    );
    assert_eq!(world.github.prs().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_pr_is_a_floor_and_a_newer_version_gets_exactly_one_pr() {
    let world = World::new("TW_RECONCILE_TOKEN_B").await;
    // worker is already current; only app moves.
    world.human_sets_prod("1.0.0", "2.1.0");
    let report = world.cycle().await;
    let Outcome::PullRequestOpened { number, .. } = World::outcome(&report, "prod") else {
        panic!("{report:?}")
    };
    world
        .apps
        .push_image("team/app", &["1.2.0"], "2024-02-01T00:00:00Z", 3)
        .await;
    let report = world.cycle().await;
    assert!(
        matches!(World::outcome(&report, "prod"), Outcome::PullRequestUpdated { number: n, .. } if n == number),
        "{report:?}"
    );
    assert!(world.github.pr(number).unwrap().body.contains("1.2.0"));

    // A reviewer closes it unmerged: 1.2.0 (and so 1.1.0) is declined.
    world.github.close_pr(number);
    for _ in 0..2 {
        let report = world.cycle().await;
        assert_eq!(
            World::outcome(&report, "prod"),
            Outcome::UpToDate,
            "{report:?}"
        );
        let prod = report.updates.iter().find(|u| u.update == "prod").unwrap();
        assert_eq!(prod.declines.len(), 1, "{:?}", prod.declines);
        assert_eq!(
            (prod.declines[0].version.as_str(), prod.declines[0].number),
            ("1.2.0", number)
        );
    }
    assert_eq!(world.github.prs().len(), 1, "no PR proposes 1.1.0 or 1.2.0");

    world
        .apps
        .push_image("team/app", &["1.3.0"], "2024-03-01T00:00:00Z", 4)
        .await;
    let report = world.cycle().await;
    let Outcome::PullRequestOpened { number: second, .. } = World::outcome(&report, "prod") else {
        panic!("{report:?}")
    };
    let open: Vec<_> = world
        .github
        .prs()
        .into_iter()
        .filter(|pr| pr.state == "open")
        .collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].number, second);
    assert!(open[0].body.contains("1.3.0") && !open[0].body.contains("1.2.0"));
    let report = world.cycle().await;
    assert!(
        matches!(
            World::outcome(&report, "prod"),
            Outcome::PullRequestUnchanged { .. }
        ),
        "{report:?}"
    );
    assert_eq!(world.github.prs().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pr_tidewatch_closed_itself_is_not_a_decline() {
    let world = World::new("TW_RECONCILE_TOKEN_C").await;
    world
        .apps
        .push_image("team/app", &["1.2.0"], "2024-02-01T00:00:00Z", 3)
        .await;
    world.human_sets_prod("1.1.0", "2.1.0");
    let report = world.cycle().await;
    let Outcome::PullRequestOpened { number, .. } = World::outcome(&report, "prod") else {
        panic!("{report:?}")
    };
    // A human puts 1.2.0 on the base: tidewatch closes its PR itself.
    world.human_sets_prod("1.2.0", "2.1.0");
    let report = world.cycle().await;
    assert_eq!(
        World::outcome(&report, "prod"),
        Outcome::PullRequestClosed {
            number,
            head: "tidewatch/prod".into()
        }
    );
    let closed = world.github.pr(number).unwrap();
    assert_eq!(closed.state, "closed");
    assert!(
        closed.body.contains("\"closed_by\":\"tidewatch\""),
        "{}",
        closed.body
    );
    assert!(
        closed
            .comments
            .iter()
            .any(|c| c.contains("not a declined version")),
        "{:?}",
        closed.comments
    );
    assert_eq!(
        world.branch_sha("tidewatch/prod"),
        None,
        "head branch deleted"
    );

    // The human reverts the base to 1.1.0: 1.2.0 is proposed again.
    world.human_sets_prod("1.1.0", "2.1.0");
    let report = world.cycle().await;
    let prod = report.updates.iter().find(|u| u.update == "prod").unwrap();
    assert!(prod.declines.is_empty(), "{:?}", prod.declines);
    let Outcome::PullRequestOpened { number: again, .. } = prod.outcome.clone() else {
        panic!("{report:?}")
    };
    assert_ne!(again, number);
    assert!(world
        .file_on("tidewatch/prod", "envs/prod/app.yaml")
        .contains("team/app:1.2.0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forge_outage_fails_only_the_prs_and_the_next_cycle_opens_one() {
    let world = World::new("TW_RECONCILE_TOKEN_D").await;
    world.github.set_outage(Some(503));
    let bin = env!("CARGO_BIN_EXE_tidewatch");
    let out = Command::new(bin)
        .args(["once", "-c"])
        .arg(&world.config_path)
        .arg("--workdir")
        .arg(world.dir.path().join("cli-work"))
        .env("TW_RECONCILE_TOKEN_D", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("update dev: committed"), "{stdout}");
    let prod_line = stdout
        .lines()
        .find(|l| l.starts_with("update prod"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        prod_line.contains("FAILED: GitHub answered HTTP 503") && prod_line.contains("acme/fleet"),
        "{prod_line}"
    );
    assert!(world
        .file_on("dev", "envs/dev/app.yaml")
        .contains("team/app:1.1.0"));
    assert_eq!(
        world.branch_sha("tidewatch/prod"),
        None,
        "nothing pushed for the PR"
    );
    assert!(world.github.prs().is_empty());

    world.github.set_outage(None);
    let report = world.cycle().await;
    assert!(
        matches!(
            World::outcome(&report, "prod"),
            Outcome::PullRequestOpened { .. }
        ),
        "{report:?}"
    );
    assert_eq!(World::outcome(&report, "dev"), Outcome::UpToDate);
    assert_eq!(world.github.prs().len(), 1);
    let report = world.cycle().await;
    assert!(matches!(
        World::outcome(&report, "prod"),
        Outcome::PullRequestUnchanged { .. }
    ));
    assert_eq!(world.github.prs().len(), 1);
}

/// The service kills its child process when dropped.
struct Service(std::process::Child);
impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn in_run_a_pr_head_always_carries_every_policy_and_moves_only_with_a_pick() {
    let world = World::new("TW_RECONCILE_TOKEN_E").await;
    // Two intervals: app every second, worker every three.
    let config = std::fs::read_to_string(&world.config_path)
        .unwrap()
        .replace("semver: ^1 }", "semver: ^1, interval: 1s }")
        .replace("semver: ^2 }", "semver: ^2, interval: 3s }");
    std::fs::write(&world.config_path, config).unwrap();
    let port = support::free_port();
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["run", "-c"])
            .arg(&world.config_path)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--workdir"])
            .arg(world.dir.path().join("run-work"))
            .env("TW_RECONCILE_TOKEN_E", TOKEN)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    // (cycle, head sha, app value, worker value) after each cycle.
    let mut samples: Vec<(u64, String, String, String)> = Vec::new();
    let mut seen_cycles = 0u64;
    let mut pushed_at: Option<u64> = None;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(60) {
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
        let Ok(response) = http.get(&metrics_url).send().await else {
            continue;
        };
        let cycles = metric(
            &response.text().await.unwrap_or_default(),
            "tidewatch_cycles_total",
        ) as u64;
        if cycles <= seen_cycles {
            continue;
        }
        seen_cycles = cycles;
        if let Some(sha) = world.branch_sha("tidewatch/prod") {
            let text = world.file_on(&sha, "envs/prod/app.yaml");
            let value = |name: &str| {
                text.lines()
                    .find_map(|l| l.split(&format!("/team/{name}:")).nth(1))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            samples.push((cycles, sha, value("app"), value("worker")));
        }
        if cycles >= 4 && pushed_at.is_none() {
            world
                .apps
                .push_image("team/app", &["1.2.0"], "2024-02-01T00:00:00Z", 3)
                .await;
            pushed_at = Some(cycles);
        }
        let after_push = samples
            .iter()
            .filter(|s| pushed_at.is_some_and(|p| s.0 > p + 1))
            .count();
        if samples.len() >= 8 && after_push >= 3 {
            break;
        }
    }
    assert!(
        samples.len() >= 6,
        "only {} cycles sampled: {samples:?}",
        samples.len()
    );
    for (cycle, _, app, worker) in &samples {
        assert_eq!(
            worker, "2.1.0",
            "cycle {cycle}: worker's pick missing: {samples:?}"
        );
        assert!(
            app == "1.1.0" || app == "1.2.0",
            "cycle {cycle}: {samples:?}"
        );
    }
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(
            a.1 != b.1,
            a.2 != b.2,
            "the head moved without a pick change (or not with one): {samples:?}"
        );
    }
    assert_eq!(
        samples.last().map(|s| s.2.as_str()),
        Some("1.2.0"),
        "{samples:?}"
    );
    let open: Vec<_> = world
        .github
        .prs()
        .into_iter()
        .filter(|p| p.state == "open")
        .collect();
    assert_eq!(open.len(), 1, "{:?}", world.github.prs());
}
