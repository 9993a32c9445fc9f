//! Tag selection: which tag of a repository an image policy picks.
//!
//! Everything here is a pure function of the policy, the tag list, optional
//! per-tag registry metadata and the value currently in Git. No network, no
//! files: the registry module supplies tags and metadata, the manifest module
//! supplies the current value. That keeps every rule testable with tables.
//!
//! The pipeline per tag is: exclude → variant → filter (+ extract) → parse for
//! the ordering → range / no-downgrade → order → pick.

mod drop;
mod extract;
#[cfg(test)]
mod parity_tests;
pub mod range;
mod select;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

use regex::Regex;

pub use drop::Drop;
pub use extract::{ExtractTemplate, TemplateError};
pub use range::{Range, RangeError};
pub use select::{Candidate, Context, Outcome, Pick, Selection, TagMetadata};

/// Tags that are never images to deploy: cosign signatures, attestations and
/// SBOMs stored as `sha256-<digest>.sig|att|sbom`, any other `.sig` tag, and
/// the OCI referrers tag schema's `sha256-<digest>` index (written where a
/// registry has no referrers API, as CNCF distribution has none).
pub const DEFAULT_EXCLUDES: [&str; 3] = [
    r"^sha256-[0-9a-f]+\.(sig|att|sbom)$",
    r"\.sig$",
    r"^sha256-[0-9a-f]{64}$",
];

/// What a policy orders candidates by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderKind {
    Semver,
    Numerical,
    Alphabetical,
    NewestBuild,
}

impl OrderKind {
    pub const ALL: [OrderKind; 4] = [
        OrderKind::Semver,
        OrderKind::Numerical,
        OrderKind::Alphabetical,
        OrderKind::NewestBuild,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Semver => "semver",
            OrderKind::Numerical => "numerical",
            OrderKind::Alphabetical => "alphabetical",
            OrderKind::NewestBuild => "newest-build",
        }
    }
}

/// `Ascending` picks the greatest value (the default, as in Flux);
/// `Descending` picks the least.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    #[default]
    Ascending,
    Descending,
}

/// An ordering with its direction, written `kind` or `kind:asc|desc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Order {
    pub kind: OrderKind,
    pub direction: Direction,
}

impl Order {
    pub const DEFAULT: Order = Order {
        kind: OrderKind::Semver,
        direction: Direction::Ascending,
    };

    /// Every accepted spelling, for error messages and the JSON schema.
    pub fn spellings() -> Vec<String> {
        let mut all = Vec::new();
        for kind in OrderKind::ALL {
            all.push(kind.as_str().to_string());
            all.push(format!("{}:asc", kind.as_str()));
            all.push(format!("{}:desc", kind.as_str()));
        }
        all
    }
}

impl std::str::FromStr for Order {
    type Err = String;

    fn from_str(text: &str) -> Result<Order, String> {
        let (kind, direction) = text.split_once(':').unwrap_or((text, "asc"));
        let kind = OrderKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| {
                format!("unknown order `{kind}`; expected semver, numerical, alphabetical or newest-build")
            })?;
        let direction = match direction {
            "asc" => Direction::Ascending,
            "desc" => Direction::Descending,
            other => return Err(format!("unknown direction `{other}`; expected asc or desc")),
        };
        Ok(Order { kind, direction })
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.direction {
            Direction::Ascending => f.write_str(self.kind.as_str()),
            Direction::Descending => write!(f, "{}:desc", self.kind.as_str()),
        }
    }
}

/// The declarative settings of one image policy, as strings, before checking.
/// The config file and the `tags` command flags both produce one of these.
#[derive(Clone, Debug, Default)]
pub struct PolicySpec {
    pub semver: Option<String>,
    pub pattern: Option<String>,
    pub extract: Option<String>,
    pub order: Option<Order>,
    pub digest: Option<String>,
    pub exclude: Vec<String>,
    pub exclude_defaults: bool,
    pub variant_keep: bool,
    pub allow_downgrade: bool,
}

/// A setting of a [`PolicySpec`] that cannot be compiled. `field` names the
/// setting as it is spelled in a policy file, so callers can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

impl PolicyError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// How candidates are ranked, compiled.
#[derive(Clone, Debug)]
pub(crate) enum Strategy {
    /// Semver ordering, optionally limited to a range.
    Semver {
        range: Option<Range>,
        direction: Direction,
    },
    Numerical(Direction),
    Alphabetical(Direction),
    /// Ordered by the image's build time, which comes from registry metadata.
    NewestBuild(Direction),
    /// Follow the digest of one mutable tag.
    Digest {
        tag: String,
    },
}

/// A compiled image policy, ready to select.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Shared with every policy that has the same exclude list.
    pub(crate) excludes: Arc<[Arc<Regex>]>,
    pub(crate) filter: Option<Arc<Regex>>,
    pub(crate) extract: Option<ExtractTemplate>,
    pub(crate) strategy: Strategy,
    pub(crate) variant_keep: bool,
    pub(crate) allow_downgrade: bool,
}

impl Policy {
    /// Compiles a spec, collecting every problem rather than the first.
    pub fn compile(spec: &PolicySpec) -> Result<Policy, Vec<PolicyError>> {
        let mut errors = Vec::new();
        let mut excludes = Vec::new();
        if spec.exclude_defaults {
            for pattern in DEFAULT_EXCLUDES {
                // The defaults are constants that are tested to compile.
                if let Ok(re) = shared_regex(pattern) {
                    excludes.push(re);
                }
            }
        }
        for (i, pattern) in spec.exclude.iter().enumerate() {
            match shared_regex(pattern) {
                Ok(re) => excludes.push(re),
                Err(e) => errors.push(PolicyError::new(
                    format!("exclude[{i}]"),
                    format!("invalid regex `{pattern}`: {}", one_line(&e.to_string())),
                )),
            }
        }
        let filter = match &spec.pattern {
            None => None,
            Some(pattern) => match shared_regex(pattern) {
                Ok(re) => Some(re),
                Err(e) => {
                    errors.push(PolicyError::new(
                        "filter.pattern",
                        format!("invalid regex `{pattern}`: {}", one_line(&e.to_string())),
                    ));
                    None
                }
            },
        };
        let extract = match (&spec.extract, &filter, &spec.pattern) {
            (None, _, _) => None,
            (Some(_), _, None) => {
                errors.push(PolicyError::new(
                    "filter.extract",
                    "`extract` needs a `pattern` whose capture groups it names",
                ));
                None
            }
            (Some(_), None, Some(_)) => None,
            (Some(template), Some(re), Some(_)) => match ExtractTemplate::parse(template, re) {
                Ok(t) => Some(t),
                Err(e) => {
                    errors.push(PolicyError::new("filter.extract", e.to_string()));
                    None
                }
            },
        };

        // Exactly one ordering source: a semver range (or `order: semver`),
        // another `order`, or `digest`.
        let mut sources = Vec::new();
        if spec.semver.is_some() {
            sources.push("semver");
        }
        if let Some(order) = spec.order {
            if !(order.kind == OrderKind::Semver && spec.semver.is_some()) {
                sources.push("order");
            }
        }
        if spec.digest.is_some() {
            sources.push("digest");
        }
        if sources.len() > 1 {
            errors.push(PolicyError::new(
                sources[1],
                format!(
                    "a policy takes exactly one ordering source, but this one sets {}; keep one",
                    sources.join(" and ")
                ),
            ));
        }

        let range = match &spec.semver {
            None => None,
            Some(text) => match Range::parse(text) {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.push(PolicyError::new("semver", e.to_string()));
                    None
                }
            },
        };
        let order = spec.order.unwrap_or(Order::DEFAULT);
        let strategy = if let Some(tag) = &spec.digest {
            if tag.is_empty() {
                errors.push(PolicyError::new(
                    "digest",
                    "`digest` names the mutable tag to follow, e.g. `latest`; it is empty",
                ));
            }
            Strategy::Digest { tag: tag.clone() }
        } else {
            match order.kind {
                OrderKind::Semver => Strategy::Semver {
                    range,
                    direction: order.direction,
                },
                OrderKind::Numerical => Strategy::Numerical(order.direction),
                OrderKind::Alphabetical => Strategy::Alphabetical(order.direction),
                OrderKind::NewestBuild => Strategy::NewestBuild(order.direction),
            }
        };
        if spec.variant_keep && !matches!(strategy, Strategy::Semver { .. }) {
            errors.push(PolicyError::new(
                "variant",
                "`variant: keep` compares version-like tags and needs semver ordering",
            ));
        }
        if spec.variant_keep && spec.pattern.is_some() {
            errors.push(PolicyError::new(
                "variant",
                "`variant: keep` works on whole tags and cannot be combined with `filter`",
            ));
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Policy {
            excludes: shared_excludes(excludes),
            filter,
            extract,
            strategy,
            variant_keep: spec.variant_keep,
            allow_downgrade: spec.allow_downgrade,
        })
    }

    /// True when selection needs each candidate's digest from the registry.
    pub fn needs_digests(&self) -> bool {
        matches!(self.strategy, Strategy::Digest { .. })
    }

    /// True when selection needs each candidate's build time from the registry.
    pub fn needs_build_times(&self) -> bool {
        matches!(self.strategy, Strategy::NewestBuild(_))
    }
}

/// A compiled regex for `pattern`, shared by every policy that uses it.
///
/// A compiled regex and its cache pool take kilobytes; thousands of
/// policies repeating the same patterns (the default excludes above all)
/// would otherwise each hold copies. The cache keeps at most 4,096 patterns.
fn shared_regex(pattern: &str) -> Result<Arc<Regex>, regex::Error> {
    static CACHE: LazyLock<Mutex<HashMap<String, Arc<Regex>>>> = LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(re) = cache.get(pattern) {
        return Ok(re.clone());
    }
    let re = Arc::new(Regex::new(pattern)?);
    if cache.len() < 4096 {
        cache.insert(pattern.to_string(), re.clone());
    }
    Ok(re)
}

/// One shared slice per distinct list of exclude patterns.
fn shared_excludes(list: Vec<Arc<Regex>>) -> Arc<[Arc<Regex>]> {
    type Shared = Arc<[Arc<Regex>]>;
    static CACHE: LazyLock<Mutex<HashMap<Vec<String>, Shared>>> = LazyLock::new(Default::default);
    let key: Vec<String> = list.iter().map(|re| re.as_str().to_string()).collect();
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(shared) = cache.get(&key) {
        return shared.clone();
    }
    let shared: Arc<[Arc<Regex>]> = list.into();
    if cache.len() < 4096 {
        cache.insert(key, shared.clone());
    }
    shared
}

/// Regex errors span several lines with a caret diagram; a policy error is
/// shown on one line, so keep only the final explanation.
fn one_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(message)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_excludes_compile() {
        for p in DEFAULT_EXCLUDES {
            Regex::new(p).unwrap();
        }
    }

    #[test]
    fn order_spellings_round_trip() {
        for s in Order::spellings() {
            let o: Order = s.parse().unwrap();
            let back = o.to_string();
            assert!(
                s == back || s.ends_with(":asc") && s.starts_with(&back),
                "{s} vs {back}"
            );
        }
        assert!("semver:up".parse::<Order>().is_err());
        assert!("latest".parse::<Order>().is_err());
    }

    #[test]
    fn two_ordering_sources_are_refused() {
        let spec = PolicySpec {
            semver: Some("^1".into()),
            order: Some("numerical".parse().unwrap()),
            ..Default::default()
        };
        let errors = Policy::compile(&spec).unwrap_err();
        assert!(
            errors[0].message.contains("exactly one ordering source"),
            "{errors:?}"
        );
        let spec = PolicySpec {
            semver: Some("^1".into()),
            order: Some("semver:desc".parse().unwrap()),
            ..Default::default()
        };
        assert!(Policy::compile(&spec).is_ok());
        let spec = PolicySpec {
            digest: Some("latest".into()),
            order: Some("alphabetical".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(Policy::compile(&spec).unwrap_err()[0].field, "digest");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let spec = PolicySpec {
            semver: Some(">=x1".into()),
            pattern: Some("(".into()),
            exclude: vec!["[".into()],
            ..Default::default()
        };
        let fields: Vec<String> = Policy::compile(&spec)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["exclude[0]", "filter.pattern", "semver"]);
    }
}
