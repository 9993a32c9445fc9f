//! The gates inside the pure plan: which candidate a gated policy picks,
//! decided from facts observation gathered (see `gate` for the order and
//! the rules). No I/O: a fact the plan lacks becomes a [`Need`], which
//! observation looks up before planning again.
//!
//! A gated candidate is skipped with its reason and the next best one is
//! considered, but the walk never goes below the value in Git: when the
//! current value itself is gated, it stays. A fact that could not be
//! observed (a registry or forge failure) makes the policy unknown this
//! cycle, which holds its pull request; it is never read as "gated".

use std::time::Duration;

use super::snapshot::{Held, Observation, Snapshot, SourceValue};
use crate::config::{Config, Update};
use crate::duration::show;
use crate::gate::{age, show_time, AgeVerdict};
use crate::policy::{Context, Pick, Policy};

/// The gated candidates looked at per policy and cycle, at most: past
/// them the current value stays.
const MAX_WALK: usize = 32;

/// One gate verdict on one candidate, for reports, `once --dry-run` and
/// the status page: `1.4.0 waits until 2026-12-04T11:00:00Z (…)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateLine {
    pub policy: String,
    /// The candidate as it would be written (`tag` or `tag@digest`).
    pub candidate: String,
    /// `waits until …`, `skipped: …` or `passes: …`.
    pub verdict: String,
    pub passed: bool,
}

impl std::fmt::Display for GateLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} {}", self.policy, self.candidate, self.verdict)
    }
}

/// A fact the plan needs before it can decide a gate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Need {
    /// The digest tag `tag` points at.
    Digest { policy: String, tag: String },
    /// The config `created` of the image at `digest`.
    Created { policy: String, digest: String },
    /// The signature verdict of `digest` under the policy's keys.
    Signature { policy: String, digest: String },
}

/// What the gates decided for one policy in one update.
#[derive(Debug)]
pub(super) enum Gated {
    /// The pick, and for a promotion where it comes from (for the PR body).
    Picked(Pick, Option<String>),
    /// Nothing to propose (the current value stays), and why.
    Nothing(String),
    /// A fact is unknown (or not looked up yet): the policy is unknown.
    Unknown(String),
}

#[derive(Debug)]
pub(super) struct GateResult {
    pub gated: Gated,
    pub lines: Vec<GateLine>,
    pub needs: Vec<Need>,
}

impl GateResult {
    fn new(gated: Gated, lines: Vec<GateLine>) -> GateResult {
        GateResult {
            gated,
            lines,
            needs: Vec::new(),
        }
    }
}

/// One gated policy in one update, with what selection knows.
pub(super) struct Subject<'a> {
    pub config: &'a Config,
    pub snapshot: &'a Snapshot,
    pub update: &'a Update,
    pub policy: &'a str,
    pub selector: &'a Policy,
    pub observation: &'a Observation,
    pub context: &'a Context<'a>,
    /// The digest pinned in this update's files, if any.
    pub current_digest: Option<&'a str>,
}

/// True when `policy` has a gate in `update`.
pub(super) fn applies(config: &Config, update: &Update, policy: &str) -> bool {
    config.gates.minimum_age.contains_key(policy)
        || config.gates.keys.contains_key(policy)
        || promotion_source(config, update, policy).is_some()
}

/// The update `update` promotes `policy` from, when both cover it.
pub(super) fn promotion_source<'c>(
    config: &'c Config,
    update: &Update,
    policy: &str,
) -> Option<&'c Update> {
    let source = config.promotion_source(update)?;
    config
        .policies_of(source)
        .contains(&policy)
        .then_some(&source.item)
}

/// The gated selection of one policy.
pub(super) fn select(s: &Subject<'_>) -> GateResult {
    match promotion_source(s.config, s.update, s.policy) {
        Some(source) => promote(s, source),
        None => walk(s),
    }
}

/// How one candidate fared at the registry gates.
enum Check {
    /// Every gate passed; what they saw.
    Pass(String),
    /// Gated, with the verdict.
    Fail(String),
    Need(Need),
    Unknown(String),
}

fn line(policy: &str, candidate: &str, verdict: String, passed: bool) -> GateLine {
    GateLine {
        policy: policy.to_string(),
        candidate: candidate.to_string(),
        verdict,
        passed,
    }
}

/// Minimum age, then signature, of `tag` (at `pinned` when the value to
/// write pins a digest, else at the digest the tag points at).
fn registry_gates(s: &Subject<'_>, tag: &str, pinned: Option<&str>) -> Check {
    let minimum = s.config.gates.minimum_age.get(s.policy).copied();
    let keys = s.config.gates.keys.get(s.policy);
    if minimum.is_none() && keys.is_none() {
        return Check::Pass(String::new());
    }
    let metadata = s.observation.metadata.get(tag);
    let digest = match pinned {
        Some(d) => d.to_string(),
        None => match metadata.and_then(|m| m.digest.clone()) {
            Some(d) => d,
            None => match s
                .snapshot
                .digests
                .get(&(s.policy.to_string(), tag.to_string()))
            {
                Some(Ok(d)) => d.clone(),
                Some(Err(e)) => {
                    return Check::Unknown(format!("the digest of {tag} is unknown: {e}"))
                }
                None => {
                    return Check::Need(Need::Digest {
                        policy: s.policy.to_string(),
                        tag: tag.to_string(),
                    })
                }
            },
        },
    };
    let key = (s.policy.to_string(), digest.clone());
    let mut seen = Vec::new();
    if let Some(minimum) = minimum {
        // A newest-build scan already read the created time of this digest.
        let scanned = metadata
            .filter(|m| m.digest.as_deref() == Some(digest.as_str()))
            .and_then(|m| m.created);
        let created = match (scanned, s.snapshot.gates.created.get(&key)) {
            (Some(c), _) => Some(c),
            (None, Some(Ok(c))) => *c,
            (None, Some(Err(e))) => {
                return Check::Unknown(format!("the created time of {tag} is unknown: {e}"))
            }
            (None, None) => {
                return Check::Need(Need::Created {
                    policy: s.policy.to_string(),
                    digest,
                })
            }
        };
        match age(created, minimum, s.snapshot.now) {
            AgeVerdict::Old { created } => seen.push(format!("created {}", show_time(created))),
            AgeVerdict::WaitsUntil { until, created } => {
                return Check::Fail(format!(
                    "waits until {} (created {}, minimumAge {})",
                    show_time(until),
                    show_time(created),
                    written_age(s, minimum)
                ))
            }
            AgeVerdict::NoCreatedTime => {
                return Check::Fail(format!(
                    "skipped: its image config has no created time, and minimumAge {} is set",
                    written_age(s, minimum)
                ))
            }
        }
    }
    if keys.is_some() {
        match s.snapshot.gates.signatures.get(&key) {
            Some(Ok(verdict)) if verdict.is_verified() => seen.push(verdict.to_string()),
            Some(Ok(verdict)) => return Check::Fail(format!("skipped: {verdict}")),
            Some(Err(e)) => {
                return Check::Unknown(format!("the signature of {tag} is unknown: {e}"))
            }
            None => {
                return Check::Need(Need::Signature {
                    policy: s.policy.to_string(),
                    digest,
                })
            }
        }
    }
    Check::Pass(seen.join("; "))
}

/// The registry's candidates, best first, until one passes the gates.
fn walk(s: &Subject<'_>) -> GateResult {
    let selection =
        s.selector
            .explain_with(&s.observation.tags, &s.observation.metadata, s.context);
    let mut lines = Vec::new();
    let ranked = selection
        .candidates
        .iter()
        .filter(|c| c.verdict.is_ok())
        .map(|c| c.tag.as_str());
    for (checked, tag) in ranked.enumerate() {
        if checked == MAX_WALK {
            return GateResult::new(
                Gated::Nothing(format!(
                    "the {MAX_WALK} best candidates are all gated; older ones are not checked, and the value in Git stays"
                )),
                lines,
            );
        }
        if s.context.current == Some(tag) && s.current_digest.is_none() {
            // The value in Git, unpinned: writing it changes nothing, so
            // there is nothing for the gates to guard.
            let pick = Pick {
                tag: tag.to_string(),
                digest: None,
            };
            lines.push(line(s.policy, tag, "is the value in Git".into(), true));
            return GateResult::new(Gated::Picked(pick, None), lines);
        }
        let digest = s
            .selector
            .needs_digests()
            .then(|| {
                s.observation
                    .metadata
                    .get(tag)
                    .and_then(|m| m.digest.clone())
            })
            .flatten();
        match registry_gates(s, tag, None) {
            Check::Pass(seen) => {
                let verdict = if seen.is_empty() {
                    "passes".to_string()
                } else {
                    format!("passes: {seen}")
                };
                lines.push(line(s.policy, tag, verdict, true));
                let pick = Pick {
                    tag: tag.to_string(),
                    digest,
                };
                return GateResult::new(Gated::Picked(pick, None), lines);
            }
            Check::Fail(verdict) => {
                lines.push(line(s.policy, tag, verdict, false));
                if s.context.current == Some(tag) {
                    // Never below the value in Git: it stays.
                    return GateResult::new(
                        Gated::Nothing(gated_summary(&lines, "the value in Git stays")),
                        lines,
                    );
                }
            }
            Check::Need(need) => {
                return GateResult {
                    gated: Gated::Unknown(format!("the gates of {tag} have not been checked")),
                    lines,
                    needs: vec![need],
                }
            }
            Check::Unknown(reason) => return GateResult::new(Gated::Unknown(reason), lines),
        }
    }
    let reason = if lines.is_empty() {
        match selection.outcome {
            crate::policy::Outcome::NothingQualifies { reason } => reason,
            crate::policy::Outcome::Picked(_) => "no candidate qualifies".to_string(),
        }
    } else {
        gated_summary(&lines, "nothing else qualifies")
    };
    GateResult::new(Gated::Nothing(reason), lines)
}

/// `minimumAge` as the policy file writes it (`3d`, not `72h`).
fn written_age(s: &Subject<'_>, minimum: Duration) -> String {
    s.config
        .images
        .iter()
        .find(|i| i.name == s.policy)
        .and_then(|i| i.minimum_age.as_ref())
        .map_or_else(|| show(minimum), |t| t.trim().to_string())
}

fn gated_summary(lines: &[GateLine], tail: &str) -> String {
    let gated: Vec<String> = lines
        .iter()
        .filter(|l| !l.passed)
        .map(|l| format!("{} {}", l.candidate, l.verdict))
        .collect();
    format!(
        "no candidate passes the gates ({}); {tail}",
        gated.join("; ")
    )
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// A promotion: the exact value the source holds, once it has earned it.
fn promote(s: &Subject<'_>, source: &Update) -> GateResult {
    let nothing =
        |reason: String, lines: Vec<GateLine>| GateResult::new(Gated::Nothing(reason), lines);
    let key = (source.name.clone(), s.policy.to_string());
    let held: &Held = match s.snapshot.gates.held.get(&key) {
        None => {
            return GateResult::new(
                Gated::Unknown(format!("what {} holds has not been read", source.name)),
                Vec::new(),
            )
        }
        Some(Err(e)) => {
            return GateResult::new(
                Gated::Unknown(format!("what {} holds is unknown: {e}", source.name)),
                Vec::new(),
            )
        }
        Some(Ok(SourceValue::Absent)) => {
            return nothing(
                format!(
                    "{} holds no reference of {}; nothing to promote",
                    source.name, s.policy
                ),
                Vec::new(),
            )
        }
        Some(Ok(SourceValue::Several(values))) => {
            return nothing(
                format!(
                "{}'s files hold several values of {} ({}); nothing is promoted until they agree",
                source.name,
                s.policy,
                values.join(", ")
            ),
                Vec::new(),
            )
        }
        Some(Ok(SourceValue::Held(held))) => held,
    };
    let Some(tag) = held.tag.as_deref() else {
        return nothing(
            format!(
                "{} holds {} by digest only; a promotion needs its tag",
                source.name, s.policy
            ),
            Vec::new(),
        );
    };
    let candidate = match &held.digest {
        Some(d) => format!("{tag}@{d}"),
        None => tag.to_string(),
    };
    let pick = Pick {
        tag: tag.to_string(),
        digest: held.digest.clone(),
    };
    if s.context.current == Some(tag) && s.current_digest == held.digest.as_deref() {
        let verdict = format!("is already here, as in {}", source.name);
        return GateResult::new(
            Gated::Picked(pick, None),
            vec![line(s.policy, &candidate, verdict, true)],
        );
    }
    // 1. The policy: range, no-downgrade, declines.
    let selection =
        s.selector
            .explain_with(&s.observation.tags, &s.observation.metadata, s.context);
    let verdict = selection
        .candidates
        .iter()
        .find(|c| c.tag == tag)
        .map(|c| &c.verdict);
    let why_not = match verdict {
        Some(Ok(_)) => None,
        Some(Err(drop)) => Some(format!("skipped: {drop}")),
        None => Some("skipped: it is not among the registry's tags".to_string()),
    };
    if let Some(verdict) = why_not {
        let lines = vec![line(s.policy, &candidate, verdict.clone(), false)];
        return nothing(
            format!(
                "{candidate} from {} is not proposed: {verdict}",
                source.name
            ),
            lines,
        );
    }
    // 2. and 3. Minimum age and signature, of the digest the source runs.
    let seen = match registry_gates(s, tag, held.digest.as_deref()) {
        Check::Pass(seen) => seen,
        Check::Fail(verdict) => {
            let reason = format!("{candidate} from {} {verdict}", source.name);
            return nothing(reason, vec![line(s.policy, &candidate, verdict, false)]);
        }
        Check::Need(need) => {
            return GateResult {
                gated: Gated::Unknown(format!("the gates of {candidate} have not been checked")),
                lines: Vec::new(),
                needs: vec![need],
            }
        }
        Check::Unknown(reason) => return GateResult::new(Gated::Unknown(reason), Vec::new()),
    };
    // 4. Promotion: the soak, then the commit status.
    let origin = format!(
        "in {} since {}, commit {}",
        source.name,
        show_time(held.since),
        held.commit
    );
    let soak = s
        .config
        .gates
        .soak
        .get(&s.update.name)
        .copied()
        .unwrap_or(Duration::ZERO);
    let until = jiff::SignedDuration::try_from(soak)
        .ok()
        .and_then(|d| held.since.checked_add(d).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    if until > s.snapshot.now {
        let verdict = format!(
            "waits until {} (in {} since {}, commit {}; soak {})",
            show_time(until),
            source.name,
            show_time(held.since),
            short(&held.commit),
            s.update.soak.clone().unwrap_or_else(|| show(soak))
        );
        let reason = format!("{candidate} {verdict}");
        return nothing(reason, vec![line(s.policy, &candidate, verdict, false)]);
    }
    let mut origin = origin;
    if let Some(required) = s.update.require_status {
        match s.snapshot.gates.statuses.get(&held.commit) {
            None => {
                return GateResult::new(
                    Gated::Unknown(format!(
                        "the commit status of {}'s commit {} has not been read",
                        source.name,
                        short(&held.commit)
                    )),
                    Vec::new(),
                )
            }
            Some(Err(e)) => {
                return GateResult::new(
                    Gated::Unknown(format!(
                        "the commit status of {}'s commit {} is unknown: {e}",
                        source.name,
                        short(&held.commit)
                    )),
                    Vec::new(),
                )
            }
            Some(Ok(Some(state))) if state.as_str() == required.as_str() => {
                origin.push_str(&format!(", status {}", state.as_str()));
            }
            Some(Ok(state)) => {
                let verdict = format!(
                    "waits: {}'s commit {} has {}; requireStatus is {}",
                    source.name,
                    short(&held.commit),
                    state.map_or_else(
                        || "no status yet".to_string(),
                        |s| format!("status {}", s.as_str())
                    ),
                    required.as_str()
                );
                let reason = format!("{candidate} {verdict}");
                return nothing(reason, vec![line(s.policy, &candidate, verdict, false)]);
            }
        }
    }
    let verdict = if seen.is_empty() {
        format!("passes: {origin}")
    } else {
        format!("passes: {seen}; {origin}")
    };
    GateResult::new(
        Gated::Picked(pick, Some(origin)),
        vec![line(s.policy, &candidate, verdict, true)],
    )
}
