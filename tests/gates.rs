//! The gates end to end, on the real CNCF registry, real git repositories
//! and the GitHub stand-in: minimum age, cosign signatures in both layouts
//! (pushed by this test, signed with a fresh P-256 key), promotion with
//! soak and required status, a three-stage chain, and `check`'s refusals.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cosign::CosignKey;
use support::github::FakeGitHub;
use support::proxy::{ProxyBehavior, TestProxy};
use support::registry::{AuthMode, TestRegistry};
use tidewatch::config::Config;
use tidewatch::engine::{CycleReport, Engine, OnceOptions, Outcome, UpdateReport};

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// RFC 3339, whole seconds: how the gates print times.
fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// A bare environment repository and a human's clone of it.
struct Fleet {
    dir: tempfile::TempDir,
    bare: PathBuf,
    human: PathBuf,
}

impl Fleet {
    fn new() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("fleet.git");
        let human = dir.path().join("human");
        std::fs::create_dir_all(&bare).unwrap();
        support::git(&bare, &["init", "--bare", "-q"]);
        support::git(
            dir.path(),
            &[
                "clone",
                "-q",
                bare.to_str().unwrap(),
                human.to_str().unwrap(),
            ],
        );
        Fleet { dir, bare, human }
    }

    /// Writes `files` and commits them with author and committer time
    /// `at` (seconds), then pushes to main. Returns the commit id.
    fn commit_at(&self, at: i64, files: &[(&str, String)], message: &str) -> String {
        for (path, text) in files {
            let path = self.human.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let date = format!("@{at} +0000");
        let run = |args: &[&str]| {
            let out = Command::new("git")
                .args([
                    "-c",
                    "user.name=Human",
                    "-c",
                    "user.email=human@example.com",
                ])
                .args(args)
                .env("GIT_AUTHOR_DATE", &date)
                .env("GIT_COMMITTER_DATE", &date)
                .current_dir(&self.human)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        run(&["add", "-A"]);
        run(&["commit", "-q", "-m", message]);
        run(&["push", "-q", "origin", "HEAD:main"]);
        run(&["rev-parse", "HEAD"])
    }

    fn file(&self, branch: &str, path: &str) -> String {
        support::git(&self.bare, &["show", &format!("{branch}:{path}")])
    }

    fn policies(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("policies.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn workdir(&self) -> PathBuf {
        self.dir.path().join("work")
    }
}

fn deployment(images: &[String]) -> String {
    let mut text = String::from(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n",
    );
    for (i, image) in images.iter().enumerate() {
        text.push_str(&format!("        - name: c{i}\n          image: {image}\n"));
    }
    text
}

fn repository(bare: &Path, github: Option<(&FakeGitHub, &str)>) -> String {
    let github = github
        .map(|(g, var)| {
            format!(
                "\n  github: {{ apiUrl: {}, repository: acme/fleet, token: {{ env: {var} }} }}",
                g.api_base
            )
        })
        .unwrap_or_default();
    format!(
        "repository:\n  url: file://{}\n  branch: main\n  author: {{ name: tidewatch, email: tidewatch@example.com }}{github}\n",
        bare.display()
    )
}

async fn cycle(engine: &Engine, policies: &Path, workdir: &Path) -> CycleReport {
    let config = Config::load(policies).unwrap_or_else(|e| panic!("{e}"));
    let options = OnceOptions {
        workdir: Some(workdir.to_path_buf()),
        ..OnceOptions::default()
    };
    engine
        .cycle(&config, &options)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn engine_for(policies: &Path) -> Engine {
    let config = Config::load(policies).unwrap_or_else(|e| panic!("{e}"));
    Engine::new(std::sync::Arc::new(tidewatch::engine::client_for(&config)))
}

fn update<'r>(report: &'r CycleReport, name: &str) -> &'r UpdateReport {
    report
        .updates
        .iter()
        .find(|u| u.update == name)
        .unwrap_or_else(|| panic!("no report for {name}: {report:#?}"))
}

fn gate_lines(report: &CycleReport, name: &str) -> Vec<String> {
    update(report, name)
        .gates
        .iter()
        .map(|g| g.to_string())
        .collect()
}

// ----- minimum age ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn minimum_age_picks_the_old_enough_tag_and_shows_when_the_young_one_may_go() {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    let t = now();
    let hour_old = t - HOUR;
    registry
        .push_image("team/aged", &["1.0.0"], &rfc3339(t - 10 * DAY), 1)
        .await;
    registry
        .push_image("team/aged", &["1.3.0"], &rfc3339(t - 5 * DAY), 2)
        .await;
    registry
        .push_image("team/aged", &["1.4.0"], &rfc3339(hour_old), 3)
        .await;
    let image = format!("{}/team/aged", registry.host);
    let fleet = Fleet::new();
    fleet.commit_at(
        t - 20 * DAY,
        &[("envs/dev/app.yaml", deployment(&[format!("{image}:1.0.0")]))],
        "initial",
    );
    let policies = fleet.policies(&format!(
        "{}registries:\n  - {{ host: \"{}\", insecure: true }}\nimages:\n  - {{ name: app, image: {image}, semver: ^1, minimumAge: 3d }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: main }}\n",
        repository(&fleet.bare, None),
        registry.host
    ));
    let engine = engine_for(&policies);

    let report = cycle(&engine, &policies, &fleet.workdir()).await;
    assert!(
        matches!(update(&report, "dev").outcome, Outcome::Committed { .. }),
        "{report:#?}"
    );
    assert!(fleet
        .file("main", "envs/dev/app.yaml")
        .contains(&format!("{image}:1.3.0")));
    let lines = gate_lines(&report, "dev");
    assert_eq!(
        lines[0],
        format!(
            "app: 1.4.0 waits until {} (created {}, minimumAge 3d)",
            rfc3339(hour_old + 3 * DAY),
            rfc3339(hour_old)
        ),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("app: 1.3.0 passes: created"),
        "{lines:?}"
    );

    // `tags` says the same.
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args([
            "tags",
            &image,
            "--insecure",
            "--semver",
            "^1",
            "--minimum-age",
            "3d",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "1.4.0  waits until {}",
            rfc3339(hour_old + 3 * DAY)
        )),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1.3.0",
        "{stderr}"
    );

    // The fixture makes 1.4.0 old enough (re-published with an older
    // build time): it is picked.
    registry
        .push_image("team/aged", &["1.4.0"], &rfc3339(t - 4 * DAY), 4)
        .await;
    let report = cycle(&engine, &policies, &fleet.workdir()).await;
    assert!(
        matches!(update(&report, "dev").outcome, Outcome::Committed { .. }),
        "{report:#?}"
    );
    assert!(fleet
        .file("main", "envs/dev/app.yaml")
        .contains(&format!("{image}:1.4.0")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_tag_is_picked_when_its_time_comes_without_fetching_its_config_again() {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    let t = now();
    // Old enough eight seconds from now.
    let created = t - 3 * DAY + 8;
    registry
        .push_image("team/soon", &["1.0.0"], &rfc3339(t - 10 * DAY), 1)
        .await;
    registry
        .push_image("team/soon", &["1.1.0"], &rfc3339(created), 2)
        .await;
    let image = format!("{}/team/soon", registry.host);
    let fleet = Fleet::new();
    fleet.commit_at(
        t - DAY,
        &[("envs/dev/app.yaml", deployment(&[format!("{image}:1.0.0")]))],
        "initial",
    );
    let policies = fleet.policies(&format!(
        "{}registries:\n  - {{ host: \"{}\", insecure: true }}\nimages:\n  - {{ name: app, image: {image}, semver: ^1, minimumAge: 3d }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: main }}\n",
        repository(&fleet.bare, None),
        registry.host
    ));
    let engine = engine_for(&policies);
    let report = cycle(&engine, &policies, &fleet.workdir()).await;
    assert_eq!(
        update(&report, "dev").outcome,
        Outcome::UpToDate,
        "{report:#?}"
    );
    assert!(
        gate_lines(&report, "dev")[0].starts_with(&format!(
            "app: 1.1.0 waits until {}",
            rfc3339(created + 3 * DAY)
        )),
        "{:?}",
        gate_lines(&report, "dev")
    );
    let blobs_before = engine.client().metrics().total(Some("blob"));
    let wait = (created + 3 * DAY + 1 - now()).max(0) as u64;
    tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 500)).await;
    let report = cycle(&engine, &policies, &fleet.workdir()).await;
    assert!(
        matches!(update(&report, "dev").outcome, Outcome::Committed { .. }),
        "{report:#?}"
    );
    assert!(fleet
        .file("main", "envs/dev/app.yaml")
        .contains(&format!("{image}:1.1.0")));
    assert_eq!(
        engine.client().metrics().total(Some("blob")),
        blobs_before,
        "the created time of a known digest comes from the cache"
    );
}

// ----- signatures ------------------------------------------------------------

/// Requests that look for signatures: `.sig` tags, referrers (API and tag
/// schema) and blobs (the only blobs these policies read are signatures).
fn signature_requests(proxy: &TestProxy) -> Vec<String> {
    proxy
        .requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .filter(|r| {
            r.contains(".sig")
                || r.contains("/referrers/")
                || r.contains("/manifests/sha256-")
                || r.contains("/blobs/")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_images_signed_by_a_configured_key_are_proposed_in_both_layouts() {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    let proxy = TestProxy::start(&registry.base_url(), ProxyBehavior::default()).await;
    let key = CosignKey::generate();
    let other = CosignKey::generate();
    let created = "2024-01-01T00:00:00Z";
    let mut app = std::collections::HashMap::new();
    for (i, tag) in ["1.1.0", "1.2.0", "1.3.0", "1.3.1", "1.3.2"]
        .iter()
        .enumerate()
    {
        app.insert(
            *tag,
            registry
                .push_image("team/app", &[tag], created, 10 + i as u64)
                .await,
        );
    }
    // 1.2.0: a sigstore bundle referrer by our key.
    key.sign_referrer(&registry, "team/app", &app["1.2.0"], &app["1.2.0"])
        .await;
    // 1.3.0: unsigned. 1.3.1: a .sig by another key.
    other
        .sign_sig_tag(&registry, "team/app", &app["1.3.1"], &app["1.3.1"])
        .await;
    // 1.3.2: our key, but the statement names 1.2.0's digest.
    key.sign_referrer(&registry, "team/app", &app["1.3.2"], &app["1.2.0"])
        .await;
    let mut tools = std::collections::HashMap::new();
    for (i, tag) in ["2.0.0", "2.1.0", "2.2.0"].iter().enumerate() {
        tools.insert(
            *tag,
            registry
                .push_image("team/tools", &[tag], created, 20 + i as u64)
                .await,
        );
    }
    // 2.1.0: the classic .sig tag by our key; 2.2.0: a .sig over another digest.
    key.sign_sig_tag(&registry, "team/tools", &tools["2.1.0"], &tools["2.1.0"])
        .await;
    key.sign_sig_tag(&registry, "team/tools", &tools["2.2.0"], &tools["2.0.0"])
        .await;

    let fleet = Fleet::new();
    std::fs::write(fleet.dir.path().join("cosign.pub"), key.public_pem()).unwrap();
    std::fs::write(
        fleet.dir.path().join("other.pub"),
        CosignKey::generate().public_pem(),
    )
    .unwrap();
    let (app_image, tools_image) = (
        format!("{}/team/app", proxy.host),
        format!("{}/team/tools", proxy.host),
    );
    fleet.commit_at(
        now() - DAY,
        &[(
            "envs/dev/app.yaml",
            deployment(&[format!("{app_image}:1.1.0"), format!("{tools_image}:2.0.0")]),
        )],
        "initial",
    );
    let policies = fleet.policies(&format!(
        "{}registries:\n  - {{ host: \"{}\", insecure: true }}\nimages:\n  - name: app\n    image: {app_image}\n    semver: ^1\n    verify: {{ cosign: {{ publicKey: {{ file: cosign.pub }} }} }}\n  - name: tools\n    image: {tools_image}\n    semver: ^2\n    verify: {{ cosign: {{ publicKeys: [{{ file: other.pub }}, {{ file: cosign.pub }}] }} }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: main }}\n",
        repository(&fleet.bare, None),
        proxy.host
    ));
    let engine = engine_for(&policies);
    let report = cycle(&engine, &policies, &fleet.workdir()).await;
    assert!(
        matches!(update(&report, "dev").outcome, Outcome::Committed { .. }),
        "{report:#?}"
    );
    let file = fleet.file("main", "envs/dev/app.yaml");
    assert!(file.contains(&format!("{app_image}:1.2.0")), "{file}");
    assert!(file.contains(&format!("{tools_image}:2.1.0")), "{file}");
    let lines = gate_lines(&report, "dev");
    let expected = [
        format!("app: 1.3.2 skipped: signed by a configured key, but over another digest ({}) in a sigstore bundle referrer", app["1.2.0"]),
        "app: 1.3.1 skipped: signed, but by no configured key (the .sig tag)".to_string(),
        "app: 1.3.0 skipped: not signed: no .sig tag and no sigstore bundle among its referrers".to_string(),
        "app: 1.2.0 passes: signed by cosign.pub (a sigstore bundle referrer)".to_string(),
        format!("tools: 2.2.0 skipped: signed by a configured key, but over another digest ({}) in the .sig tag", tools["2.0.0"]),
        "tools: 2.1.0 passes: signed by cosign.pub (the .sig tag)".to_string(),
    ];
    assert_eq!(lines, expected);
    assert!(!signature_requests(&proxy).is_empty());

    // The next cycle asks the registry nothing about signatures.
    proxy.clear_requests();
    let report = cycle(&engine, &policies, &fleet.workdir()).await;
    assert_eq!(
        update(&report, "dev").outcome,
        Outcome::UpToDate,
        "{report:#?}"
    );
    let mut now_in_git = expected.to_vec();
    now_in_git[3] = "app: 1.2.0 is the value in Git".into();
    now_in_git[5] = "tools: 2.1.0 is the value in Git".into();
    assert_eq!(gate_lines(&report, "dev"), now_in_git);
    assert_eq!(signature_requests(&proxy), Vec::<String>::new());
}

// ----- promotion -------------------------------------------------------------

const TOKEN: &str = "gh-gates-token-5b1e";

/// dev holds `1.2.0@<digest>` since `dev_at`; prod holds 1.1.0. prod
/// promotes from dev with `soak` and the extra settings in `prod_extra`.
struct Promotion {
    fleet: Fleet,
    _registry: TestRegistry,
    github: FakeGitHub,
    policies: PathBuf,
    engine: Engine,
    image: String,
    digest: String,
    dev_commit: String,
}

impl Promotion {
    async fn new(env_var: &str, dev_at: i64, prod_extra: &str) -> Promotion {
        let registry = TestRegistry::start(AuthMode::Anonymous).await;
        let created = "2024-01-01T00:00:00Z";
        registry
            .push_image("team/app", &["1.1.0"], created, 1)
            .await;
        let digest = registry
            .push_image("team/app", &["1.2.0"], created, 2)
            .await;
        let image = format!("{}/team/app", registry.host);
        let fleet = Fleet::new();
        fleet.commit_at(
            now() - 10 * DAY,
            &[
                ("envs/dev/app.yaml", deployment(&[format!("{image}:1.1.0")])),
                (
                    "envs/prod/app.yaml",
                    deployment(&[format!("{image}:1.1.0")]),
                ),
            ],
            "initial",
        );
        let dev_commit = fleet.commit_at(
            dev_at,
            &[(
                "envs/dev/app.yaml",
                deployment(&[format!("{image}:1.2.0@{digest}")]),
            )],
            "dev: app 1.2.0",
        );
        let github = FakeGitHub::start("acme", "fleet", &fleet.bare, TOKEN).await;
        std::env::set_var(env_var, TOKEN);
        let policies = fleet.policies(&format!(
            "{}registries:\n  - {{ host: \"{}\", insecure: true }}\nimages:\n  - {{ name: app, image: {image}, semver: ^1 }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: main }}\n  - name: prod\n    paths: [envs/prod]\n    promoteFrom: dev\n    soak: 24h\n    pullRequest: {{ base: main }}\n{prod_extra}",
            repository(&fleet.bare, Some((&github, env_var))),
            registry.host
        ));
        let engine = engine_for(&policies);
        Promotion {
            fleet,
            _registry: registry,
            github,
            policies,
            engine,
            image,
            digest,
            dev_commit,
        }
    }

    async fn cycle(&self) -> CycleReport {
        cycle(&self.engine, &self.policies, &self.fleet.workdir()).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prod_gets_exactly_what_dev_has_held_for_a_day_in_one_pr_naming_dev_s_commit() {
    let dev_at = now() - 25 * HOUR;
    let world = Promotion::new("TW_GATES_TOKEN_A", dev_at, "").await;
    let report = world.cycle().await;
    let prod = update(&report, "prod");
    let Outcome::PullRequestOpened { number, .. } = prod.outcome else {
        panic!("{report:#?}")
    };
    let prs = world.github.prs();
    assert_eq!(prs.len(), 1, "{prs:#?}");
    let pr = world.github.pr(number).unwrap();
    assert!(
        pr.body.contains(&format!(
            "in dev since {}, commit {}",
            rfc3339(dev_at),
            world.dev_commit
        )),
        "{}",
        pr.body
    );
    // The same tag and digest as dev, pinned in prod too (not the
    // registry's newest, which is also 1.2.0 but unpinned).
    let file = world.fleet.file("tidewatch/prod", "envs/prod/app.yaml");
    assert!(
        file.contains(&format!("{}:1.2.0@{}", world.image, world.digest)),
        "{file}"
    );
    // A second cycle keeps the one PR as it is.
    let report = world.cycle().await;
    assert!(
        matches!(
            update(&report, "prod").outcome,
            Outcome::PullRequestUnchanged { .. }
        ),
        "{report:#?}"
    );
    assert_eq!(world.github.prs().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_dev_has_held_for_two_hours_waits_and_the_report_says_until_when() {
    let dev_at = now() - 2 * HOUR;
    let world = Promotion::new("TW_GATES_TOKEN_B", dev_at, "").await;
    let report = world.cycle().await;
    assert_eq!(
        update(&report, "prod").outcome,
        Outcome::UpToDate,
        "{report:#?}"
    );
    assert!(world.github.prs().is_empty());
    let lines = gate_lines(&report, "prod");
    assert_eq!(
        lines,
        [format!(
            "app: 1.2.0@{} waits until {} (in dev since {}, commit {}; soak 24h)",
            world.digest,
            rfc3339(dev_at + DAY),
            rfc3339(dev_at),
            &world.dev_commit[..12]
        )]
    );
    // `once --dry-run` prints the same verdict.
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .arg("once")
        .arg("--dry-run")
        .arg("-c")
        .arg(&world.policies)
        .arg("--workdir")
        .arg(world.fleet.dir.path().join("dry-run"))
        .env("TW_GATES_TOKEN_B", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("  gate: {}", lines[0])),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_required_status_holds_the_promotion_until_it_is_success() {
    let dev_at = now() - 25 * HOUR;
    let world = Promotion::new("TW_GATES_TOKEN_C", dev_at, "    requireStatus: success\n").await;
    world
        .github
        .set_status(&world.dev_commit, "flux/dev", "pending");
    let report = world.cycle().await;
    assert_eq!(
        update(&report, "prod").outcome,
        Outcome::UpToDate,
        "{report:#?}"
    );
    assert!(world.github.prs().is_empty());
    let lines = gate_lines(&report, "prod");
    assert!(
        lines[0].ends_with(&format!(
            "waits: dev's commit {} has status pending; requireStatus is success",
            &world.dev_commit[..12]
        )),
        "{lines:?}"
    );

    world
        .github
        .set_status(&world.dev_commit, "flux/dev", "success");
    let report = world.cycle().await;
    let Outcome::PullRequestOpened { number, .. } = update(&report, "prod").outcome else {
        panic!("{report:#?}")
    };
    let body = world.github.pr(number).unwrap().body;
    assert!(
        body.contains(&format!(
            "in dev since {}, commit {}, status success",
            rfc3339(dev_at),
            world.dev_commit
        )),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_chain_each_stage_moves_only_after_its_predecessor_s_soak() {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    let created = "2024-01-01T00:00:00Z";
    registry
        .push_image("team/app", &["1.1.0"], created, 1)
        .await;
    let d12 = registry
        .push_image("team/app", &["1.2.0"], created, 2)
        .await;
    let d13 = registry
        .push_image("team/app", &["1.3.0"], created, 3)
        .await;
    let image = format!("{}/team/app", registry.host);
    let at = |tag: &str, digest: &str| deployment(&[format!("{image}:{tag}@{digest}")]);
    let d11 = registry
        .manifest("team/app", "1.1.0")
        .await
        .map(|m| support::sha256_digest(&m))
        .unwrap();
    let fleet = Fleet::new();
    let t = now();
    fleet.commit_at(
        t - 60 * HOUR,
        &[
            ("envs/dev/app.yaml", at("1.1.0", &d11)),
            ("envs/staging/app.yaml", at("1.1.0", &d11)),
            ("envs/prod/app.yaml", at("1.1.0", &d11)),
        ],
        "initial",
    );
    let staged = fleet.commit_at(
        t - 30 * HOUR,
        &[
            ("envs/dev/app.yaml", at("1.2.0", &d12)),
            ("envs/staging/app.yaml", at("1.2.0", &d12)),
        ],
        "dev and staging: 1.2.0",
    );
    let fresh = fleet.commit_at(
        t - 2 * HOUR,
        &[("envs/dev/app.yaml", at("1.3.0", &d13))],
        "dev: 1.3.0",
    );
    let policies = fleet.policies(&format!(
        "{}registries:\n  - {{ host: \"{}\", insecure: true }}\nimages:\n  - {{ name: app, image: {image}, semver: ^1 }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: main }}\n  - {{ name: staging, paths: [envs/staging], branch: main, promoteFrom: dev, soak: 24h }}\n  - {{ name: prod, paths: [envs/prod], branch: main, promoteFrom: staging, soak: 1d }}\n",
        repository(&fleet.bare, None),
        registry.host
    ));
    let engine = engine_for(&policies);
    let report = cycle(&engine, &policies, &fleet.workdir()).await;
    // staging: dev's 1.3.0 is two hours old: it waits.
    assert_eq!(
        update(&report, "staging").outcome,
        Outcome::UpToDate,
        "{report:#?}"
    );
    assert!(
        gate_lines(&report, "staging")[0].starts_with(&format!(
            "app: 1.3.0@{d13} waits until {} (in dev since {}, commit {}",
            rfc3339(t - 2 * HOUR + DAY),
            rfc3339(t - 2 * HOUR),
            &fresh[..12]
        )),
        "{:?}",
        gate_lines(&report, "staging")
    );
    // prod: staging's 1.2.0 has soaked for 30 hours: it moves.
    assert!(
        matches!(update(&report, "prod").outcome, Outcome::Committed { .. }),
        "{report:#?}"
    );
    assert!(fleet
        .file("main", "envs/prod/app.yaml")
        .contains(&format!("{image}:1.2.0@{d12}")));
    assert!(
        gate_lines(&report, "prod")[0].contains(&format!(
            "in staging since {}, commit {staged}",
            rfc3339(t - 30 * HOUR)
        )),
        "{:?}",
        gate_lines(&report, "prod")
    );
    assert!(fleet
        .file("main", "envs/staging/app.yaml")
        .contains(&format!("{image}:1.2.0@{d12}")));

    // Nothing moves again until dev's 1.3.0 has soaked.
    let report = cycle(&engine, &policies, &fleet.workdir()).await;
    for name in ["dev", "staging", "prod"] {
        assert_eq!(
            update(&report, name).outcome,
            Outcome::UpToDate,
            "{name}: {report:#?}"
        );
    }
}

// ----- check -------------------------------------------------------------------

#[test]
fn check_refuses_a_promotion_cycle_and_an_unknown_update_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policies.yaml");
    std::fs::write(
        &file,
        "repository: { url: file:///tmp/fleet.git }\nimages:\n  - { name: app, image: ghcr.io/acme/app }\nupdates:\n  - { name: dev, paths: [envs/dev], promoteFrom: prod }\n  - { name: prod, paths: [envs/prod], promoteFrom: dev }\n  - { name: qa, paths: [envs/qa], promoteFrom: stagign, soak: 1d }\n  - { name: lab, paths: [envs/lab], soak: 2h }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .arg("check")
        .arg("-c")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let at = |line: usize| format!("{}:{line}:", file.display());
    assert!(
        stderr.lines().any(
            |l| l.contains(&at(5)) && l.contains("promoteFrom forms a cycle: dev → prod → dev")
        ),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(&at(6))
                && l.contains("promoteFrom forms a cycle: prod → dev → prod")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(&at(7)) && l.contains("no update is named `stagign`")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(&at(8)) && l.contains("`soak` applies to promotions")),
        "{stderr}"
    );
}

#[test]
fn check_refuses_bad_keys_and_ages_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rsa.pub"), "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL\n-----END PUBLIC KEY-----\n").unwrap();
    let file = dir.path().join("policies.yaml");
    std::fs::write(
        &file,
        "images:\n  - name: app\n    image: ghcr.io/acme/app\n    minimumAge: soon\n    verify: { cosign: { publicKey: { file: rsa.pub } } }\n  - name: web\n    image: ghcr.io/acme/web\n    verify: { cosign: { publicKeys: [ { file: missing.pub } ] } }\n  - { name: db, image: ghcr.io/acme/db, verify: { cosign: {} } }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .arg("check")
        .arg("-c")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let at = |line: usize| format!("{}:{line}:", file.display());
    for (line, words) in [
        (4, "`soon` is not a duration"),
        (5, "rsa.pub is not a PEM `PUBLIC KEY` of an ECDSA P-256 key"),
        (8, "cannot read the public key"),
        (9, "`verify.cosign` lists no key"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&at(line)) && l.contains(words)),
            "line {line}: {words}\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_failure_during_the_signature_lookup_is_unknown_never_unsigned() {
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    let proxy = TestProxy::start(&registry.base_url(), ProxyBehavior::default()).await;
    let key = CosignKey::generate();
    let created = "2024-01-01T00:00:00Z";
    registry
        .push_image("team/app", &["1.1.0"], created, 1)
        .await;
    let signed = registry
        .push_image("team/app", &["1.2.0"], created, 2)
        .await;
    key.sign_sig_tag(&registry, "team/app", &signed, &signed)
        .await;
    let image = format!("{}/team/app", proxy.host);
    let fleet = Fleet::new();
    std::fs::write(fleet.dir.path().join("cosign.pub"), key.public_pem()).unwrap();
    fleet.commit_at(
        now() - DAY,
        &[("envs/dev/app.yaml", deployment(&[format!("{image}:1.1.0")]))],
        "initial",
    );
    let policies = fleet.policies(&format!(
        "{}registries:\n  - {{ host: \"{}\", insecure: true, maxAttempts: 1 }}\nimages:\n  - {{ name: app, image: {image}, semver: ^1, verify: {{ cosign: {{ publicKey: {{ file: cosign.pub }} }} }} }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: main }}\n",
        repository(&fleet.bare, None),
        proxy.host
    ));
    let engine = engine_for(&policies);
    proxy.inject(
        "/v2/team/app/manifests/sha256-",
        vec![support::proxy::Fault::Status {
            status: 503,
            retry_after: None,
        }],
    );
    let report = cycle(&engine, &policies, &fleet.workdir()).await;
    assert_eq!(
        update(&report, "dev").outcome,
        Outcome::UpToDate,
        "{report:#?}"
    );
    let error = report.scan_errors.get("app").cloned().unwrap_or_default();
    assert!(
        error.contains("the signature of 1.2.0 is unknown") && error.contains("503"),
        "{report:#?}"
    );
    assert!(report.has_failures(), "an unknown input fails `once`");
    assert!(fleet
        .file("main", "envs/dev/app.yaml")
        .contains(&format!("{image}:1.1.0")));

    // Nothing was cached from the failure: the next cycle verifies and picks.
    let report = cycle(&engine, &policies, &fleet.workdir()).await;
    assert!(
        matches!(update(&report, "dev").outcome, Outcome::Committed { .. }),
        "{report:#?}"
    );
    assert!(fleet
        .file("main", "envs/dev/app.yaml")
        .contains(&format!("{image}:1.2.0")));
}

#[test]
fn keys_may_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policies.yaml");
    std::fs::write(
        &file,
        "images:\n  - name: app\n    image: ghcr.io/acme/app\n    verify: { cosign: { publicKeys: [ { env: TW_GATES_KEY_SET }, { env: TW_GATES_KEY_UNSET } ] } }\n",
    )
    .unwrap();
    let check = |set: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidewatch"));
        command.arg("check").arg("-c").arg(&file);
        command.env("TW_GATES_KEY_SET", CosignKey::generate().public_pem());
        command.env_remove("TW_GATES_KEY_UNSET");
        if set {
            command.env("TW_GATES_KEY_UNSET", CosignKey::generate().public_pem());
        }
        command.output().unwrap()
    };
    let out = check(false);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:4:", file.display()))
            && stderr.contains(
                "the environment variable TW_GATES_KEY_UNSET holding the public key is not set"
            ),
        "{stderr}"
    );
    let out = check(true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
