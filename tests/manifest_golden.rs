//! Golden tests for byte-exact manifest edits: every case in
//! tests/fixtures/manifests/ holds `before/`, `after/` and `case.json` (the
//! policies with their picks, the update's paths and targets, and notes that
//! must be reported). The output must equal `after/` byte for byte, and a
//! second run must change nothing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tidewatch::manifest::{self, Part, Scope, Target, Watched};
use tidewatch::policy::Pick;
use tidewatch::reference::ImageName;

#[derive(Deserialize)]
struct Case {
    policies: Vec<PolicyPick>,
    paths: Vec<String>,
    targets: Vec<TargetSpec>,
    notes: Vec<String>,
}

#[derive(Deserialize)]
struct PolicyPick {
    name: String,
    image: String,
    pick: String,
    #[serde(default)]
    digest: Option<String>,
}

#[derive(Deserialize)]
struct TargetSpec {
    file: String,
    path: Option<String>,
    policy: Option<String>,
    part: String,
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for rel in files_under(from) {
        let dest = to.join(&rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&rel), dest).unwrap();
    }
}

fn run_case(dir: &Path) -> Result<(), String> {
    let case: Case =
        serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();
    copy_tree(&dir.join("before"), work.path());
    let watched: Vec<Watched> = case
        .policies
        .iter()
        .map(|p| Watched {
            policy: p.name.clone(),
            image: ImageName::parse(&p.image).unwrap(),
            image_text: p.image.clone(),
        })
        .collect();
    let picks: HashMap<String, Pick> = case
        .policies
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                Pick {
                    tag: p.pick.clone(),
                    digest: p.digest.clone(),
                },
            )
        })
        .collect();
    let targets: Vec<Target> = case
        .targets
        .iter()
        .map(|t| Target {
            file: t.file.clone(),
            path: t.path.clone(),
            policy: t.policy.clone(),
            part: Part::parse(&t.part).unwrap(),
        })
        .collect();
    let all: HashSet<String> = case.policies.iter().map(|p| p.name.clone()).collect();
    let scope = Scope {
        paths: &case.paths,
        watched: &watched,
        all_policies: &all,
        targets: &targets,
        size_cap: manifest::DEFAULT_SIZE_CAP,
        foreign_paths: &[],
    };
    let plan = manifest::scan(work.path(), &scope).plan(&picks);
    let notes: Vec<String> = plan.notes.iter().map(|n| n.to_string()).collect();
    for want in &case.notes {
        if !notes.iter().any(|n| n.contains(want.as_str())) {
            return Err(format!(
                "expected a note containing `{want}`, got {notes:?}"
            ));
        }
    }
    plan.apply(work.path()).map_err(|e| e.to_string())?;
    for rel in files_under(&dir.join("after")) {
        let want = std::fs::read(dir.join("after").join(&rel)).unwrap();
        let got = std::fs::read(work.path().join(&rel)).unwrap();
        if want != got {
            return Err(format!(
                "{} differs:\n--- expected\n{}\n--- got\n{}\n--- diff\n{}",
                rel.display(),
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got),
                plan.diff()
            ));
        }
    }
    let again = manifest::scan(work.path(), &scope).plan(&picks);
    if !again.is_empty() || !again.diff().is_empty() {
        return Err(format!("a second run is not a no-op:\n{}", again.diff()));
    }
    Ok(())
}

#[test]
fn golden_manifest_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
    let mut failures = Vec::new();
    let mut ran = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("case.json").is_file() {
            ran += 1;
            if let Err(e) = run_case(&dir) {
                failures.push(format!(
                    "== {}\n{e}",
                    dir.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(ran >= 16, "only {ran} cases");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
