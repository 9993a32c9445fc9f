//! The loop of one Lease: acquire when free and fair, renew every
//! `retryPeriod` while held, give up when no renewal has succeeded within
//! `renewDeadline`, stop at once on seeing another holder, and give the
//! Lease back when balancing asks for it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;

use super::api::CallError;
use super::elector::{Inner, Key};
use super::members;
use super::record::{self, Plan};

/// The smallest pause between two rounds (never spin).
const MIN_PAUSE: Duration = Duration::from_millis(10);

pub(super) async fn run(inner: Arc<Inner>, key: Arc<Key>) {
    loop {
        if inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        let started = Instant::now();
        let next = round(&inner, &key, started).await;
        let next = next.max(Instant::now() + MIN_PAUSE);
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            // A cycle ended: a pending release need not wait a whole period.
            _ = key.idle.notified(), if key.state().yielding => {}
            _ = inner.stop.notified() => return,
        }
    }
}

/// One round; returns when the next one should start.
async fn round(inner: &Inner, key: &Key, started: Instant) -> Instant {
    let settings = &inner.settings;
    let next = started + settings.retry_period;
    if !key.state().held {
        return candidate(inner, key, started).await.min(next);
    }
    let end = key
        .state()
        .renewed
        .map_or(started, |(at, _)| at + settings.renew_deadline);
    if started >= end {
        lose(inner, key, "no renewal succeeded within renewDeadline");
        return next;
    }
    let (yielding, busy) = {
        let state = key.state();
        (state.yielding, state.busy)
    };
    if yielding && busy == 0 {
        release(inner, key, end).await;
        return next;
    }
    let until = started + (end - started).min(settings.renew_deadline / 2);
    match acquire_or_renew(inner, key, until, false).await {
        Ok(lease) => won(inner, key, lease, started),
        Err(Failure::HeldBy(holder)) => lose(inner, key, &format!("{holder} holds it now")),
        Err(Failure::Call(error)) => {
            tracing::warn!(lease = %key.name, %error, "renewing the Lease failed; retrying");
            key.state().error = Some(error.to_string());
            if Instant::now() >= end {
                lose(inner, key, "no renewal succeeded within renewDeadline");
            }
        }
    }
    if inner.keys.len() > 1 {
        balance(inner, key);
    }
    next
}

/// Not holding: read the Lease, and take it when it is free and this
/// replica's share allows. Returns when to look again: at the latest when
/// the holder's term ends, so a takeover is not a retry period late.
async fn candidate(inner: &Inner, key: &Key, started: Instant) -> Instant {
    let settings = &inner.settings;
    let next = started + settings.retry_period;
    let until = started + settings.renew_deadline / 2;
    match inner.api.get(&key.name, left(until)).await {
        Ok(Some(lease)) => key.state().observation.saw(lease, Instant::now()),
        Ok(None) => key.state().observation.saw_none(),
        Err(error) => {
            key.state().error = Some(error.to_string());
            tracing::debug!(lease = %key.name, %error, "reading the Lease failed");
            return next;
        }
    }
    let now = Instant::now();
    let (free_for, ours) = {
        let mut state = key.state();
        state.error = None;
        match state.observation.held_at(now) {
            // Still recorded as ours (this replica gave up, or a write that
            // timed out landed after all): renew it, as client-go does.
            Some(holder) if holder == inner.identity => (Duration::ZERO, true),
            Some(_) => {
                state.free_since = None;
                return state
                    .observation
                    .expires_at()
                    .map_or(next, |end| end.min(next));
            }
            None => (now - *state.free_since.get_or_insert(now), false),
        }
    };
    let fair = inner.roster_ready.load(Ordering::SeqCst) && fair_to_take(inner, free_for);
    if !ours && !fair {
        return next;
    }
    match acquire_or_renew(inner, key, until, true).await {
        Ok(lease) => won(inner, key, lease, started),
        Err(Failure::HeldBy(_)) => {}
        Err(Failure::Call(CallError::Conflict(message))) => {
            tracing::debug!(lease = %key.name, %message, "another replica took the Lease first");
        }
        Err(Failure::Call(error)) => key.state().error = Some(error.to_string()),
    }
    next
}

/// Below the fair share, or the Lease has been left free long enough.
fn fair_to_take(inner: &Inner, free_for: Duration) -> bool {
    if inner.keys.len() < 2 {
        return true;
    }
    let live = live_members(inner);
    let share = members::fair_share(inner.keys.len(), live.len());
    members::may_take(inner.held_count(), share, free_for, spare_wait(inner))
}

/// How long a free Lease waits for a replica below its share before one at
/// its share takes it.
fn spare_wait(inner: &Inner) -> Duration {
    inner.settings.retry_period * 2
}

fn live_members(inner: &Inner) -> std::collections::BTreeSet<String> {
    super::elector::lock(&inner.roster).live(
        &inner.identity,
        Instant::now(),
        super::roster::window(&inner.settings),
    )
}

/// Above the fair share while another member is below it: give back one
/// Lease (the last by name, one at a time) once its work has ended.
fn balance(inner: &Inner, key: &Key) {
    let now = Instant::now();
    let live = live_members(inner);
    let share = members::fair_share(inner.keys.len(), live.len());
    let mut held_by = std::collections::HashMap::new();
    for k in &inner.keys {
        if let Some(holder) = k.state().observation.held_at(now) {
            *held_by.entry(holder.to_string()).or_insert(0usize) += 1;
        }
    }
    let mine: Vec<&Arc<Key>> = inner.keys.iter().filter(|k| k.state().held).collect();
    if mine.iter().any(|k| k.state().yielding) {
        return;
    }
    if members::should_release(&inner.identity, mine.len(), share, &live, &held_by)
        && mine.last().is_some_and(|last| last.name == key.name)
    {
        tracing::info!(lease = %key.name, held = mine.len(), share, "above the fair share; giving this Lease back after its cycle");
        key.state().yielding = true;
    }
}

enum Failure {
    HeldBy(String),
    Call(CallError),
}

fn left(until: Instant) -> Duration {
    until.saturating_duration_since(Instant::now())
}

/// client-go's `tryAcquireOrRenew`, every call bounded by `until`: the
/// fast path renews on the object of this replica's own last write; any
/// failure there (a 409 included) falls back to reading the Lease and
/// deciding afresh. `fresh`: the observation was read just now.
async fn acquire_or_renew(
    inner: &Inner,
    key: &Key,
    until: Instant,
    fresh: bool,
) -> Result<Lease, Failure> {
    let seconds = inner.settings.lease_duration_seconds();
    let me = &inner.identity;
    let fast = {
        let state = key.state();
        if state.held {
            record::renewal(me, &state.observation, seconds, record::micro_now())
        } else {
            None
        }
    };
    if let Some(lease) = fast {
        match inner.api.replace(&key.name, &lease, left(until)).await {
            Ok(written) => return Ok(written),
            Err(error @ CallError::Timeout(_)) => return Err(Failure::Call(error)),
            Err(error) => {
                tracing::debug!(lease = %key.name, %error, "renewing on the cached Lease failed; reading it");
            }
        }
    }
    if !fresh {
        match inner.api.get(&key.name, left(until)).await {
            Ok(Some(lease)) => key.state().observation.saw(lease, Instant::now()),
            Ok(None) => key.state().observation.saw_none(),
            Err(error) => return Err(Failure::Call(error)),
        }
    }
    let plan = record::plan(
        me,
        &key.name,
        &key.state().observation,
        seconds,
        Instant::now(),
        record::micro_now(),
    );
    match plan {
        Plan::HeldBy { holder, .. } => Err(Failure::HeldBy(holder)),
        Plan::Create(lease) => inner
            .api
            .create(&lease, left(until))
            .await
            .map_err(Failure::Call),
        Plan::Update(lease) => inner
            .api
            .replace(&key.name, &lease, left(until))
            .await
            .map_err(Failure::Call),
    }
}

/// A write that made (or kept) this replica the holder, from an attempt
/// that started at `started`: work may go on until `started + renewDeadline`.
fn won(inner: &Inner, key: &Key, lease: Lease, started: Instant) {
    let gained = {
        let mut state = key.state();
        state.observation.saw(lease, Instant::now());
        state.renewed = Some((started, jiff::Timestamp::now()));
        state.error = None;
        state.free_since = None;
        let gained = !state.held;
        state.held = true;
        key.horizon
            .extend_to(started + inner.settings.renew_deadline);
        gained
    };
    if gained {
        tracing::info!(lease = %key.name, identity = %inner.identity, "acquired the Lease; this replica now runs the cycles");
        inner.bump();
    }
}

/// Stops work under `key` at once.
fn lose(inner: &Inner, key: &Key, why: &str) {
    key.horizon.revoke();
    {
        let mut state = key.state();
        state.held = false;
        state.yielding = false;
        state.renewed = None;
    }
    tracing::warn!(lease = %key.name, identity = %inner.identity, why, "lost the Lease; this replica stopped its work and is a standby");
    inner.bump();
}

/// Gives `key` back (its work has ended): stop first, then write an empty
/// holder so that another replica may take it at once.
pub(super) async fn release(inner: &Inner, key: &Key, until: Instant) {
    key.horizon.revoke();
    if let Some(lease) = super::elector::release_record(inner, key) {
        match inner.api.replace(&key.name, &lease, left(until)).await {
            Ok(written) => {
                key.state().observation.saw(written, Instant::now());
                tracing::info!(lease = %key.name, "gave the Lease back");
            }
            Err(error) => {
                tracing::warn!(lease = %key.name, %error, "giving the Lease back failed; it expires after leaseDuration instead");
            }
        }
    }
    {
        let mut state = key.state();
        state.held = false;
        state.yielding = false;
        state.renewed = None;
    }
    inner.bump();
}
