//! Property tests for byte-exact edits: random documents mixing watched
//! references with comments, quoting styles, blank lines, tabs, trailing
//! spaces and CRLF, under random picks. After the edit:
//! - the output parses, and every watched reference holds its pick;
//! - every line without an edit is byte-identical, and an edited line only
//!   differs inside the edited value;
//! - a second application changes nothing.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use tidewatch::manifest::{self, Scope, Watched};
use tidewatch::policy::Pick;
use tidewatch::reference::ImageName;

#[derive(Clone, Debug)]
enum Line {
    /// A container-ish `image:` reference to the watched image.
    Image {
        quote: u8,
        tag: String,
        comment: Option<String>,
        trailing: String,
    },
    /// A marker-annotated tag value.
    MarkedTag {
        quote: u8,
        tag: String,
    },
    /// Something unrelated that must not move.
    Other {
        key: String,
        value: String,
        quote: u8,
    },
    Comment(String),
    Blank,
}

fn quoted(value: &str, quote: u8) -> String {
    match quote {
        1 => format!("'{}'", value.replace('\'', "''")),
        2 => format!("\"{value}\""),
        _ => value.to_string(),
    }
}

fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}",
        "v[0-9]\\.[0-9]",
        Just("1.20".to_string()),
        Just("2024-06-27".to_string()),
        Just("0755".to_string()),
        Just("latest".to_string()),
        "main-[0-9a-f]{7}-[0-9]{10}",
    ]
}

fn comment_text() -> impl Strategy<Value = String> {
    "[ a-zA-Z0-9#:\\t\\-é\\[\\]{}]{0,24}"
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        (
            0u8..3,
            tag(),
            proptest::option::of(comment_text()),
            "[ ]{0,3}"
        )
            .prop_map(|(quote, tag, comment, trailing)| Line::Image {
                quote,
                tag,
                comment,
                trailing
            }),
        (0u8..3, tag()).prop_map(|(quote, tag)| Line::MarkedTag { quote, tag }),
        ("[a-z]{1,8}", "[a-zA-Z0-9 ._/-]{1,16}", 0u8..3).prop_map(|(key, value, quote)| {
            Line::Other {
                key,
                value: value.trim().to_string(),
                quote,
            }
        }),
        comment_text().prop_map(Line::Comment),
        Just(Line::Blank),
    ]
}

/// Renders lines as a values file; each entry is its own top-level key so
/// any mix of lines is a valid document. Returns the text.
fn render(lines: &[Line], crlf: bool) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        match line {
            Line::Image {
                quote,
                tag,
                comment,
                trailing,
            } => {
                out.push_str(&format!("svc{i}:{eol}  image: "));
                let value = format!("ghcr.io/acme/app:{tag}");
                let value = if *quote == 0 && !plainable(&value) {
                    quoted(&value, 2)
                } else {
                    quoted(&value, *quote)
                };
                out.push_str(&value);
                out.push_str(trailing);
                if let Some(c) = comment {
                    out.push_str(&format!(" #{c}"));
                }
                out.push_str(eol);
            }
            Line::MarkedTag { quote, tag } => {
                let value = if *quote == 0 && !plainable(tag) {
                    quoted(tag, 1)
                } else {
                    quoted(tag, *quote)
                };
                out.push_str(&format!(
                    "marked{i}: {value} # {{\"tidewatch\": \"app:tag\"}}{eol}"
                ));
            }
            Line::Other { key, value, quote } => {
                let value = if value.is_empty() {
                    "x".to_string()
                } else {
                    value.clone()
                };
                let q = if *quote == 0 { 1 } else { *quote };
                out.push_str(&format!("{key}{i}: {}{eol}", quoted(&value, q)));
            }
            Line::Comment(c) => out.push_str(&format!("#{c}{eol}")),
            Line::Blank => out.push_str(eol),
        }
    }
    out
}

/// Whether a value may be written plain in the generated input (the same
/// caution the writer applies, so inputs are valid and mean strings).
fn plainable(value: &str) -> bool {
    serde_norway::from_str::<serde_norway::Value>(&format!("k: {value}"))
        .ok()
        .and_then(|v| v.get("k").and_then(|s| s.as_str()).map(|s| s == value))
        .unwrap_or(false)
}

fn plan_once(dir: &std::path::Path, pick: &str) -> manifest::Plan {
    let watched = vec![Watched {
        policy: "app".into(),
        image: ImageName::parse("ghcr.io/acme/app").unwrap(),
        image_text: "ghcr.io/acme/app".into(),
    }];
    let all: HashSet<String> = ["app".to_string()].into();
    let paths = vec!["values.yaml".to_string()];
    let scope = Scope {
        paths: &paths,
        watched: &watched,
        all_policies: &all,
        targets: &[],
        size_cap: manifest::DEFAULT_SIZE_CAP,
        foreign_paths: &[],
    };
    let picks: HashMap<String, Pick> = [(
        "app".to_string(),
        Pick {
            tag: pick.to_string(),
            digest: None,
        },
    )]
    .into();
    manifest::scan(dir, &scope).plan(&picks)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn edits_touch_only_the_values_and_are_idempotent(lines in proptest::collection::vec(line(), 1..12), pick in tag(), crlf in any::<bool>()) {
        let input = render(&lines, crlf);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("values.yaml"), &input).unwrap();
        let plan = plan_once(dir.path(), &pick);
        prop_assert!(plan.notes.is_empty(), "notes: {:?}\n{input}", plan.notes);
        plan.apply(dir.path()).unwrap();
        let output = std::fs::read_to_string(dir.path().join("values.yaml")).unwrap();

        // The output parses, and every watched value holds the pick.
        let value: serde_norway::Value = serde_norway::from_str(&output).map_err(|e| TestCaseError::fail(format!("{e}\n{output}")))?;
        for (i, line) in lines.iter().enumerate() {
            match line {
                Line::Image { .. } => {
                    let got = value[format!("svc{i}").as_str()]["image"].as_str().map(str::to_string);
                    prop_assert_eq!(got, Some(format!("ghcr.io/acme/app:{pick}")));
                }
                Line::MarkedTag { .. } => {
                    let got = value[format!("marked{i}").as_str()].as_str().map(str::to_string);
                    prop_assert_eq!(got, Some(pick.clone()));
                }
                _ => {}
            }
        }

        // Outside the edited values, nothing moved.
        let edited: HashSet<usize> = plan.edits().map(|e| e.line).collect();
        let before: Vec<&str> = input.split_inclusive('\n').collect();
        let after: Vec<&str> = output.split_inclusive('\n').collect();
        prop_assert_eq!(before.len(), after.len());
        for (n, (b, a)) in before.iter().zip(&after).enumerate() {
            if !edited.contains(&(n + 1)) {
                prop_assert_eq!(b, a, "line {} changed", n + 1);
            } else {
                let prefix = b.bytes().zip(a.bytes()).take_while(|(x, y)| x == y).count();
                let suffix = b.bytes().rev().zip(a.bytes().rev()).take_while(|(x, y)| x == y).count();
                let changed = &a[prefix.min(a.len())..a.len().saturating_sub(suffix).max(prefix.min(a.len()))];
                prop_assert!(!changed.contains('#') && !changed.contains('\n'), "edit spilled outside the value: {changed:?}");
            }
        }

        // Running again changes nothing.
        let again = plan_once(dir.path(), &pick);
        prop_assert!(again.is_empty(), "second run: {}", again.diff());
    }
}
