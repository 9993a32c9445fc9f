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
mod tree;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;

use refs::{FileContext, Found};
pub use refs::{Part, RefKind, Target, Watched};
use tree::{Signature, Style, Tree};

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
    let files = files_in_scope(root, scope.paths, scope.size_cap, &mut notes);
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
        note(
            rel,
            e.line,
            &format!("is not valid YAML ({}); skipped, never written", e.message),
        )
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

/// The new text a reference must hold for `pick`, or why it cannot be written.
fn new_value(
    current: &str,
    found: &Found,
    watched: &Watched,
    pick: &Pick,
) -> Result<String, String> {
    let needs_digest = || {
        format!(
            "the reference pins a digest, and the pick {} of policy `{}` has none",
            pick.tag, found.policy
        )
    };
    match found.part {
        Part::Full => {
            let name = found
                .name_as_written
                .clone()
                .unwrap_or_else(|| watched.image_text.clone());
            let had_digest = current.contains('@');
            match (&pick.digest, had_digest) {
                (Some(d), _) => Ok(format!("{name}:{}@{d}", pick.tag)),
                (None, true) => Err(needs_digest()),
                (None, false) => Ok(format!("{name}:{}", pick.tag)),
            }
        }
        Part::Tag => Ok(pick.tag.clone()),
        Part::TagOrTagDigest => match (current.contains('@'), &pick.digest) {
            (true, Some(d)) => Ok(format!("{}@{d}", pick.tag)),
            (true, None) => Err(needs_digest()),
            (false, _) => Ok(pick.tag.clone()),
        },
        Part::Digest => pick.digest.clone().ok_or_else(|| {
            format!(
                "the reference holds a digest, and the pick {} of policy `{}` has none",
                pick.tag, found.policy
            )
        }),
        Part::Name => Ok(watched.image_text.clone()),
    }
}

struct Splice {
    start: usize,
    end: usize,
    text: String,
    event: usize,
    value: String,
}

fn plan_file(
    file: &ScannedFile,
    watched: &[Watched],
    picks: &HashMap<String, Pick>,
) -> Result<Option<FileChange>, Note> {
    let mut splices: Vec<Splice> = Vec::new();
    let mut edits = Vec::new();
    for found in &file.found {
        let (Some(pick), Some(w)) = (
            picks.get(&found.policy),
            watched.iter().find(|w| w.policy == found.policy),
        ) else {
            continue;
        };
        let Some(scalar) = file.tree.scalar(found.node) else {
            continue;
        };
        let line = file.tree.node(found.node).line;
        let value = new_value(&scalar.value, found, w, pick)
            .map_err(|m| note(&file.rel, line, &format!("{m}; file left alone")))?;
        if value == scalar.value {
            continue;
        }
        if scalar.style == Style::Block {
            return Err(note(
                &file.rel,
                line,
                "the value is a block scalar, which tidewatch does not rewrite; file left alone",
            ));
        }
        if splices.iter().any(|s| s.start == scalar.start) {
            continue;
        }
        splices.push(Splice {
            start: scalar.start,
            end: scalar.end,
            text: quote::render(&value, scalar.style),
            event: scalar.event,
            value: value.clone(),
        });
        edits.push(Edit {
            file: file.rel.clone(),
            line,
            kind: found.kind,
            policy: found.policy.clone(),
            old: scalar.value.clone(),
            new: value,
        });
    }
    if splices.is_empty() {
        return Ok(None);
    }
    splices.sort_by_key(|s| s.start);
    let mut body = String::with_capacity(file.text.len() + 64);
    let mut at = 0;
    for s in &splices {
        if s.start < at {
            return Err(note(&file.rel, 0, "two edits overlap; file left alone"));
        }
        body.push_str(&file.text[at..s.start]);
        body.push_str(&s.text);
        at = s.end;
    }
    body.push_str(&file.text[at..]);
    verify(file, &body, &splices)?;
    let updated = if file.bom {
        format!("\u{feff}{body}")
    } else {
        body
    };
    let original = if file.bom {
        format!("\u{feff}{}", file.text)
    } else {
        file.text.clone()
    };
    edits.sort_by_key(|e| e.line);
    Ok(Some(FileChange {
        file: file.rel.clone(),
        original,
        updated,
        edits,
    }))
}

/// The edited text must parse to the same event stream as the original,
/// except for the edited scalars, which must hold exactly the new values.
fn verify(file: &ScannedFile, updated: &str, splices: &[Splice]) -> Result<(), Note> {
    let refuse = |line: usize, why: &str| {
        note(
            &file.rel,
            line,
            &format!("edit refused: {why}; file left alone"),
        )
    };
    let tree = Tree::parse(updated).map_err(|e| {
        refuse(
            e.line,
            &format!("the result would not parse ({})", e.message),
        )
    })?;
    let expected: HashMap<usize, &str> = splices
        .iter()
        .map(|s| (s.event, s.value.as_str()))
        .collect();
    if tree.signature.len() != file.tree.signature.len() {
        return Err(refuse(
            0,
            "the result's structure differs from the original",
        ));
    }
    for (i, (before, after)) in file.tree.signature.iter().zip(&tree.signature).enumerate() {
        let ok = match (expected.get(&i), before, after) {
            (
                Some(value),
                Signature::Scalar {
                    anchor: a1,
                    tag: t1,
                    ..
                },
                Signature::Scalar {
                    value: v2,
                    anchor: a2,
                    tag: t2,
                    ..
                },
            ) => v2 == value && a1 == a2 && t1 == t2,
            (None, b, a) => b == a,
            _ => false,
        };
        if !ok {
            let line = file.tree.event_lines.get(i).copied().unwrap_or(0);
            return Err(refuse(
                line,
                "the result changes more than the intended values",
            ));
        }
    }
    Ok(())
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

    /// Writes every changed file under `root`, each atomically (a temporary
    /// file renamed over the original), so no file is ever half written.
    pub fn apply(&self, root: &Path) -> std::io::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for change in &self.changes {
            let path = root.join(&change.file);
            let dir = path.parent().unwrap_or(root);
            let temporary = dir.join(format!(
                ".{}.tidewatch-tmp",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
            ));
            std::fs::write(&temporary, &change.updated)?;
            if let Ok(meta) = std::fs::metadata(&path) {
                std::fs::set_permissions(&temporary, meta.permissions())?;
            }
            std::fs::rename(&temporary, &path)?;
            written.push(path);
        }
        Ok(written)
    }
}

/// Regular YAML files under the given paths, with symlinks followed only
/// while they stay inside the repository, and files over `cap` noted.
fn files_in_scope(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(text: &str) -> ScannedFile {
        ScannedFile {
            rel: "f.yaml".into(),
            bom: false,
            text: text.into(),
            tree: Tree::parse(text).unwrap(),
            found: Vec::new(),
        }
    }

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

    #[test]
    fn verification_refuses_a_result_that_changes_structure() {
        let file = scanned("a: 1.0.0\nb: keep\n");
        let scalar = file.tree.nodes.iter().find_map(|n| match &n.kind {
            tree::NodeKind::Scalar(s) if s.value == "1.0.0" => Some(s.clone()),
            _ => None,
        });
        let s = scalar.unwrap();
        let splice = |text: &str, value: &str| Splice {
            start: s.start,
            end: s.end,
            text: text.into(),
            event: s.event,
            value: value.into(),
        };
        // A raw value that smuggles in a new key.
        let bad = "a: 2.0.0\nc: extra\nb: keep\n";
        let err = verify(&file, bad, &[splice("2.0.0\nc: extra", "2.0.0")]).unwrap_err();
        assert!(err.message.contains("edit refused"), "{err}");
        // A value that reads back as something else than intended.
        let err = verify(&file, "a: 2.0\nb: keep\n", &[splice("2.0", "2.0.0")]).unwrap_err();
        assert!(
            err.message
                .contains("changes more than the intended values"),
            "{err}"
        );
        // A neighbour that changed too.
        let err = verify(&file, "a: 2.0.0\nb: kept\n", &[splice("2.0.0", "2.0.0")]).unwrap_err();
        assert_eq!(err.line, 2, "the changed neighbour is on line 2");
        // The intended edit alone passes.
        verify(&file, "a: 2.0.0\nb: keep\n", &[splice("2.0.0", "2.0.0")]).unwrap();
    }
}
