//! `extract` templates: `$1`, `$name` and `${name}`, as in Flux.
//!
//! Flux expands the template with Go's `Regexp.Expand`, so the rules are Go's:
//! a name is the longest run of letters, digits and `_` after `$`, `${…}`
//! delimits it explicitly, `$$` is a literal dollar, and a `$` that starts no
//! valid reference is copied as text. One deliberate difference: a reference
//! to a group the pattern does not have is an error here, where Go silently
//! expands it to nothing and every tag then orders equal.
//!
//! The template is resolved to group indexes once, so expanding it per tag is
//! a few slice copies with no lookups, which matters at a million tags.

use regex::{CaptureLocations, Regex};

/// A template resolved against one pattern.
#[derive(Clone, Debug)]
pub struct ExtractTemplate {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Group(usize),
}

/// A template that refers to a group the pattern lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("extract `{template}` refers to `{reference}`, which is not a capture group of the pattern (it has {available})")]
pub struct TemplateError {
    pub template: String,
    pub reference: String,
    pub available: String,
}

impl ExtractTemplate {
    pub fn parse(template: &str, pattern: &Regex) -> Result<ExtractTemplate, TemplateError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(dollar) = rest.find('$') {
            text.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                text.push('$');
                rest = tail;
                continue;
            }
            let (name, tail) = match after.strip_prefix('{') {
                Some(braced) => match braced.find('}') {
                    Some(end) if is_name(&braced[..end]) => (&braced[..end], &braced[end + 1..]),
                    _ => ("", after),
                },
                None => {
                    let end = after
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            if name.is_empty() {
                // Not a reference: Go keeps the dollar as text.
                text.push('$');
                rest = after;
                continue;
            }
            let index = resolve(name, pattern).ok_or_else(|| TemplateError {
                template: template.to_string(),
                reference: format!("${name}"),
                available: describe_groups(pattern),
            })?;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Group(index));
            rest = tail;
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(ExtractTemplate { pieces })
    }

    /// Writes the expansion for one match into `out`, replacing its content.
    /// A group that did not take part in the match expands to nothing.
    pub fn expand_into(&self, haystack: &str, locations: &CaptureLocations, out: &mut String) {
        out.clear();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Group(i) => {
                    if let Some((start, end)) = locations.get(*i) {
                        out.push_str(&haystack[start..end]);
                    }
                }
            }
        }
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn resolve(name: &str, pattern: &Regex) -> Option<usize> {
    match name.parse::<usize>() {
        Ok(n) if n < pattern.captures_len() => Some(n),
        Ok(_) => None,
        Err(_) => pattern
            .capture_names()
            .position(|group| group == Some(name)),
    }
}

fn describe_groups(pattern: &Regex) -> String {
    let numbered = pattern.captures_len() - 1;
    let named: Vec<String> = pattern
        .capture_names()
        .flatten()
        .map(|n| format!("${n}"))
        .collect();
    match (numbered, named.is_empty()) {
        (0, _) => "no groups".to_string(),
        (1, true) => "group $1".to_string(),
        (1, false) => format!("group $1, named {}", named.join(", ")),
        (n, true) => format!("groups $1..${n}"),
        (n, false) => format!("groups $1..${n}, named {}", named.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(pattern: &str, template: &str, tag: &str) -> String {
        let re = Regex::new(pattern).unwrap();
        let t = ExtractTemplate::parse(template, &re).unwrap();
        let mut locs = re.capture_locations();
        re.captures_read(&mut locs, tag).unwrap();
        let mut out = String::new();
        t.expand_into(tag, &locs, &mut out);
        out
    }

    #[test]
    fn numbered_named_and_braced_references() {
        assert_eq!(expand(r"ver(\d+)", "$1", "ver12"), "12");
        assert_eq!(expand(r"(?P<ts>\d+)", "$ts", "main-123"), "123");
        assert_eq!(expand(r"(?P<ts>\d+)", "${ts}x", "main-123"), "123x");
        assert_eq!(expand(r"(\d+)-(\d+)", "$2.$1", "10-20"), "20.10");
        assert_eq!(expand(r"(\d+)", "$$1", "7"), "$1");
        assert_eq!(expand(r"(\d+)", "a$-b", "7"), "a$-b");
    }

    #[test]
    fn unknown_group_is_an_error_naming_what_exists() {
        let re = Regex::new(r"(?P<num>\d+)").unwrap();
        let e = ExtractTemplate::parse("$nmu", &re).unwrap_err();
        assert!(e.to_string().contains("$nmu"), "{e}");
        assert!(e.to_string().contains("$num"), "{e}");
        // Go reads `$1x` as the name `1x`, which does not exist either.
        assert!(ExtractTemplate::parse("$1x", &re).is_err());
        assert!(ExtractTemplate::parse("$2", &re).is_err());
    }
}
