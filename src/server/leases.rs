//! The service under leader election (`server.leaderElection`): which
//! Lease guards the repository, the readiness of a standby, and what the
//! status page and `/metrics` show of the Leases.
//!
//! Without `leaderElection` none of this runs: one replica, no calls to
//! the Kubernetes API.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use super::{AppState, ServerError};
use crate::config::Config;
use crate::deadline::Deadline;
use crate::lease::{self, Elector, Work};

/// The elector and the Lease of the environment repository.
pub struct Election {
    pub elector: Elector,
    /// The repository's Lease. With several repositories, each gets its own
    /// (the elector already shares a set of Leases fairly).
    pub key: String,
}

/// Starts leader election when the config asks for it.
pub async fn start(config: &Config) -> Result<Option<Arc<Election>>, ServerError> {
    let Some(settings) = config
        .server
        .as_ref()
        .and_then(|s| s.leader_election.as_ref())
    else {
        return Ok(None);
    };
    let settings = lease::Settings::from_config(settings).map_err(|problems| {
        ServerError::Config(
            problems
                .into_iter()
                .map(|p| format!("server.leaderElection.{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let key = settings.name.clone();
    let elector = Elector::start(settings, lease::identity(), vec![key.clone()])
        .await
        .map_err(|e| ServerError::Config(e.to_string()))?;
    Ok(Some(Arc::new(Election { elector, key })))
}

impl Election {
    /// Permission to run a cycle now, if this replica holds the Lease.
    pub fn work(&self) -> Option<Work> {
        self.elector.work(&self.key)
    }

    /// A cycle's deadline under `work`: the cycle timeout, capped by the
    /// moment the Lease could be lost (moved on by each renewal).
    pub fn deadline(hard: std::time::Instant, work: &Work) -> Deadline {
        Deadline::at(hard).with_horizon(work.horizon())
    }

    /// Waits until this replica's Leases change, the service stops, or a
    /// retry period passes.
    pub async fn wait_for_change(&self, state: &AppState) {
        let mut changed = self.elector.subscribe();
        changed.mark_unchanged();
        let period = self.elector.settings().retry_period;
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep(period) => {}
            _ = state.stop.notified() => {
                // Keep the stop for the scheduler's own check.
                state.stop.notify_one();
            }
        }
    }

    fn lease_name(&self) -> String {
        format!("{}/{}", self.elector.namespace(), self.key)
    }

    /// Why this replica is not ready: it does not hold the Lease.
    pub fn unready(&self) -> Option<String> {
        if self.elector.holds(&self.key) {
            return None;
        }
        let views = self.elector.views();
        let holder = views
            .iter()
            .find(|v| v.name == self.key)
            .and_then(|v| v.holder.clone());
        Some(match holder {
            Some(holder) => format!(
                "standby: the Lease {} is held by {holder}; this replica ({}) runs no cycles until it takes the Lease over",
                self.lease_name(),
                self.elector.identity()
            ),
            None => format!(
                "standby: the Lease {} is not held; this replica ({}) takes it over when it is free",
                self.lease_name(),
                self.elector.identity()
            ),
        })
    }

    /// `None` while the election runs, else why not (for `/healthz`).
    pub fn problem(&self) -> Option<String> {
        self.elector.problem()
    }

    /// The status page's section: each Lease and its holder.
    pub fn section(&self) -> String {
        let mut html = format!(
            "<h2>Leader election</h2><p>This replica is <code>{}</code>.</p><table><thead><tr><th>Lease</th><th>Holder</th><th>This replica</th></tr></thead><tbody>",
            escape(self.elector.identity())
        );
        for view in self.elector.views() {
            let holder = view.holder.as_deref().map_or_else(
                || "<span class=\"muted\">none</span>".to_string(),
                |h| format!("<code>{}</code>", escape(h)),
            );
            let mine = if view.mine {
                format!(
                    "holds it (renewed {})",
                    view.renewed_at
                        .map(|t| t.strftime("%H:%M:%S UTC").to_string())
                        .unwrap_or_default()
                )
            } else {
                "standby".to_string()
            };
            let error = view
                .error
                .as_deref()
                .map(|e| format!("<br><span class=\"error\">{}</span>", escape(e)))
                .unwrap_or_default();
            let _ = write!(
                html,
                "<tr><td data-label=\"Lease\">{}/{}</td><td data-label=\"Holder\">{holder}</td><td data-label=\"This replica\">{mine}{error}</td></tr>",
                escape(&view.namespace),
                escape(&view.name)
            );
        }
        html.push_str("</tbody></table>");
        html
    }

    /// Lines for `/metrics`: whether this replica holds each Lease.
    pub fn metrics(&self) -> String {
        let mut text = String::from(
            "# HELP tidewatch_lease_held Whether this replica holds the Lease and may run cycles under it.\n# TYPE tidewatch_lease_held gauge\n",
        );
        for view in self.elector.views() {
            let _ = writeln!(
                text,
                "tidewatch_lease_held{{lease=\"{}/{}\"}} {}",
                view.namespace,
                view.name,
                u8::from(view.mine)
            );
        }
        text
    }
}

/// How long the scheduler waits on a running cycle before it looks at the
/// deadline again (a lost Lease is noticed this quickly).
pub const DEADLINE_POLL: Duration = Duration::from_millis(250);

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
