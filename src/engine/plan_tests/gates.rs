//! Gates in the pure plan: minimum age, signatures and promotion decide
//! the pick from the facts in the snapshot, and ask for missing ones.

use p256::pkcs8::{EncodePublicKey, LineEnding};

use super::*;
use crate::engine::gating::Need;
use crate::engine::snapshot::{GateFacts, Held, SourceValue};
use crate::forge::CommitState;
use crate::gate::{Layout, SignatureVerdict};

const NOW: &str = "2026-12-01T12:00:00Z";
const COMMIT: &str = "abcdefabcdefabcdefabcdefabcdefabcdefabcd";

const GATED: &str = r#"
repository: { url: "file:///nonexistent/fleet.git", branch: main }
images:
  - { name: app, image: ghcr.io/acme/app, semver: "^1", minimumAge: 3d }
  - name: signed
    image: ghcr.io/acme/signed
    semver: "^1"
    verify: { cosign: { publicKey: { file: cosign.pub } } }
updates:
  - { name: dev, paths: [envs/dev], branch: dev }
  - name: prod
    paths: [envs/prod]
    promoteFrom: dev
    soak: 24h
    requireStatus: success
    pullRequest: { base: main }
"#;

fn gated_world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let key = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    std::fs::write(dir.path().join("cosign.pub"), pem).unwrap();
    let policies = dir.path().join("policies.yaml");
    std::fs::write(&policies, GATED).unwrap();
    let config = Config::load(&policies).unwrap_or_else(|e| panic!("{e}"));
    World { _dir: dir, config }
}

fn files(app: &str, signed: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{ name: x }}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/acme/app:{app}\n        - name: signed\n          image: ghcr.io/acme/signed:{signed}\n"
    )
}

fn at(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// The facts of one table case.
#[derive(Default)]
struct Facts {
    app: Vec<&'static str>,
    signed: Vec<&'static str>,
    digests: HashMap<(String, String), Result<String, String>>,
    gates: GateFacts,
    declines: Vec<Decline>,
}

fn plan_with(
    w: &World,
    dev: &str,
    prod: Option<&str>,
    facts: Facts,
) -> (Vec<GroupPlan>, Vec<Need>) {
    let root = tempfile::tempdir().unwrap();
    let mut texts = vec![("dev", dev.to_string())];
    if let Some(prod) = prod {
        texts.push(("prod", prod.to_string()));
    }
    let mut updates = Vec::new();
    for (name, text) in &texts {
        let dir = root.path().join("envs").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.yaml"), text).unwrap();
    }
    for (name, _) in &texts {
        let update = w.config.updates.iter().find(|u| u.name == *name).unwrap();
        let scan = UpdateScope::of(&w.config, update).scan(root.path(), update);
        let heads = match &update.pull_request {
            None => Vec::new(),
            Some(_) => vec![HeadView {
                head: format!("tidewatch/{name}"),
                policy: None,
                forge: Ok(ForgeView {
                    open: None,
                    declines: facts.declines.clone(),
                }),
                branch: None,
            }],
        };
        updates.push(UpdateView {
            update: name.to_string(),
            files: Ok(FilesView {
                branch: "main".into(),
                tip: COMMIT.into(),
                scan,
            }),
            heads,
        });
    }
    let mut policies = BTreeMap::new();
    policies.insert("app".to_string(), known(&facts.app, HashMap::new()));
    policies.insert("signed".to_string(), known(&facts.signed, HashMap::new()));
    let snapshot = Snapshot {
        policies,
        updates,
        digests: facts.digests,
        now: at(NOW),
        gates: facts.gates,
    };
    let needs = crate::engine::plan::gate_needs(&w.config, &snapshot);
    (plan(&w.config, &snapshot, &author()), needs)
}

fn group<'p>(plans: &'p [GroupPlan], update: &str) -> &'p GroupPlan {
    plans.iter().find(|p| p.update == update).unwrap()
}

/// The gate lines of a group, without those of values already in Git.
fn lines(group: &GroupPlan) -> Vec<String> {
    group
        .gates
        .iter()
        .map(|l| l.to_string())
        .filter(|l| !l.ends_with(" is the value in Git"))
        .collect()
}

fn digests_of(pairs: &[(&str, &str, String)]) -> HashMap<(String, String), Result<String, String>> {
    pairs
        .iter()
        .map(|(p, t, d)| ((p.to_string(), t.to_string()), Ok(d.clone())))
        .collect()
}

#[test]
fn a_young_candidate_waits_and_the_next_old_enough_one_is_picked() {
    let w = gated_world();
    let mut gates = GateFacts::default();
    gates.created.insert(
        ("app".into(), digest(4)),
        Ok(Some(at("2026-12-01T11:00:00Z"))),
    );
    gates.created.insert(
        ("app".into(), digest(3)),
        Ok(Some(at("2026-11-26T12:00:00Z"))),
    );
    let facts = Facts {
        app: vec!["1.0.0", "1.3.0", "1.4.0"],
        signed: vec!["1.0.0"],
        digests: digests_of(&[("app", "1.4.0", digest(4)), ("app", "1.3.0", digest(3))]),
        gates,
        ..Facts::default()
    };
    let (plans, needs) = plan_with(&w, &files("1.0.0", "1.0.0"), None, facts);
    let dev = group(&plans, "dev");
    assert_eq!(
        dev.picks.get("app").map(String::as_str),
        Some("1.3.0"),
        "{dev:#?}"
    );
    let gate_lines = lines(dev);
    assert_eq!(
        gate_lines[0],
        "app: 1.4.0 waits until 2026-12-04T11:00:00Z (created 2026-12-01T11:00:00Z, minimumAge 3d)"
    );
    assert!(gate_lines[1].starts_with("app: 1.3.0 passes: created 2026-11-26T12:00:00Z"));
    assert!(needs.is_empty(), "{needs:?}");
    assert!(matches!(dev.intent, Intent::Commit(_)));
}

#[test]
fn missing_facts_are_asked_for_one_candidate_at_a_time() {
    let w = gated_world();
    let (plans, needs) = plan_with(
        &w,
        &files("1.0.0", "1.0.0"),
        None,
        Facts {
            app: vec!["1.0.0", "1.3.0", "1.4.0"],
            signed: vec!["1.0.0"],
            ..Facts::default()
        },
    );
    assert_eq!(
        needs,
        [Need::Digest {
            policy: "app".into(),
            tag: "1.4.0".into()
        }]
    );
    // Until the facts are in, the policy is not updated (never a guess).
    assert!(!group(&plans, "dev").picks.contains_key("app"));
    let (_, needs) = plan_with(
        &w,
        &files("1.0.0", "1.0.0"),
        None,
        Facts {
            app: vec!["1.0.0", "1.3.0", "1.4.0"],
            signed: vec!["1.0.0"],
            digests: digests_of(&[("app", "1.4.0", digest(4))]),
            ..Facts::default()
        },
    );
    assert_eq!(
        needs,
        [Need::Created {
            policy: "app".into(),
            digest: digest(4)
        }]
    );
}

#[test]
fn no_created_time_is_a_skip_and_the_current_value_stays() {
    let w = gated_world();
    let mut gates = GateFacts::default();
    gates.created.insert(("app".into(), digest(4)), Ok(None));
    gates.created.insert(
        ("app".into(), digest(1)),
        Ok(Some(at("2026-12-01T11:30:00Z"))),
    );
    let facts = Facts {
        app: vec!["1.0.0", "1.4.0"],
        signed: vec!["1.0.0"],
        digests: digests_of(&[("app", "1.4.0", digest(4))]),
        gates,
        ..Facts::default()
    };
    let (plans, _) = plan_with(&w, &files("1.0.0", "1.0.0"), None, facts);
    let dev = group(&plans, "dev");
    // 1.4.0 is gated; the walk reaches the value in Git, which stays.
    assert_eq!(dev.picks.get("app").map(String::as_str), Some("1.0.0"));
    assert_eq!(dev.intent, Intent::Nothing, "{dev:#?}");
    assert!(lines(dev)[0].contains("1.4.0 skipped: its image config has no created time"));
}

#[test]
fn unsigned_and_badly_signed_candidates_are_skipped_with_their_reason() {
    let w = gated_world();
    let mut gates = GateFacts::default();
    let sig = |v| Ok(v);
    gates.signatures.insert(
        ("signed".into(), digest(0x30)),
        sig(SignatureVerdict::Unsigned),
    );
    gates.signatures.insert(
        ("signed".into(), digest(0x31)),
        sig(SignatureVerdict::OtherKey {
            layout: Layout::SigTag,
        }),
    );
    gates.signatures.insert(
        ("signed".into(), digest(0x32)),
        sig(SignatureVerdict::OtherDigest {
            layout: Layout::Referrer,
            digest: digest(0x99),
        }),
    );
    gates.signatures.insert(
        ("signed".into(), digest(0x12)),
        sig(SignatureVerdict::Verified {
            layout: Layout::Referrer,
            key: "cosign.pub".into(),
        }),
    );
    let facts = Facts {
        app: vec!["1.0.0"],
        signed: vec!["1.0.0", "1.2.0", "1.3.0", "1.3.1", "1.3.2"],
        digests: digests_of(&[
            ("signed", "1.3.2", digest(0x32)),
            ("signed", "1.3.1", digest(0x31)),
            ("signed", "1.3.0", digest(0x30)),
            ("signed", "1.2.0", digest(0x12)),
        ]),
        gates,
        ..Facts::default()
    };
    let (plans, needs) = plan_with(&w, &files("1.0.0", "1.0.0"), None, facts);
    assert!(needs.is_empty());
    let dev = group(&plans, "dev");
    assert_eq!(dev.picks.get("signed").map(String::as_str), Some("1.2.0"));
    let l = lines(dev);
    assert!(
        l[0].starts_with(
            "signed: 1.3.2 skipped: signed by a configured key, but over another digest"
        ),
        "{l:?}"
    );
    assert!(
        l[1].starts_with("signed: 1.3.1 skipped: signed, but by no configured key"),
        "{l:?}"
    );
    assert!(
        l[2].starts_with("signed: 1.3.0 skipped: not signed"),
        "{l:?}"
    );
    assert_eq!(
        l[3],
        "signed: 1.2.0 passes: signed by cosign.pub (a sigstore bundle referrer)"
    );
}

#[test]
fn a_signature_that_cannot_be_looked_up_makes_the_policy_unknown() {
    let w = gated_world();
    let mut gates = GateFacts::default();
    gates.signatures.insert(
        ("signed".into(), digest(0x12)),
        Err("registry ghcr.io answered HTTP 503".into()),
    );
    let facts = Facts {
        app: vec!["1.0.0"],
        signed: vec!["1.0.0", "1.2.0"],
        digests: digests_of(&[("signed", "1.2.0", digest(0x12))]),
        gates,
        ..Facts::default()
    };
    let (plans, _) = plan_with(&w, &files("1.0.0", "1.0.0"), None, facts);
    let dev = group(&plans, "dev");
    assert!(!dev.picks.contains_key("signed"));
    assert!(
        dev.notes.iter().any(
            |n| n.contains("signed: not updated this cycle: the signature of 1.2.0 is unknown")
        ),
        "{:?}",
        dev.notes
    );
}

/// Prod promotes from dev: dev holds app 1.2.0@D (pinned) since `since`.
fn promotion_facts(since: &str, status: Option<CommitState>) -> Facts {
    let mut gates = GateFacts::default();
    gates.created.insert(
        ("app".into(), digest(0x12)),
        Ok(Some(at("2026-11-20T00:00:00Z"))),
    );
    gates.held.insert(
        ("dev".into(), "app".into()),
        Ok(SourceValue::Held(Held {
            tag: Some("1.2.0".into()),
            digest: Some(digest(0x12)),
            commit: COMMIT.into(),
            since: at(since),
        })),
    );
    gates
        .held
        .insert(("dev".into(), "signed".into()), Ok(SourceValue::Absent));
    gates.statuses.insert(COMMIT.into(), Ok(status));
    Facts {
        app: vec!["1.1.0", "1.2.0", "1.3.0"],
        signed: vec!["1.0.0"],
        gates,
        ..Facts::default()
    }
}

fn dev_files() -> String {
    files(&format!("1.2.0@{}", digest(0x12)), "1.0.0")
}

#[test]
fn a_promotion_proposes_exactly_what_dev_holds_once_soaked_and_green() {
    let w = gated_world();
    let facts = promotion_facts("2026-11-30T11:00:00Z", Some(CommitState::Success));
    let (plans, _) = plan_with(&w, &dev_files(), Some(&files("1.1.0", "1.0.0")), facts);
    let prod = group(&plans, "prod");
    let Intent::OpenOrUpdatePr(pr) = &prod.intent else {
        panic!("{prod:#?}")
    };
    // Not the registry's newest (1.3.0): dev's exact value, digest pinned.
    assert_eq!(
        pr.picks["app"].to_string(),
        format!("1.2.0@{}", digest(0x12))
    );
    assert!(
        pr.body.contains(&format!(
            "in dev since 2026-11-30T11:00:00Z, commit {COMMIT}, status success"
        )),
        "{}",
        pr.body
    );
    assert!(prod
        .diff
        .contains(&format!("ghcr.io/acme/app:1.2.0@{}", digest(0x12))));
}

#[test]
fn a_promotion_waits_for_the_soak_and_says_until_when() {
    let w = gated_world();
    let facts = promotion_facts("2026-12-01T10:00:00Z", Some(CommitState::Success));
    let (plans, _) = plan_with(&w, &dev_files(), Some(&files("1.1.0", "1.0.0")), facts);
    let prod = group(&plans, "prod");
    assert_eq!(prod.intent, Intent::Nothing, "{prod:#?}");
    let l = lines(prod);
    assert!(
        l[0].starts_with(&format!(
            "app: 1.2.0@{} waits until 2026-12-02T10:00:00Z (in dev since 2026-12-01T10:00:00Z, commit abcdefabcdef; soak 24h)",
            digest(0x12)
        )),
        "{l:?}"
    );
}

#[test]
fn a_promotion_waits_for_the_required_status() {
    let w = gated_world();
    for (status, words) in [
        (
            Some(CommitState::Pending),
            "has status pending; requireStatus is success",
        ),
        (None, "has no status yet; requireStatus is success"),
    ] {
        let facts = promotion_facts("2026-11-30T11:00:00Z", status);
        let (plans, _) = plan_with(&w, &dev_files(), Some(&files("1.1.0", "1.0.0")), facts);
        let prod = group(&plans, "prod");
        assert_eq!(prod.intent, Intent::Nothing);
        assert!(lines(prod)[0].contains(words), "{:?}", lines(prod));
    }
}

#[test]
fn a_promotion_is_never_a_downgrade_and_respects_declines() {
    let w = gated_world();
    let facts = promotion_facts("2026-11-30T11:00:00Z", Some(CommitState::Success));
    let (plans, _) = plan_with(&w, &dev_files(), Some(&files("1.3.0", "1.0.0")), facts);
    let prod = group(&plans, "prod");
    assert_eq!(prod.intent, Intent::Nothing);
    assert!(
        lines(prod)[0].contains("skipped: orders below the current `1.3.0`"),
        "{:?}",
        lines(prod)
    );

    let mut facts = promotion_facts("2026-11-30T11:00:00Z", Some(CommitState::Success));
    facts.declines = vec![decline("app", &format!("1.2.0@{}", digest(0x12)))];
    let (plans, _) = plan_with(&w, &dev_files(), Some(&files("1.1.0", "1.0.0")), facts);
    let prod = group(&plans, "prod");
    assert_eq!(prod.intent, Intent::Nothing);
    assert!(
        lines(prod)[0].contains("declined in a closed pull request"),
        "{:?}",
        lines(prod)
    );
}

#[test]
fn an_unreadable_status_holds_rather_than_guesses() {
    let w = gated_world();
    let mut facts = promotion_facts("2026-11-30T11:00:00Z", None);
    facts
        .gates
        .statuses
        .insert(COMMIT.into(), Err("GitHub answered HTTP 503".into()));
    let (plans, _) = plan_with(&w, &dev_files(), Some(&files("1.1.0", "1.0.0")), facts);
    let prod = group(&plans, "prod");
    let Intent::Hold(hold) = &prod.intent else {
        panic!("{prod:#?}")
    };
    assert!(hold.reason.contains("commit status"), "{}", hold.reason);
}

#[test]
fn a_pinned_current_value_whose_tag_moved_to_unsigned_content_stays_as_it_is() {
    let w = gated_world();
    let mut gates = GateFacts::default();
    gates.signatures.insert(
        ("signed".into(), digest(0x77)),
        Ok(SignatureVerdict::Unsigned),
    );
    let facts = Facts {
        app: vec!["1.0.0"],
        signed: vec!["1.0.0", "0.9.0"],
        digests: digests_of(&[("signed", "1.0.0", digest(0x77))]),
        gates,
        ..Facts::default()
    };
    let pinned = files("1.0.0", &format!("1.0.0@{}", digest(0x10)));
    let (plans, needs) = plan_with(&w, &pinned, None, facts);
    assert!(needs.is_empty(), "{needs:?}");
    let dev = group(&plans, "dev");
    // Neither the unsigned new digest nor anything older is written.
    assert!(!dev.picks.contains_key("signed"), "{dev:#?}");
    assert_eq!(dev.intent, Intent::Nothing);
    assert!(lines(dev)[0].starts_with("signed: 1.0.0 skipped: not signed"));
}
