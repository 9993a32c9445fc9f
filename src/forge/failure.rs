//! What went wrong with one GitHub request, and whether (and how long) to
//! wait before sending it again.
//!
//! Only rate limiting is retried: a 403 or 429 that carries `Retry-After`,
//! an exhausted `x-ratelimit-remaining`, or a message about a (secondary)
//! rate limit. Everything else, including 5xx answers to writes that GitHub
//! may already have carried out, goes straight back to the caller.

use std::time::Duration;

/// How rate-limited requests are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// Retries after the first attempt; the call fails with
    /// [`super::ForgeError::RateLimited`] once they are used up.
    pub max_retries: u32,
    /// First wait when GitHub gives no `Retry-After`; doubled on each retry.
    /// GitHub asks integrators to wait at least a minute in that case.
    pub initial: Duration,
    /// Longest single wait. A `Retry-After` (or rate-limit reset) further away
    /// than this is not waited for: the call fails at once instead.
    pub max_wait: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            max_retries: 3,
            initial: Duration::from_secs(60),
            max_wait: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The exponential wait before retry number `retry` (0-based).
    fn exponential(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .unwrap_or(self.max_wait)
            .min(self.max_wait)
    }
}

/// One failed request, reduced to what the forge needs to decide and report.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// GitHub answered with an error status.
    Status {
        status: u16,
        message: String,
        /// The `message` (or the whole object) of each entry of `errors`.
        details: Vec<String>,
        retry_after: Option<Duration>,
        ratelimit_remaining: Option<u64>,
        /// Unix seconds at which the primary rate limit resets.
        ratelimit_reset: Option<u64>,
    },
    /// Still rate limited after the retries allowed by [`Backoff`].
    RateLimited {
        attempts: u32,
        retry_after: Option<Duration>,
    },
    /// The request never got an answer (connection, TLS, timeout).
    Transport(String),
    /// An answer came but its body was not what the GitHub API sends.
    Malformed(String),
    /// Anything else octocrab reported (JWT signing, URI building, ...).
    Other(String),
}

impl Failure {
    pub(crate) fn from_octocrab(error: octocrab::Error) -> Failure {
        match error {
            octocrab::Error::GitHub { source, .. } => {
                let header = |name: &str| -> Option<String> {
                    source
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(name))
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v.trim().to_string())
                };
                let details = source
                    .errors
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(
                        |entry| match entry.get("message").and_then(|m| m.as_str()) {
                            Some(message) => message.to_string(),
                            None => match entry.as_str() {
                                Some(text) => text.to_string(),
                                None => entry.to_string(),
                            },
                        },
                    )
                    .collect();
                Failure::Status {
                    status: source.status_code.as_u16(),
                    message: source.message.clone(),
                    details,
                    retry_after: header("retry-after")
                        .and_then(|v| parse_retry_after(&v, jiff::Timestamp::now())),
                    ratelimit_remaining: header("x-ratelimit-remaining")
                        .and_then(|v| v.parse().ok()),
                    ratelimit_reset: header("x-ratelimit-reset").and_then(|v| v.parse().ok()),
                }
            }
            error @ (octocrab::Error::Json { .. } | octocrab::Error::Serde { .. }) => {
                Failure::Malformed(error_chain(&error))
            }
            error @ (octocrab::Error::Hyper { .. }
            | octocrab::Error::Service { .. }
            | octocrab::Error::Http { .. }
            | octocrab::Error::Encoder { .. }
            | octocrab::Error::InvalidUtf8 { .. }) => Failure::Transport(error_chain(&error)),
            other => Failure::Other(error_chain(&other)),
        }
    }

    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Failure::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// GitHub's message and error details in one line, for errors and matching.
    pub(crate) fn text(&self) -> String {
        match self {
            Failure::Status {
                message, details, ..
            } => {
                let mut text = message.clone();
                for detail in details {
                    if !text.contains(detail.as_str()) {
                        text.push_str(": ");
                        text.push_str(detail);
                    }
                }
                text
            }
            Failure::RateLimited { .. } => "rate limited".to_string(),
            Failure::Transport(text) | Failure::Malformed(text) | Failure::Other(text) => {
                text.clone()
            }
        }
    }

    /// Whether this is HTTP `status` whose message or details contain
    /// `needle` (case-insensitive).
    pub(crate) fn is(&self, status: u16, needle: &str) -> bool {
        self.status() == Some(status)
            && self
                .text()
                .to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase())
    }

    /// `None` when this is not rate limiting; otherwise how long to wait
    /// before retry number `retry` (0-based) and whether GitHub named that
    /// wait itself.
    pub(crate) fn rate_limit_wait(
        &self,
        retry: u32,
        backoff: &Backoff,
        now_unix: u64,
    ) -> Option<RateLimitWait> {
        let Failure::Status {
            status,
            retry_after,
            ratelimit_remaining,
            ratelimit_reset,
            ..
        } = self
        else {
            return None;
        };
        if *status != 403 && *status != 429 {
            return None;
        }
        if let Some(wait) = retry_after {
            return Some(RateLimitWait {
                wait: *wait,
                from_github: true,
            });
        }
        if *ratelimit_remaining == Some(0) {
            if let Some(reset) = ratelimit_reset {
                return Some(RateLimitWait {
                    wait: Duration::from_secs(reset.saturating_sub(now_unix).saturating_add(1)),
                    from_github: true,
                });
            }
        }
        let text = self.text().to_ascii_lowercase();
        if *status == 429 || text.contains("rate limit") {
            return Some(RateLimitWait {
                wait: backoff.exponential(retry),
                from_github: false,
            });
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimitWait {
    pub(crate) wait: Duration,
    /// The wait came from `Retry-After` or the rate-limit reset header.
    pub(crate) from_github: bool,
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let seconds = when.as_second().saturating_sub(now.as_second());
    Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

/// An error and its sources on one line, each distinct part once, without
/// the backtraces some octocrab variants append to their `Display`.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        let text = err.to_string();
        let text = text
            .split("Found at")
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, message: &str) -> Failure {
        Failure::Status {
            status,
            message: message.to_string(),
            details: Vec::new(),
            retry_after: None,
            ratelimit_remaining: None,
            ratelimit_reset: None,
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = jiff::Timestamp::from_second(1_000_000).unwrap();
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let later = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&jiff::Timestamp::from_second(1_000_030).unwrap())
            .unwrap();
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let past = "Thu, 01 Jan 1970 00:00:01 GMT";
        assert_eq!(parse_retry_after(past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn only_rate_limits_are_waited_for() {
        let backoff = Backoff {
            max_retries: 3,
            initial: Duration::from_secs(2),
            max_wait: Duration::from_secs(5),
        };
        assert_eq!(
            status(403, "Resource not accessible by integration").rate_limit_wait(0, &backoff, 0),
            None
        );
        assert_eq!(
            status(422, "secondary rate limit").rate_limit_wait(0, &backoff, 0),
            None
        );
        let secondary = status(403, "You have exceeded a secondary rate limit.");
        assert_eq!(
            secondary.rate_limit_wait(0, &backoff, 0).map(|w| w.wait),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            secondary.rate_limit_wait(1, &backoff, 0).map(|w| w.wait),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            secondary.rate_limit_wait(2, &backoff, 0).map(|w| w.wait),
            Some(Duration::from_secs(5)),
            "capped at max_wait"
        );
        assert!(status(429, "").rate_limit_wait(0, &backoff, 0).is_some());

        let mut primary = status(403, "API rate limit exceeded");
        if let Failure::Status {
            ratelimit_remaining,
            ratelimit_reset,
            ..
        } = &mut primary
        {
            *ratelimit_remaining = Some(0);
            *ratelimit_reset = Some(1_000);
        }
        let wait = primary.rate_limit_wait(0, &backoff, 990).unwrap();
        assert_eq!(wait.wait, Duration::from_secs(11));
        assert!(wait.from_github);
    }

    #[test]
    fn matching_looks_at_details() {
        let failure = Failure::Status {
            status: 422,
            message: "Validation Failed".into(),
            details: vec!["A pull request already exists for acme:x.".into()],
            retry_after: None,
            ratelimit_remaining: None,
            ratelimit_reset: None,
        };
        assert!(failure.is(422, "a pull request already exists"));
        assert!(!failure.is(404, "a pull request already exists"));
        assert_eq!(
            failure.text(),
            "Validation Failed: A pull request already exists for acme:x."
        );
    }

    #[test]
    fn exponential_does_not_overflow() {
        let backoff = Backoff {
            max_retries: 100,
            initial: Duration::from_secs(60),
            max_wait: Duration::from_secs(300),
        };
        assert_eq!(backoff.exponential(40), Duration::from_secs(300));
    }
}
