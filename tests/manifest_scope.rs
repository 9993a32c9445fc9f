//! Scope and safety of manifest edits: only regular YAML files under the
//! update's paths, links never followed out of the repository, a size cap,
//! a cheap prefilter before parsing, and refusals that leave files alone.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use tidewatch::manifest::{self, Scope, Watched};
use tidewatch::policy::Pick;
use tidewatch::reference::ImageName;

fn run(root: &Path, paths: &[&str], cap: u64) -> (manifest::Scan, manifest::Plan) {
    let watched = vec![Watched {
        policy: "app".into(),
        image: ImageName::parse("ghcr.io/acme/app").unwrap(),
        image_text: "ghcr.io/acme/app".into(),
    }];
    let all: HashSet<String> = ["app".to_string()].into();
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    let scope = Scope {
        paths: &paths,
        watched: &watched,
        all_policies: &all,
        targets: &[],
        size_cap: cap,
        foreign_paths: &[],
    };
    let picks: HashMap<String, Pick> = [(
        "app".to_string(),
        Pick {
            tag: "2.0.0".into(),
            digest: None,
        },
    )]
    .into();
    let scan = manifest::scan(root, &scope);
    let plan = scan.plan(&picks);
    (scan, plan)
}

const POD: &str = "kind: Pod\nspec:\n  containers:\n    - image: ghcr.io/acme/app:1.0.0\n";

#[test]
fn links_out_of_the_repository_are_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.yaml"), POD).unwrap();
    let repo = tempfile::tempdir().unwrap();
    let envs = repo.path().join("envs");
    std::fs::create_dir(&envs).unwrap();
    std::fs::write(envs.join("inside.yaml"), POD).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.yaml"), envs.join("escape.yaml"))
        .unwrap();
    std::os::unix::fs::symlink(outside.path(), envs.join("escape-dir")).unwrap();
    std::os::unix::fs::symlink(envs.join("inside.yaml"), envs.join("alias.yaml")).unwrap();
    let (_, plan) = run(repo.path(), &["envs"], manifest::DEFAULT_SIZE_CAP);
    let files: Vec<&str> = plan.changes.iter().map(|c| c.file.as_str()).collect();
    assert_eq!(
        files,
        ["envs/inside.yaml"],
        "a link inside the repo is followed once, by its target"
    );
    let notes: Vec<String> = plan.notes.iter().map(|n| n.to_string()).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("envs/escape.yaml") && n.contains("outside the repository")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("envs/escape-dir") && n.contains("outside the repository")),
        "{notes:?}"
    );
    plan.apply(repo.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.yaml")).unwrap(),
        POD
    );
}

#[test]
fn large_files_are_skipped_with_a_note_and_git_dirs_and_other_files_ignored() {
    let repo = tempfile::tempdir().unwrap();
    let mut big = POD.to_string();
    big.push_str(&format!("# {}\n", "x".repeat(4096)));
    std::fs::write(repo.path().join("big.yaml"), &big).unwrap();
    std::fs::create_dir(repo.path().join(".git")).unwrap();
    std::fs::write(repo.path().join(".git/config.yaml"), POD).unwrap();
    std::fs::write(repo.path().join("pod.json"), POD).unwrap();
    std::fs::write(repo.path().join("small.yml"), POD).unwrap();
    let (_, plan) = run(repo.path(), &["."], 1024);
    let files: Vec<&str> = plan.changes.iter().map(|c| c.file.as_str()).collect();
    assert_eq!(files, ["small.yml"]);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.file == "big.yaml" && n.message.contains("larger than 1 KiB")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn the_prefilter_skips_files_that_cannot_hold_a_reference() {
    let repo = tempfile::tempdir().unwrap();
    for i in 0..20 {
        std::fs::write(
            repo.path().join(format!("other-{i}.yaml")),
            "kind: Pod\nspec: {containers: [{image: nginx}]}\n",
        )
        .unwrap();
    }
    std::fs::write(repo.path().join("pod.yaml"), POD).unwrap();
    let (scan, plan) = run(repo.path(), &["."], manifest::DEFAULT_SIZE_CAP);
    assert_eq!(scan.files_seen, 21);
    assert_eq!(scan.files_parsed, 1);
    assert_eq!(plan.edits().count(), 1);
}

#[test]
fn a_block_scalar_or_a_missing_digest_is_refused_and_the_file_untouched() {
    let repo = tempfile::tempdir().unwrap();
    let block =
        "kind: Pod\nspec:\n  containers:\n    - image: |-\n        ghcr.io/acme/app:1.0.0\n";
    let pinned = format!(
        "kind: Pod\nspec:\n  containers:\n    - image: ghcr.io/acme/app:1.0.0@sha256:{}\n",
        "a".repeat(64)
    );
    std::fs::write(repo.path().join("block.yaml"), block).unwrap();
    std::fs::write(repo.path().join("pinned.yaml"), &pinned).unwrap();
    let (_, plan) = run(repo.path(), &["."], manifest::DEFAULT_SIZE_CAP);
    assert!(plan.changes.is_empty());
    let notes: Vec<String> = plan.notes.iter().map(|n| n.to_string()).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("block.yaml:5:") && n.contains("block scalar")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("pinned.yaml:4:") && n.contains("pins a digest")),
        "{notes:?}"
    );
    plan.apply(repo.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(repo.path().join("block.yaml")).unwrap(),
        block
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("pinned.yaml")).unwrap(),
        pinned
    );
}

/// Inputs the fuzzer found to crash the editor, replayed on every test run.
#[test]
fn fuzzer_findings_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let watched = vec![Watched {
        policy: "app".into(),
        image: ImageName::parse("ghcr.io/acme/app").unwrap(),
        image_text: "ghcr.io/acme/app".into(),
    }];
    let all: HashSet<String> = ["app".to_string()].into();
    let scope = Scope {
        paths: &[],
        watched: &watched,
        all_policies: &all,
        targets: &[],
        size_cap: manifest::DEFAULT_SIZE_CAP,
        foreign_paths: &[],
    };
    let picks: HashMap<String, Pick> = [(
        "app".to_string(),
        Pick {
            tag: "1.2.3".into(),
            digest: None,
        },
    )]
    .into();
    let mut replayed = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(text) = std::str::from_utf8(&bytes[1..]) {
            // The fuzz target's properties: no panic, and a second
            // application of the same pick changes nothing.
            if let Ok(Some(change)) = manifest::plan_text("values.yaml", text, &scope, &picks) {
                let again = manifest::plan_text("values.yaml", &change.updated, &scope, &picks);
                assert!(matches!(again, Ok(None)), "not idempotent: {again:?}");
            }
            replayed += 1;
        }
    }
    assert!(replayed >= 1);
}

/// A chain of aliases that doubles at every level ("billion laughs") must
/// be walked in linear time, not 2^40 times.
#[test]
fn alias_chains_are_walked_once() {
    let mut text = String::from("l0: &l0 [ghcr.io/acme/app:1.0.0, x]\n");
    for i in 1..40 {
        text.push_str(&format!("l{i}: &l{i} [*l{}, *l{}]\n", i - 1, i - 1));
    }
    let watched = vec![Watched {
        policy: "app".into(),
        image: ImageName::parse("ghcr.io/acme/app").unwrap(),
        image_text: "ghcr.io/acme/app".into(),
    }];
    let all: HashSet<String> = ["app".to_string()].into();
    let scope = Scope {
        paths: &[],
        watched: &watched,
        all_policies: &all,
        targets: &[],
        size_cap: manifest::DEFAULT_SIZE_CAP,
        foreign_paths: &[],
    };
    let picks: HashMap<String, Pick> = [(
        "app".to_string(),
        Pick {
            tag: "1.2.3".into(),
            digest: None,
        },
    )]
    .into();
    let started = std::time::Instant::now();
    let _ = manifest::plan_text("values.yaml", &text, &scope, &picks);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// Runs `run` on a file and checks it is refused with `needle` in its note,
/// in under a second, and left byte for byte as it was.
fn refused_quickly(name: &str, text: &str, needle: &str) {
    let repo = tempfile::tempdir().unwrap();
    let envs = repo.path().join("envs");
    std::fs::create_dir(&envs).unwrap();
    std::fs::write(envs.join(name), text).unwrap();
    // A normal file beside it is still edited.
    std::fs::write(envs.join("pod.yaml"), POD).unwrap();
    let started = std::time::Instant::now();
    let (_, plan) = run(repo.path(), &["envs"], manifest::DEFAULT_SIZE_CAP);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(1),
        "{name}: took {took:?}"
    );
    let notes: Vec<String> = plan.notes.iter().map(|n| n.to_string()).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with(&format!("envs/{name}:")) && n.contains(needle)),
        "{name}: {notes:?}"
    );
    let files: Vec<&str> = plan.changes.iter().map(|c| c.file.as_str()).collect();
    assert_eq!(files, ["envs/pod.yaml"], "{name}");
    plan.apply(repo.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(envs.join(name)).unwrap(),
        text,
        "{name}"
    );
}

#[test]
fn a_values_file_nested_100000_levels_deep_is_refused_in_under_a_second() {
    // 100,000 nested block sequences: `- - - - … image: ghcr.io/acme/app:1.0.0`.
    let mut text = String::from("image:\n");
    for depth in 0..100_000usize {
        text.push_str(&" ".repeat(depth.min(2)));
        text.push_str("- ");
    }
    text.push_str("ghcr.io/acme/app:1.0.0\n");
    refused_quickly("values.yaml", &text, "nested more than 256 levels deep");
    // Flow style nests without indentation: [[[[…]]]].
    let flow = format!(
        "image: {}ghcr.io/acme/app:1.0.0{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    // saphyr-parser has a recursion limit of its own for flow collections.
    refused_quickly("values-flow.yaml", &flow, "recursion limit exceeded");
}

#[test]
fn a_merge_chain_of_10000_aliases_is_refused_in_under_a_second() {
    // m0: &m0 {repository: ghcr.io/acme/app, tag: 1.0.0}; mN: &mN {<<: *m(N-1)}
    let mut values = String::from("m0: &m0\n  repository: ghcr.io/acme/app\n  tag: 1.0.0\n");
    for i in 1..=10_000 {
        values.push_str(&format!("m{i}: &m{i}\n  <<: *m{}\n", i - 1));
    }
    refused_quickly("values.yaml", &values, "more than 1000 aliases");
    // The same chain inside a Deployment's containers.
    let mut deployment = String::from(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - &c0 {name: app, image: ghcr.io/acme/app:1.0.0}\n",
    );
    for i in 1..=10_000 {
        deployment.push_str(&format!("        - &c{i} {{<<: *c{}}}\n", i - 1));
    }
    refused_quickly("deploy.yaml", &deployment, "more than 1000 aliases");
}

#[test]
fn a_merge_chain_under_the_limit_is_walked_in_linear_time() {
    // 900 aliases: allowed, and the chain must not be expanded cubically.
    let mut values = String::from("m0: &m0\n  repository: ghcr.io/acme/app\n  tag: 1.0.0\n");
    for i in 1..=900 {
        values.push_str(&format!("m{i}: &m{i}\n  <<: *m{}\n", i - 1));
    }
    let repo = tempfile::tempdir().unwrap();
    let envs = repo.path().join("envs");
    std::fs::create_dir(&envs).unwrap();
    std::fs::write(envs.join("values.yaml"), &values).unwrap();
    let started = std::time::Instant::now();
    let (_, plan) = run(repo.path(), &["envs"], manifest::DEFAULT_SIZE_CAP);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The one scalar behind the chain is edited once.
    assert_eq!(plan.edits().count(), 1, "{:?}", plan.notes);
}
