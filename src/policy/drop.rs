//! Why a tag did not qualify, one variant per rule, and the one-line
//! summary of a selection where nothing did.

use std::fmt;

/// Why a tag did not qualify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drop {
    /// Matched an `exclude` pattern (or a default one).
    Excluded { pattern: String },
    /// Did not match the `filter.pattern`.
    NoFilterMatch,
    /// Not strict semver, even after removing one leading `v`.
    NotSemver,
    /// A pre-release, and the range names none.
    PreRelease,
    /// Semver, but outside the range.
    OutOfRange,
    /// The ordering value is not a number.
    NotANumber,
    /// `variant: keep`: the suffix differs from the current tag's.
    OtherVariant { expected: String },
    /// No-downgrade: orders below the value currently in Git.
    BelowCurrent { current: String },
    /// `newest-build`: the registry gave no build time.
    NoBuildTime,
    /// `digest`: not the tag being followed.
    NotTrackedTag,
    /// `digest`: the registry gave no digest for the tracked tag.
    NoDigest,
    /// The tag list named this tag twice.
    Duplicate,
    /// At or below a version declined for this update (a closed pull request).
    Declined { version: String },
}

impl Drop {
    pub(super) const KINDS: usize = 13;

    pub(super) fn index(&self) -> usize {
        match self {
            Drop::Excluded { .. } => 0,
            Drop::NoFilterMatch => 1,
            Drop::NotSemver => 2,
            Drop::PreRelease => 3,
            Drop::OutOfRange => 4,
            Drop::NotANumber => 5,
            Drop::OtherVariant { .. } => 6,
            Drop::BelowCurrent { .. } => 7,
            Drop::NoBuildTime => 8,
            Drop::NotTrackedTag => 9,
            Drop::NoDigest => 10,
            Drop::Duplicate => 11,
            Drop::Declined { .. } => 12,
        }
    }

    pub(super) fn summary(index: usize) -> &'static str {
        [
            "excluded",
            "not matching the filter",
            "not semver",
            "pre-release",
            "out of range",
            "not a number",
            "another variant",
            "below the current value",
            "without a build time",
            "not the tracked tag",
            "without a digest",
            "duplicate",
            "at or below a declined version",
        ][index]
    }
}

impl fmt::Display for Drop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drop::Excluded { pattern } => write!(f, "excluded by `{pattern}`"),
            Drop::NoFilterMatch => f.write_str("does not match the filter pattern"),
            Drop::NotSemver => f.write_str("not semver"),
            Drop::PreRelease => f.write_str("pre-release; the range names none"),
            Drop::OutOfRange => f.write_str("out of range"),
            Drop::NotANumber => f.write_str("not a number"),
            Drop::OtherVariant { expected } if expected.is_empty() => {
                f.write_str("has a variant suffix; the current tag has none")
            }
            Drop::OtherVariant { expected } => write!(f, "variant differs from `{expected}`"),
            Drop::BelowCurrent { current } => {
                write!(f, "orders below the current `{current}` (no downgrade)")
            }
            Drop::NoBuildTime => f.write_str("no build time known"),
            Drop::NotTrackedTag => f.write_str("not the tracked tag"),
            Drop::NoDigest => f.write_str("digest unknown (needs registry metadata)"),
            Drop::Duplicate => f.write_str("listed twice"),
            Drop::Declined { version } => {
                write!(
                    f,
                    "at or below `{version}`, declined in a closed pull request"
                )
            }
        }
    }
}

pub(super) fn summarise(
    total: usize,
    counts: &[usize; Drop::KINDS],
    allow_downgrade: bool,
) -> String {
    if total == 0 {
        return "the repository has no tags".to_string();
    }
    let parts: Vec<String> = counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| format!("{n} {}", Drop::summary(i)))
        .collect();
    let mut reason = format!("no tag qualifies out of {total}: {}", parts.join(", "));
    let below_current = Drop::BelowCurrent {
        current: String::new(),
    };
    if counts[below_current.index()] > 0 && !allow_downgrade {
        reason.push_str("; set allowDowngrade: true to allow moving below the current value");
    }
    reason
}
