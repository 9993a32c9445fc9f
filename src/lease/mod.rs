//! Replicas on Kubernetes Leases (coordination.k8s.io/v1).
//!
//! A replica works on a repository only while it holds that repository's
//! Lease. The rules are client-go's leader election: a free or expired
//! Lease is taken with an optimistic write (the `resourceVersion` read is
//! sent back; a 409 means someone else won), the holder renews it every
//! `retryPeriod`, and a Lease is expired for a candidate `leaseDuration`
//! after the candidate last *saw it change* by its own clock.
//!
//! Unlike client-go, a holder's permission to work is a [`Horizon`]: the
//! start of its last successful renewal plus `renewDeadline`. Every cycle
//! runs under a [`Deadline`] capped by it, so a holder that cannot renew
//! stops (no push starts) at least `leaseDuration - renewDeadline` before
//! any other replica may take the Lease over. And a holder that reads the
//! Lease held by someone else stops at once.
//!
//! The elector handles a set of Leases (one per repository); with more
//! than one, replicas share them fairly (see [`members`]). The service
//! today has one repository and passes one Lease.
//!
//! [`Horizon`]: crate::deadline::Horizon
//! [`Deadline`]: crate::deadline::Deadline

pub mod api;
mod elector;
mod key;
pub mod members;
pub mod record;
mod roster;
pub mod settings;

pub use elector::{Elector, KeyView, Work};
pub use settings::{identity, Settings};

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("leader election is on (`server.leaderElection`), but no Kubernetes API client could be configured: {0}; run in a pod whose service account token is mounted (automountServiceAccountToken: true), or set KUBECONFIG to a kubeconfig file")]
    Connect(String),
}
