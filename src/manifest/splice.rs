//! Turning picks into byte edits of one file: the new value of each
//! reference, the splice into the original text, and the verification that
//! the result parses to the same events except the intended scalars.

use std::collections::HashMap;

use super::quote;
use super::refs::{Found, Part, Watched};
use super::tree::{Signature, Style, Tree};
use super::{note, Edit, FileChange, Note, ScannedFile};
use crate::policy::Pick;

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

pub(super) struct Splice {
    start: usize,
    end: usize,
    text: String,
    event: usize,
    value: String,
}

pub(super) fn plan_file(
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
pub(super) fn verify(file: &ScannedFile, updated: &str, splices: &[Splice]) -> Result<(), Note> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tree;

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
