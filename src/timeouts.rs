//! Every time bound of tidewatch, in one place. Each network call, each
//! helper process and each cycle has one; the README's "Timeouts" table
//! lists them with the settings that change them.

use std::time::Duration;

/// Connecting to a git remote (libgit2's connect timeout, HTTP(S), SSH, git://).
pub const GIT_CONNECT: Duration = Duration::from_secs(10);
/// A git remote that sends or accepts nothing for this long fails the
/// operation (libgit2's per-read/write timeout). `repository.timeoutSeconds`.
pub const GIT_IO: Duration = Duration::from_secs(60);
/// One registry request, answer included. `registries[].timeoutSeconds`.
pub const REGISTRY_REQUEST: Duration = Duration::from_secs(30);
/// Connecting to a registry (never longer than the request timeout).
pub const REGISTRY_CONNECT: Duration = Duration::from_secs(10);
/// A `docker-credential-*` helper is killed after this long.
pub const CREDENTIAL_HELPER: Duration = Duration::from_secs(30);
/// Connecting to the forge API.
pub const FORGE_CONNECT: Duration = Duration::from_secs(10);
/// One forge API request, answer included. `repository.github.timeoutSeconds`.
pub const FORGE_REQUEST: Duration = Duration::from_secs(30);
/// A whole cycle. `server.cycleTimeout`.
pub const CYCLE: Duration = Duration::from_secs(600);
/// The HTTP server: a client must send its request headers within this.
pub const HTTP_HEADER_READ: Duration = Duration::from_secs(10);
/// The HTTP server: a request body must arrive within this.
pub const HTTP_BODY_READ: Duration = Duration::from_secs(30);
/// The HTTP server: an idle keep-alive connection is closed after this.
pub const HTTP_IDLE: Duration = Duration::from_secs(60);

/// How long past its deadline a cycle may still be finishing (a git
/// operation that cannot be interrupted) before `/healthz` reports the
/// service as stuck: a quarter of the deadline, between 1 s and 1 min.
pub fn cycle_grace(deadline: Duration) -> Duration {
    (deadline / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// A duration in seconds from a policy file, if it is a usable one
/// (validation rejects the others; this keeps a stray value from panicking).
pub fn from_seconds(seconds: Option<f64>, default: Duration) -> Duration {
    seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_is_a_quarter_within_bounds() {
        assert_eq!(
            cycle_grace(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(cycle_grace(Duration::from_secs(20)), Duration::from_secs(5));
        assert_eq!(cycle_grace(Duration::from_secs(2)), Duration::from_secs(1));
    }

    #[test]
    fn seconds_out_of_range_fall_back() {
        let d = Duration::from_secs(7);
        assert_eq!(from_seconds(Some(1e300), d), d);
        assert_eq!(from_seconds(Some(f64::NAN), d), d);
        assert_eq!(from_seconds(Some(-1.0), d), d);
        assert_eq!(from_seconds(Some(0.5), d), Duration::from_millis(500));
        assert_eq!(from_seconds(None, d), d);
    }
}
