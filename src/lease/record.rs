//! client-go's leader-election decisions for one Lease, as pure functions
//! of what was observed and the local clock.
//!
//! Expiry is judged by *local observation*: a Lease is held for the
//! holder's `leaseDurationSeconds` after this process last saw its spec
//! change. The stored `renewTime` is only a change signal and is never
//! compared with the local clock, so clock skew between nodes does not
//! matter (only a difference in clock *rate* would).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

/// What this process last saw of one Lease.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// The object last read or written; it carries the `resourceVersion`
    /// the next write must present.
    pub lease: Option<Lease>,
    /// Local time at which the spec was last seen to change.
    pub changed_at: Option<Instant>,
}

impl Observation {
    /// Records `lease` as seen at `now`; the clock restarts only when its
    /// spec differs from the last one seen (or on the first sight).
    pub fn saw(&mut self, lease: Lease, now: Instant) {
        let changed = self.lease.as_ref().map(|l| &l.spec) != Some(&lease.spec);
        if changed || self.changed_at.is_none() {
            self.changed_at = Some(now);
        }
        self.lease = Some(lease);
    }

    /// The Lease does not exist.
    pub fn saw_none(&mut self) {
        self.lease = None;
        self.changed_at = None;
    }

    fn spec(&self) -> Option<&LeaseSpec> {
        self.lease.as_ref().and_then(|l| l.spec.as_ref())
    }

    /// The recorded holder, if the record names one (an empty
    /// `holderIdentity` is a released Lease).
    pub fn holder(&self) -> Option<&str> {
        self.spec()
            .and_then(|s| s.holder_identity.as_deref())
            .filter(|h| !h.is_empty())
    }

    /// When the recorded holder's term ends by this process's clock.
    pub fn expires_at(&self) -> Option<Instant> {
        let seconds = self.spec()?.lease_duration_seconds.unwrap_or(0).max(0);
        let seconds = u64::try_from(seconds).unwrap_or(0);
        self.changed_at?.checked_add(Duration::from_secs(seconds))
    }

    /// The holder, while its term runs at `now`.
    pub fn held_at(&self, now: Instant) -> Option<&str> {
        let holder = self.holder()?;
        self.expires_at()
            .is_some_and(|end| now < end)
            .then_some(holder)
    }
}

/// What to do after reading the Lease.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// It does not exist: POST this.
    Create(Lease),
    /// PUT this (it carries the `resourceVersion` read).
    Update(Lease),
    /// Someone else holds it and their term has not ended.
    HeldBy { holder: String, until: Instant },
}

/// The wall-clock time for `acquireTime`/`renewTime`, in microseconds as
/// the API server stores MicroTime (so that what is written compares equal
/// to what is read back).
pub fn micro_now() -> MicroTime {
    let now = jiff::Timestamp::now();
    MicroTime(jiff::Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now))
}

/// client-go's `tryAcquireOrRenew` after the GET: create when missing,
/// refuse while another holder's term runs, else write `me` as holder
/// (a renewal keeps `acquireTime` and `leaseTransitions`; a takeover
/// counts one more transition).
pub fn plan(
    me: &str,
    name: &str,
    observed: &Observation,
    lease_duration_seconds: i32,
    now: Instant,
    wall: MicroTime,
) -> Plan {
    let Some(lease) = &observed.lease else {
        return Plan::Create(Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(me.to_string()),
                lease_duration_seconds: Some(lease_duration_seconds),
                acquire_time: Some(wall.clone()),
                renew_time: Some(wall),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        });
    };
    if let Some(holder) = observed.held_at(now) {
        if holder != me {
            return Plan::HeldBy {
                holder: holder.to_string(),
                until: observed.expires_at().unwrap_or(now),
            };
        }
    }
    let mut spec = lease.spec.clone().unwrap_or_default();
    if observed.holder() != Some(me) {
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        spec.acquire_time = Some(wall.clone());
    }
    spec.holder_identity = Some(me.to_string());
    spec.lease_duration_seconds = Some(lease_duration_seconds);
    spec.renew_time = Some(wall);
    Plan::Update(Lease {
        metadata: lease.metadata.clone(),
        spec: Some(spec),
    })
}

/// The fast path of a holder: renew on the object of its own last write,
/// without reading first. `None` when the observation is not its own.
pub fn renewal(
    me: &str,
    observed: &Observation,
    lease_duration_seconds: i32,
    wall: MicroTime,
) -> Option<Lease> {
    if observed.holder() != Some(me) {
        return None;
    }
    let lease = observed.lease.as_ref()?;
    let mut spec = lease.spec.clone().unwrap_or_default();
    spec.lease_duration_seconds = Some(lease_duration_seconds);
    spec.renew_time = Some(wall);
    Some(Lease {
        metadata: lease.metadata.clone(),
        spec: Some(spec),
    })
}

/// client-go's release: the holder writes an empty `holderIdentity` and a
/// one-second duration, so that a standby may take over at once. `None`
/// when `me` does not hold the observed Lease.
pub fn release(me: &str, observed: &Observation, wall: MicroTime) -> Option<Lease> {
    if observed.holder() != Some(me) {
        return None;
    }
    let lease = observed.lease.as_ref()?;
    let mut spec = lease.spec.clone().unwrap_or_default();
    spec.holder_identity = Some(String::new());
    spec.lease_duration_seconds = Some(1);
    spec.acquire_time = Some(wall.clone());
    spec.renew_time = Some(wall);
    Some(Lease {
        metadata: lease.metadata.clone(),
        spec: Some(spec),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, seconds: i32, renewed: i64, version: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("tidewatch".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(seconds),
                renew_time: Some(MicroTime(jiff::Timestamp::from_second(renewed).unwrap())),
                acquire_time: Some(MicroTime(jiff::Timestamp::from_second(1).unwrap())),
                lease_transitions: Some(4),
                ..LeaseSpec::default()
            }),
        }
    }

    fn wall() -> MicroTime {
        MicroTime(jiff::Timestamp::from_second(100).unwrap())
    }

    #[test]
    fn a_missing_lease_is_created_with_me_as_holder() {
        let plan = plan(
            "a",
            "tidewatch",
            &Observation::default(),
            15,
            Instant::now(),
            wall(),
        );
        let Plan::Create(lease) = plan else {
            panic!("{plan:?}")
        };
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.acquire_time, spec.renew_time);
        assert_eq!(lease.metadata.name.as_deref(), Some("tidewatch"));
    }

    #[test]
    fn expiry_counts_from_when_the_change_was_seen_not_from_renew_time() {
        let start = Instant::now();
        let mut seen = Observation::default();
        // renewTime is decades old; what counts is that it was just seen.
        seen.saw(lease("b", 15, 5, "7"), start);
        let at = |s| start + Duration::from_secs(s);
        assert!(matches!(
            plan("a", "tidewatch", &seen, 15, at(14), wall()),
            Plan::HeldBy { ref holder, .. } if holder == "b"
        ));
        // The same record seen again does not restart the clock...
        seen.saw(lease("b", 15, 5, "7"), at(10));
        assert_eq!(seen.expires_at(), Some(at(15)));
        // ...a renewal does.
        seen.saw(lease("b", 15, 6, "8"), at(12));
        assert_eq!(seen.expires_at(), Some(at(27)));
        // Past the holder's own duration, it may be taken over.
        let Plan::Update(taken) = plan("a", "tidewatch", &seen, 10, at(27), wall()) else {
            panic!()
        };
        assert_eq!(taken.metadata.resource_version.as_deref(), Some("8"));
        let spec = taken.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(5));
        assert_eq!(spec.acquire_time, Some(wall()));
        assert_eq!(spec.lease_duration_seconds, Some(10));
    }

    #[test]
    fn the_holders_advertised_duration_counts_not_mine() {
        let start = Instant::now();
        let mut seen = Observation::default();
        seen.saw(lease("b", 60, 5, "7"), start);
        assert!(matches!(
            plan(
                "a",
                "tidewatch",
                &seen,
                15,
                start + Duration::from_secs(30),
                wall()
            ),
            Plan::HeldBy { .. }
        ));
    }

    #[test]
    fn renewing_keeps_acquire_time_and_transitions() {
        let mut seen = Observation::default();
        seen.saw(lease("a", 15, 5, "7"), Instant::now());
        let Plan::Update(renewed) = plan("a", "tidewatch", &seen, 15, Instant::now(), wall())
        else {
            panic!()
        };
        let spec = renewed.spec.unwrap();
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(
            spec.acquire_time,
            Some(MicroTime(jiff::Timestamp::from_second(1).unwrap()))
        );
        assert_eq!(spec.renew_time, Some(wall()));
        let fast = renewal("a", &seen, 15, wall()).unwrap();
        assert_eq!(fast.metadata.resource_version.as_deref(), Some("7"));
        assert!(renewal("b", &seen, 15, wall()).is_none());
    }

    #[test]
    fn a_released_lease_is_taken_at_once_and_counted() {
        let mut seen = Observation::default();
        seen.saw(lease("a", 15, 5, "7"), Instant::now());
        let released = release("a", &seen, wall()).unwrap();
        let spec = released.spec.clone().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some(""));
        assert_eq!(spec.lease_duration_seconds, Some(1));
        assert!(release("b", &seen, wall()).is_none());
        let mut other = Observation::default();
        other.saw(released, Instant::now());
        assert_eq!(other.holder(), None);
        let Plan::Update(taken) = plan("b", "tidewatch", &other, 15, Instant::now(), wall()) else {
            panic!()
        };
        assert_eq!(taken.spec.unwrap().lease_transitions, Some(5));
    }

    #[test]
    fn micro_time_has_whole_microseconds() {
        let MicroTime(t) = micro_now();
        assert_eq!(t.subsec_nanosecond() % 1000, 0);
    }
}
