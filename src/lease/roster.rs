//! The roster task (only with several Leases): a heartbeat into the
//! `<name>-members` Lease, and the live members read back from it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::api::CallError;
use super::elector::{lock, Inner};
use super::members;
use super::Settings;

/// How often a replica writes its heartbeat: a third of `leaseDuration`,
/// but not more often than `retryPeriod`.
pub(super) fn period(settings: &Settings) -> Duration {
    (settings.lease_duration / 3).max(settings.retry_period)
}

/// A member whose heartbeat has not changed for this long is gone.
pub(super) fn window(settings: &Settings) -> Duration {
    settings.lease_duration * 2
}

fn roster_name(inner: &Inner) -> String {
    members::roster_name(&inner.settings.name)
}

pub(super) async fn run(inner: Arc<Inner>) {
    loop {
        if inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        let started = Instant::now();
        let until = started + inner.settings.renew_deadline / 2;
        if let Err(error) = beat(&inner, until).await {
            tracing::debug!(%error, "writing the members heartbeat failed; the next one tries again");
        }
        tokio::select! {
            _ = tokio::time::sleep_until((started + period(&inner.settings)).into()) => {}
            _ = inner.stop.notified() => return,
        }
    }
}

fn left(until: Instant) -> Duration {
    until.saturating_duration_since(Instant::now())
}

/// Reads the roster, then writes it back with this replica's heartbeat and
/// without the members that are gone.
async fn beat(inner: &Inner, until: Instant) -> Result<(), CallError> {
    let name = roster_name(inner);
    let read = inner.api.get(&name, left(until)).await?;
    let now = Instant::now();
    let entries = read.as_ref().map(members::entries).unwrap_or_default();
    let next = {
        let mut roster = lock(&inner.roster);
        roster.saw(&entries, now);
        roster.next(
            &entries,
            &inner.identity,
            jiff::Timestamp::now().to_string(),
            now,
            window(&inner.settings),
        )
    };
    inner.roster_ready.store(true, Ordering::SeqCst);
    let lease = members::with_entries(read.as_ref(), &name, &next);
    let written = match read {
        Some(_) => inner.api.replace(&name, &lease, left(until)).await?,
        None => inner.api.create(&lease, left(until)).await?,
    };
    lock(&inner.roster).saw(&members::entries(&written), Instant::now());
    Ok(())
}

/// Takes this replica off the roster (at shutdown), retrying a conflict
/// until `until`.
pub(super) async fn leave(inner: &Inner, until: Instant) {
    let name = roster_name(inner);
    while Instant::now() < until {
        let Ok(Some(read)) = inner.api.get(&name, left(until)).await else {
            return;
        };
        let mut entries = members::entries(&read);
        if entries.remove(&inner.identity).is_none() {
            return;
        }
        let lease = members::with_entries(Some(&read), &name, &entries);
        match inner.api.replace(&name, &lease, left(until)).await {
            Err(CallError::Conflict(_)) => continue,
            _ => return,
        }
    }
}
