//! Liveness and readiness that tell the truth.
//!
//! `/healthz` fails when the scheduler has stopped, or when a cycle (or the
//! git work of a cycle abandoned at its deadline) has run past its deadline
//! plus a grace period; once that happened it stays failed until a cycle
//! completes within its deadline. `/readyz` is false until the first cycle
//! completes, and while the work directory cannot be used.

use std::time::{Duration, Instant};

/// What the service last knew about its cycles.
#[derive(Debug, Default)]
pub struct Health {
    /// Why the scheduler stopped, if it did while the service was not stopping.
    pub scheduler_stopped: Option<String>,
    /// The cycle running now: its number, when it started, its deadline.
    pub running: Option<Running>,
    /// A cycle abandoned at its deadline whose git work may still run.
    pub abandoned: Option<Running>,
    /// Latched when a cycle overran; cleared by a cycle that completes in time.
    pub stuck: Option<String>,
    /// A cycle has completed since the start.
    pub first_cycle_done: bool,
    /// Why the work directory cannot be used, from the last cycle.
    pub workspace_error: Option<String>,
    /// The last completed (or abandoned) cycle.
    pub last: Option<LastCycle>,
}

#[derive(Clone, Debug)]
pub struct Running {
    pub number: u64,
    pub started: Instant,
    pub started_at: jiff::Timestamp,
    pub deadline: Duration,
    /// What it was doing when it was abandoned (None while it runs), so a
    /// later cycle that finds its git work still running can say what.
    pub abandoned_while: Option<String>,
}

#[derive(Clone, Debug)]
pub struct LastCycle {
    pub number: u64,
    pub started_at: jiff::Timestamp,
    pub took: Duration,
    /// One line: "ok", "2 update(s) failed: …", "abandoned at its deadline", ….
    pub outcome: String,
}

impl Running {
    fn overdue(&self, now: Instant) -> Option<String> {
        let grace = crate::timeouts::cycle_grace(self.deadline);
        let ran = now.saturating_duration_since(self.started);
        (ran > self.deadline + grace).then(|| {
            format!(
                "cycle {} started at {} has run {:.1} s, past its deadline of {} s plus {} s of grace",
                self.number,
                self.started_at.strftime("%H:%M:%S UTC"),
                ran.as_secs_f64(),
                self.deadline.as_secs(),
                grace.as_secs()
            )
        })
    }
}

impl Health {
    /// `None` when healthy, else the one-line reason for a 503.
    /// `git_busy` says whether an abandoned cycle's git work still runs.
    pub fn problem(&mut self, now: Instant, git_busy: bool) -> Option<String> {
        if let Some(reason) = &self.scheduler_stopped {
            return Some(format!("the scheduler stopped: {reason}"));
        }
        let overdue = self
            .running
            .as_ref()
            .and_then(|r| r.overdue(now))
            .or_else(|| {
                self.abandoned
                    .as_ref()
                    .filter(|_| git_busy)
                    .and_then(|r| r.overdue(now))
                    .map(|reason| {
                        format!("{reason} (abandoned; its git operation is still running)")
                    })
            });
        if let Some(reason) = overdue {
            self.stuck = Some(reason);
        }
        self.stuck.clone()
    }

    /// `None` when ready, else why not.
    pub fn unready(&self) -> Option<String> {
        if !self.first_cycle_done {
            return Some("no cycle has completed yet".into());
        }
        self.workspace_error
            .as_ref()
            .map(|e| format!("the work directory cannot be used: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(started: Instant, deadline: u64) -> Running {
        Running {
            abandoned_while: None,
            number: 3,
            started,
            started_at: jiff::Timestamp::UNIX_EPOCH,
            deadline: Duration::from_secs(deadline),
        }
    }

    #[test]
    fn a_cycle_past_deadline_and_grace_is_unhealthy_until_one_completes() {
        let start = Instant::now();
        let mut health = Health {
            running: Some(running(start, 4)),
            ..Health::default()
        };
        assert_eq!(health.problem(start + Duration::from_secs(4), false), None);
        let reason = health
            .problem(start + Duration::from_secs(6), false)
            .unwrap();
        assert!(
            reason.starts_with(
                "cycle 3 started at 00:00:00 UTC has run 6.0 s, past its deadline of 4 s plus 1 s"
            ),
            "{reason}"
        );
        // Abandoned: still unhealthy while its git work runs, latched after.
        health.running = None;
        health.abandoned = Some(running(start, 4));
        assert!(health
            .problem(start + Duration::from_secs(7), true)
            .is_some());
        assert!(
            health
                .problem(start + Duration::from_secs(8), false)
                .is_some(),
            "latched"
        );
        health.stuck = None;
        assert_eq!(health.problem(start + Duration::from_secs(9), false), None);
    }

    #[test]
    fn a_stopped_scheduler_is_unhealthy() {
        let mut health = Health {
            scheduler_stopped: Some("it panicked: boom".into()),
            ..Health::default()
        };
        assert_eq!(
            health.problem(Instant::now(), false).as_deref(),
            Some("the scheduler stopped: it panicked: boom")
        );
    }

    #[test]
    fn readiness_needs_a_cycle_and_a_usable_workdir() {
        let mut health = Health::default();
        assert!(health.unready().is_some());
        health.first_cycle_done = true;
        assert_eq!(health.unready(), None);
        health.workspace_error = Some("cannot clone".into());
        assert!(health.unready().unwrap().contains("cannot clone"));
    }
}
