//! Writing a new scalar value in the style of the one it replaces.
//!
//! Tags such as `1.20`, `2024-06-27` or `0755` must stay strings, but as plain
//! YAML they would read back as a number, a date or an octal. Peers lose
//! exactly this when they re-serialise (`newTag: 1.20` becomes `1.2`). A
//! value keeps its original style (plain, single or double quoted) where that
//! style can hold it; a plain value that would not read back as the same
//! string is written double-quoted.

use super::tree::Style;

/// The text to splice in for `value`, given the style of the old token.
pub fn render(value: &str, original: Style) -> String {
    match original {
        Style::Single => single_quoted(value),
        Style::Double => double_quoted(value),
        Style::Plain | Style::Block => {
            if plain_is_safe(value) {
                value.to_string()
            } else {
                double_quoted(value)
            }
        }
    }
}

fn single_quoted(value: &str) -> String {
    if value.chars().any(|c| c.is_control()) {
        // Single quotes cannot hold control characters; fall back.
        return double_quoted(value);
    }
    format!("'{}'", value.replace('\'', "''"))
}

fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// True when `value` written plain reads back as the same string under both
/// YAML 1.1 (what many Kubernetes tools still use) and YAML 1.2 resolution.
pub fn plain_is_safe(value: &str) -> bool {
    if value.is_empty() || value.trim() != value {
        return false;
    }
    let first = value.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if value.contains(": ") || value.contains(" #") || value.ends_with(':') {
        return false;
    }
    if value
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{feff}' | '\u{85}'))
    {
        return false;
    }
    !resolves_to_non_string(value)
}

/// Would a plain scalar with this text be read as null, bool, number or
/// timestamp by a YAML 1.1 or 1.2 reader?
fn resolves_to_non_string(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    // null, booleans (YAML 1.1 includes yes/no/on/off/y/n), merge and value keys.
    if matches!(
        lower.as_str(),
        "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "<<" | "="
    ) {
        return true;
    }
    // .inf, .nan and signed infinities.
    if matches!(lower.as_str(), ".inf" | "-.inf" | "+.inf" | ".nan") {
        return true;
    }
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() {
        return false;
    }
    // Integers: decimal (with YAML 1.1 `_` separators), 0x, 0o, 0b, and
    // sexagesimal `1:20` (YAML 1.1).
    let is_digits =
        |s: &str, ok: fn(char) -> bool| !s.is_empty() && s.chars().all(|c| ok(c) || c == '_');
    if is_digits(digits, |c| c.is_ascii_digit()) {
        return true;
    }
    for (prefix, ok) in [
        ("0x", (|c: char| c.is_ascii_hexdigit()) as fn(char) -> bool),
        ("0o", |c: char| c.is_digit(8)),
        ("0b", |c: char| c == '0' || c == '1'),
    ] {
        if let Some(rest) = digits.strip_prefix(prefix) {
            if is_digits(rest, ok) {
                return true;
            }
        }
    }
    if digits.contains(':')
        && digits.split(':').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == '_')
        })
    {
        return true;
    }
    // Floats: 1.20, .5, 3.2e2, 1e3, 1_000.5
    if looks_like_float(digits) {
        return true;
    }
    // Timestamps: 2024-06-27, 2024-06-27T10:00:00Z, 2024-6-7 10:00:00.
    looks_like_timestamp(v)
}

fn looks_like_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = {
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let int_ok = int.chars().all(|c| c.is_ascii_digit() || c == '_');
        let frac_ok = frac.chars().all(|c| c.is_ascii_digit() || c == '_');
        int_ok
            && frac_ok
            && (int.chars().any(|c| c.is_ascii_digit()) || frac.chars().any(|c| c.is_ascii_digit()))
            && (mantissa.contains('.') || exponent.is_some())
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        }
    };
    mantissa_ok && exponent_ok
}

fn looks_like_timestamp(v: &str) -> bool {
    let date_end = v.find(['T', 't', ' ']).unwrap_or(v.len());
    let date: Vec<&str> = v[..date_end].split('-').collect();
    if date.len() != 3
        || date[0].len() != 4
        || !(1..=2).contains(&date[1].len())
        || !(1..=2).contains(&date[2].len())
        || !date.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    // A date alone, or a date followed by a time: both resolve.
    date_end == v.len() || v[date_end + 1..].starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_would_not_read_back_as_strings_are_quoted() {
        for v in [
            "1.20",
            "16",
            "3.2e2",
            "2024-06-27",
            "true",
            "yes",
            "on",
            "null",
            "~",
            "0755",
            "0x1F",
            "a: b",
            "a #b",
            "-x",
            "*x",
            "&x",
            "@x",
            "!x",
            "",
            " x",
            ".inf",
            "1:20",
            "1_000",
            "Off",
            "2024-06-27T10:00:00Z",
            "1e3",
            ".5",
        ] {
            assert!(!plain_is_safe(v), "{v:?} must be quoted");
            let rendered = render(v, Style::Plain);
            assert!(rendered.starts_with('"'), "{v:?} -> {rendered}");
        }
    }

    #[test]
    fn ordinary_tags_stay_plain() {
        for v in [
            "1.2.3",
            "v1.2.3",
            "latest",
            "1.25-alpine",
            "main-3f2a1bc-1718000000",
            "sha256:abc",
            "stable@sha256:0123",
            "ghcr.io/acme/app:1.2.3",
            "2024.06.27",
            "1.0.0-rc.1",
            "a-b",
        ] {
            assert!(plain_is_safe(v), "{v:?} should stay plain");
            assert_eq!(render(v, Style::Plain), v);
        }
    }

    #[test]
    fn quoted_styles_are_kept_and_escaped() {
        assert_eq!(render("1234", Style::Double), "\"1234\"");
        assert_eq!(render("it's", Style::Single), "'it''s'");
        assert_eq!(render("a\"b\\c", Style::Double), "\"a\\\"b\\\\c\"");
        assert_eq!(render("1.2.3", Style::Single), "'1.2.3'");
    }
}
