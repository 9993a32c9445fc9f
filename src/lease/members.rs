//! Sharing several Leases between replicas: who the replicas are, and how
//! many Leases each should hold.
//!
//! A replica that holds nothing is invisible in the Leases themselves, so
//! with more than one Lease the replicas also keep a roster: one more
//! Lease, `<name>-members`, whose annotation `tidewatch.io/members` maps
//! each replica's identity to its latest heartbeat. As with the Leases, a
//! member is alive while its heartbeat is *seen to change* within a
//! window by the local clock; entries that stopped changing are pruned by
//! whoever writes next. Only get, create and update are used.
//!
//! The rules (all pure, below): the fair share is
//! `ceil(leases / live members)`; a replica takes a free Lease while it
//! holds less than its share, and more only when a Lease has been left
//! free for a while; a replica above its share, while another live member
//! is below it, gives one Lease back at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The annotation that holds the roster.
pub const ANNOTATION: &str = "tidewatch.io/members";

/// The roster Lease's name for leases named after `name`.
pub fn roster_name(name: &str) -> String {
    format!("{name}-members")
}

/// The roster written in `lease` (empty when absent or unreadable).
pub fn entries(lease: &Lease) -> BTreeMap<String, String> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION))
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// `lease` (or a new roster Lease named `name`) with `entries` written in.
pub fn with_entries(
    lease: Option<&Lease>,
    name: &str,
    entries: &BTreeMap<String, String>,
) -> Lease {
    let mut lease = lease.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        spec: None,
    });
    let text = serde_json::to_string(entries).unwrap_or_else(|_| "{}".into());
    lease
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ANNOTATION.to_string(), text);
    lease
}

/// The members this process has seen, and when each one's heartbeat last
/// changed by the local clock.
#[derive(Debug, Default)]
pub struct Roster {
    seen: HashMap<String, (String, Instant)>,
}

impl Roster {
    /// Records the roster read at `now`.
    pub fn saw(&mut self, entries: &BTreeMap<String, String>, now: Instant) {
        self.seen
            .retain(|identity, _| entries.contains_key(identity));
        for (identity, beat) in entries {
            match self.seen.get_mut(identity) {
                Some((last, _)) if last == beat => {}
                Some(slot) => *slot = (beat.clone(), now),
                None => {
                    self.seen.insert(identity.clone(), (beat.clone(), now));
                }
            }
        }
    }

    /// Members whose heartbeat changed within `window` of `now`, and `me`.
    pub fn live(&self, me: &str, now: Instant, window: Duration) -> BTreeSet<String> {
        let mut live: BTreeSet<String> = self
            .seen
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) < window)
            .map(|(identity, _)| identity.clone())
            .collect();
        live.insert(me.to_string());
        live
    }

    /// The roster to write: `me` with a new heartbeat, without the members
    /// whose heartbeat has not changed within `window`.
    pub fn next(
        &self,
        read: &BTreeMap<String, String>,
        me: &str,
        beat: String,
        now: Instant,
        window: Duration,
    ) -> BTreeMap<String, String> {
        let live = self.live(me, now, window);
        let mut out: BTreeMap<String, String> = read
            .iter()
            .filter(|(identity, _)| {
                // Not yet seen by this process: give it a window first.
                live.contains(*identity) || !self.seen.contains_key(*identity)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.insert(me.to_string(), beat);
        out
    }
}

/// Each member's fair share of `leases`.
pub fn fair_share(leases: usize, members: usize) -> usize {
    leases.div_ceil(members.max(1))
}

/// Whether to take a free Lease: below the share, or when it has been free
/// for `spare_wait` already (the members below their share had their turn).
pub fn may_take(held: usize, share: usize, free_for: Duration, spare_wait: Duration) -> bool {
    held < share || free_for >= spare_wait
}

/// Whether to give one Lease back: above the share while a live member
/// is below it (`held_by` counts the Leases each identity holds).
pub fn should_release(
    me: &str,
    held: usize,
    share: usize,
    live: &BTreeSet<String>,
    held_by: &HashMap<String, usize>,
) -> bool {
    held > share
        && live
            .iter()
            .any(|m| m != me && held_by.get(m).copied().unwrap_or(0) < share)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_roster_round_trips_through_the_annotation() {
        let roster = map(&[("a_1", "t1"), ("b_2", "t2")]);
        let lease = with_entries(None, "tidewatch-members", &roster);
        assert_eq!(lease.metadata.name.as_deref(), Some("tidewatch-members"));
        assert_eq!(entries(&lease), roster);
        assert!(entries(&Lease::default()).is_empty());
    }

    #[test]
    fn members_are_alive_while_their_heartbeat_changes() {
        let start = Instant::now();
        let window = Duration::from_secs(30);
        let mut roster = Roster::default();
        roster.saw(&map(&[("a", "1"), ("b", "1")]), start);
        let at = |s| start + Duration::from_secs(s);
        roster.saw(&map(&[("a", "2"), ("b", "1")]), at(20));
        assert_eq!(roster.live("me", at(25), window).len(), 3);
        // b's heartbeat has not changed for 30 s: gone, and pruned on write.
        let live = roster.live("me", at(31), window);
        assert!(live.contains("a") && !live.contains("b") && live.contains("me"));
        let next = roster.next(
            &map(&[("a", "2"), ("b", "1"), ("new", "1")]),
            "me",
            "9".into(),
            at(31),
            window,
        );
        assert_eq!(next, map(&[("a", "2"), ("me", "9"), ("new", "1")]));
    }

    #[test]
    fn fair_shares_over_several_leases() {
        assert_eq!(fair_share(1, 3), 1);
        assert_eq!(fair_share(10, 3), 4);
        assert_eq!(fair_share(10, 2), 5);
        assert_eq!(fair_share(10, 0), 10);
        let wait = Duration::from_secs(4);
        assert!(may_take(3, 4, Duration::ZERO, wait));
        assert!(!may_take(4, 4, Duration::from_secs(1), wait));
        assert!(
            may_take(4, 4, wait, wait),
            "left free: taken beyond the share"
        );
        let live: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let counts = |pairs: &[(&str, usize)]| -> HashMap<String, usize> {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        // 4/3/3 is balanced; 6/4/0 is not, and c is owed.
        assert!(!should_release(
            "a",
            4,
            4,
            &live,
            &counts(&[("a", 4), ("b", 3), ("c", 3)])
        ));
        assert!(should_release(
            "a",
            6,
            4,
            &live,
            &counts(&[("a", 6), ("b", 4)])
        ));
        assert!(!should_release(
            "a",
            6,
            4,
            &live,
            &counts(&[("a", 6), ("b", 4), ("c", 4)])
        ));
    }
}
