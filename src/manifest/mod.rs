//! Byte-exact edits of image references in an environment repository.
//!
//! Re-serialising YAML is the most common complaint against every peer:
//! comments move, blank lines vanish, `2024-06-27` loses its quotes. Here a
//! file is parsed only to *find* the scalars to change; the new text is then
//! spliced into the original bytes, so nothing else moves. Every edited file
//! is parsed again and its event stream compared with the original's: only
//! the intended scalars may differ, or the file is left untouched.
//!
//! Two phases, because selection needs the values currently in Git
//! (no-downgrade) before edits can be planned: [`scan`] reads the files and
//! finds the references; [`Scan::plan`] computes and verifies the edits for
//! the picks.

mod quote;
mod refs;
mod splice;
mod tree;
mod walk;
mod write;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;

use refs::{FileContext, Found};
pub use refs::{Part, RefKind, Target, Watched};
use splice::plan_file;
use tree::Tree;
use walk::files_in_scope;
pub use write::{write_inside, WriteError};

use crate::policy::Pick;
use crate::reference::Reference;

/// Files larger than this are skipped with a note (default of [`Scope`]).
pub const DEFAULT_SIZE_CAP: u64 = 1024 * 1024;

/// What to scan: an update's paths, the policies it writes, and targets.
pub struct Scope<'a> {
    /// Files or directories relative to the repository root.
    pub paths: &'a [String],
    pub watched: &'a [Watched],
    /// Every policy name in the config, to tell "unknown" markers apart
    /// from markers of policies another update writes.
    pub all_policies: &'a HashSet<String>,
    pub targets: &'a [Target],
    pub size_cap: u64,
    /// Other updates' paths: a link in this update may not lead into them.
    pub foreign_paths: &'a [String],
}

/// A reference found in Git, with the value it holds now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    pub file: String,
    pub line: usize,
    pub kind: RefKind,
    pub policy: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Something skipped or refused, and why. Files with notes are never written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// One planned change of one scalar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub file: String,
    pub line: usize,
    pub kind: RefKind,
    pub policy: String,
    pub old: String,
    pub new: String,
}

/// A file with its planned new content.
#[derive(Clone, Debug)]
pub struct FileChange {
    pub file: String,
    pub original: String,
    pub updated: String,
    pub edits: Vec<Edit>,
}

/// The plan for one update: what changes, and what was skipped or refused.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub changes: Vec<FileChange>,
    pub notes: Vec<Note>,
}

#[derive(Debug)]
struct ScannedFile {
    rel: String,
    bom: bool,
    text: String,
    tree: Tree,
    found: Vec<Found>,
}

/// The references of one update's files, ready to plan edits against.
#[derive(Debug)]
pub struct Scan {
    files: Vec<ScannedFile>,
    watched: Vec<Watched>,
    /// Files skipped or refused while scanning (unparseable, too big, …).
    pub notes: Vec<Note>,
    /// Files read after the prefilter, for the benchmark and the status page.
    pub files_parsed: usize,
    pub files_seen: usize,
}

/// Reads and parses the files in scope and finds references to watched
/// images. Problems are notes on the scan, never errors of the whole update.
pub fn scan(root: &Path, scope: &Scope<'_>) -> Scan {
    let mut notes = Vec::new();
    let files = files_in_scope(
        root,
        &walk::Walk {
            paths: scope.paths,
            foreign: scope.foreign_paths,
            cap: scope.size_cap,
        },
        &mut notes,
    );
    let needles: Vec<String> = scope
        .watched
        .iter()
        .map(|w| {
            w.image
                .repository
                .rsplit('/')
                .next()
                .unwrap_or(&w.image.repository)
                .to_string()
        })
        .chain(["tidewatch".to_string(), "$imagepolicy".to_string()])
        .collect();
    let prefilter = AhoCorasick::new(&needles).ok();
    let target_files: HashSet<&str> = scope.targets.iter().map(|t| t.file.as_str()).collect();
    let mut scanned = Vec::new();
    let files_seen = files.len();
    let mut files_parsed = 0;
    for (path, rel) in files {
        let Ok(bytes) = std::fs::read(&path) else {
            notes.push(note(&rel, 0, "cannot be read; skipped"));
            continue;
        };
        let is_target = target_files.contains(rel.as_str());
        if !is_target && prefilter.as_ref().is_some_and(|p| !p.is_match(&bytes)) {
            continue;
        }
        let Ok(text) = String::from_utf8(bytes) else {
            notes.push(note(&rel, 0, "is not UTF-8; skipped"));
            continue;
        };
        files_parsed += 1;
        match scan_text(&rel, text, scope, is_target) {
            Ok(Some(file)) => scanned.push(file),
            Ok(None) => {}
            Err(n) => notes.push(n),
        }
    }
    Scan {
        files: scanned,
        watched: scope.watched.to_vec(),
        notes,
        files_parsed,
        files_seen,
    }
}

/// Parses one file's text and finds its references.
fn scan_text(
    rel: &str,
    text: String,
    scope: &Scope<'_>,
    is_target: bool,
) -> Result<Option<ScannedFile>, Note> {
    let bom = text.starts_with('\u{feff}');
    let body = if bom {
        text['\u{feff}'.len_utf8()..].to_string()
    } else {
        text
    };
    let tree = Tree::parse(&body).map_err(|e| {
        let message = if e.limit {
            format!(
                "exceeds tidewatch's limits: {}; skipped, never written",
                e.message
            )
        } else {
            format!("is not valid YAML ({}); skipped, never written", e.message)
        };
        note(rel, e.line, &message)
    })?;
    let file_name = rel.rsplit('/').next().unwrap_or(rel).to_string();
    let ctx = FileContext {
        file_name: &file_name,
        rel_path: rel,
        watched: scope.watched,
        all_policies: scope.all_policies,
        targets: scope.targets,
        as_values: is_target || is_values_file(&file_name),
    };
    match refs::find(&body, &tree, &ctx) {
        Ok(found) if found.is_empty() => Ok(None),
        Ok(found) => Ok(Some(ScannedFile {
            rel: rel.to_string(),
            bom,
            text: body,
            tree,
            found,
        })),
        Err(refusal) => Err(note(
            rel,
            refusal.line,
            &format!("{}; file left alone", refusal.message),
        )),
    }
}

/// Plans the edits of one file given as text, with no file system: the
/// entry point for fuzzing and for callers that hold files in memory.
pub fn plan_text(
    rel: &str,
    text: &str,
    scope: &Scope<'_>,
    picks: &HashMap<String, Pick>,
) -> Result<Option<FileChange>, Note> {
    let is_target = scope.targets.iter().any(|t| t.file == rel);
    match scan_text(rel, text.to_string(), scope, is_target)? {
        Some(file) => plan_file(&file, scope.watched, picks),
        None => Ok(None),
    }
}

/// The version a written value carries: `tag[@digest]` of a full
/// reference, or the value itself (a tag, a digest).
pub fn version_of(value: &str) -> String {
    match Reference::parse(value) {
        Ok(r) if value.contains('/') || value.contains(':') && r.tag.is_some() => {
            match (r.tag, r.digest) {
                (Some(t), Some(d)) => format!("{t}@{d}"),
                (Some(t), None) => t,
                (None, Some(d)) => d,
                (None, None) => value.to_string(),
            }
        }
        _ => value.to_string(),
    }
}

fn note(file: &str, line: usize, message: &str) -> Note {
    Note {
        file: file.to_string(),
        line,
        message: message.to_string(),
    }
}

fn is_values_file(name: &str) -> bool {
    name.starts_with("values") && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

impl Scan {
    /// Every reference with the value it holds in Git now.
    pub fn current(&self) -> Vec<Current> {
        let mut out = Vec::new();
        for file in &self.files {
            for found in &file.found {
                let Some(scalar) = file.tree.scalar(found.node) else {
                    continue;
                };
                let (tag, digest) = split_value(&scalar.value, found.part);
                out.push(Current {
                    file: file.rel.clone(),
                    line: file.tree.node(found.node).line,
                    kind: found.kind,
                    policy: found.policy.clone(),
                    tag,
                    digest,
                });
            }
        }
        out
    }

    /// Plans and verifies the edits that write `picks` (by policy name).
    /// Policies without a pick are left as they are.
    pub fn plan(&self, picks: &HashMap<String, Pick>) -> Plan {
        let mut plan = Plan {
            changes: Vec::new(),
            notes: self.notes.clone(),
        };
        for file in &self.files {
            match plan_file(file, &self.watched, picks) {
                Ok(Some(change)) => plan.changes.push(change),
                Ok(None) => {}
                Err(refusal) => plan.notes.push(refusal),
            }
        }
        plan
    }
}

/// Splits a scalar into the tag and digest it holds, per part.
fn split_value(value: &str, part: Part) -> (Option<String>, Option<String>) {
    match part {
        Part::Full => match Reference::parse(value) {
            Ok(r) => (r.tag, r.digest),
            Err(_) => (None, None),
        },
        Part::Tag | Part::TagOrTagDigest => match value.split_once('@') {
            Some((tag, digest)) => (Some(tag.to_string()), Some(digest.to_string())),
            None => (Some(value.to_string()), None),
        },
        Part::Digest => (None, Some(value.to_string())),
        Part::Name => (None, None),
    }
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn edits(&self) -> impl Iterator<Item = &Edit> {
        self.changes.iter().flat_map(|c| c.edits.iter())
    }

    /// A unified diff of every change, empty when nothing changes.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for change in &self.changes {
            let diff = similar::TextDiff::from_lines(&change.original, &change.updated);
            out.push_str(
                &diff
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{}", change.file), &format!("b/{}", change.file))
                    .to_string(),
            );
        }
        out
    }

    /// Writes every changed file under `root` through [`write_inside`]:
    /// each atomically, through no symbolic link, keeping its mode.
    pub fn apply(&self, root: &Path) -> Result<Vec<PathBuf>, WriteError> {
        let mut written = Vec::new();
        for change in &self.changes {
            write::write_inside(root, &change.file, change.updated.as_bytes())?;
            written.push(root.join(&change.file));
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_written_values() {
        assert_eq!(version_of("ghcr.io/acme/app:1.2.0"), "1.2.0");
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            version_of(&format!("localhost:5000/app:1.2.0@{digest}")),
            format!("1.2.0@{digest}")
        );
        assert_eq!(version_of("1.2.0"), "1.2.0");
        assert_eq!(version_of("v2"), "v2");
    }
}
