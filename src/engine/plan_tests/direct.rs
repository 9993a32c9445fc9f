//! Direct commits, pinned digests and unreadable files.

use super::*;

#[test]
fn direct_commits_write_known_picks() {
    let w = world("");
    let plans = run(
        &w,
        Case {
            files: vec![("dev", deployment("1.0.0", "2.0.0"))],
            ..Case::default()
        },
    );
    let group = only(&plans);
    match &group.intent {
        Intent::Commit(c) => {
            assert_eq!(c.branch, "dev");
            assert_eq!(c.base, "main");
            assert_eq!(c.picks["app"].tag, "1.1.0");
            assert_eq!(c.message, "chore(dev): update ghcr.io/acme/app to 1.1.0");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(group.changes.len(), 1);
    assert!(group
        .diff
        .contains("+          image: ghcr.io/acme/app:1.1.0"));
}

#[test]
fn direct_commits_with_nothing_to_change_do_nothing() {
    let w = world("");
    let plans = run(
        &w,
        Case {
            files: vec![("dev", deployment("1.1.0", "2.0.0"))],
            ..Case::default()
        },
    );
    assert_eq!(only(&plans).intent, Intent::Nothing);
}

#[test]
fn direct_commits_leave_unknown_policies_alone_and_name_them() {
    let w = world("");
    let plans = run(
        &w,
        Case {
            files: vec![("dev", deployment("1.0.0", "2.0.0"))],
            app: Some(&["1.0.0", "1.1.0"]),
            worker: None,
            ..Case::default()
        },
    );
    let group = only(&plans);
    let Intent::Commit(c) = &group.intent else {
        panic!("{:?}", group.intent)
    };
    assert!(c.picks.contains_key("app") && !c.picks.contains_key("worker"));
    assert!(
        group
            .notes
            .iter()
            .any(|n| n.starts_with("worker: not updated this cycle: registry")),
        "{:?}",
        group.notes
    );
}

#[test]
fn a_declined_digest_is_not_proposed_again() {
    let w = world("");
    let pinned = "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: x }\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: ghcr.io/acme/web:stable@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\n";
    let plans = run(
        &w,
        Case {
            files: vec![("pinned", pinned.to_string())],
            ..Case::default()
        },
    );
    let Intent::Commit(c) = &only(&plans).intent else {
        panic!("{:?}", plans[0].intent)
    };
    assert_eq!(c.picks["web"].digest.as_deref(), Some(DIGEST_A));
    // The same selection with DIGEST_A declined picks nothing (the direct
    // update has no declines; the selection rule is the policy's).
    let policy = &w.config.policies["web"];
    let mut metadata = HashMap::new();
    metadata.insert(
        "stable".to_string(),
        TagMetadata {
            digest: Some(DIGEST_A.into()),
            created: None,
        },
    );
    let declined = [format!("stable@{DIGEST_A}")];
    let outcome = policy.select_with(
        &["stable"],
        &metadata,
        &crate::policy::Context {
            current: Some("stable"),
            declined: &declined,
        },
    );
    assert!(outcome.pick().is_none(), "{outcome:?}");
    metadata.get_mut("stable").unwrap().digest = Some(DIGEST_B.into());
    let outcome = policy.select_with(
        &["stable"],
        &metadata,
        &crate::policy::Context {
            current: Some("stable"),
            declined: &declined,
        },
    );
    assert_eq!(
        outcome.pick().and_then(|p| p.digest.as_deref()),
        Some(DIGEST_B)
    );
}

#[test]
fn a_pinned_reference_needs_the_picks_digest() {
    let w = world("");
    let pinned = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{ name: x }}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/acme/app:1.0.0@{DIGEST_B}\n"
    );
    // Not looked up yet: the plan asks for it and does not act.
    let plans = run(
        &w,
        Case {
            files: vec![("pinned", pinned.clone())],
            ..Case::default()
        },
    );
    assert_eq!(only(&plans).intent, Intent::Nothing);
    assert!(only(&plans)
        .notes
        .iter()
        .any(|n| n.contains("has not been looked up")));
    // Looked up: written with the digest.
    let mut digests = HashMap::new();
    digests.insert(
        ("app".to_string(), "1.1.0".to_string()),
        Ok(DIGEST_A.to_string()),
    );
    let plans = run(
        &w,
        Case {
            files: vec![("pinned", pinned.clone())],
            digests,
            ..Case::default()
        },
    );
    let Intent::Commit(c) = &only(&plans).intent else {
        panic!("{:?}", plans[0].intent)
    };
    assert_eq!(c.picks["app"].to_string(), format!("1.1.0@{DIGEST_A}"));
    // A failed lookup makes the policy unknown for that update.
    let mut digests = HashMap::new();
    digests.insert(
        ("app".to_string(), "1.1.0".to_string()),
        Err("registry ghcr.io answered HTTP 500".to_string()),
    );
    let plans = run(
        &w,
        Case {
            files: vec![("pinned", pinned)],
            digests,
            ..Case::default()
        },
    );
    assert_eq!(only(&plans).intent, Intent::Nothing);
    assert!(only(&plans)
        .notes
        .iter()
        .any(|n| n.contains("digest of 1.1.0 is unknown")));
}

#[test]
fn digests_needed_lists_each_pinned_pick_once() {
    let w = world("");
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("envs/pinned");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.yaml"),
        format!("image: ghcr.io/acme/app:1.0.0@{DIGEST_B}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("values.yaml"),
        format!("image: ghcr.io/acme/app:1.0.0@{DIGEST_B}\n"),
    )
    .unwrap();
    let update = w
        .config
        .updates
        .iter()
        .find(|u| u.name == "pinned")
        .unwrap();
    let scan = UpdateScope::of(&w.config, update).scan(root.path(), update);
    let mut policies = BTreeMap::new();
    policies.insert(
        "app".to_string(),
        known(&["1.0.0", "1.1.0"], HashMap::new()),
    );
    let snapshot = Snapshot {
        policies,
        updates: vec![UpdateView {
            update: "pinned".into(),
            files: Ok(FilesView {
                branch: "main".into(),
                tip: "0".into(),
                scan,
            }),
            heads: Vec::new(),
        }],
        digests: HashMap::new(),
        now: jiff::Timestamp::UNIX_EPOCH,
        gates: Default::default(),
    };
    assert_eq!(
        digests_needed(&w.config, &snapshot),
        [("app".to_string(), "1.1.0".to_string())]
    );
}

#[test]
fn unreadable_files_fail_the_group() {
    let w = world("");
    let update = w.config.updates.iter().find(|u| u.name == "dev").unwrap();
    let snapshot = Snapshot {
        policies: BTreeMap::new(),
        updates: vec![UpdateView {
            update: update.name.clone(),
            files: Err("cannot reset to dev".into()),
            heads: Vec::new(),
        }],
        digests: HashMap::new(),
        now: jiff::Timestamp::UNIX_EPOCH,
        gates: Default::default(),
    };
    let plans = plan(&w.config, &snapshot, &author());
    assert_eq!(
        only(&plans).intent,
        Intent::Fail {
            error: "cannot reset to dev".into()
        }
    );
}
