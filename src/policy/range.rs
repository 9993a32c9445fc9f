//! Semver ranges in the syntax of Masterminds semver v3.
//!
//! Flux's `ImagePolicy` and Argo CD Image Updater both evaluate ranges with the
//! Go library `github.com/Masterminds/semver/v3`. Users migrate by pasting their
//! ranges, so this module reproduces that library's grammar *and* its
//! matching rules, quirks included, rather than the Cargo rules of the `semver`
//! crate (whose `^`, `~` and pre-release handling differ). The `semver` crate is
//! still used for the versions themselves.
//!
//! Grammar, per `||`-separated alternative:
//! - comparators separated by whitespace or a comma (both mean AND);
//! - an operator out of `= != > < >= => <= =< ~ ~> ^`, or none (meaning `=`);
//! - a version of one to three components, each a number or a wildcard `x`,
//!   `X` or `*`, with an optional `-pre.release` and `+build`, and an optional
//!   leading `v`;
//! - hyphen ranges `A - B` (spaces required), meaning `>= A, <= B`.
//!
//! Pre-releases: a version with a pre-release satisfies a comparator only when
//! that comparator's own version carries a pre-release. This is checked per
//! comparator, as Masterminds does, so `>=1.0.0-0 <2.0.0` still rejects
//! `1.5.0-rc.1` (write `<2.0.0-0` to admit it).

use std::cmp::Ordering;
use std::fmt;

use semver::{Prerelease, Version};

/// A parsed range: a disjunction (`||`) of conjunctions of comparators.
#[derive(Clone, Debug)]
pub struct Range {
    alternatives: Vec<Vec<Comparator>>,
    mentions_prerelease: bool,
}

/// Why a range string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{range}` is not a valid semver range: {detail}")]
pub struct RangeError {
    pub range: String,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    /// No operator or `=`: equality, or a tilde match when the version has wildcards.
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
    Tilde,
    Caret,
}

#[derive(Clone, Debug)]
struct Comparator {
    operator: Operator,
    version: Version,
    /// Any component was a wildcard or missing (`1.2`, `1.x`, `*`).
    dirty: bool,
    /// The minor component was a wildcard or missing (`1`, `1.x`).
    minor_dirty: bool,
    /// The patch component was a wildcard or missing (`1.2`, `1.2.x`).
    patch_dirty: bool,
}

impl Range {
    /// Parses a range, reporting the first offending part.
    pub fn parse(input: &str) -> Result<Range, RangeError> {
        let fail = |detail: String| RangeError {
            range: input.to_string(),
            detail,
        };
        if input.trim().is_empty() {
            return Err(fail("the range is empty".into()));
        }
        let mut alternatives = Vec::new();
        for alternative in input.split("||") {
            let comparators = parse_alternative(alternative).map_err(fail)?;
            alternatives.push(comparators);
        }
        let mentions_prerelease = alternatives
            .iter()
            .flatten()
            .any(|c| !c.version.pre.is_empty());
        Ok(Range {
            alternatives,
            mentions_prerelease,
        })
    }

    /// True when `version` satisfies at least one alternative.
    pub fn matches(&self, version: &Version) -> bool {
        self.alternatives
            .iter()
            .any(|all| all.iter().all(|c| c.matches(version)))
    }

    /// True when any comparator carries a pre-release, which is what lets
    /// pre-release versions qualify at all.
    pub fn mentions_prerelease(&self) -> bool {
        self.mentions_prerelease
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, all) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" || ")?;
            }
            for (j, c) in all.iter().enumerate() {
                if j > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{:?} {}", c.operator, c.version)?;
            }
        }
        Ok(())
    }
}

/// A cursor over one `||` alternative.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }
    fn skip_spaces(&mut self) -> usize {
        let before = self.pos;
        while self.rest().starts_with(|c: char| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
        self.pos - before
    }
    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.pos += prefix.len();
            true
        } else {
            false
        }
    }
    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }
}

fn parse_alternative(text: &str) -> Result<Vec<Comparator>, String> {
    let mut scan = Scanner { text, pos: 0 };
    let mut comparators = Vec::new();
    scan.skip_spaces();
    if scan.at_end() {
        return Err("an alternative between `||` is empty".into());
    }
    loop {
        let operator = parse_operator(&mut scan);
        scan.skip_spaces();
        let first = parse_partial(&mut scan)?;
        // A hyphen range: `A - B`, with whitespace on both sides of the hyphen.
        let save = scan.pos;
        let spaces = scan.skip_spaces();
        if spaces > 0 && scan.eat("-") && scan.skip_spaces() > 0 {
            if operator.is_some() {
                return Err(format!(
                    "a hyphen range cannot follow an operator (near `{}`)",
                    &text[save..]
                ));
            }
            let second = parse_partial(&mut scan)?;
            comparators.push(first.into_comparator(Operator::GreaterOrEqual));
            comparators.push(second.into_comparator(Operator::LessOrEqual));
        } else {
            scan.pos = save;
            comparators.push(first.into_comparator(operator.unwrap_or(Operator::TildeOrEqual)));
        }
        // Separator: whitespace, or a comma with optional whitespace around it.
        let spaces = scan.skip_spaces();
        if scan.at_end() {
            break;
        }
        let comma = scan.eat(",");
        if comma {
            scan.skip_spaces();
            if scan.at_end() {
                return Err("the range ends with a comma".into());
            }
        } else if spaces == 0 {
            return Err(format!("unexpected text `{}`", scan.rest()));
        }
    }
    Ok(comparators)
}

fn parse_operator(scan: &mut Scanner<'_>) -> Option<Operator> {
    // Longest operators first so `>=` is not read as `>`.
    const OPERATORS: [(&str, Operator); 11] = [
        ("!=", Operator::NotEqual),
        (">=", Operator::GreaterOrEqual),
        ("=>", Operator::GreaterOrEqual),
        ("<=", Operator::LessOrEqual),
        ("=<", Operator::LessOrEqual),
        ("~>", Operator::Tilde),
        (">", Operator::Greater),
        ("<", Operator::Less),
        ("~", Operator::Tilde),
        ("^", Operator::Caret),
        ("=", Operator::TildeOrEqual),
    ];
    OPERATORS
        .iter()
        .find(|(token, _)| scan.eat(token))
        .map(|(_, op)| *op)
}

/// A version as written in a range: components may be missing or wildcards.
struct PartialVersion {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: Prerelease,
}

impl PartialVersion {
    fn into_comparator(self, operator: Operator) -> Comparator {
        // Mirrors Masterminds: the first wildcard or missing component zeroes
        // itself and everything after it, and marks the comparator dirty.
        let (major, minor, patch, dirty, minor_dirty, patch_dirty) =
            match (self.major, self.minor, self.patch) {
                (None, _, _) => (0, 0, 0, true, false, false),
                (Some(m), None, _) => (m, 0, 0, true, true, false),
                (Some(m), Some(n), None) => (m, n, 0, true, false, true),
                (Some(m), Some(n), Some(p)) => (m, n, p, false, false, false),
            };
        let mut version = Version::new(major, minor, patch);
        version.pre = self.pre;
        Comparator {
            operator,
            version,
            dirty,
            minor_dirty,
            patch_dirty,
        }
    }
}

fn parse_partial(scan: &mut Scanner<'_>) -> Result<PartialVersion, String> {
    let start = scan.pos;
    scan.eat("v");
    let token_end = scan
        .rest()
        .find(|c: char| c.is_ascii_whitespace() || c == ',')
        .map_or(scan.text.len(), |i| scan.pos + i);
    let token = &scan.text[scan.pos..token_end];
    if token.is_empty() {
        return Err(format!(
            "expected a version after `{}`",
            &scan.text[..start].trim()
        ));
    }
    let (core_and_pre, _build) = token.split_once('+').unwrap_or((token, ""));
    let (core, pre) = match core_and_pre.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (core_and_pre, None),
    };
    let mut parts = core.split('.');
    let mut next = |name: &str| -> Result<Option<Option<u64>>, String> {
        match parts.next() {
            None => Ok(None),
            Some("x" | "X" | "*") => Ok(Some(None)),
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u64>()
                .map(|n| Some(Some(n)))
                .map_err(|_| format!("the {name} number in `{token}` is too large")),
            Some(p) => Err(format!(
                "`{token}` is not a version: the {name} part `{p}` must be a number or x, X, *"
            )),
        }
    };
    let major = next("major")?.ok_or_else(|| format!("`{token}` is not a version"))?;
    let minor = next("minor")?.flatten();
    let patch = next("patch")?.flatten();
    if parts.next().is_some() {
        return Err(format!("`{token}` has more than three version components"));
    }
    // Components after a wildcard do not matter; Masterminds ignores them too.
    let pre = match pre {
        None => Prerelease::EMPTY,
        Some("") => return Err(format!("`{token}` has an empty pre-release after `-`")),
        Some(p) => Prerelease::new(p)
            .map_err(|e| format!("`{token}` has an invalid pre-release `{p}`: {e}"))?,
    };
    scan.pos = token_end;
    Ok(PartialVersion {
        major,
        minor,
        patch,
        pre,
    })
}

impl Comparator {
    fn matches(&self, v: &Version) -> bool {
        // A pre-release only satisfies comparators that name a pre-release.
        // Masterminds skips this for a plain `!=`; we apply it to every
        // comparator so that the rule "pre-releases only when the range names
        // one" holds without exception.
        if !v.pre.is_empty() && self.version.pre.is_empty() {
            return false;
        }
        let c = &self.version;
        match self.operator {
            Operator::TildeOrEqual => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v.cmp_precedence(c) == Ordering::Equal
                }
            }
            Operator::NotEqual => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if self.minor_dirty {
                        return false;
                    }
                    if c.minor != v.minor {
                        return true;
                    }
                    if self.patch_dirty {
                        return (!v.pre.is_empty() || !c.pre.is_empty()) && v.pre != c.pre;
                    }
                    // Only a wildcard major reaches here (`!=*`): compare in full.
                    return v.cmp_precedence(c) != Ordering::Equal;
                }
                v.cmp_precedence(c) != Ordering::Equal
            }
            Operator::Greater => {
                if !self.dirty {
                    return v.cmp_precedence(c) == Ordering::Greater;
                }
                match v.major.cmp(&c.major) {
                    Ordering::Greater => true,
                    Ordering::Less => false,
                    Ordering::Equal if self.minor_dirty => false,
                    Ordering::Equal if self.patch_dirty => v.minor > c.minor,
                    Ordering::Equal => v.cmp_precedence(c) == Ordering::Greater,
                }
            }
            Operator::Less => v.cmp_precedence(c) == Ordering::Less,
            Operator::GreaterOrEqual => v.cmp_precedence(c) != Ordering::Less,
            Operator::LessOrEqual => {
                if !self.dirty {
                    return v.cmp_precedence(c) != Ordering::Greater;
                }
                if v.major > c.major {
                    return false;
                }
                !(v.major == c.major && v.minor > c.minor && !self.minor_dirty)
            }
            Operator::Tilde => self.tilde(v),
            Operator::Caret => self.caret(v),
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.cmp_precedence(c) == Ordering::Less {
            return false;
        }
        // `~0`, `~*` and friends accept everything at or above 0.0.0.
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        self.minor_dirty || v.minor == c.minor
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.cmp_precedence(c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        v.patch == c.patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn check(range: &str, version: &str) -> bool {
        Range::parse(range)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches(&v(version))
    }

    #[test]
    fn accepts_the_ranges_flux_documents() {
        for r in [
            "1.0.x", "^1.0", "=1.0.0", "~1.0", ">=1.0", ">0,<2.0", "*", "x", "v1.2.3",
        ] {
            assert!(Range::parse(r).is_ok(), "{r} should parse");
        }
    }

    #[test]
    fn rejects_what_flux_rejects() {
        for r in [
            "1.0.0p", "1x", "x1", "-1", "a", "", "  ", "1.0 ||", ">=", "1.2.3.4", "1.0,",
        ] {
            assert!(Range::parse(r).is_err(), "{r:?} should be refused");
        }
    }

    #[test]
    fn and_by_comma_or_space_or_both() {
        for r in [
            ">=1.2.0 <2.0.0",
            ">=1.2.0,<2.0.0",
            ">= 1.2.0, < 2.0.0",
            ">=1.2.0 , <2.0.0",
        ] {
            assert!(check(r, "1.5.0"), "{r}");
            assert!(!check(r, "2.0.0"), "{r}");
            assert!(!check(r, "1.1.9"), "{r}");
        }
    }

    #[test]
    fn or_alternatives() {
        let r = "~1.2 || >=3.0.0";
        assert!(check(r, "1.2.9"));
        assert!(!check(r, "1.3.0"));
        assert!(check(r, "3.1.0"));
    }

    #[test]
    fn wildcards_in_each_position() {
        assert!(check("1.2.x", "1.2.7"));
        assert!(!check("1.2.x", "1.3.0"));
        assert!(check("1.X", "1.9.0"));
        assert!(!check("1.X", "2.0.0"));
        assert!(check("1.*", "1.0.1"));
        assert!(check("*", "0.0.1"));
        assert!(check("x", "99.0.0"));
        assert!(!check("*", "1.0.0-rc.1"));
    }

    #[test]
    fn tilde_forms() {
        assert!(check("~1.2.3", "1.2.9"));
        assert!(!check("~1.2.3", "1.3.0"));
        assert!(!check("~1.2.3", "1.2.2"));
        assert!(check("~1", "1.9.9"));
        assert!(!check("~1", "2.0.0"));
        assert!(check("~>1.2", "1.2.0"));
        assert!(check("~0", "0.5.0"));
        assert!(check("~0.0.0", "3.0.0"));
    }

    #[test]
    fn caret_forms() {
        assert!(check("^1.2.3", "1.9.0"));
        assert!(!check("^1.2.3", "2.0.0"));
        assert!(!check("^1.2.3", "1.2.2"));
        assert!(check("^0.2.3", "0.2.9"));
        assert!(!check("^0.2.3", "0.3.0"));
        assert!(check("^0.0.3", "0.0.3"));
        assert!(!check("^0.0.3", "0.0.4"));
        assert!(check("^0.0", "0.0.9"));
        assert!(!check("^0.0", "0.1.0"));
        assert!(check("^0", "0.9.0"));
        assert!(!check("^0", "1.0.0"));
        assert!(check("^1.x", "1.4.0"));
    }

    #[test]
    fn comparison_operators() {
        assert!(check(">1.2.3", "1.2.4"));
        assert!(!check(">1.2.3", "1.2.3"));
        assert!(check("<1.2.3", "1.2.2"));
        assert!(check("=>1.2.3", "1.2.3"));
        assert!(check("=<1.2.3", "1.2.3"));
        assert!(!check("<=1.2.3", "1.2.4"));
        assert!(check("!=1.2.3", "1.2.4"));
        assert!(!check("!=1.2.3", "1.2.3"));
        assert!(check("=1.2.3", "1.2.3"));
    }

    #[test]
    fn dirty_greater_and_less_follow_masterminds() {
        // `>1` needs major 2 or more; `>1.1` needs minor 2 or more.
        assert!(!check(">1", "1.5.0"));
        assert!(check(">1", "2.0.0"));
        assert!(!check(">1.1", "1.1.9"));
        assert!(check(">1.1", "1.2.0"));
        // `<=1.2` admits every 1.2.z.
        assert!(check("<=1.2", "1.2.99"));
        assert!(!check("<=1.2", "1.3.0"));
        assert!(!check("!=1.x", "1.4.0"));
        assert!(check("!=1.x", "2.0.0"));
        assert!(!check("!=1.2.x", "1.2.5"));
        assert!(check("!=1.2.x", "1.3.0"));
    }

    #[test]
    fn bare_version_is_exact() {
        assert!(check("1.2.3", "1.2.3"));
        assert!(!check("1.2.3", "1.2.4"));
        // Build metadata does not take part in precedence.
        assert!(check("1.2.3", "1.2.3+build.7"));
    }

    #[test]
    fn hyphen_range_is_inclusive_and_partial_upper_bound_covers_patches() {
        assert!(check("1.2 - 1.4", "1.2.0"));
        assert!(check("1.2 - 1.4", "1.4.9"));
        assert!(!check("1.2 - 1.4", "1.5.0"));
        assert!(!check("1.2 - 1.4", "1.1.9"));
        assert!(check("1.2.3 - 2.3.4", "2.3.4"));
        assert!(!check("1.2.3 - 2.3.4", "2.3.5"));
        assert!(Range::parse(">=1.2 - 1.4").is_err());
    }

    #[test]
    fn prereleases_need_a_prerelease_in_the_comparator() {
        assert!(!check(">=1.0.0", "1.1.0-rc.1"));
        assert!(check(">=1.0.0-0", "1.1.0-rc.1"));
        assert!(check("^2.x-0", "2.3.0-beta.2"));
        assert!(!check("^2.x-0", "3.0.0-beta.2"));
        // Per comparator, as in Masterminds: the upper bound without a
        // pre-release still rejects pre-releases.
        assert!(!check(">=1.0.0-0 <2.0.0", "1.5.0-rc.1"));
        assert!(check(">=1.0.0-0 <2.0.0-0", "1.5.0-rc.1"));
        assert!(Range::parse(">=1.0.0-0").unwrap().mentions_prerelease());
        assert!(!Range::parse(">=1.0.0").unwrap().mentions_prerelease());
    }

    #[test]
    fn leading_v_in_the_range_is_allowed() {
        assert!(check(">=v1.2.0", "1.3.0"));
    }

    #[test]
    fn error_names_the_range_and_the_problem() {
        let e = Range::parse(">=1.2.0 <two").unwrap_err();
        assert_eq!(e.range, ">=1.2.0 <two");
        assert!(e.to_string().contains("two"), "{e}");
    }
}
