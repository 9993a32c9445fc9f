//! Reading one policy file into typed items, collecting every error.
//!
//! serde stops at the first error of a value. To list *every* error of a file,
//! each top-level section and each list item is deserialised on its own, and
//! the failures are turned into [`Diagnostic`]s positioned through the
//! [`PositionIndex`]. Items that parse are kept, so cross-checks still run on
//! the rest of the file.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_norway::Value;

use super::chunks;
use super::diagnostic::{nearest, Diagnostic};
use super::model::{ImagePolicy, RegistrySettings, Repository, Update};
use super::positions::{join, Position, PositionIndex, MAX_DEPTH, MAX_NODES};

pub const SECTIONS: [&str; 5] = ["repository", "registries", "images", "updates", "server"];

/// What one file contributed, with each item's field path in that file.
#[derive(Default)]
pub struct ParsedFile {
    pub index: PositionIndex,
    pub repository: Option<(Repository, String)>,
    pub server: Option<(super::model::Server, String)>,
    pub registries: Vec<(RegistrySettings, String)>,
    pub images: Vec<(ImagePolicy, String)>,
    pub updates: Vec<(Update, String)>,
    /// Names of items that failed to parse, so that references to them are
    /// not reported a second time as "unknown".
    pub broken_names: Vec<String>,
}

pub fn parse_file(file: &Path, text: &str, diagnostics: &mut Vec<Diagnostic>) -> ParsedFile {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parsed = ParsedFile::default();
    let at = |position: Position, path: &str, message: String| Diagnostic {
        file: file.to_path_buf(),
        position,
        path: path.to_string(),
        message,
        hint: None,
    };
    // Limits first, in a pass that keeps nothing: a file's index and value
    // tree are built only if they stay proportional to it.
    if let Some((events, depth)) = chunks::measure(text) {
        if depth > MAX_DEPTH {
            diagnostics.push(at(
                Position { line: 1, column: 1 },
                "",
                format!("the file is nested more than {MAX_DEPTH} levels deep, more than a policy file needs"),
            ));
            return parsed;
        }
        let most = MAX_NODES.min(text.len() / 3 + 1_000);
        if events > most {
            diagnostics.push(at(
                Position { line: 1, column: 1 },
                "",
                format!("the file holds more than {most} YAML nodes for its size; split it into several files in one directory"),
            ));
            return parsed;
        }
    }
    if let Some(pieces) = chunks::cut(text) {
        return parse_chunks(file, text, pieces, diagnostics);
    }
    let index = match PositionIndex::build(text) {
        Ok(index) => index,
        Err(e) => {
            diagnostics.push(at(
                e.position,
                "",
                format!("YAML syntax error: {}", e.message),
            ));
            return parsed;
        }
    };
    if index.documents > 1 {
        diagnostics.push(at(
            Position { line: 1, column: 1 },
            "",
            format!(
                "a policy file holds one YAML document, this one has {}; split it into files in one directory",
                index.documents
            ),
        ));
        return parsed;
    }
    let mut root: Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let position = e
                .location()
                .map_or(Position { line: 1, column: 1 }, |l| Position {
                    line: l.line(),
                    column: l.column(),
                });
            diagnostics.push(at(position, "", format!("YAML error: {e}")));
            return parsed;
        }
    };
    if let Err(e) = root.apply_merge() {
        diagnostics.push(at(
            Position { line: 1, column: 1 },
            "",
            format!("invalid merge key `<<`: {e}"),
        ));
        return parsed;
    }
    let mapping = match root {
        Value::Null => {
            parsed.index = index;
            return parsed;
        }
        Value::Mapping(m) => m,
        _ => {
            diagnostics.push(at(
                index.nearest(""),
                "",
                "expected a mapping with the sections repository, registries, images and updates"
                    .into(),
            ));
            return parsed;
        }
    };
    let context = Context {
        file,
        text,
        index: &index,
    };
    let broken = &mut parsed.broken_names;
    for (key, value) in mapping {
        let Some(section) = key.as_str() else {
            diagnostics.push(at(
                index.nearest(""),
                "",
                "section names must be strings".into(),
            ));
            continue;
        };
        match section {
            "repository" => {
                if let Some(repo) = context.item::<Repository>(value, "repository", diagnostics) {
                    parsed.repository = Some((repo, "repository".to_string()));
                }
            }
            "server" => {
                if let Some(server) =
                    context.item::<super::model::Server>(value, "server", diagnostics)
                {
                    parsed.server = Some((server, "server".to_string()));
                }
            }
            "registries" => parsed.registries = context.list(value, section, diagnostics, broken),
            "images" => parsed.images = context.list(value, section, diagnostics, broken),
            "updates" => parsed.updates = context.list(value, section, diagnostics, broken),
            unknown => {
                let mut d = at(
                    index.key(unknown).unwrap_or_default(),
                    unknown,
                    format!(
                        "unknown section `{unknown}`; expected one of repository, registries, images, updates, server"
                    ),
                );
                d.hint = nearest(unknown, SECTIONS).map(|s| format!("did you mean `{s}`?"));
                diagnostics.push(d);
            }
        }
    }
    parsed.index = index;
    parsed
}

/// A file cut into sections and items (see `chunks.rs`): each piece is
/// deserialised alone, every error of every piece is reported, and the
/// position index is built only if an error needs a position.
fn parse_chunks(
    file: &Path,
    text: &str,
    pieces: Vec<chunks::Chunk<'_>>,
    diagnostics: &mut Vec<Diagnostic>,
) -> ParsedFile {
    let index = PositionIndex::lazy(text);
    let context = Context {
        file,
        text,
        index: &index,
    };
    let mut parsed = ParsedFile::default();
    for piece in pieces {
        let section = piece.section.as_str();
        match (section, piece.item) {
            ("repository", None) => {
                parsed.repository = context
                    .section::<Repository>(piece.text, section, diagnostics)
                    .flatten()
                    .map(|r| (r, section.to_string()));
            }
            ("server", None) => {
                parsed.server = context
                    .section::<super::model::Server>(piece.text, section, diagnostics)
                    .flatten()
                    .map(|s| (s, section.to_string()));
            }
            ("registries" | "images" | "updates", None) => {
                // A list section with no block items: empty, a flow list
                // with none, or not a list at all.
                if !piece.list {
                    if let Some(Some(_)) =
                        context.section::<serde::de::IgnoredAny>(piece.text, section, diagnostics)
                    {
                        diagnostics.push(context.not_a_list(section));
                    }
                }
            }
            ("registries", Some(i)) => parsed.registries.extend(context.list_item(
                piece.text,
                section,
                i,
                diagnostics,
                &mut parsed.broken_names,
            )),
            ("images", Some(i)) => parsed.images.extend(context.list_item(
                piece.text,
                section,
                i,
                diagnostics,
                &mut parsed.broken_names,
            )),
            ("updates", Some(i)) => parsed.updates.extend(context.list_item(
                piece.text,
                section,
                i,
                diagnostics,
                &mut parsed.broken_names,
            )),
            (unknown, _) => diagnostics.push(context.unknown_section(unknown)),
        }
    }
    parsed.index = index;
    parsed
}

struct Context<'a> {
    file: &'a Path,
    text: &'a str,
    index: &'a PositionIndex,
}

impl Context<'_> {
    fn list<T: DeserializeOwned>(
        &self,
        value: Value,
        section: &str,
        diagnostics: &mut Vec<Diagnostic>,
        broken: &mut Vec<String>,
    ) -> Vec<(T, String)> {
        let items = match value {
            Value::Sequence(items) => items,
            Value::Null => return Vec::new(),
            _ => {
                diagnostics.push(Diagnostic {
                    file: self.file.to_path_buf(),
                    position: self.index.nearest(section),
                    path: section.to_string(),
                    message: format!("expected a list of {section}"),
                    hint: Some(format!(
                        "write each entry as `- name: …` under `{section}:`"
                    )),
                });
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("{section}[{i}]");
            let name = item.get("name").and_then(Value::as_str).map(str::to_string);
            match self.item::<T>(item, &path, diagnostics) {
                Some(t) => out.push((t, path)),
                None => broken.extend(name),
            }
        }
        out
    }

    fn item<T: DeserializeOwned>(
        &self,
        value: Value,
        path: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(t) => Some(t),
            Err(e) => {
                diagnostics.push(self.report(
                    path,
                    &inner_path(e.path()),
                    &e.into_inner().to_string(),
                ));
                None
            }
        }
    }

    /// A section's piece (`key: value`): its value, `Some(None)` for null.
    /// The piece becomes a small value tree first, so typing rules are
    /// exactly those of the whole-file path (`1.20` is a number).
    fn section<T: DeserializeOwned>(
        &self,
        piece: &str,
        section: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<Option<T>> {
        let value = self.piece_value(piece, diagnostics)?;
        match value.get(section) {
            None | Some(Value::Null) => Some(None),
            Some(_) => {
                let Value::Mapping(mut map) = value else {
                    return None;
                };
                let inner = map.remove(section)?;
                self.item::<T>(inner, section, diagnostics).map(Some)
            }
        }
    }

    /// One list item's piece (`- …` lines) as item `i` of `section`.
    fn list_item<T: DeserializeOwned>(
        &self,
        piece: &str,
        section: &str,
        i: usize,
        diagnostics: &mut Vec<Diagnostic>,
        broken: &mut Vec<String>,
    ) -> Option<(T, String)> {
        let path = format!("{section}[{i}]");
        let Value::Sequence(mut one) = self.piece_value(piece, diagnostics)? else {
            return None;
        };
        let item = one.pop()?;
        let name = item.get("name").and_then(Value::as_str).map(str::to_string);
        match self.item::<T>(item, &path, diagnostics) {
            Some(t) => Some((t, path)),
            None => {
                broken.extend(name);
                None
            }
        }
    }

    fn piece_value(&self, piece: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Value> {
        match serde_norway::from_str::<Value>(piece) {
            Ok(value) => Some(value),
            Err(e) => {
                // The whole file parsed, so a piece should too; say so if not.
                diagnostics.push(self.report("", "", &e.to_string()));
                None
            }
        }
    }

    fn not_a_list(&self, section: &str) -> Diagnostic {
        Diagnostic {
            file: self.file.to_path_buf(),
            position: self.index.nearest(section),
            path: section.to_string(),
            message: format!("expected a list of {section}"),
            hint: Some(format!(
                "write each entry as `- name: …` under `{section}:`"
            )),
        }
    }

    fn unknown_section(&self, unknown: &str) -> Diagnostic {
        Diagnostic {
            file: self.file.to_path_buf(),
            position: self.index.key(unknown).unwrap_or_default(),
            path: unknown.to_string(),
            message: format!(
                "unknown section `{unknown}`; expected one of repository, registries, images, updates, server"
            ),
            hint: nearest(unknown, SECTIONS).map(|s| format!("did you mean `{s}`?")),
        }
    }

    /// The diagnostic of a serde error at `inner` (serde_path_to_error's
    /// path, e.g. `filter.pattern` or `[2]`) below the item at `path`.
    fn report(&self, path: &str, inner: &str, message: &str) -> Diagnostic {
        let message = bare_message(message);
        let full = if inner.starts_with('[') {
            format!("{path}{inner}")
        } else {
            join(path, inner)
        };
        self.explain(&full, message)
    }

    /// Turns a serde message into a positioned diagnostic with a hint.
    fn explain(&self, path: &str, message: &str) -> Diagnostic {
        let mut d = Diagnostic {
            file: self.file.to_path_buf(),
            position: self.index.nearest(path),
            path: path.to_string(),
            message: message.to_string(),
            hint: None,
        };
        let quoted = backticked(message);
        if message.starts_with("unknown field") || message.starts_with("unknown variant") {
            if let Some((word, expected)) = quoted.split_first() {
                // serde_path_to_error already ends the path with the unknown
                // field; add it only where it does not.
                let field_path = if path.ends_with(&format!(".{word}")) || path == *word {
                    path.to_string()
                } else {
                    join(path, word)
                };
                if message.starts_with("unknown field") {
                    d.position = self.index.key(&field_path).unwrap_or(d.position);
                    d.path = field_path;
                }
                d.hint =
                    nearest(word, expected.iter().copied()).map(|s| format!("did you mean `{s}`?"));
            }
        } else if message.starts_with("missing field") {
            if let Some(field) = quoted.first() {
                d.message = format!("missing required field `{field}`");
            }
        } else if message.contains("expected a string") || message.contains("expected a sequence") {
            if let Some(position) = self.index.value(path) {
                d.position = position;
                let token = raw_token(self.text, position);
                if message.contains("expected a string") && !token.is_empty() {
                    d.hint = Some(format!(
                        "YAML reads `{token}` as a number or boolean; quote it: \"{token}\""
                    ));
                }
            }
        }
        d
    }
}

/// A serde_norway message without the path and location it adds when it
/// deserialises from text (`.[0]: missing field `image` at line 1 column
/// 5`): the diagnostic has its own path and position.
fn bare_message(message: &str) -> &str {
    let mut message = message;
    if message.starts_with('.') || message.starts_with('[') {
        if let Some((_, rest)) = message.split_once(": ") {
            message = rest;
        }
    }
    if let Some(at) = message.rfind(" at line ") {
        let tail = &message[at + " at line ".len()..];
        let is_location = tail.split_once(" column ").is_some_and(|(l, c)| {
            l.bytes().all(|b| b.is_ascii_digit()) && c.bytes().all(|b| b.is_ascii_digit())
        });
        if is_location {
            message = &message[..at];
        }
    }
    message
}

/// serde_path_to_error's path as a field path: `filter.pattern`,
/// `exclude[2]` (segments it could not name are left out).
fn inner_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut inner = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => inner.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => inner = join(&inner, key),
            Segment::Unknown => {}
        }
    }
    inner
}

/// The words between backticks in a serde message, in order.
fn backticked(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

/// The scalar written at `position`, up to whitespace, a comma or a comment.
fn raw_token(text: &str, position: Position) -> String {
    text.lines()
        .nth(position.line.saturating_sub(1))
        .map(|line| {
            line.chars()
                .skip(position.column.saturating_sub(1))
                .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '}' | ']' | '#'))
                .collect()
        })
        .unwrap_or_default()
}
