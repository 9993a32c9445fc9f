//! A policy-file error a user can act on: where (file:line:column and the
//! field path), what is wrong and what was expected, and a hint when there is
//! an obvious fix such as the nearest valid field name for a typo.

use std::fmt;
use std::path::PathBuf;

use super::positions::Position;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub position: Position,
    /// Field path such as `images[2].filter.pattern`; empty for the whole file.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: ",
            self.file.display(),
            self.position.line,
            self.position.column
        )?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n    hint: {hint}")?;
        }
        Ok(())
    }
}

/// The candidate closest to a mistyped `word`, if any is plausibly meant:
/// same letters in another case, or an edit distance small for its length.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate.to_lowercase() == lower {
            return Some(candidate);
        }
        let distance = strsim::damerau_levenshtein(&lower, &candidate.to_lowercase());
        let allowed = (candidate.chars().count() / 3).clamp(1, 3);
        if distance <= allowed && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields = ["semver", "filter", "order", "allowDowngrade"];
        assert_eq!(nearest("semvr", fields), Some("semver"));
        assert_eq!(nearest("fitler", fields), Some("filter"));
        assert_eq!(nearest("allowdowngrade", fields), Some("allowDowngrade"));
        assert_eq!(nearest("banana", fields), None);
    }

    #[test]
    fn renders_location_path_message_and_hint() {
        let d = Diagnostic {
            file: "p.yaml".into(),
            position: Position { line: 3, column: 5 },
            path: "images[0].semvr".into(),
            message: "unknown field `semvr`".into(),
            hint: Some("did you mean `semver`?".into()),
        };
        assert_eq!(
            d.to_string(),
            "p.yaml:3:5: images[0].semvr: unknown field `semvr`\n    hint: did you mean `semver`?"
        );
    }
}
