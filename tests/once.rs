//! End to end: `once` against the real CNCF registry, a real bare git
//! repository and the stateful fake GitHub. One policy file commits
//! `envs/dev` to `dev` directly and opens a pull request for `envs/prod`.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::git;
use support::github::FakeGitHub;
use support::registry::{AuthMode, TestRegistry};
use tidewatch::config::Config;
use tidewatch::engine::{self, CycleReport, OnceOptions, Outcome};

const TOKEN: &str = "gh-test-token-5f3a";

fn deployment(image: &str) -> String {
    format!(
        "# the app, managed by tidewatch\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {image}   # keep this comment\n"
    )
}

struct World {
    _dir: tempfile::TempDir,
    registry: TestRegistry,
    bare: PathBuf,
    scratch: PathBuf,
    github: FakeGitHub,
    config_path: PathBuf,
    workdir: PathBuf,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let registry = TestRegistry::start(AuthMode::Anonymous).await;
        registry
            .push_image("team/app", &["1.0.0", "1.1.0"], "2024-01-01T00:00:00Z", 1)
            .await;
        let image = format!("{}/team/app", registry.host);

        let app = deployment(&format!("{image}:1.0.0"));
        let (bare, scratch) = support::environment_repo(
            dir.path(),
            &[("envs/dev/app.yaml", &app), ("envs/prod/app.yaml", &app)],
        );

        let github = FakeGitHub::start("acme", "fleet", &bare, TOKEN).await;
        std::env::set_var("TW_ONCE_GH_TOKEN", TOKEN);
        let config_path = dir.path().join("policies.yaml");
        std::fs::write(
            &config_path,
            format!(
                r#"repository:
  url: file://{bare}
  branch: main
  author: {{ name: tidewatch, email: tidewatch@example.com }}
  github:
    apiUrl: {api}
    repository: acme/fleet
    token: {{ env: TW_ONCE_GH_TOKEN }}
registries:
  - host: {host}
    insecure: true
images:
  - name: app
    image: {image}
    semver: ^1
updates:
  - name: dev
    paths: [envs/dev]
    branch: dev
  - name: prod
    paths: [envs/prod]
    pullRequest: {{ base: main, labels: [release], reviewers: [alice] }}
"#,
                bare = bare.display(),
                api = github.api_base,
                host = registry.host,
            ),
        )
        .unwrap();
        let workdir = dir.path().join("work");
        World {
            _dir: dir,
            registry,
            bare,
            scratch,
            github,
            config_path,
            workdir,
        }
    }

    async fn once(&self, dry_run: bool) -> CycleReport {
        let config = Config::load(&self.config_path).unwrap_or_else(|e| panic!("{e}"));
        let options = OnceOptions {
            workdir: Some(self.workdir.clone()),
            dry_run,
            only_policies: None,
            deadline: None,
        };
        engine::once(&config, &options)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn file_on(&self, branch: &str, path: &str) -> String {
        git(&self.bare, &["show", &format!("{branch}:{path}")])
    }

    fn outcome(report: &CycleReport, update: &str) -> Outcome {
        report
            .updates
            .iter()
            .find(|u| u.update == update)
            .map(|u| u.outcome.clone())
            .unwrap_or_else(|| panic!("no report for {update}"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_policy_file_commits_dev_and_opens_a_prod_pr_then_follows_the_pr_through_its_life() {
    let world = World::new().await;
    let image = format!("{}/team/app", world.registry.host);

    // Dry run: reports, touches nothing remote.
    let refs_before = git(&world.bare, &["show-ref"]);
    let report = world.once(true).await;
    assert!(matches!(
        World::outcome(&report, "dev"),
        Outcome::DryRun { .. }
    ));
    assert!(matches!(
        World::outcome(&report, "prod"),
        Outcome::DryRun { .. }
    ));
    let dev = report.updates.iter().find(|u| u.update == "dev").unwrap();
    assert!(
        dev.diff.contains(&format!(
            "+          image: {image}:1.1.0   # keep this comment"
        )),
        "{}",
        dev.diff
    );
    assert_eq!(git(&world.bare, &["show-ref"]), refs_before);
    assert_eq!(world.github.write_count(), 0);
    assert_eq!(report.git.pushes, 0);

    // 1. A new tag: dev gets a commit, prod a pull request.
    let report = world.once(false).await;
    assert!(
        matches!(World::outcome(&report, "dev"), Outcome::Committed { ref branch, .. } if branch == "dev"),
        "{report:?}"
    );
    assert_eq!(
        world.file_on("dev", "envs/dev/app.yaml"),
        deployment(&format!("{image}:1.1.0"))
    );
    assert_eq!(
        world.file_on("main", "envs/prod/app.yaml"),
        deployment(&format!("{image}:1.0.0"))
    );
    let Outcome::PullRequestOpened {
        number: first,
        ref head,
    } = World::outcome(&report, "prod")
    else {
        panic!("{report:?}")
    };
    assert_eq!(head, "tidewatch/prod");
    let prs = world.github.prs();
    assert_eq!(prs.len(), 1);
    assert_eq!(
        (prs[0].state.as_str(), prs[0].labels.clone()),
        ("open", vec!["release".to_string()])
    );
    assert_eq!(prs[0].reviewers, ["alice"]);
    assert!(
        prs[0].body.contains("tidewatch:"),
        "hidden block missing: {}",
        prs[0].body
    );
    assert_eq!(
        world.file_on("tidewatch/prod", "envs/prod/app.yaml"),
        deployment(&format!("{image}:1.1.0"))
    );

    // 6. Twice in a row: the second run makes no commit and no API write.
    let writes = world.github.write_count();
    let report = world.once(false).await;
    assert_eq!(World::outcome(&report, "dev"), Outcome::UpToDate);
    assert!(
        matches!(
            World::outcome(&report, "prod"),
            Outcome::PullRequestUnchanged { .. }
        ),
        "{report:?}"
    );
    assert_eq!(
        world.github.write_count(),
        writes,
        "GitHub writes in a no-op cycle"
    );
    assert_eq!(report.forge_writes, 0);
    assert_eq!(
        (report.git.clones, report.git.fetches, report.git.pushes),
        (0, 1, 0)
    );

    // 2. A newer tag updates the same PR; no second PR.
    world
        .registry
        .push_image("team/app", &["1.2.0"], "2024-02-01T00:00:00Z", 2)
        .await;
    let report = world.once(false).await;
    assert_eq!(
        World::outcome(&report, "prod"),
        Outcome::PullRequestUpdated {
            number: first,
            head: "tidewatch/prod".into()
        }
    );
    assert_eq!(world.github.prs().len(), 1);
    assert!(world.github.prs()[0].title.contains("1.2.0"));
    assert_eq!(
        world.file_on("dev", "envs/dev/app.yaml"),
        deployment(&format!("{image}:1.2.0"))
    );

    // 3. The PR is merged: the next cycle does nothing.
    world.github.merge_pr(first);
    let writes = world.github.write_count();
    let report = world.once(false).await;
    assert_eq!(World::outcome(&report, "prod"), Outcome::UpToDate);
    assert_eq!(world.github.write_count(), writes);
    assert_eq!(
        world.file_on("main", "envs/prod/app.yaml"),
        deployment(&format!("{image}:1.2.0"))
    );

    // 4. Closed unmerged: that version is declined, a newer one is proposed.
    world
        .registry
        .push_image("team/app", &["1.3.0"], "2024-03-01T00:00:00Z", 3)
        .await;
    let report = world.once(false).await;
    let Outcome::PullRequestOpened { number: second, .. } = World::outcome(&report, "prod") else {
        panic!("{report:?}")
    };
    world.github.close_pr(second);
    let report = world.once(false).await;
    assert_eq!(
        World::outcome(&report, "prod"),
        Outcome::UpToDate,
        "declined 1.3.0 must not come back"
    );
    assert_eq!(
        world
            .github
            .prs()
            .iter()
            .filter(|p| p.state == "open")
            .count(),
        0
    );
    world
        .registry
        .push_image("team/app", &["1.4.0"], "2024-04-01T00:00:00Z", 4)
        .await;
    let report = world.once(false).await;
    let Outcome::PullRequestOpened { number: third, .. } = World::outcome(&report, "prod") else {
        panic!("{report:?}")
    };
    assert!(world
        .github
        .prs()
        .iter()
        .any(|p| p.number == third && p.title.contains("1.4.0")));

    // 5. A human applies the change on the base: the PR is closed.
    git(&world.scratch, &["pull", "-q", "origin", "main"]);
    std::fs::write(
        world.scratch.join("envs/prod/app.yaml"),
        deployment(&format!("{image}:1.4.0")),
    )
    .unwrap();
    git(
        &world.scratch,
        &["commit", "-q", "-am", "bump prod by hand"],
    );
    git(&world.scratch, &["push", "-q", "origin", "HEAD:main"]);
    let report = world.once(false).await;
    assert_eq!(
        World::outcome(&report, "prod"),
        Outcome::PullRequestClosed {
            number: third,
            head: "tidewatch/prod".into()
        }
    );
    let pr = world
        .github
        .prs()
        .into_iter()
        .find(|p| p.number == third)
        .unwrap();
    assert_eq!((pr.state.as_str(), pr.merged), ("closed", false));
    assert!(!pr.comments.is_empty());
    assert!(!git(&world.bare, &["branch", "--list", "tidewatch/prod"]).contains("tidewatch/prod"));
    // The human's commit is intact and no PR was duplicated at any point.
    assert_eq!(
        world.file_on("main", "envs/prod/app.yaml"),
        deployment(&format!("{image}:1.4.0"))
    );
    assert_eq!(world.github.prs().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_once_command_prints_what_it_did() {
    let world = World::new().await;
    let out = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args([
            "once",
            "-c",
            world.config_path.to_str().unwrap(),
            "--workdir",
            world.workdir.to_str().unwrap(),
        ])
        .env("TW_ONCE_GH_TOKEN", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("update dev: committed"), "{stdout}");
    assert!(
        stdout.contains("update prod (tidewatch/prod): opened PR #1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(app): 1.0.0 -> 1.1.0 in envs/dev/app.yaml"),
        "{stdout}"
    );
    assert!(!format!("{stdout}{stderr}").contains(TOKEN));
}
