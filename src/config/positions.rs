//! Where each field of a policy file is written: field path → line:column.
//!
//! serde deserialisation knows field *paths* (`images[2].filter.pattern`) but
//! not where they are in the file once the YAML is a value tree. This index,
//! built from `saphyr-parser` events (which carry positions), maps each path
//! to the position of its key and its value, so that every error, whether
//! from serde or from a cross-check, can name file:line:column.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, Span};

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    fn of(span: &Span) -> Position {
        Position {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Option<Position>,
    value: Position,
}

/// The path → position map of the first document of a file.
#[derive(Debug, Default)]
pub struct PositionIndex {
    entries: HashMap<String, Entry>,
    /// How many YAML documents the file holds.
    pub documents: usize,
    /// For an index made with [`PositionIndex::lazy`]: the text, indexed on
    /// the first lookup. A valid file never needs positions, so it never
    /// pays for the map.
    pending: Option<Box<(String, std::sync::OnceLock<PositionIndex>)>>,
}

/// A YAML syntax error, with where the parser stopped.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub position: Position,
    pub message: String,
}

enum Frame {
    Mapping {
        path: String,
        key: Option<(String, Position)>,
    },
    Sequence {
        path: String,
        next: usize,
    },
    /// Inside a complex (non-scalar) mapping key: positions are not recorded.
    Skipped,
}

/// Deepest nesting a policy file may have (real ones stay under 10).
pub const MAX_DEPTH: usize = 64;
/// Most YAML nodes one policy file may hold (a file of 5,000 image
/// policies has about 30,000).
pub const MAX_NODES: usize = 200_000;

impl PositionIndex {
    /// Indexes `text`, refusing files past [`MAX_DEPTH`] or [`MAX_NODES`],
    /// and files whose field paths would take more than 16 bytes per byte
    /// of the file: the index, like the whole load, stays proportional to
    /// the file however it is shaped.
    pub fn build(text: &str) -> Result<PositionIndex, SyntaxError> {
        let mut index = PositionIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(text);
        let (mut nodes, mut path_bytes) = (0usize, 0usize);
        let path_budget = text.len().saturating_mul(16).max(1 << 16);
        while let Some(next) = parser.next_event() {
            let (event, span) = next.map_err(|e| SyntaxError {
                position: Position {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                },
                message: e.info().to_string(),
            })?;
            let opens = matches!(event, Event::MappingStart(..) | Event::SequenceStart(..));
            let limit = |message: String| SyntaxError {
                position: Position::of(&span),
                message,
            };
            if opens && stack.len() >= MAX_DEPTH {
                return Err(limit(format!(
                    "the file is nested more than {MAX_DEPTH} levels deep, more than a policy file needs"
                )));
            }
            nodes += 1;
            if nodes > MAX_NODES {
                return Err(limit(format!(
                    "the file holds more than {MAX_NODES} YAML nodes; split it into several files in one directory"
                )));
            }
            match event {
                Event::DocumentStart(_) => index.documents += 1,
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                Event::Scalar(..)
                | Event::Alias(_)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
                    if index.documents <= 1 =>
                {
                    let position = Position::of(&span);
                    let path = index.place(&mut stack, &event, position);
                    path_bytes += path.as_ref().map_or(0, String::len);
                    if path_bytes > path_budget {
                        return Err(limit(
                            "the file's keys are too long or nested too deeply for a policy file"
                                .into(),
                        ));
                    }
                    if opens {
                        stack.push(match (path, &event) {
                            (None, _) => Frame::Skipped,
                            (Some(path), Event::MappingStart(..)) => {
                                Frame::Mapping { path, key: None }
                            }
                            (Some(path), _) => Frame::Sequence { path, next: 0 },
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(index)
    }

    /// An index of `text` built only when a position is first asked for.
    pub fn lazy(text: &str) -> PositionIndex {
        PositionIndex {
            entries: HashMap::new(),
            documents: 1,
            pending: Some(Box::new((text.to_string(), std::sync::OnceLock::new()))),
        }
    }

    fn built(&self) -> &PositionIndex {
        match self.pending.as_deref() {
            Some((text, cell)) => {
                cell.get_or_init(|| PositionIndex::build(text).unwrap_or_default())
            }
            None => self,
        }
    }

    /// Records a node and returns its path, or `None` if it is (part of) a
    /// mapping key rather than a value.
    fn place(
        &mut self,
        stack: &mut [Frame],
        event: &Event<'_>,
        position: Position,
    ) -> Option<String> {
        let (path, key) = match stack.last_mut() {
            None => (String::new(), None),
            Some(Frame::Skipped) => return None,
            Some(Frame::Sequence { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                (p, None)
            }
            Some(Frame::Mapping { path, key }) => match key.take() {
                None => {
                    // This node is a key. Complex keys get a placeholder name.
                    let name = match event {
                        Event::Scalar(value, ..) => value.to_string(),
                        _ => "?".to_string(),
                    };
                    *key = Some((name, position));
                    return None;
                }
                Some((name, key_position)) => (join(path, &name), Some(key_position)),
            },
        };
        self.entries.entry(path.clone()).or_insert(Entry {
            key,
            value: position,
        });
        Some(path)
    }

    /// Where the key of `path` is written (or its value, for list items).
    pub fn key(&self, path: &str) -> Option<Position> {
        self.built()
            .entries
            .get(path)
            .map(|e| e.key.unwrap_or(e.value))
    }

    /// Where the value of `path` starts.
    pub fn value(&self, path: &str) -> Option<Position> {
        self.built().entries.get(path).map(|e| e.value)
    }

    /// The position of `path`, or of its nearest written ancestor (a missing
    /// field is reported where its parent is).
    pub fn nearest(&self, path: &str) -> Position {
        let mut p = path;
        loop {
            if let Some(pos) = self.value(p) {
                return pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.value("").unwrap_or(Position { line: 1, column: 1 }),
            }
        }
    }
}

/// Appends a field name to a path: `images[0]` + `semver` → `images[0].semver`.
pub fn join(path: &str, field: &str) -> String {
    if field.is_empty() {
        path.to_string()
    } else if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
repository:
  url: https://example.com/fleet.git
images:
  - name: app
    image: ghcr.io/acme/app
    filter: { pattern: '^main-', extract: $1 }
  - name: web
";

    #[test]
    fn maps_paths_to_key_and_value_positions() {
        let ix = PositionIndex::build(DOC).unwrap();
        assert_eq!(
            ix.key("repository.url"),
            Some(Position { line: 2, column: 3 })
        );
        assert_eq!(
            ix.value("repository.url"),
            Some(Position { line: 2, column: 8 })
        );
        assert_eq!(
            ix.key("images[1].name"),
            Some(Position { line: 7, column: 5 })
        );
        assert_eq!(ix.value("images[0].filter.extract").unwrap().line, 6);
        assert_eq!(ix.nearest("images[1].semver").line, 7);
        assert_eq!(ix.documents, 1);
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let e = PositionIndex::build("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.position.line >= 1);
        assert!(!e.message.is_empty());
    }
}
