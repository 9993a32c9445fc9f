//! Commit messages and PR titles from a template.
//!
//! The template is one line with fields in braces, rendered once per change:
//! `{update}`, `{policy}`, `{image}`, `{old}`, `{new}` and `{files}` (the
//! files changed, comma-separated). With one change the rendered line is the
//! subject. With several, the subject is `chore({update}): update N images`
//! and each change's line follows in the body as a list item.

use super::report::Change;
use crate::git::{signed_off, Identity};

pub const DEFAULT_TEMPLATE: &str = "chore({update}): update {image} to {new}";

fn render_line(template: &str, update: &str, change: &Change) -> String {
    template
        .replace("{update}", update)
        .replace("{policy}", &change.policy)
        .replace("{image}", &change.image)
        .replace("{old}", &change.old)
        .replace("{new}", &change.new)
        .replace("{files}", &change.files.join(", "))
}

/// The full message; `sign_off` appends a `Signed-off-by:` trailer.
pub fn render_message(
    template: &str,
    update: &str,
    changes: &[Change],
    sign_off: Option<&Identity>,
) -> String {
    let message = match changes {
        [] => format!("chore({update}): update images"),
        [one] => render_line(template, update, one),
        many => {
            let mut text = format!("chore({update}): update {} images\n", many.len());
            for change in many {
                text.push_str(&format!("\n- {}", render_line(template, update, change)));
            }
            text
        }
    };
    match sign_off {
        Some(who) => signed_off(&message, &who.name, &who.email),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(image: &str, new: &str) -> Change {
        Change {
            policy: "p".into(),
            image: image.into(),
            old: "1.0".into(),
            new: new.into(),
            files: vec!["a.yaml".into(), "b.yaml".into()],
        }
    }

    #[test]
    fn one_change_is_the_subject_several_are_listed() {
        let one = render_message(DEFAULT_TEMPLATE, "dev", &[change("ghcr.io/a", "1.1")], None);
        assert_eq!(one, "chore(dev): update ghcr.io/a to 1.1");
        let two = render_message(
            "{image} {old}->{new} ({policy}; {files})",
            "dev",
            &[change("x", "2"), change("y", "3")],
            None,
        );
        assert_eq!(two, "chore(dev): update 2 images\n\n- x 1.0->2 (p; a.yaml, b.yaml)\n- y 1.0->3 (p; a.yaml, b.yaml)");
        let signed = render_message(
            DEFAULT_TEMPLATE,
            "dev",
            &[change("x", "2")],
            Some(&Identity {
                name: "Bot".into(),
                email: "bot@x".into(),
            }),
        );
        assert!(
            signed.trim_end().ends_with("Signed-off-by: Bot <bot@x>"),
            "{signed}"
        );
    }
}
