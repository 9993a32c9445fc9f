//! The elector: one task per Lease (and one for the roster when there are
//! several), the state they share with the service, and the [`Work`]
//! guard a cycle holds while it runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::api::LeaseApi;
use super::members::Roster;
use super::record::{self, Observation};
use super::{key, roster, LeaseError, Settings};
use crate::deadline::Horizon;

/// Leader election over a set of Leases.
pub struct Elector {
    inner: Arc<Inner>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

pub(super) struct Inner {
    pub identity: String,
    pub settings: Settings,
    pub api: LeaseApi,
    pub keys: Vec<Arc<Key>>,
    /// Who the replicas are (used with more than one Lease).
    pub roster: Mutex<Roster>,
    /// The roster has been read (or written) once: until then a replica
    /// with several Leases only observes, so that it does not take them all.
    pub roster_ready: AtomicBool,
    /// Bumped whenever this replica gains or loses a Lease.
    pub changed: watch::Sender<u64>,
    pub stopping: AtomicBool,
    pub stop: Notify,
}

/// One Lease.
pub(super) struct Key {
    pub name: String,
    pub horizon: Horizon,
    pub state: Mutex<KeyState>,
    /// Woken when a [`Work`] on this Lease ends (a release may proceed).
    pub idle: Notify,
}

#[derive(Debug, Default)]
pub(super) struct KeyState {
    pub observation: Observation,
    /// This replica holds the Lease (its last write made it the holder and
    /// it has not given up since).
    pub held: bool,
    /// The start of the last successful acquire or renew: local and wall time.
    pub renewed: Option<(Instant, jiff::Timestamp)>,
    /// Since when this replica has seen the Lease free (unheld or expired).
    pub free_since: Option<Instant>,
    /// Cycles running under this Lease.
    pub busy: usize,
    /// Giving the Lease back to balance the load: no new work starts.
    pub yielding: bool,
    /// The last failed call, for the status page.
    pub error: Option<String>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Key {
    pub fn state(&self) -> MutexGuard<'_, KeyState> {
        lock(&self.state)
    }
}

impl Inner {
    /// Lease names this replica holds.
    pub fn held_count(&self) -> usize {
        self.keys.iter().filter(|k| k.state().held).count()
    }

    pub fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// What the service shows of one Lease.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyView {
    pub namespace: String,
    pub name: String,
    /// The holder whose term runs, as this replica sees it.
    pub holder: Option<String>,
    /// This replica holds it and may work now.
    pub mine: bool,
    /// When this replica last renewed it (while it holds it).
    pub renewed_at: Option<jiff::Timestamp>,
    /// The last failed call to the API server, if the last one failed.
    pub error: Option<String>,
}

/// Permission to work under one Lease, for as long as its horizon holds.
/// While a `Work` lives, the Lease is not given back voluntarily.
pub struct Work {
    key: Arc<Key>,
}

impl Work {
    /// The moment the work must stop by (it moves with each renewal).
    pub fn horizon(&self) -> Horizon {
        self.key.horizon.clone()
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let mut state = self.key.state();
        state.busy = state.busy.saturating_sub(1);
        drop(state);
        self.key.idle.notify_one();
    }
}

impl Elector {
    /// Connects to the API server and starts electing on `names` (Lease
    /// names in the configured namespace) as `identity`.
    pub async fn start(
        settings: Settings,
        identity: String,
        names: Vec<String>,
    ) -> Result<Elector, LeaseError> {
        let api = LeaseApi::connect(settings.namespace.as_deref()).await?;
        Ok(Elector::with_api(settings, identity, names, api))
    }

    /// Starts electing through `api`.
    pub fn with_api(
        settings: Settings,
        identity: String,
        names: Vec<String>,
        api: LeaseApi,
    ) -> Elector {
        let keys: Vec<Arc<Key>> = names
            .into_iter()
            .map(|name| {
                Arc::new(Key {
                    name,
                    horizon: Horizon::new(),
                    state: Mutex::new(KeyState::default()),
                    idle: Notify::new(),
                })
            })
            .collect();
        let several = keys.len() > 1;
        let inner = Arc::new(Inner {
            identity,
            settings,
            api,
            keys,
            roster: Mutex::new(Roster::default()),
            roster_ready: AtomicBool::new(!several),
            changed: watch::channel(0).0,
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
        });
        tracing::info!(
            identity = %inner.identity,
            namespace = %inner.api.namespace(),
            leases = ?inner.keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            "leader election started"
        );
        let mut tasks: Vec<JoinHandle<()>> = inner
            .keys
            .iter()
            .map(|k| tokio::spawn(key::run(inner.clone(), k.clone())))
            .collect();
        if several {
            tasks.push(tokio::spawn(roster::run(inner.clone())));
        }
        Elector {
            inner,
            tasks: Mutex::new(tasks),
        }
    }

    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    pub fn namespace(&self) -> &str {
        self.inner.api.namespace()
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Changes whenever this replica gains or loses a Lease.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Permission to work under Lease `name` now, if this replica holds it.
    pub fn work(&self, name: &str) -> Option<Work> {
        let key = self.inner.keys.iter().find(|k| k.name == name)?;
        let mut state = key.state();
        if !state.held || state.yielding || !key.horizon.holds_at(Instant::now()) {
            return None;
        }
        state.busy += 1;
        Some(Work { key: key.clone() })
    }

    /// Whether this replica may work under Lease `name` now.
    pub fn holds(&self, name: &str) -> bool {
        self.inner
            .keys
            .iter()
            .any(|k| k.name == name && k.horizon.holds_at(Instant::now()))
    }

    /// Every Lease as this replica sees it.
    pub fn views(&self) -> Vec<KeyView> {
        let now = Instant::now();
        self.inner
            .keys
            .iter()
            .map(|k| {
                let state = k.state();
                let mine = state.held && k.horizon.holds_at(now);
                KeyView {
                    namespace: self.namespace().to_string(),
                    name: k.name.clone(),
                    holder: state.observation.held_at(now).map(str::to_string),
                    mine,
                    renewed_at: state.renewed.filter(|_| mine).map(|(_, wall)| wall),
                    error: state.error.clone(),
                }
            })
            .collect()
    }

    /// `None` while every election task runs, else why not.
    pub fn problem(&self) -> Option<String> {
        if self.inner.stopping.load(Ordering::SeqCst) {
            return None;
        }
        lock(&self.tasks)
            .iter()
            .any(JoinHandle::is_finished)
            .then(|| {
                "a leader-election task stopped; this replica no longer takes or renews Leases"
                    .to_string()
            })
    }

    /// Stops electing and gives back every Lease held (client-go's
    /// `ReleaseOnCancel`), so a standby takes over at once rather than after
    /// `leaseDuration`. Waits (up to `renewDeadline`) for running work to
    /// end first; call it after the last cycle.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.stopping.store(true, Ordering::SeqCst);
        inner.stop.notify_waiters();
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        let deadline = Instant::now() + inner.settings.renew_deadline;
        for key in &inner.keys {
            while key.state().busy > 0 && Instant::now() < deadline {
                let _ = tokio::time::timeout(Duration::from_millis(50), key.idle.notified()).await;
            }
            if key.state().busy > 0 {
                tracing::warn!(lease = %key.name, "work still running at shutdown; the Lease is left to expire");
                continue;
            }
            if key.state().held {
                key::release(inner, key, deadline).await;
            }
        }
        if inner.keys.len() > 1 {
            roster::leave(inner, deadline).await;
        }
    }
}

impl Drop for Elector {
    /// A dropped elector stops renewing (its Leases then expire; call
    /// [`Elector::shutdown`] first to give them back).
    fn drop(&mut self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

/// The record to write for a release, if this replica holds `key`.
pub(super) fn release_record(
    inner: &Inner,
    key: &Key,
) -> Option<k8s_openapi::api::coordination::v1::Lease> {
    record::release(
        &inner.identity,
        &key.state().observation,
        record::micro_now(),
    )
}
