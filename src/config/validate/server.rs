//! Checks of the `server` section: the cycle timeout and leader election.

use super::{Config, Reporter};

/// `server.cycleTimeout`: from a second to a day.
const CYCLE_TIMEOUT: (std::time::Duration, std::time::Duration) = (
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(86_400),
);

pub(super) fn check_server(config: &Config, report: &mut Reporter<'_>) {
    let Some(server) = &config.server else { return };
    if let Some(timeout) = &server.cycle_timeout {
        let (min, max) = CYCLE_TIMEOUT;
        if let Err(e) = crate::duration::parse_within(timeout, min, max, "the cycle timeout") {
            report.at_value(server.source, "server.cycleTimeout", e, None);
        }
    }
    if let Some(election) = &server.leader_election {
        for p in crate::lease::Settings::from_config(election)
            .err()
            .unwrap_or_default()
        {
            let path = format!("server.leaderElection.{}", p.field);
            report.at_value(server.source, &path, p.message, None);
        }
    }
}
