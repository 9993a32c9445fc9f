//! A YAML file as a tree of nodes that remember where their text is.
//!
//! Built from `saphyr-parser` events, which carry positions. Two facts of
//! that parser shape this code (see DESIGN.md): positions are *character*
//! offsets, so they are mapped to byte offsets here; and a quoted scalar's
//! reported end runs past its closing quote (through trailing spaces and a
//! comment), so the end of a quoted token is found again by scanning it.
//!
//! The tree also keeps the file's event stream in a comparable form
//! ([`Signature`]), which is how an edit is verified: the edited file must
//! produce the same stream except at the scalars that were meant to change.

use std::collections::HashMap;
use std::sync::OnceLock;

use saphyr_parser::{Event, Parser, ScalarStyle};

pub type NodeId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
    /// `|` or `>`: never edited in place.
    Block,
}

#[derive(Clone, Debug)]
pub struct Scalar {
    pub value: String,
    pub style: Style,
    /// Byte range of the token in the file, quotes included.
    pub start: usize,
    pub end: usize,
    /// Index of this scalar's event in the file's [`Signature`] stream.
    pub event: usize,
}

#[derive(Clone, Debug)]
pub enum NodeKind {
    Scalar(Scalar),
    Mapping(Vec<(NodeId, NodeId)>),
    Sequence(Vec<NodeId>),
    /// An alias, resolved to the node its anchor names.
    Alias(NodeId),
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    /// 1-based line where the node starts.
    pub line: usize,
}

/// One event, reduced to what must not change when a scalar is edited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signature {
    DocumentStart,
    DocumentEnd,
    MappingStart {
        anchor: usize,
        tag: Option<String>,
    },
    MappingEnd,
    SequenceStart {
        anchor: usize,
        tag: Option<String>,
    },
    SequenceEnd,
    Scalar {
        value: String,
        style: Style,
        anchor: usize,
        tag: Option<String>,
    },
    Alias(usize),
}

#[derive(Debug)]
pub struct Tree {
    pub nodes: Vec<Node>,
    /// The root node of each document (`None` for an empty document).
    pub documents: Vec<Option<NodeId>>,
    pub signature: Vec<Signature>,
    /// The 1-based line of each event in `signature`.
    pub event_lines: Vec<usize>,
    /// Each mapping's entries with merge keys expanded, computed once on
    /// first use: a chain of merges costs its length once, not per lookup.
    expanded: Vec<OnceLock<Vec<(NodeId, NodeId)>>>,
}

/// A file that is not valid YAML, or that passes tidewatch's limits.
#[derive(Debug, Clone, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
    /// True when the file is valid YAML but too deep or has too many
    /// aliases to be walked safely.
    pub limit: bool,
}

/// Deepest nesting of mappings and sequences a file may have. Manifests
/// and values files rarely pass 20; a file made to exhaust the stack or the
/// CPU is refused, whole, before anything walks it.
pub const MAX_DEPTH: usize = 256;
/// Most aliases (`*anchor`) a file may hold. Merge keys (`<<: *x`) expand
/// through aliases, so this also bounds every expansion.
pub const MAX_ALIASES: usize = 1_000;

enum Frame {
    Mapping {
        id: NodeId,
        pending_key: Option<NodeId>,
    },
    Sequence {
        id: NodeId,
    },
}

fn style_of(style: ScalarStyle) -> Style {
    match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted => Style::Single,
        ScalarStyle::DoubleQuoted => Style::Double,
        _ => Style::Block,
    }
}

fn tag_text(tag: &Option<std::borrow::Cow<'_, saphyr_parser::Tag>>) -> Option<String> {
    tag.as_ref().map(|t| format!("{}{}", t.handle, t.suffix))
}

impl Tree {
    /// Parses `text` (without a BOM). Every document is kept.
    pub fn parse(text: &str) -> Result<Tree, ParseError> {
        // Character index → byte offset, for every character and the end.
        let byte_of: Vec<usize> = text
            .char_indices()
            .map(|(b, _)| b)
            .chain(std::iter::once(text.len()))
            .collect();
        let at = |chars: usize| byte_of.get(chars).copied().unwrap_or(text.len());

        let mut tree = Tree {
            nodes: Vec::new(),
            documents: Vec::new(),
            signature: Vec::new(),
            event_lines: Vec::new(),
            expanded: Vec::new(),
        };
        let mut anchors: HashMap<usize, NodeId> = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut aliases = 0usize;
        let mut parser = Parser::new_from_str(text);
        while let Some(next) = parser.next_event() {
            let (event, span) = next.map_err(|e| ParseError {
                line: e.marker().line(),
                message: e.info().to_string(),
                limit: false,
            })?;
            let line = span.start.line();
            if !matches!(
                event,
                Event::StreamStart | Event::StreamEnd | Event::Nothing
            ) {
                tree.event_lines.push(line);
            }
            let node = match event {
                Event::StreamStart | Event::StreamEnd | Event::Nothing => continue,
                Event::DocumentStart(_) => {
                    tree.signature.push(Signature::DocumentStart);
                    tree.documents.push(None);
                    continue;
                }
                Event::DocumentEnd => {
                    tree.signature.push(Signature::DocumentEnd);
                    continue;
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    tree.signature.push(if matches!(event, Event::MappingEnd) {
                        Signature::MappingEnd
                    } else {
                        Signature::SequenceEnd
                    });
                    if let Some(frame) = stack.pop() {
                        let id = match frame {
                            Frame::Mapping { id, .. } | Frame::Sequence { id } => id,
                        };
                        attach(&mut tree, &mut stack, id);
                    }
                    continue;
                }
                Event::Alias(anchor) => {
                    tree.signature.push(Signature::Alias(anchor));
                    aliases += 1;
                    if aliases > MAX_ALIASES {
                        return Err(ParseError {
                            line,
                            message: format!(
                                "it holds more than {MAX_ALIASES} aliases, more than tidewatch expands"
                            ),
                            limit: true,
                        });
                    }
                    let target = anchors.get(&anchor).copied().ok_or_else(|| ParseError {
                        line,
                        message: format!("alias to unknown anchor {anchor}"),
                        limit: false,
                    })?;
                    Node {
                        kind: NodeKind::Alias(target),
                        line,
                    }
                }
                Event::Scalar(value, style, anchor, tag) => {
                    let style = style_of(style);
                    let start = skip_properties(text, at(span.start.index()));
                    let end = match style {
                        Style::Single | Style::Double => {
                            quoted_end(text, start).ok_or_else(|| ParseError {
                                line,
                                message: "unterminated quoted scalar".into(),
                                limit: false,
                            })?
                        }
                        _ => at(span.end.index()),
                    };
                    tree.signature.push(Signature::Scalar {
                        value: value.to_string(),
                        style,
                        anchor,
                        tag: tag_text(&tag),
                    });
                    let id = tree.nodes.len();
                    if anchor > 0 {
                        anchors.insert(anchor, id);
                    }
                    Node {
                        kind: NodeKind::Scalar(Scalar {
                            value: value.into_owned(),
                            style,
                            start,
                            end,
                            event: tree.signature.len() - 1,
                        }),
                        line,
                    }
                }
                Event::MappingStart(anchor, ref tag) | Event::SequenceStart(anchor, ref tag) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(ParseError {
                            line,
                            message: format!(
                                "it is nested more than {MAX_DEPTH} levels deep, more than tidewatch walks"
                            ),
                            limit: true,
                        });
                    }
                    let mapping = matches!(event, Event::MappingStart(..));
                    tree.signature.push(if mapping {
                        Signature::MappingStart {
                            anchor,
                            tag: tag_text(tag),
                        }
                    } else {
                        Signature::SequenceStart {
                            anchor,
                            tag: tag_text(tag),
                        }
                    });
                    let id = tree.nodes.len();
                    tree.nodes.push(Node {
                        kind: if mapping {
                            NodeKind::Mapping(Vec::new())
                        } else {
                            NodeKind::Sequence(Vec::new())
                        },
                        line,
                    });
                    if anchor > 0 {
                        anchors.insert(anchor, id);
                    }
                    stack.push(if mapping {
                        Frame::Mapping {
                            id,
                            pending_key: None,
                        }
                    } else {
                        Frame::Sequence { id }
                    });
                    continue;
                }
            };
            let id = tree.nodes.len();
            tree.nodes.push(node);
            attach(&mut tree, &mut stack, id);
        }
        tree.expanded = (0..tree.nodes.len()).map(|_| OnceLock::new()).collect();
        Ok(tree)
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// Follows aliases to the node holding the content.
    pub fn resolve(&self, mut id: NodeId) -> NodeId {
        // Aliases always point at earlier nodes, so this terminates.
        while let NodeKind::Alias(target) = self.nodes[id].kind {
            id = target;
        }
        id
    }

    pub fn scalar(&self, id: NodeId) -> Option<&Scalar> {
        match &self.nodes[self.resolve(id)].kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The entries of a mapping, with `<<` merge keys expanded (own keys
    /// first, so they win over merged ones in [`Tree::get`]). A mapping that
    /// merges itself (an alias to its own anchor) adds nothing more.
    pub fn entries(&self, id: NodeId) -> &[(NodeId, NodeId)] {
        let mut visiting = std::collections::HashSet::new();
        self.expand(self.resolve(id), &mut visiting)
    }

    /// Recursion is bounded by [`MAX_ALIASES`]: every merge goes through an
    /// alias, and each mapping is expanded once and remembered.
    fn expand(
        &self,
        id: NodeId,
        visiting: &mut std::collections::HashSet<NodeId>,
    ) -> &[(NodeId, NodeId)] {
        if let Some(done) = self.expanded.get(id).and_then(|cell| cell.get()) {
            return done;
        }
        let NodeKind::Mapping(entries) = &self.nodes[id].kind else {
            return &[];
        };
        if !visiting.insert(id) {
            return &[];
        }
        let mut own = Vec::with_capacity(entries.len());
        let mut merged = Vec::new();
        for (k, v) in entries {
            if self
                .scalar(*k)
                .is_some_and(|s| s.value == "<<" && s.style == Style::Plain)
            {
                let source = self.resolve(*v);
                match &self.nodes[source].kind {
                    NodeKind::Mapping(_) => merged.extend_from_slice(self.expand(source, visiting)),
                    NodeKind::Sequence(items) => {
                        for item in items {
                            let item = self.resolve(*item);
                            merged.extend_from_slice(self.expand(item, visiting));
                        }
                    }
                    _ => {}
                }
            } else {
                own.push((*k, *v));
            }
        }
        visiting.remove(&id);
        own.extend(merged);
        match self.expanded.get(id) {
            Some(cell) => cell.get_or_init(|| own),
            None => &[],
        }
    }

    /// The value of `key` in a mapping (merge keys included).
    pub fn get(&self, id: NodeId, key: &str) -> Option<NodeId> {
        self.entries(id)
            .iter()
            .find(|(k, _)| self.scalar(*k).is_some_and(|s| s.value == key))
            .map(|(_, v)| *v)
    }

    /// The string value of `key`, when it is a scalar.
    pub fn get_str(&self, id: NodeId, key: &str) -> Option<&str> {
        self.get(id, key)
            .and_then(|v| self.scalar(v))
            .map(|s| s.value.as_str())
    }

    pub fn items(&self, id: NodeId) -> &[NodeId] {
        match &self.nodes[self.resolve(id)].kind {
            NodeKind::Sequence(items) => items,
            _ => &[],
        }
    }

    pub fn is_mapping(&self, id: NodeId) -> bool {
        matches!(self.nodes[self.resolve(id)].kind, NodeKind::Mapping(_))
    }
}

/// Adds a finished node to the container on top of the stack, or makes it
/// the document root.
fn attach(tree: &mut Tree, stack: &mut [Frame], id: NodeId) {
    match stack.last_mut() {
        None => {
            if let Some(root) = tree.documents.last_mut() {
                *root = Some(id);
            }
        }
        Some(Frame::Sequence { id: seq }) => {
            if let NodeKind::Sequence(items) = &mut tree.nodes[*seq].kind {
                items.push(id);
            }
        }
        Some(Frame::Mapping {
            id: map,
            pending_key,
        }) => match pending_key.take() {
            None => *pending_key = Some(id),
            Some(key) => {
                if let NodeKind::Mapping(entries) = &mut tree.nodes[*map].kind {
                    entries.push((key, id));
                }
            }
        },
    }
}

/// A node's span starts at its properties (`&anchor`, `!tag`); the scalar
/// token itself starts after them and the whitespace that follows.
fn skip_properties(text: &str, mut start: usize) -> usize {
    let bytes = text.as_bytes();
    while matches!(bytes.get(start), Some(b'&' | b'!')) {
        while start < bytes.len() && !bytes[start].is_ascii_whitespace() {
            start += 1;
        }
        while start < bytes.len() && matches!(bytes[start], b' ' | b'\t') {
            start += 1;
        }
    }
    start
}

/// The byte offset just past the quoted scalar starting at `start`,
/// honouring `''` in single quotes and backslash escapes in double quotes.
pub fn quoted_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let quote = *bytes.get(start)?;
    let mut i = start + 1;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (b'"', b'\\') => i += 2,
            (b'\'', b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            (q, b) if b == q => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token<'a>(text: &'a str, tree: &Tree, value: &str) -> &'a str {
        let s = tree
            .nodes
            .iter()
            .find_map(|n| match &n.kind {
                NodeKind::Scalar(s) if s.value == value => Some(s),
                _ => None,
            })
            .unwrap();
        &text[s.start..s.end]
    }

    #[test]
    fn spans_are_bytes_and_quoted_ends_are_exact() {
        let text = "é: 'it''s'   # comment é\nb: \"a\\\"b\"  # x\nc: plain  \n";
        let tree = Tree::parse(text).unwrap();
        assert_eq!(token(text, &tree, "it's"), "'it''s'");
        assert_eq!(token(text, &tree, "a\"b"), "\"a\\\"b\"");
        assert_eq!(token(text, &tree, "plain"), "plain");
    }

    #[test]
    fn aliases_and_merge_keys_resolve() {
        let text =
            "base: &img\n  repository: r\n  tag: '1'\napp:\n  <<: *img\n  tag: '2'\nother: *img\n";
        let tree = Tree::parse(text).unwrap();
        let root = tree.documents[0].unwrap();
        let app = tree.get(root, "app").unwrap();
        assert_eq!(tree.get_str(app, "tag"), Some("2"));
        assert_eq!(tree.get_str(app, "repository"), Some("r"));
        let other = tree.get(root, "other").unwrap();
        assert_eq!(tree.get_str(other, "tag"), Some("1"));
    }

    #[test]
    fn anchors_and_tags_are_not_part_of_the_scalar_token() {
        let text = "a: &x 1.0.0 # c\nb: !!str '2'\nc: &y !!str \"3\"\n";
        let tree = Tree::parse(text).unwrap();
        assert_eq!(token(text, &tree, "1.0.0"), "1.0.0");
        assert_eq!(token(text, &tree, "2"), "'2'");
        assert_eq!(token(text, &tree, "3"), "\"3\"");
    }

    #[test]
    fn a_mapping_merging_itself_does_not_recurse_forever() {
        // Found by the fuzzer: the anchor is recorded when its mapping
        // starts, so an alias inside it refers to the mapping itself.
        let text = "image: &app\n  repository: r\n  <<: *app\n  tag: t\n";
        let tree = Tree::parse(text).unwrap();
        let image = tree.get(tree.documents[0].unwrap(), "image").unwrap();
        assert_eq!(tree.get_str(image, "tag"), Some("t"));
        assert_eq!(tree.entries(image).len(), 2);
    }

    #[test]
    fn multi_document_and_crlf() {
        let text = "%YAML 1.2\n---\na: 1\r\n---\r\nb: 2\r\n";
        let tree = Tree::parse(text).unwrap();
        assert_eq!(tree.documents.len(), 2);
        assert_eq!(token(text, &tree, "2"), "2");
    }
}
