//! Cutting a policy file into its sections and list items, so that each is
//! deserialised on its own and memory stays proportional to the file.
//!
//! serde_norway buffers every event of a document before it builds
//! anything, about 25 times the text. Here one streaming pass of
//! saphyr-parser finds where each section and each list item starts (by
//! line); the loader then deserialises each item's few lines alone and
//! keeps only the typed result (and the errors, with the item's path).
//! Anything unusual (anchors and aliases, flow-style lists, several
//! documents, a parse error) returns `None`, and the loader takes the path
//! over one value tree of the whole file.

use saphyr_parser::{Event, Parser};

/// One piece of a policy file: a whole section (`repository:`, `server:`,
/// or an unknown one), or one item of a list section.
#[derive(Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub section: String,
    /// The item's index in its list, for list sections.
    pub item: Option<usize>,
    /// The section's text from its key, or the item's lines from its `- `.
    pub text: &'a str,
    /// Whether the section's value is a block list.
    pub list: bool,
}

/// Where a top-level section and its list items start (1-based lines).
struct Section {
    name: String,
    line: usize,
    /// Whether the value is a (block) list.
    list: bool,
    items: Vec<usize>,
}

/// The file cut into sections and list items, or `None` when it cannot
/// be cut safely (see the module docs). An empty list section yields one
/// chunk with no item and no text.
pub fn cut(text: &str) -> Option<Vec<Chunk<'_>>> {
    let sections = outline(text)?;
    let mut cuts: Vec<usize> = sections
        .iter()
        .flat_map(|s| std::iter::once(s.line).chain(s.items.iter().copied()))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let offsets = line_offsets(text, &cuts);
    let offset = |line: usize| -> usize {
        cuts.binary_search(&line)
            .ok()
            .map_or(text.len(), |i| offsets[i])
    };
    let mut chunks = Vec::new();
    for (i, section) in sections.iter().enumerate() {
        let end = sections
            .get(i + 1)
            .map_or(text.len(), |next| offset(next.line));
        if section.list && !section.items.is_empty() {
            for (n, line) in section.items.iter().enumerate() {
                let stop = section.items.get(n + 1).map_or(end, |next| offset(*next));
                let piece = &text[offset(*line)..stop];
                // The item's line must carry its `- ` (not so when the
                // dash stands alone on the line before).
                if !piece.trim_start().starts_with('-') {
                    return None;
                }
                chunks.push(Chunk {
                    section: section.name.clone(),
                    item: Some(n),
                    text: piece,
                    list: true,
                });
            }
        } else {
            chunks.push(Chunk {
                section: section.name.clone(),
                item: None,
                text: &text[offset(section.line)..end],
                list: section.list,
            });
        }
    }
    Some(chunks)
}

/// Events in `text` and its deepest nesting, in one pass that keeps
/// nothing: how big an index or a value tree of it would be, before one
/// is built. `None` if it does not parse (the full path reports that).
pub fn measure(text: &str) -> Option<(usize, usize)> {
    let mut parser = Parser::new_from_str(text);
    let (mut events, mut depth, mut deepest) = (0usize, 0usize, 0usize);
    while let Some(next) = parser.next_event() {
        let (event, _) = next.ok()?;
        events += 1;
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Some((events, deepest))
}

/// One streaming pass: the top-level sections and the start line of each
/// item of the list sections. `None` for anything the chunked load does
/// not handle.
fn outline(text: &str) -> Option<Vec<Section>> {
    let mut parser = Parser::new_from_str(text);
    let mut sections: Vec<Section> = Vec::new();
    let mut depth = 0usize;
    let mut documents = 0;
    // At depth 1: whether the next scalar is a key.
    let mut expecting_key = true;
    // Whether the current section's value is a list (whose items we cut at).
    let mut in_list = false;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.ok()?;
        let line = span.start.line();
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => {}
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return None;
                }
            }
            Event::Alias(_) => return None,
            Event::Scalar(value, _, anchor, _) => {
                if anchor > 0 {
                    return None;
                }
                match depth {
                    1 if expecting_key => {
                        sections.push(Section {
                            name: value.to_string(),
                            line,
                            list: false,
                            items: Vec::new(),
                        });
                        expecting_key = false;
                    }
                    1 => expecting_key = true,
                    2 if in_list => sections.last_mut()?.items.push(line),
                    _ => {}
                }
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                if anchor > 0 {
                    return None;
                }
                if depth == 1 && expecting_key {
                    // A complex key at the top level.
                    return None;
                }
                if depth == 1 {
                    in_list = matches!(event, Event::SequenceStart(..));
                    sections.last_mut()?.list = in_list;
                }
                if depth == 2 && in_list {
                    sections.last_mut()?.items.push(line);
                }
                if depth == 0 && !matches!(event, Event::MappingStart(..)) {
                    return None;
                }
                depth += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.checked_sub(1)?;
                if depth == 1 {
                    expecting_key = true;
                }
            }
        }
    }
    // Items must start on lines of their own (flow lists do not).
    for section in &sections {
        if section.items.windows(2).any(|w| w[0] >= w[1])
            || section
                .items
                .first()
                .is_some_and(|first| *first <= section.line)
        {
            return None;
        }
    }
    Some(sections)
}

/// The byte offset of the start of each of `lines` (sorted, 1-based).
fn line_offsets(text: &str, lines: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(lines.len());
    let mut wanted = lines.iter().peekable();
    let mut line = 1;
    let mut at = 0;
    while let Some(&&next) = wanted.peek() {
        if next == line {
            out.push(at);
            wanted.next();
            continue;
        }
        match text[at..].find('\n') {
            Some(i) => {
                at += i + 1;
                line += 1;
            }
            None => {
                out.push(text.len());
                wanted.next();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# fleet
repository:
  url: https://github.com/acme/fleet.git   # the env repo
images:
  - name: app
    image: ghcr.io/acme/app
    semver: ^1
  # a comment between items
  - name: web
    image: nginx
updates:
  - { name: dev, paths: [envs/dev] }
  - name: prod
    paths: [envs/prod]
    pullRequest: { base: main }
";

    #[test]
    fn files_are_cut_into_sections_and_items() {
        let chunks = cut(FILE).expect("a plain file is cut");
        let shape: Vec<(&str, Option<usize>)> = chunks
            .iter()
            .map(|c| (c.section.as_str(), c.item))
            .collect();
        assert_eq!(
            shape,
            [
                ("repository", None),
                ("images", Some(0)),
                ("images", Some(1)),
                ("updates", Some(0)),
                ("updates", Some(1)),
            ]
        );
        assert!(chunks[0].text.starts_with("repository:\n  url:"));
        assert!(chunks[1].text.starts_with("  - name: app\n"));
        assert!(chunks[1].text.ends_with("# a comment between items\n"));
        assert_eq!(chunks[3].text, "  - { name: dev, paths: [envs/dev] }\n");
        assert_eq!(measure(FILE).map(|(_, depth)| depth), Some(4));
    }

    #[test]
    fn unusual_files_are_not_cut() {
        for text in [
            "images: [{name: a, image: x}, {name: b, image: y}]\n",
            "images:\n  - &a {name: a, image: x}\n  - *a\n",
            "a: 1\n---\nb: 2\n",
            "images:\n  -\n    name: a\n    image: x\n",
            "- not a mapping\n",
        ] {
            assert!(cut(text).is_none(), "{text}");
        }
    }

    #[test]
    fn line_offsets_are_exact() {
        let text = "a\nbb\n\nccc\n";
        assert_eq!(line_offsets(text, &[1, 2, 4]), [0, 2, 6]);
        assert_eq!(line_offsets(text, &[9]), [text.len()]);
    }
}
