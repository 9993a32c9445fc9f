//! The pull request body: a table for humans and a hidden block for us.
//!
//! The block is how tidewatch recognises its own pull requests and remembers
//! which versions a human declined (closed without merging), with no state
//! of its own:
//!
//! ```text
//! <!-- tidewatch:v1 {"update":"prod","changes":[{"policy":"app","image":"ghcr.io/acme/app","new":"1.2.3"}]} -->
//! ```
//!
//! It is ASCII-only JSON on one line inside an HTML comment, so it survives
//! GitHub storing and re-serving the body. Inside the JSON, `<`, `>`, every
//! non-ASCII character and every `-` next to another `-` are written as
//! `\uXXXX` escapes, so no value can end the comment (`-->`, `--!>`) or
//! open another one.

use serde::{Deserialize, Serialize};

use super::{PrState, PullRequestInfo};

/// One image change proposed by a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrChange {
    pub policy: String,
    pub image: String,
    pub old: String,
    pub new: String,
    /// Files (relative to the environment repository) the change touches.
    pub files: Vec<String>,
}

/// What the hidden block records about a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrRecord {
    pub update: String,
    pub changes: Vec<RecordedChange>,
    /// Set to [`CLOSED_BY_TIDEWATCH`] just before tidewatch closes the pull
    /// request itself, so that the close never counts as a human decline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
}

/// The `closed_by` value tidewatch writes before closing a pull request.
pub const CLOSED_BY_TIDEWATCH: &str = "tidewatch";

/// A version a human declined by closing a tidewatch pull request unmerged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    pub policy: String,
    /// The newest value the pull request proposed (`tag` or `tag@digest`).
    pub version: String,
    pub number: u64,
    /// When the pull request was closed, as the forge reports it.
    pub closed_at: Option<String>,
}

/// One change as recorded in the hidden block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordedChange {
    pub policy: String,
    pub image: String,
    pub new: String,
}

const MARKER: &str = "<!-- tidewatch:v1 ";
const COMMENT_END: &str = "-->";

/// GitHub rejects bodies over 65 536 characters; stay well below so the
/// hidden block always fits, dropping table rows if need be.
const MAX_BODY_CHARS: usize = 60_000;

/// The Markdown body of a pull request for update `update`.
///
/// The hidden block is never cut; table rows are dropped (with a note) when
/// the body would otherwise pass GitHub's size limit. The block alone takes
/// roughly 70 bytes per change, so a single pull request should carry well
/// under 700 changes or GitHub will refuse the body.
pub fn render_body(update: &str, changes: &[PrChange]) -> String {
    render_body_with_origins(update, changes, &[])
}

/// [`render_body`], with a line per promoted policy saying where its
/// version comes from: `(policy, "in dev since …, commit …, status …")`.
pub fn render_body_with_origins(
    update: &str,
    changes: &[PrChange],
    origins: &[(String, String)],
) -> String {
    let record = PrRecord {
        update: update.to_string(),
        changes: changes
            .iter()
            .map(|c| RecordedChange {
                policy: c.policy.clone(),
                image: c.image.clone(),
                new: c.new.clone(),
            })
            .collect(),
        closed_by: None,
    };
    let block = render_block(&record);

    let count = changes.len();
    let mut out = format!(
        "tidewatch update {} proposes {count} image {}.\n\n",
        code(update),
        if count == 1 { "change" } else { "changes" }
    );
    if count > 0 {
        out.push_str("| Image | Old → New | Policy | Files |\n");
        out.push_str("| --- | --- | --- | --- |\n");
        // Reserve room for the block and an "and N more" line.
        let budget = MAX_BODY_CHARS.saturating_sub(block.chars().count() + 200);
        let mut used = out.chars().count();
        for (index, change) in changes.iter().enumerate() {
            let row = table_row(change);
            let len = row.chars().count();
            if used + len > budget {
                out.push_str(&format!(
                    "\n… and {} more change(s), not listed to keep this description within GitHub's size limit.\n",
                    count - index
                ));
                break;
            }
            used += len;
            out.push_str(&row);
        }
    }
    if !origins.is_empty() {
        out.push_str("\nPromoted versions:\n");
        for (policy, origin) in origins {
            let value = changes
                .iter()
                .find(|c| &c.policy == policy)
                .map(|c| format!(" {}", code(&c.new)))
                .unwrap_or_default();
            out.push_str(&format!(
                "- {}{value}: {}\n",
                code(policy),
                origin.replace(['\n', '\r'], " ")
            ));
        }
    }
    out.push_str(
        "\nClosing this pull request without merging declines these versions: tidewatch will not propose them again.\n\n",
    );
    out.push_str(&block);
    out.push('\n');
    out
}

fn render_block(record: &PrRecord) -> String {
    format!("{MARKER}{} {COMMENT_END}", comment_safe_json(record))
}

/// `body` with its hidden block marked as closed by tidewatch (the text for
/// humans stays as it is). A body without a block gets one for `update`.
pub fn mark_closed_by_tidewatch(body: &str, update: &str) -> String {
    let mut record = parse_body(body).unwrap_or_else(|| PrRecord {
        update: update.to_string(),
        changes: Vec::new(),
        closed_by: None,
    });
    record.closed_by = Some(CLOSED_BY_TIDEWATCH.to_string());
    let kept = match body.rfind(MARKER) {
        Some(start) => body[..start].trim_end(),
        None => body.trim_end(),
    };
    format!("{kept}\n\n{}\n", render_block(&record))
}

fn table_row(change: &PrChange) -> String {
    let old = if change.old.is_empty() {
        "_(none)_".to_string()
    } else {
        code(&change.old)
    };
    let files = if change.files.is_empty() {
        "—".to_string()
    } else {
        change
            .files
            .iter()
            .map(|f| code(f))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    format!(
        "| {} | {old} → {} | {} | {files} |\n",
        code(&change.image),
        code(&change.new),
        code(&change.policy)
    )
}

/// `text` as a Markdown code span safe inside a table cell: on one line,
/// pipes escaped. Text with backticks is escaped as plain text instead.
fn code(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.is_empty() {
        return "_(empty)_".to_string();
    }
    if !one_line.contains('`') {
        return format!("`{}`", one_line.replace('|', "\\|"));
    }
    let mut out = String::with_capacity(one_line.len() + 8);
    for c in one_line.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Compact JSON that is ASCII-only and cannot end an HTML comment.
fn comment_safe_json(record: &PrRecord) -> String {
    // Serialising strings into JSON cannot fail.
    let raw = serde_json::to_string(record).unwrap_or_default();
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len() + 16);
    for (i, &c) in chars.iter().enumerate() {
        let dash_run =
            c == '-' && ((i > 0 && chars[i - 1] == '-') || chars.get(i + 1) == Some(&'-'));
        if dash_run || c == '<' || c == '>' || !c.is_ascii() {
            // Only inside JSON strings: the structure is ASCII without these.
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The record in `body`'s hidden block; the last well-formed one wins if a
/// body holds several (say, a human quoted an older description).
pub fn parse_body(body: &str) -> Option<PrRecord> {
    let mut found = None;
    let mut rest = body;
    while let Some(start) = rest.find(MARKER) {
        let after = &rest[start + MARKER.len()..];
        let Some(end) = after.find(COMMENT_END) else {
            break;
        };
        if let Ok(record) = serde_json::from_str::<PrRecord>(after[..end].trim()) {
            found = Some(record);
        }
        rest = &after[end + COMMENT_END.len()..];
    }
    found
}

/// The versions humans declined: the changes recorded in pull requests that
/// were closed unmerged by someone other than tidewatch. Merged, open and
/// foreign pull requests (no block), and those tidewatch closed itself, are
/// ignored. The record holds the newest version each pull request proposed
/// (it is rewritten when the pull request is updated in place).
pub fn declines(closed: &[PullRequestInfo]) -> Vec<Decline> {
    let mut out: Vec<Decline> = Vec::new();
    for pr in closed.iter().filter(|pr| pr.state == PrState::Closed) {
        let Some(record) = parse_body(&pr.body) else {
            continue;
        };
        if record.closed_by.as_deref() == Some(CLOSED_BY_TIDEWATCH) {
            continue;
        }
        for change in record.changes {
            if !out
                .iter()
                .any(|d| d.policy == change.policy && d.version == change.new)
            {
                out.push(Decline {
                    policy: change.policy,
                    version: change.new,
                    number: pr.number,
                    closed_at: pr.closed_at.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(image: &str, new: &str) -> PrChange {
        PrChange {
            policy: "app".into(),
            image: image.into(),
            old: "1.0.0".into(),
            new: new.into(),
            files: vec!["apps/app.yaml".into()],
        }
    }

    #[test]
    fn block_matches_the_documented_shape() {
        let body = render_body("prod", &[change("ghcr.io/acme/app", "1.2.3")]);
        assert!(body.contains(
            r#"<!-- tidewatch:v1 {"update":"prod","changes":[{"policy":"app","image":"ghcr.io/acme/app","new":"1.2.3"}]} -->"#
        ), "{body}");
        assert!(
            body.contains("| `ghcr.io/acme/app` | `1.0.0` → `1.2.3` | `app` | `apps/app.yaml` |")
        );
    }

    #[test]
    fn hostile_values_cannot_close_the_comment() {
        let nasty = "1.0--> <!-- x --!> é 🦀 \"q\" \\ |";
        let changes = [PrChange {
            policy: "p--".into(),
            image: "-".into(),
            old: "a`b|c".into(),
            new: nasty.into(),
            files: vec![],
        }];
        let body = render_body("up--date", &changes);
        let block_start = body.find(MARKER).unwrap();
        let block = &body[block_start..];
        // The only `--` in the block are the comment's own delimiters.
        assert_eq!(block.matches("--").count(), 2, "{block}");
        assert!(block.is_ascii());
        let record = parse_body(&body).unwrap();
        assert_eq!(record.update, "up--date");
        assert_eq!(record.changes[0].new, nasty);
        assert_eq!(record.changes[0].policy, "p--");
        assert_eq!(record.changes[0].image, "-");
    }

    #[test]
    fn body_without_block_or_with_garbage_is_none() {
        assert_eq!(parse_body("just a PR"), None);
        assert_eq!(parse_body("<!-- tidewatch:v1 {not json} -->"), None);
        assert_eq!(parse_body("<!-- tidewatch:v1 {\"update\":\"x\""), None);
    }

    #[test]
    fn survives_crlf_and_the_last_block_wins() {
        let first = render_body("a", &[change("i", "1")]);
        let second = render_body("b", &[change("i", "2")]);
        let combined = format!("> {}\r\n\r\n{}", first, second).replace('\n', "\r\n");
        let record = parse_body(&combined).unwrap();
        assert_eq!(record.update, "b");
    }

    #[test]
    fn huge_bodies_keep_the_block() {
        let changes: Vec<PrChange> = (0..500)
            .map(|i| change(&format!("ghcr.io/acme/service-{i}"), "1.0.1"))
            .collect();
        let body = render_body("prod", &changes);
        assert!(body.chars().count() <= MAX_BODY_CHARS, "{}", body.len());
        let record = parse_body(&body).unwrap();
        assert_eq!(record.changes.len(), 500);
        assert!(body.contains("more change(s)"));
    }

    #[test]
    fn declined_only_from_closed_unmerged_by_a_human() {
        let pr = |number, state, body: String| PullRequestInfo {
            number,
            head: "tidewatch/prod".into(),
            base: "main".into(),
            title: "t".into(),
            body,
            url: String::new(),
            state,
            closed_at: Some("2026-01-02T03:04:05Z".into()),
        };
        let prs = [
            pr(
                1,
                PrState::Closed,
                render_body("prod", &[change("i", "2.0.0")]),
            ),
            pr(
                2,
                PrState::Merged,
                render_body("prod", &[change("i", "1.5.0")]),
            ),
            pr(3, PrState::Closed, "someone else's PR".into()),
            pr(
                4,
                PrState::Closed,
                render_body("prod", &[change("i", "2.0.0")]),
            ),
            pr(
                5,
                PrState::Open,
                render_body("prod", &[change("i", "3.0.0")]),
            ),
            pr(
                6,
                PrState::Closed,
                mark_closed_by_tidewatch(&render_body("prod", &[change("i", "4.0.0")]), "prod"),
            ),
        ];
        assert_eq!(
            declines(&prs),
            vec![Decline {
                policy: "app".into(),
                version: "2.0.0".into(),
                number: 1,
                closed_at: Some("2026-01-02T03:04:05Z".into()),
            }]
        );
    }

    #[test]
    fn marking_keeps_the_text_and_the_changes() {
        let body = render_body("prod", &[change("ghcr.io/acme/app", "1.2.3")]);
        let marked = mark_closed_by_tidewatch(&body, "prod");
        let record = parse_body(&marked).unwrap();
        assert_eq!(record.closed_by.as_deref(), Some(CLOSED_BY_TIDEWATCH));
        assert_eq!(record.changes.len(), 1);
        assert!(marked.starts_with("tidewatch update `prod` proposes 1 image change."));
        assert_eq!(marked.matches(MARKER).count(), 1);
    }
}
