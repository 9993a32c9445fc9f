//! The scheduler: one task runs cycles, one at a time. Every policy starts
//! due; after a cycle each scanned policy is due again after its interval
//! (or cron time). Webhooks mark policies due and wake it.
//!
//! Each cycle runs in a task of its own, under its deadline: a cycle that
//! panics is reported as that cycle's failure, and one that overruns is
//! abandoned (the engine starts no push after the deadline), so neither can
//! take the scheduler down.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::health::{LastCycle, Running};
use super::leases::{Election, DEADLINE_POLL};
use super::{lock, AppState};
use crate::deadline::Deadline;
use crate::engine::{EngineError, OnceOptions, Outcome};
use crate::lease::Work;
use crate::schedule::Schedule;

/// How long a webhook burst is collected before its cycle starts.
pub const COALESCE: Duration = Duration::from_millis(300);

pub async fn run(state: Arc<AppState>) {
    let policies: Vec<(String, Schedule)> = state
        .config
        .images
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                Schedule::of(i.schedule.as_deref(), i.interval.as_deref()),
            )
        })
        .collect();
    let mut next: HashMap<String, Instant> = policies
        .iter()
        .map(|(p, _)| (p.clone(), Instant::now()))
        .collect();
    let mut number: u64 = 0;
    loop {
        if state.stopping.load(Ordering::SeqCst) {
            return;
        }
        // Under leader election, only the holder of the repository's Lease
        // runs cycles; a standby keeps every policy due (and every webhook
        // request) for when it takes over.
        let work = match &state.election {
            None => None,
            Some(election) => match election.work() {
                Some(work) => Some(work),
                None => {
                    election.wait_for_change(&state).await;
                    continue;
                }
            },
        };
        let now = Instant::now();
        let mut due: HashSet<String> = next
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| p.clone())
            .collect();
        let (asked, deferred) = state.take_requested(now);
        due.extend(asked);
        if due.is_empty() {
            let earliest = next
                .values()
                .copied()
                .chain(deferred)
                .min()
                .unwrap_or(now + Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep_until(earliest.into()) => {}
                _ = state.wake.notified() => {
                    // Let a burst of webhooks arrive, then run one cycle.
                    tokio::time::sleep(COALESCE).await;
                }
                _ = state.stop.notified() => return,
            }
            continue;
        }
        number += 1;
        run_cycle(&state, number, &due, work).await;
        for (policy, schedule) in &policies {
            if due.contains(policy) {
                let wait = schedule.next_in(fastrand::u64(..));
                // A far-off time (a year at most, by validation) never
                // overflows the clock: saturate at a day from now instead.
                let at = Instant::now()
                    .checked_add(wait)
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
                next.insert(policy.clone(), at);
            }
        }
    }
}

async fn run_cycle(state: &Arc<AppState>, number: u64, due: &HashSet<String>, work: Option<Work>) {
    let mut names: Vec<&String> = due.iter().collect();
    names.sort();
    let span = tracing::info_span!("cycle", number, policies = ?names);
    run_cycle_in_span(state, number, due, work)
        .instrument(span)
        .await;
}

/// `work`: the Lease this cycle runs under, held until it ends.
async fn run_cycle_in_span(
    state: &Arc<AppState>,
    number: u64,
    due: &HashSet<String>,
    work: Option<Work>,
) {
    let started = Instant::now();
    let started_at = jiff::Timestamp::now();
    let deadline = state.cycle_timeout;
    let bound = match &work {
        Some(work) => Election::deadline(started + deadline, work),
        None => Deadline::at(started + deadline),
    };
    lock(&state.health).running = Some(Running {
        number,
        started,
        started_at,
        deadline,
        abandoned_while: None,
    });
    let options = OnceOptions {
        workdir: state.workdir.clone(),
        dry_run: false,
        only_policies: Some(due.clone()),
        deadline: Some(bound.clone()),
    };
    let task_state = state.clone();
    let task =
        tokio::spawn(async move { task_state.engine.cycle(&task_state.config, &options).await });
    let abort = task.abort_handle();
    let joined = within(&bound, task).await;
    let took = started.elapsed();
    let result: Result<_, EngineError> = match joined {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => {
            let what = if join.is_panic() {
                panic_message(join.into_panic())
            } else {
                "it was cancelled".to_string()
            };
            lock(&state.metrics).record_error("panic");
            Err(EngineError::Task(format!(
                "the cycle panicked: {what}; the service goes on and the next cycle tries again"
            )))
        }
        Err(_) if bound.lease_bound() => {
            abort.abort();
            lock(&state.metrics).record_error("lease");
            Err(EngineError::Task(format!(
                "the cycle was abandoned while {}: this replica could not renew its Lease within renewDeadline, or another replica holds it now; nothing was pushed after that, and the holder's next cycle starts again from the remote",
                state.engine.current_step()
            )))
        }
        Err(_) => {
            abort.abort();
            lock(&state.metrics).record_error("deadline");
            let step = state.engine.current_step();
            if let Some(running) = lock(&state.health).running.as_mut() {
                running.abandoned_while = Some(step.clone());
            }
            Err(EngineError::Task(format!(
                "the cycle ran past its deadline of {} s while {step} and was abandoned; nothing was pushed after the deadline, and the next cycle starts again from the remote",
                deadline.as_secs_f64(),
            )))
        }
    };
    let in_time = joined_in_time(&result, took, deadline);
    {
        let mut health = lock(&state.health);
        let running = health.running.take();
        if in_time {
            health.stuck = None;
            health.abandoned = None;
        } else if took >= deadline {
            health.abandoned = running;
        }
        health.first_cycle_done = true;
        health.workspace_error = match &result {
            Ok(report) => report.error.clone(),
            Err(EngineError::Busy) => health.workspace_error.clone(),
            Err(e @ EngineError::Git(_)) => Some(e.to_string()),
            Err(_) => None,
        };
        health.last = Some(LastCycle {
            number,
            started_at,
            took,
            outcome: match (&result, &health.abandoned) {
                (Err(EngineError::Busy), Some(earlier)) => format!(
                    "skipped: the git work of cycle #{}, abandoned at its deadline while {}, is still running on the work directory; the next cycle tries again",
                    earlier.number,
                    earlier.abandoned_while.as_deref().unwrap_or("working")
                ),
                _ => outcome_line(&result),
            },
        });
    }
    match &result {
        Ok(report) => {
            for u in &report.updates {
                match &u.outcome {
                    Outcome::Failed { error } => {
                        tracing::warn!(update = %u.update, head = ?u.head, %error, "update failed")
                    }
                    outcome => {
                        tracing::info!(update = %u.update, head = ?u.head, outcome = %outcome.describe(), changes = u.changes.len(), "update done")
                    }
                }
            }
            if let Some(error) = &report.error {
                tracing::warn!(%error, "cycle could not use the environment repository");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cycle failed"),
    }
    lock(&state.metrics).record_cycle(due, result.as_ref().ok(), result.as_ref().err(), took);
    lock(&state.status).record_cycle(due, &result);
}

/// Waits for `task` until `deadline`, looking at the deadline again at
/// least every [`DEADLINE_POLL`] (it moves with each renewal of the Lease,
/// and a lost Lease ends it at once). `Err` when it passed first.
async fn within<T>(
    deadline: &Deadline,
    mut task: tokio::task::JoinHandle<T>,
) -> Result<Result<T, tokio::task::JoinError>, ()> {
    loop {
        let slice = deadline.remaining().min(DEADLINE_POLL);
        match tokio::time::timeout(slice, &mut task).await {
            Ok(joined) => return Ok(joined),
            Err(_) if deadline.passed() => return Err(()),
            Err(_) => {}
        }
    }
}

/// A cycle counts as completed in time when it returned a report before
/// its deadline (whatever its updates did).
fn joined_in_time<T>(result: &Result<T, EngineError>, took: Duration, deadline: Duration) -> bool {
    result.is_ok() && took < deadline
}

fn outcome_line(result: &Result<crate::engine::CycleReport, EngineError>) -> String {
    match result {
        Err(e) => format!("failed: {e}"),
        Ok(report) => {
            if let Some(error) = &report.error {
                return format!("failed: {error}");
            }
            let failed: Vec<&str> = report
                .updates
                .iter()
                .filter_map(|u| match &u.outcome {
                    Outcome::Failed { error } => Some(error.as_str()),
                    _ => None,
                })
                .collect();
            let unknown = report.scan_errors.len();
            match (failed.first(), unknown) {
                (None, 0) => format!("ok ({} update(s))", report.updates.len()),
                (None, n) => format!("ok, with {n} policy(ies) unknown"),
                (Some(first), _) => format!("{} update(s) failed: {first}", failed.len()),
            }
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
