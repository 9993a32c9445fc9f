//! When a cycle must stop: a fixed bound (`server.cycleTimeout`) and, for a
//! replica under leader election, the moment its lease could be lost.
//!
//! The lease part moves: every successful renewal pushes it forward, so a
//! long cycle goes on as long as the replica keeps renewing, and stops the
//! moment a renewal has not succeeded within `renewDeadline`. Every check
//! of the deadline (git transfers, "no push starts after the deadline", the
//! executor, the scheduler's wait) reads the current value, so a replica
//! that cannot renew abandons its cycle before any push, while another
//! replica still has to wait `leaseDuration - renewDeadline` before it may
//! take the lease over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cycle's deadline: the earlier of a fixed instant and an optional
/// [`Horizon`]. Cheap to clone (the horizon is shared).
#[derive(Clone, Debug)]
pub struct Deadline {
    hard: Instant,
    horizon: Option<Horizon>,
}

impl From<Instant> for Deadline {
    fn from(hard: Instant) -> Deadline {
        Deadline::at(hard)
    }
}

impl Deadline {
    /// A deadline at a fixed instant.
    pub fn at(hard: Instant) -> Deadline {
        Deadline {
            hard,
            horizon: None,
        }
    }

    /// This deadline, also bounded by `horizon` (the lease).
    pub fn with_horizon(mut self, horizon: Horizon) -> Deadline {
        self.horizon = Some(horizon);
        self
    }

    /// The instant in force now: the fixed one, or the horizon when that
    /// is earlier (an unheld horizon is already past).
    pub fn instant(&self) -> Instant {
        match &self.horizon {
            None => self.hard,
            Some(h) => h.until().map_or(h.0.base, |until| until.min(self.hard)),
        }
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.instant()
    }

    /// The time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.instant().saturating_duration_since(Instant::now())
    }

    /// Whether it is the lease, not the fixed bound, that ended (or ends)
    /// this deadline: for messages that say which one to look at.
    pub fn lease_bound(&self) -> bool {
        self.horizon.is_some() && self.instant() < self.hard
    }
}

/// The moment until which a lease holder may work, shared between the
/// elector (which moves it) and every cycle that runs under it.
#[derive(Clone, Debug)]
pub struct Horizon(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Instants are stored as nanoseconds after this one (0: not held).
    base: Instant,
    until: AtomicU64,
}

impl Default for Horizon {
    fn default() -> Horizon {
        Horizon::new()
    }
}

impl Horizon {
    /// A horizon that is not held.
    pub fn new() -> Horizon {
        Horizon(Arc::new(Inner {
            // One nanosecond back, so that 0 is never a reachable instant.
            base: Instant::now()
                .checked_sub(Duration::from_nanos(1))
                .unwrap_or_else(Instant::now),
            until: AtomicU64::new(0),
        }))
    }

    /// Work may go on until `at`.
    pub fn extend_to(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.0.base).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX).max(1);
        self.0.until.store(nanos, Ordering::SeqCst);
    }

    /// Work must stop now.
    pub fn revoke(&self) {
        self.0.until.store(0, Ordering::SeqCst);
    }

    /// Until when work may go on; `None` when not held.
    pub fn until(&self) -> Option<Instant> {
        match self.0.until.load(Ordering::SeqCst) {
            0 => None,
            nanos => self.0.base.checked_add(Duration::from_nanos(nanos)),
        }
    }

    /// Whether work may go on at `now`.
    pub fn holds_at(&self, now: Instant) -> bool {
        self.until().is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_deadline_is_its_instant() {
        let now = Instant::now();
        let deadline = Deadline::at(now + Duration::from_secs(5));
        assert!(!deadline.passed());
        assert!(deadline.remaining() > Duration::from_secs(4));
        assert!(!deadline.lease_bound());
        assert!(Deadline::at(now).passed());
    }

    #[test]
    fn the_horizon_caps_and_moves_the_deadline() {
        let now = Instant::now();
        let horizon = Horizon::new();
        let deadline = Deadline::at(now + Duration::from_secs(600)).with_horizon(horizon.clone());
        // Not held: already past.
        assert!(deadline.passed());
        assert!(deadline.lease_bound());
        horizon.extend_to(now + Duration::from_secs(10));
        assert!(!deadline.passed());
        assert_eq!(deadline.instant(), now + Duration::from_secs(10));
        assert!(deadline.lease_bound());
        // A renewal moves it on; the fixed bound still caps it.
        horizon.extend_to(now + Duration::from_secs(900));
        assert_eq!(deadline.instant(), now + Duration::from_secs(600));
        assert!(!deadline.lease_bound());
        horizon.revoke();
        assert!(deadline.passed());
        assert!(!horizon.holds_at(now));
    }
}
