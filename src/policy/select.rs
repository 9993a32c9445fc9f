//! The selection itself: one pass over the tags, keeping only the best so far.
//!
//! A million tags must be ranked in well under half a second, so the normal
//! path allocates nothing per tag for semver and numerical policies and never
//! sorts. `explain` runs the same per-tag code but also records every verdict
//! and sorts the survivors, for the `tags` command and the status page.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;

use semver::Version;

use super::drop::{summarise, Drop};
use super::{Direction, Policy, Strategy};

/// Registry facts about one tag. Filled only for policies that need them
/// (digest tracking, newest-build), because each costs registry requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagMetadata {
    /// The manifest (or index) digest, `sha256:…`.
    pub digest: Option<String>,
    /// When the image was built, from its config blob.
    pub created: Option<jiff::Timestamp>,
}

/// The chosen tag, and its digest when the policy tracks digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pick {
    pub tag: String,
    pub digest: Option<String>,
}

impl fmt::Display for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digest {
            Some(d) => write!(f, "{}@{}", self.tag, d),
            None => f.write_str(&self.tag),
        }
    }
}

/// The result of a selection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Picked(Pick),
    /// No tag qualifies; the reason summarises what dropped them.
    NothingQualifies {
        reason: String,
    },
}

impl Outcome {
    pub fn pick(&self) -> Option<&Pick> {
        match self {
            Outcome::Picked(p) => Some(p),
            Outcome::NothingQualifies { .. } => None,
        }
    }
}

/// What the environment adds to a selection: the value in Git and the
/// versions declined for the update. (`Default` is "nothing known".)
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    /// The value in Git now; turns on no-downgrade and `variant: keep`.
    pub current: Option<&'a str>,
    /// Versions declined for this update (`tag` or `tag@digest`). Nothing
    /// that orders at or below the greatest of them qualifies; for a digest
    /// policy, a declined digest is not picked again.
    pub declined: &'a [String],
}

/// One tag's verdict in an explained selection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub tag: String,
    /// `Ok(rank)` for a qualifying tag, 0 being the pick; `Err` says why not.
    pub verdict: Result<usize, Drop>,
}

/// An explained selection: the outcome plus every tag's verdict, qualifying
/// tags first, best first, then dropped tags in input order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub outcome: Outcome,
    pub candidates: Vec<Candidate>,
}

/// The value a candidate is ordered by.
#[derive(Clone, Debug)]
enum Key {
    Semver {
        version: Version,
        /// Written without a leading `v`; wins ties against the `v` form.
        canonical: bool,
    },
    Number(f64),
    Text(String),
    Time(jiff::Timestamp),
}

impl Key {
    fn cmp_primary(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Semver { version: a, .. }, Key::Semver { version: b, .. }) => a.cmp_precedence(b),
            // NaN never becomes a key, so this is a total order.
            (Key::Number(a), Key::Number(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Key::Text(a), Key::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Key::Time(a), Key::Time(b)) => a.cmp(b),
            // Keys of one selection are always of one kind.
            _ => Ordering::Equal,
        }
    }

    /// Among equal versions: the canonical spelling (`1.0.0` over `v1.0.0`),
    /// then the greater build metadata. Independent of the direction.
    fn cmp_tie(&self, other: &Key) -> Ordering {
        match (self, other) {
            (
                Key::Semver {
                    version: a,
                    canonical: ca,
                },
                Key::Semver {
                    version: b,
                    canonical: cb,
                },
            ) => ca.cmp(cb).then_with(|| a.build.cmp(&b.build)),
            _ => Ordering::Equal,
        }
    }
}

/// Scratch space reused across tags so the hot loop does not allocate.
struct Scratch {
    locations: Option<regex::CaptureLocations>,
    extracted: String,
}

/// The variant (suffix after the version) that candidates must share.
struct VariantRule {
    suffix: String,
}

impl Policy {
    /// Picks a tag. `metadata` is consulted only by digest and newest-build
    /// policies; `current` (the value in Git) turns on no-downgrade and
    /// `variant: keep`.
    pub fn select<S: AsRef<str>>(
        &self,
        tags: &[S],
        metadata: &HashMap<String, TagMetadata>,
        current: Option<&str>,
    ) -> Outcome {
        self.select_with(
            tags,
            metadata,
            &Context {
                current,
                declined: &[],
            },
        )
    }

    /// Picks a tag under everything `context` knows (current value, declines).
    pub fn select_with<S: AsRef<str>>(
        &self,
        tags: &[S],
        metadata: &HashMap<String, TagMetadata>,
        context: &Context<'_>,
    ) -> Outcome {
        self.run(tags, metadata, context, None)
    }

    /// Like [`Policy::select`], and also says what happened to every tag.
    pub fn explain<S: AsRef<str>>(
        &self,
        tags: &[S],
        metadata: &HashMap<String, TagMetadata>,
        current: Option<&str>,
    ) -> Selection {
        self.explain_with(
            tags,
            metadata,
            &Context {
                current,
                declined: &[],
            },
        )
    }

    /// Like [`Policy::select_with`], and also says what happened to every tag.
    pub fn explain_with<S: AsRef<str>>(
        &self,
        tags: &[S],
        metadata: &HashMap<String, TagMetadata>,
        context: &Context<'_>,
    ) -> Selection {
        let mut candidates = Vec::new();
        let outcome = self.run(tags, metadata, context, Some(&mut candidates));
        Selection {
            outcome,
            candidates,
        }
    }

    fn run<S: AsRef<str>>(
        &self,
        tags: &[S],
        metadata: &HashMap<String, TagMetadata>,
        context: &Context<'_>,
        explained: Option<&mut Vec<Candidate>>,
    ) -> Outcome {
        let current = context.current;
        let mut scratch = Scratch {
            locations: self.filter.as_ref().map(|re| re.capture_locations()),
            extracted: String::new(),
        };
        let mut counts = [0usize; Drop::KINDS];

        if let Strategy::Digest { tag } = &self.strategy {
            return self.run_digest(tag, tags, metadata, context.declined, explained);
        }

        let variant = match (self.variant_keep, current) {
            (true, Some(cur)) => split_variant(cur).map(|(_, suffix, _)| VariantRule {
                suffix: suffix.to_string(),
            }),
            _ => None,
        };
        // The floor for no-downgrade: the current value's key, when it has one
        // under this policy. A current value the policy cannot read (say
        // `latest` under semver) sets no floor.
        let floor = match (self.allow_downgrade, current) {
            (false, Some(cur)) => self
                .key_of(cur, metadata, variant.as_ref(), &mut scratch, false)
                .ok()
                .map(|key| (cur, key)),
            _ => None,
        };

        // The decline floor: the greatest declined version this policy can
        // read. Nothing at or below it is proposed again.
        let mut declined: Option<(&str, Key)> = None;
        for version in context.declined {
            let tag = version.split('@').next().unwrap_or(version);
            if let Ok(key) = self.key_of(tag, metadata, variant.as_ref(), &mut scratch, false) {
                if declined
                    .as_ref()
                    .is_none_or(|(_, best)| self.better(&key, best) == Ordering::Greater)
                {
                    declined = Some((version.as_str(), key));
                }
            }
        }

        let mut best: Option<(&str, Key)> = None;
        let mut qualified: Vec<(&str, Key)> = Vec::new();
        let mut dropped: Vec<(&str, Drop)> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();

        for tag in tags {
            let tag = tag.as_ref();
            if explained.is_some() && !seen.insert(tag) {
                dropped.push((tag, Drop::Duplicate));
                continue;
            }
            let verdict = self
                .key_of(tag, metadata, variant.as_ref(), &mut scratch, true)
                .and_then(|key| match &floor {
                    Some((cur, floor_key)) if self.better(floor_key, &key) == Ordering::Greater => {
                        Err(Drop::BelowCurrent {
                            current: cur.to_string(),
                        })
                    }
                    _ => Ok(key),
                })
                .and_then(|key| match &declined {
                    Some((version, floor)) if self.better(&key, floor) != Ordering::Greater => {
                        Err(Drop::Declined {
                            version: version.to_string(),
                        })
                    }
                    _ => Ok(key),
                });
            match verdict {
                Ok(key) => {
                    if explained.is_some() {
                        qualified.push((tag, key));
                    } else if best
                        .as_ref()
                        .is_none_or(|(bt, bk)| self.rank(tag, &key, bt, bk) == Ordering::Greater)
                    {
                        best = Some((tag, key));
                    }
                }
                Err(drop) => {
                    counts[drop.index()] += 1;
                    if explained.is_some() {
                        dropped.push((tag, drop));
                    }
                }
            }
        }

        if let Some(out) = explained {
            qualified.sort_by(|(at, ak), (bt, bk)| self.rank(bt, bk, at, ak));
            best = qualified.first().cloned();
            for (rank, (tag, _)) in qualified.iter().enumerate() {
                out.push(Candidate {
                    tag: tag.to_string(),
                    verdict: Ok(rank),
                });
            }
            for (tag, drop) in dropped {
                out.push(Candidate {
                    tag: tag.to_string(),
                    verdict: Err(drop),
                });
            }
        }

        match best {
            Some((tag, _)) => Outcome::Picked(Pick {
                tag: tag.to_string(),
                digest: None,
            }),
            None => Outcome::NothingQualifies {
                reason: summarise(tags.len(), &counts, self.allow_downgrade),
            },
        }
    }

    fn run_digest<S: AsRef<str>>(
        &self,
        tracked: &str,
        tags: &[S],
        metadata: &HashMap<String, TagMetadata>,
        declined: &[String],
        explained: Option<&mut Vec<Candidate>>,
    ) -> Outcome {
        let present = tags.iter().any(|t| t.as_ref() == tracked);
        let excluded = self.excluded_by(tracked);
        let digest = metadata.get(tracked).and_then(|m| m.digest.clone());
        let declined_digest = digest.as_ref().and_then(|d| {
            declined
                .iter()
                .find(|v| v.rsplit('@').next() == Some(d.as_str()))
        });
        if let Some(out) = explained {
            let mut seen = HashSet::new();
            for tag in tags {
                let tag = tag.as_ref();
                let verdict = if !seen.insert(tag) {
                    Err(Drop::Duplicate)
                } else if tag != tracked {
                    Err(Drop::NotTrackedTag)
                } else if let Some(pattern) = &excluded {
                    Err(Drop::Excluded {
                        pattern: pattern.clone(),
                    })
                } else if digest.is_none() {
                    Err(Drop::NoDigest)
                } else if let Some(version) = declined_digest {
                    Err(Drop::Declined {
                        version: version.clone(),
                    })
                } else {
                    Ok(0)
                };
                out.push(Candidate {
                    tag: tag.to_string(),
                    verdict,
                });
            }
            out.sort_by_key(|c| c.verdict.is_err());
        }
        let reason = if !present {
            format!("the tracked tag `{tracked}` is not in the repository")
        } else if let Some(pattern) = excluded {
            format!("the tracked tag `{tracked}` is excluded by `{pattern}`")
        } else if let Some(version) = declined_digest {
            format!("the digest of `{tracked}` is still {version}, which was declined in a closed pull request")
        } else if let Some(digest) = digest {
            return Outcome::Picked(Pick {
                tag: tracked.to_string(),
                digest: Some(digest),
            });
        } else {
            format!("the digest of `{tracked}` is unknown; it comes from the registry")
        };
        Outcome::NothingQualifies { reason }
    }

    /// The tags whose registry metadata this policy could use: those that
    /// pass the excludes and the filter (for a digest policy, the tracked
    /// tag). Metadata costs requests, so nothing else is asked about.
    pub fn metadata_candidates<'t>(&self, tags: &'t [String]) -> Vec<&'t str> {
        let passes = |tag: &str| {
            self.excluded_by(tag).is_none()
                && self.filter.as_ref().is_none_or(|re| re.is_match(tag))
        };
        match &self.strategy {
            Strategy::Digest { tag: tracked } => tags
                .iter()
                .map(String::as_str)
                .filter(|t| *t == tracked && passes(t))
                .take(1)
                .collect(),
            _ => tags
                .iter()
                .map(String::as_str)
                .filter(|t| passes(t))
                .collect(),
        }
    }

    fn excluded_by(&self, tag: &str) -> Option<String> {
        self.excludes
            .iter()
            .find(|re| re.is_match(tag))
            .map(|re| re.as_str().to_string())
    }

    /// The ordering key of one tag, or why it has none. `check_range` is
    /// false for the current value, which may lie outside today's range.
    fn key_of(
        &self,
        tag: &str,
        metadata: &HashMap<String, TagMetadata>,
        variant: Option<&VariantRule>,
        scratch: &mut Scratch,
        is_candidate: bool,
    ) -> Result<Key, Drop> {
        if is_candidate {
            if let Some(pattern) = self.excluded_by(tag) {
                return Err(Drop::Excluded { pattern });
            }
        }
        let value: &str = match (&self.filter, &mut scratch.locations) {
            (Some(re), Some(locations)) => {
                if re.captures_read(locations, tag).is_none() {
                    return Err(Drop::NoFilterMatch);
                }
                match &self.extract {
                    Some(template) => {
                        template.expand_into(tag, locations, &mut scratch.extracted);
                        &scratch.extracted
                    }
                    None => tag,
                }
            }
            _ => tag,
        };
        match &self.strategy {
            Strategy::Semver { range, .. } => {
                let (version, canonical) = match variant {
                    Some(rule) => {
                        let (version, suffix, canonical) =
                            split_variant(value).ok_or(Drop::NotSemver)?;
                        if suffix != rule.suffix {
                            return Err(Drop::OtherVariant {
                                expected: rule.suffix.clone(),
                            });
                        }
                        (version, canonical)
                    }
                    None => {
                        let (text, canonical) = match value.strip_prefix('v') {
                            Some(rest) => (rest, false),
                            None => (value, true),
                        };
                        (
                            Version::parse(text).map_err(|_| Drop::NotSemver)?,
                            canonical,
                        )
                    }
                };
                if is_candidate {
                    match range {
                        Some(range) if !range.matches(&version) => {
                            return Err(
                                if !version.pre.is_empty() && !range.mentions_prerelease() {
                                    Drop::PreRelease
                                } else {
                                    Drop::OutOfRange
                                },
                            );
                        }
                        None if !version.pre.is_empty() => return Err(Drop::PreRelease),
                        _ => {}
                    }
                }
                Ok(Key::Semver { version, canonical })
            }
            Strategy::Numerical(_) => match value.parse::<f64>() {
                Ok(n) if !n.is_nan() => Ok(Key::Number(n)),
                _ => Err(Drop::NotANumber),
            },
            Strategy::Alphabetical(_) => Ok(Key::Text(value.to_string())),
            Strategy::NewestBuild(_) => metadata
                .get(tag)
                .and_then(|m| m.created)
                .map(Key::Time)
                .ok_or(Drop::NoBuildTime),
            // Digest policies never reach per-tag keys.
            Strategy::Digest { .. } => Err(Drop::NotTrackedTag),
        }
    }

    fn direction(&self) -> Direction {
        match &self.strategy {
            Strategy::Semver { direction, .. } => *direction,
            Strategy::Numerical(d) | Strategy::Alphabetical(d) | Strategy::NewestBuild(d) => *d,
            Strategy::Digest { .. } => Direction::Ascending,
        }
    }

    /// Compares on the ordering value only, oriented so `Greater` means
    /// "preferred by this policy".
    fn better(&self, a: &Key, b: &Key) -> Ordering {
        let primary = a.cmp_primary(b);
        match self.direction() {
            Direction::Ascending => primary,
            Direction::Descending => primary.reverse(),
        }
    }

    /// The full ranking: ordering value, then the documented tie-breaks,
    /// last the greater tag string, so the pick never depends on the order
    /// in which a registry lists tags.
    fn rank(&self, a_tag: &str, a: &Key, b_tag: &str, b: &Key) -> Ordering {
        self.better(a, b)
            .then_with(|| a.cmp_tie(b))
            .then_with(|| a_tag.cmp(b_tag))
    }
}

/// Splits `v1.25-alpine` into (1.25.0, "-alpine", canonical=false). The
/// version part is one to three dot-separated numbers, Renovate-style, since
/// variant tags such as `1.25-alpine` rarely have three components.
fn split_variant(tag: &str) -> Option<(Version, &str, bool)> {
    let (rest, canonical) = match tag.strip_prefix('v') {
        Some(r) => (r, false),
        None => (tag, true),
    };
    let mut numbers = [0u64; 3];
    let mut pos = 0;
    for (i, slot) in numbers.iter_mut().enumerate() {
        if i > 0 {
            let next = rest[pos..].strip_prefix('.')?;
            if !next.starts_with(|c: char| c.is_ascii_digit()) {
                break;
            }
            pos += 1;
        }
        let digits = rest[pos..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - pos);
        if digits == 0 {
            return None;
        }
        *slot = rest[pos..pos + digits].parse().ok()?;
        pos += digits;
        if !rest[pos..].starts_with('.') {
            break;
        }
    }
    let version = Version::new(numbers[0], numbers[1], numbers[2]);
    Some((version, &rest[pos..], canonical))
}
