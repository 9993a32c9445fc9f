//! Pull requests: open, update, hold, close, declines, humans, heads.

use super::*;

#[test]
fn a_new_pr_carries_every_policy() {
    let w = world("");
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.0.0", "2.0.0"))],
            worker: Some(&["2.0.0", "2.1.0"]),
            ..Case::default()
        },
    );
    let group = only(&plans);
    let Intent::OpenOrUpdatePr(p) = &group.intent else {
        panic!("{:?}", group.intent)
    };
    assert_eq!(p.existing, None);
    assert_eq!(
        (p.head.as_str(), p.base.as_str()),
        ("tidewatch/prod", "main")
    );
    assert_eq!(p.picks.len(), 2);
    assert_eq!(p.labels, ["release"]);
    assert_eq!(p.title, "chore(prod): update 2 images");
    assert!(p.body.contains("1.1.0") && p.body.contains("2.1.0"));
    assert_eq!(
        p.head_tip.as_deref(),
        Some("1111111111111111111111111111111111111111")
    );
    assert_eq!(
        group.intent.describe(),
        "open a PR from tidewatch/prod into main: chore(prod): update 2 images"
    );
}

#[test]
fn an_open_pr_is_updated_only_when_its_text_differs() {
    let w = world("");
    let same = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.0.0", "2.0.0"))],
            open: Some(open_pr(body_for("1.1.0"))),
            ..Case::default()
        },
    );
    let Intent::OpenOrUpdatePr(p) = &only(&same).intent else {
        panic!()
    };
    assert_eq!(
        p.existing.as_ref().map(|e| (e.number, e.text_matches)),
        Some((7, true))
    );
    let differs = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.0.0", "2.0.0"))],
            open: Some(open_pr(body_for("1.0.5"))),
            ..Case::default()
        },
    );
    let Intent::OpenOrUpdatePr(p) = &only(&differs).intent else {
        panic!()
    };
    assert_eq!(p.existing.as_ref().map(|e| e.text_matches), Some(false));
    assert!(only(&differs)
        .intent
        .describe()
        .starts_with("update PR #7 from tidewatch/prod"));
}

#[test]
fn an_unknown_policy_holds_an_open_pr_as_it_is() {
    let w = world("");
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.0.0", "2.0.0"))],
            worker: None,
            open: Some(open_pr(body_for("1.1.0"))),
            ..Case::default()
        },
    );
    let group = only(&plans);
    let Intent::Hold(h) = &group.intent else {
        panic!("{:?}", group.intent)
    };
    assert_eq!(h.number, Some(7));
    assert_eq!(
        h.comment, None,
        "an unknown input changes nothing on the PR"
    );
    assert!(
        h.reason.contains("policy worker is unknown"),
        "{}",
        h.reason
    );
    assert!(group
        .intent
        .describe()
        .starts_with("hold PR #7 as it is: policy worker is unknown"));
}

#[test]
fn an_unknown_policy_never_closes_a_pr_even_when_the_rest_is_done() {
    let w = world("");
    // The base already holds app's pick; worker is unknown: not a "no".
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.1.0", "2.0.0"))],
            worker: None,
            open: Some(open_pr(body_for("1.1.0"))),
            ..Case::default()
        },
    );
    assert!(
        matches!(only(&plans).intent, Intent::Hold(_)),
        "{:?}",
        plans[0].intent
    );
}

#[test]
fn an_unknown_policy_opens_no_partial_pr() {
    let w = world("");
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.0.0", "2.0.0"))],
            app: None,
            worker: Some(&["2.0.0", "2.1.0"]),
            ..Case::default()
        },
    );
    let Intent::Hold(h) = &only(&plans).intent else {
        panic!("{:?}", plans[0].intent)
    };
    assert_eq!(h.number, None);
    assert!(only(&plans)
        .intent
        .describe()
        .starts_with("hold: policy app is unknown"));
}

#[test]
fn a_pr_is_closed_when_every_policy_is_known_and_the_base_has_the_picks() {
    let w = world("");
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.1.0", "2.0.0"))],
            open: Some(open_pr(body_for("1.1.0"))),
            ..Case::default()
        },
    );
    let Intent::ClosePr(c) = &only(&plans).intent else {
        panic!("{:?}", plans[0].intent)
    };
    assert_eq!(c.number, 7);
    assert!(c.delete_branch);
    assert!(
        c.reason.starts_with("`main` already has these versions"),
        "{}",
        c.reason
    );
    assert!(c.body.contains("tidewatch:v1"));
}

#[test]
fn without_an_open_pr_nothing_left_is_nothing() {
    let w = world("");
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.1.0", "2.0.0"))],
            ..Case::default()
        },
    );
    assert_eq!(only(&plans).intent, Intent::Nothing);
}

#[test]
fn a_declined_version_is_a_floor() {
    let w = world("");
    // 1.2.0 declined: neither it nor 1.1.0 is proposed.
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.0.0", "2.0.0"))],
            app: Some(&["1.0.0", "1.1.0", "1.2.0"]),
            declines: vec![decline("app", "1.2.0")],
            ..Case::default()
        },
    );
    let group = only(&plans);
    assert_eq!(group.intent, Intent::Nothing);
    assert_eq!(group.declines, [decline("app", "1.2.0")]);
    assert!(
        group
            .notes
            .iter()
            .any(|n| n.contains("at or below a declined version")),
        "{:?}",
        group.notes
    );
    // A newer version is proposed.
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.0.0", "2.0.0"))],
            app: Some(&["1.0.0", "1.1.0", "1.2.0", "1.3.0"]),
            declines: vec![decline("app", "1.2.0")],
            ..Case::default()
        },
    );
    let Intent::OpenOrUpdatePr(p) = &only(&plans).intent else {
        panic!("{:?}", plans[0].intent)
    };
    assert_eq!(p.picks["app"].tag, "1.3.0");
}

#[test]
fn a_pr_left_with_only_declined_versions_is_closed_as_having_nothing_left() {
    let w = world("");
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.0.0", "2.0.0"))],
            declines: vec![decline("app", "1.1.0")],
            open: Some(open_pr(body_for("1.1.0"))),
            ..Case::default()
        },
    );
    let Intent::ClosePr(c) = &only(&plans).intent else {
        panic!("{:?}", plans[0].intent)
    };
    assert!(
        c.reason.starts_with("nothing is left to change"),
        "{}",
        c.reason
    );
}

#[test]
fn a_forge_that_cannot_be_read_fails_only_its_pr_intent() {
    let w = world("");
    let plans = run(
        &w,
        Case {
            files: vec![
                ("dev", deployment("1.0.0", "2.0.0")),
                ("prod", deployment("1.0.0", "2.0.0")),
            ],
            forge_down: true,
            ..Case::default()
        },
    );
    assert_eq!(plans.len(), 2);
    assert!(
        matches!(plans[0].intent, Intent::Commit(_)),
        "{:?}",
        plans[0].intent
    );
    match &plans[1].intent {
        Intent::Fail { error } => assert!(error.contains("GitHub answered HTTP 503"), "{error}"),
        other => panic!("{other:?}"),
    }
    assert!(plans[1].intent.describe().starts_with("cannot act: GitHub"));
}

#[test]
fn a_human_commit_on_the_head_holds_the_pr_and_comments_once() {
    let w = world("");
    let human = ForeignCommit {
        id: "abcdef0123456789abcdef0123456789abcdef01".into(),
        committer: "Alice <alice@example.com>".into(),
        summary: "pin worker".into(),
    };
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.0.0", "2.0.0"))],
            open: Some(open_pr(body_for("1.0.5"))),
            foreign: vec![human.clone()],
            ..Case::default()
        },
    );
    let Intent::Hold(h) = &only(&plans).intent else {
        panic!("{:?}", plans[0].intent)
    };
    assert!(h.reason.contains("abcdef012345 by Alice"), "{}", h.reason);
    let comment = h.comment.clone().expect("a comment the first time");
    assert!(comment
        .body
        .contains("<!-- tidewatch:held abcdef0123456789abcdef0123456789abcdef01 -->"));
    // Next cycle the body carries the marker: no second comment.
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.0.0", "2.0.0"))],
            open: Some(open_pr(comment.body)),
            foreign: vec![human.clone()],
            ..Case::default()
        },
    );
    let Intent::Hold(h) = &only(&plans).intent else {
        panic!("{:?}", plans[0].intent)
    };
    assert_eq!(h.comment, None);
    // Closing still happens when nothing is left, but the branch is kept.
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.1.0", "2.0.0"))],
            open: Some(open_pr(body_for("1.1.0"))),
            foreign: vec![human],
            ..Case::default()
        },
    );
    let Intent::ClosePr(c) = &only(&plans).intent else {
        panic!("{:?}", plans[0].intent)
    };
    assert!(!c.delete_branch);
}

#[test]
fn overwrite_human_commits_restores_force_pushing() {
    let w = world("");
    let mut config = w.config;
    for update in &mut config.updates {
        if let Some(pr) = &mut update.item.pull_request {
            pr.overwrite_human_commits = true;
        }
    }
    let w = World {
        _dir: w._dir,
        config,
    };
    let plans = run(
        &w,
        Case {
            files: vec![("prod", deployment("1.0.0", "2.0.0"))],
            foreign: vec![ForeignCommit {
                id: "ab".into(),
                committer: "Alice <alice@example.com>".into(),
                summary: "x".into(),
            }],
            ..Case::default()
        },
    );
    assert!(matches!(only(&plans).intent, Intent::OpenOrUpdatePr(_)));
}

#[test]
fn per_policy_heads_each_carry_their_own_policy() {
    let w = world("");
    let plans = run(
        &w,
        Case {
            files: vec![("split", deployment("1.0.0", "2.0.0"))],
            worker: None,
            ..Case::default()
        },
    );
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[0].head.as_deref(), Some("tidewatch/split/app"));
    let Intent::OpenOrUpdatePr(p) = &plans[0].intent else {
        panic!("{:?}", plans[0].intent)
    };
    assert_eq!(p.picks.keys().collect::<Vec<_>>(), ["app"]);
    // The worker head is held; the app head is not held by worker.
    assert_eq!(plans[1].head.as_deref(), Some("tidewatch/split/worker"));
    assert!(
        matches!(plans[1].intent, Intent::Hold(_)),
        "{:?}",
        plans[1].intent
    );
}
