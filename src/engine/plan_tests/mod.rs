//! Table tests of the pure plan: each case is a snapshot (what was seen)
//! and the intent the plan must choose, covering every intent and rule.
//! Direct commits and digests in `direct.rs`, pull requests in
//! `pull_requests.rs`; the world they share is built here.

mod direct;
mod gates;
mod pull_requests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::intent::Intent;
use super::plan::{digests_needed, plan, GroupPlan};
use super::scope::UpdateScope;
use super::snapshot::{
    FilesView, ForgeView, HeadBranch, HeadView, Observation, PolicyState, Snapshot, UpdateView,
};
use crate::config::Config;
use crate::forge::{render_body, Decline, PrChange, PrState, PullRequestInfo};
use crate::git::{ForeignCommit, Identity};
use crate::policy::TagMetadata;

const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

const POLICIES: &str = r#"
repository: { url: "file:///nonexistent/fleet.git", branch: main }
images:
  - { name: app, image: ghcr.io/acme/app, semver: "^1" }
  - { name: worker, image: ghcr.io/acme/worker, semver: "^2" }
  - { name: web, image: ghcr.io/acme/web, digest: stable }
updates:
  - { name: dev, paths: [envs/dev], branch: dev, images: [app, worker] }
  - name: prod
    paths: [envs/prod]
    images: [app, worker]
    pullRequest: { base: main, labels: [release] }
  - name: split
    paths: [envs/split]
    images: [app, worker]
    pullRequest: { base: main, head: "tidewatch/{update}/{policy}" }
  - name: pinned
    paths: [envs/pinned]
    images: [app, web]
"#;

fn deployment(app: &str, worker: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{ name: x }}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/acme/app:{app}\n        - name: worker\n          image: ghcr.io/acme/worker:{worker}\n"
    )
}

/// The world one table case describes.
struct Case {
    /// Per update name, the (app, worker) tags in its files.
    files: Vec<(&'static str, String)>,
    app: Option<&'static [&'static str]>,
    worker: Option<&'static [&'static str]>,
    web_digest: Option<&'static str>,
    open: Option<PullRequestInfo>,
    declines: Vec<Decline>,
    forge_down: bool,
    foreign: Vec<ForeignCommit>,
    digests: HashMap<(String, String), Result<String, String>>,
}

impl Default for Case {
    fn default() -> Case {
        Case {
            files: Vec::new(),
            app: Some(&["1.0.0", "1.1.0"]),
            worker: Some(&["2.0.0"]),
            web_digest: Some(DIGEST_A),
            open: None,
            declines: Vec::new(),
            forge_down: false,
            foreign: Vec::new(),
            digests: HashMap::new(),
        }
    }
}

struct World {
    _dir: tempfile::TempDir,
    config: Config,
}

fn world(extra: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.yaml");
    std::fs::write(&policies, format!("{POLICIES}{extra}")).unwrap();
    let config = Config::load(&policies).unwrap_or_else(|e| panic!("{e}"));
    World { _dir: dir, config }
}

fn known(tags: &[&str], metadata: HashMap<String, TagMetadata>) -> PolicyState {
    PolicyState::Known(Arc::new(Observation {
        tags: Arc::new(tags.iter().map(|t| t.to_string()).collect()),
        metadata,
        observed_at: jiff::Timestamp::UNIX_EPOCH,
        invalid_tags: 0,
    }))
}

fn unknown(reason: &str) -> PolicyState {
    PolicyState::Unknown {
        reason: reason.into(),
    }
}

fn author() -> Identity {
    Identity {
        name: "tidewatch".into(),
        email: "tidewatch@example.com".into(),
    }
}

/// Writes the case's files, scans them per update, and plans.
fn run(world: &World, case: Case) -> Vec<GroupPlan> {
    let root = tempfile::tempdir().unwrap();
    for (update, text) in &case.files {
        let dir = root.path().join("envs").join(update);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.yaml"), text).unwrap();
    }
    let config = &world.config;
    let mut policies = BTreeMap::new();
    policies.insert(
        "app".to_string(),
        case.app.map_or_else(
            || unknown("registry ghcr.io answered HTTP 503"),
            |t| known(t, HashMap::new()),
        ),
    );
    policies.insert(
        "worker".to_string(),
        case.worker.map_or_else(
            || unknown("registry ghcr.io answered HTTP 503"),
            |t| known(t, HashMap::new()),
        ),
    );
    let mut web = HashMap::new();
    web.insert(
        "stable".to_string(),
        TagMetadata {
            digest: case.web_digest.map(str::to_string),
            created: None,
        },
    );
    policies.insert("web".to_string(), known(&["stable"], web));
    let mut updates = Vec::new();
    for update in config.updates.iter() {
        if !case.files.iter().any(|(u, _)| *u == update.name) {
            continue;
        }
        let scope = UpdateScope::of(config, update);
        let scan = scope.scan(root.path(), update);
        let heads = match &update.pull_request {
            None => Vec::new(),
            Some(_) => super::observe::head_names(
                config
                    .policies_of(update)
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                update,
            )
            .into_iter()
            .map(|(head, policy)| HeadView {
                head,
                policy,
                forge: if case.forge_down {
                    Err("GitHub answered HTTP 503 to looking up open pull requests".into())
                } else {
                    Ok(ForgeView {
                        open: case.open.clone(),
                        declines: case.declines.clone(),
                    })
                },
                branch: Some(HeadBranch {
                    tip: "1111111111111111111111111111111111111111".into(),
                    foreign: case.foreign.clone(),
                }),
            })
            .collect(),
        };
        updates.push(UpdateView {
            update: update.name.clone(),
            files: Ok(FilesView {
                branch: "main".into(),
                tip: "0000000000000000000000000000000000000000".into(),
                scan,
            }),
            heads,
        });
    }
    let snapshot = Snapshot {
        policies,
        updates,
        digests: case.digests,
        now: jiff::Timestamp::UNIX_EPOCH,
        gates: Default::default(),
    };
    plan(config, &snapshot, &author())
}

fn only(plans: &[GroupPlan]) -> &GroupPlan {
    assert_eq!(plans.len(), 1, "{plans:#?}");
    &plans[0]
}

fn open_pr(body: String) -> PullRequestInfo {
    PullRequestInfo {
        number: 7,
        head: "tidewatch/prod".into(),
        base: "main".into(),
        title: "chore(prod): update ghcr.io/acme/app to 1.1.0".into(),
        body,
        url: String::new(),
        state: PrState::Open,
        closed_at: None,
    }
}

fn body_for(new: &str) -> String {
    render_body(
        "prod",
        &[PrChange {
            policy: "app".into(),
            image: "ghcr.io/acme/app".into(),
            old: "1.0.0".into(),
            new: new.into(),
            files: vec!["envs/prod/app.yaml".into()],
        }],
    )
}

fn decline(policy: &str, version: &str) -> Decline {
    Decline {
        policy: policy.into(),
        version: version.into(),
        number: 3,
        closed_at: Some("2026-11-30T10:00:00Z".into()),
    }
}
