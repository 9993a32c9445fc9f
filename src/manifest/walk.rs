//! Which files an update covers: regular YAML files under its paths.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{note, Note};

/// Regular YAML files under the given paths, with symlinks followed only
/// while they stay inside the repository, and files over `cap` noted.
pub(super) fn files_in_scope(
    root: &Path,
    paths: &[String],
    cap: u64,
    notes: &mut Vec<Note>,
) -> Vec<(PathBuf, String)> {
    let Ok(canonical_root) = root.canonicalize() else {
        notes.push(note(
            &root.display().to_string(),
            0,
            "repository root cannot be read",
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<PathBuf> = paths
        .iter()
        .map(|p| root.join(p.trim_start_matches("./")))
        .collect();
    while let Some(path) = stack.pop() {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            notes.push(note(&rel, 0, "does not exist; skipped"));
            continue;
        };
        // Walking from the root by name, only a symlink can lead outside
        // (config validation refuses `..`), so only links are resolved: a
        // `canonicalize` per file costs more than reading the file. A link
        // inside the repository is replaced by the real path it names, so
        // a file is seen once and an edit never replaces a link by a file.
        if meta.file_type().is_symlink() {
            match path.canonicalize() {
                Ok(real) if real.starts_with(&canonical_root) => {
                    let inside = real.strip_prefix(&canonical_root).unwrap_or(&real);
                    stack.push(root.join(inside));
                }
                _ => notes.push(note(
                    &rel,
                    0,
                    "is a link leading out of the repository; skipped",
                )),
            }
            continue;
        }
        if !seen.insert(rel.clone()) {
            continue;
        }
        if meta.is_dir() {
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&path) {
                let mut children: Vec<PathBuf> =
                    entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                children.sort();
                stack.extend(children.into_iter().rev());
            }
        } else if meta.is_file() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let yaml = name.ends_with(".yaml") || name.ends_with(".yml") || name == "Kustomization";
            if !yaml {
                continue;
            }
            if meta.len() > cap {
                notes.push(note(
                    &rel,
                    0,
                    &format!("is larger than {} KiB; skipped", cap / 1024),
                ));
                continue;
            }
            out.push((path, rel));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}
