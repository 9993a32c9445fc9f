//! Gates: what a candidate the policy picked must also earn before it is
//! proposed. They apply in this order, each only to candidates the one
//! before let through:
//!
//! 1. the **policy** (semver range, filters, no-downgrade, declines);
//! 2. **minimum age** (`images[].minimumAge`): the image's config `created`
//!    lies at least that far in the past;
//! 3. **signature** (`images[].verify.cosign`): a configured key signed a
//!    payload naming the candidate's digest;
//! 4. **promotion** (`updates[].promoteFrom`, `soak`, `requireStatus`),
//!    decided by the engine from git history and the forge.
//!
//! A gated candidate is skipped with its reason and the next one is
//! considered; nothing here is an error of the whole policy. This module
//! holds the verdicts (pure) and the cached signature lookup (I/O).

pub mod cosign;
pub mod keys;
mod lookup;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use cosign::{Layout, SignatureVerdict};
pub use keys::{Key, Keys};
pub use lookup::{SignatureCache, RECHECK_UNVERIFIED};

/// What the minimum-age gate concluded for one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgeVerdict {
    /// Created long enough ago.
    Old { created: jiff::Timestamp },
    /// Too young: eligible from `until` on.
    WaitsUntil {
        until: jiff::Timestamp,
        created: jiff::Timestamp,
    },
    /// The config has no usable `created` time, so the age is unknown.
    NoCreatedTime,
}

impl AgeVerdict {
    pub fn passes(&self) -> bool {
        matches!(self, AgeVerdict::Old { .. })
    }
}

/// The minimum-age verdict for an image created at `created`, now.
///
/// A `created` at or before the Unix epoch counts as missing: reproducible
/// builds write `1970-01-01T00:00:00Z` (and Go's zero time is year 1) to
/// mean "no time", which must not read as "very old".
pub fn age(
    created: Option<jiff::Timestamp>,
    minimum: Duration,
    now: jiff::Timestamp,
) -> AgeVerdict {
    let Some(created) = created.filter(|c| *c > jiff::Timestamp::UNIX_EPOCH) else {
        return AgeVerdict::NoCreatedTime;
    };
    let minimum = jiff::SignedDuration::try_from(minimum).unwrap_or(jiff::SignedDuration::MAX);
    let until = created.checked_add(minimum).unwrap_or(jiff::Timestamp::MAX);
    if until <= now {
        AgeVerdict::Old { created }
    } else {
        AgeVerdict::WaitsUntil { until, created }
    }
}

/// A time as reports show it: `2026-11-30T10:00:00Z` (whole seconds, UTC).
pub fn show_time(time: jiff::Timestamp) -> String {
    time.round(jiff::Unit::Second)
        .unwrap_or(time)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
