//! Which files an update covers: regular YAML files under its paths,
//! resolved through symbolic links.
//!
//! Anyone who can write to the environment repository controls its links,
//! so every path is resolved before it is read: a configured path or a link
//! whose target leaves the repository, or lands in another update's paths
//! (and not in this one's), is refused with a note naming the link and its
//! target. The rest of the update goes on. Files are always addressed by
//! their real path, so an edit never replaces a link by a file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{note, Note};

/// What one walk needs to know besides the root.
pub(super) struct Walk<'a> {
    pub paths: &'a [String],
    /// Other updates' paths: links may not lead into them.
    pub foreign: &'a [String],
    pub cap: u64,
}

/// Regular YAML files under the walk's paths, as (real path, path relative
/// to the root), sorted; problems become notes.
pub(super) fn files_in_scope(
    root: &Path,
    walk: &Walk<'_>,
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
    let resolve = |rel: &str| -> Result<String, PathBuf> {
        let real = root.join(rel).canonicalize().map_err(|_| PathBuf::new())?;
        match real.strip_prefix(&canonical_root) {
            Ok(inside) => Ok(inside.to_string_lossy().replace('\\', "/")),
            Err(_) => Err(real),
        }
    };
    // The update's own paths and the others', by their real location.
    let own: Vec<String> = walk
        .paths
        .iter()
        .filter_map(|p| resolve(p.trim_start_matches("./")).ok())
        .collect();
    let foreign: Vec<String> = walk
        .foreign
        .iter()
        .filter_map(|p| resolve(p.trim_start_matches("./")).ok())
        .filter(|f| !own.iter().any(|o| within(f, o) || within(o, f)))
        .collect();

    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<PathBuf> = Vec::new();
    for configured in walk.paths {
        let configured = configured.trim_start_matches("./");
        match resolve(configured) {
            Ok(rel) => stack.push(root.join(rel)),
            Err(real) if real.as_os_str().is_empty() => {
                notes.push(note(configured, 0, "does not exist; skipped"))
            }
            Err(real) => notes.push(note(
                configured,
                0,
                &format!(
                    "resolves through a symbolic link to {}, outside the repository; refused and left alone",
                    real.display()
                ),
            )),
        }
    }
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
        // Walking from real directories by name, only a link can lead
        // elsewhere, so only links are resolved: a `canonicalize` per file
        // costs more than reading the file.
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            match resolve(&rel) {
                Ok(real) if foreign.iter().any(|f| within(&real, f)) => notes.push(note(
                    &rel,
                    0,
                    &format!(
                        "is a symbolic link to {target} ({real}), which belongs to another update's paths; refused and left alone"
                    ),
                )),
                Ok(real) => stack.push(root.join(real)),
                Err(real) if real.as_os_str().is_empty() => notes.push(note(
                    &rel,
                    0,
                    &format!("is a symbolic link to {target}, which does not exist; skipped"),
                )),
                Err(real) => {
                    let real = real.display().to_string();
                    let shown = if real == target {
                        target
                    } else {
                        format!("{target} ({real})")
                    };
                    notes.push(note(
                        &rel,
                        0,
                        &format!(
                            "is a symbolic link to {shown}, outside the repository; refused and left alone"
                        ),
                    ))
                }
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
            if meta.len() > walk.cap {
                notes.push(note(
                    &rel,
                    0,
                    &format!("is larger than {} KiB; skipped", walk.cap / 1024),
                ));
                continue;
            }
            out.push((path, rel));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// Whether relative path `path` is `dir` or below it.
fn within(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || path.starts_with(&format!("{dir}/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn walk(root: &Path, paths: &[&str], foreign: &[&str]) -> (Vec<String>, Vec<String>) {
        let paths: Vec<String> = paths.iter().map(|s| s.to_string()).collect();
        let foreign: Vec<String> = foreign.iter().map(|s| s.to_string()).collect();
        let mut notes = Vec::new();
        let files = files_in_scope(
            root,
            &Walk {
                paths: &paths,
                foreign: &foreign,
                cap: 1 << 20,
            },
            &mut notes,
        );
        (
            files.into_iter().map(|(_, rel)| rel).collect(),
            notes.iter().map(|n| n.to_string()).collect(),
        )
    }

    #[test]
    fn links_out_of_the_repository_or_into_other_updates_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x.yaml"), "image: a:1\n").unwrap();
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        std::fs::create_dir_all(root.join("envs/dev")).unwrap();
        std::fs::create_dir_all(root.join("envs/prod")).unwrap();
        std::fs::write(root.join("envs/dev/a.yaml"), "image: a:1\n").unwrap();
        std::fs::write(root.join("envs/prod/b.yaml"), "image: a:1\n").unwrap();
        symlink("../prod", root.join("envs/dev/p")).unwrap();
        symlink(outside.path(), root.join("escape")).unwrap();
        symlink(
            outside.path().join("x.yaml"),
            root.join("envs/dev/out.yaml"),
        )
        .unwrap();
        symlink("a.yaml", root.join("envs/dev/same.yaml")).unwrap();

        let (files, notes) = walk(root, &["envs/dev"], &["envs/prod"]);
        assert_eq!(files, ["envs/dev/a.yaml"]);
        assert!(
            notes.iter().any(|n| n.starts_with("envs/dev/p:0: is a symbolic link to ../prod (envs/prod), which belongs to another update's paths")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(
                |n| n.starts_with("envs/dev/out.yaml:0: is a symbolic link to")
                    && n.contains("outside the repository")
            ),
            "{notes:?}"
        );
        // A configured path whose parent is a link out of the repository.
        let (files, notes) = walk(root, &["escape"], &[]);
        assert!(files.is_empty());
        assert!(
            notes[0].starts_with("escape:0: resolves through a symbolic link to"),
            "{notes:?}"
        );
        // Without the other update, the link inside the repository is followed.
        let (files, _) = walk(root, &["envs/dev"], &[]);
        assert_eq!(files, ["envs/dev/a.yaml", "envs/prod/b.yaml"]);
    }
}
