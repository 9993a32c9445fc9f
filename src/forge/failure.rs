//! What went wrong with one forge request, and whether (and how long) to
//! wait before sending it again.
//!
//! Only rate limiting is retried: a 403 or 429 that carries `Retry-After`,
//! an exhausted `x-ratelimit-remaining` (or `RateLimit-Remaining`), or a
//! message about a (secondary) rate limit. Everything else, including 5xx
//! answers to writes that the forge may already have carried out, goes
//! straight back to the caller.

use std::time::Duration;

use super::ForgeError;
use crate::retry::Backoff;

/// How rate-limited requests are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitRetry {
    /// Retries after the first attempt; the call fails with
    /// [`ForgeError::RateLimited`] once they are used up.
    pub max_retries: u32,
    /// The wait when the forge names none (GitHub asks integrators to wait
    /// at least a minute then), doubling per retry up to its `max`. A wait
    /// the forge names that is longer than `max` is not waited for: the
    /// call fails at once instead.
    pub backoff: Backoff,
}

impl Default for RateLimitRetry {
    fn default() -> RateLimitRetry {
        RateLimitRetry {
            max_retries: 3,
            backoff: Backoff {
                initial: Duration::from_secs(60),
                max: Duration::from_secs(300),
                jitter: false,
            },
        }
    }
}

/// One failed request, reduced to what the forge needs to decide and report.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The forge answered with an error status.
    Status {
        status: u16,
        message: String,
        /// Further messages (GitHub's `errors[]`, GitLab's arrays, …).
        details: Vec<String>,
        retry_after: Option<Duration>,
        ratelimit_remaining: Option<u64>,
        /// Unix seconds at which the rate limit resets.
        ratelimit_reset: Option<u64>,
    },
    /// Still rate limited after the retries allowed by [`RateLimitRetry`].
    RateLimited {
        attempts: u32,
        retry_after: Option<Duration>,
    },
    /// The request never got an answer (connection, TLS, timeout).
    Transport(String),
    /// An answer came but its body was not what the API sends.
    Malformed(String),
    /// Anything else the client reported (JWT signing, URI building, ...).
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimitWait {
    pub(crate) wait: Duration,
    /// The wait came from `Retry-After` or the rate-limit reset header.
    pub(crate) from_forge: bool,
}

impl Failure {
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Failure::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The forge's message and error details in one line.
    pub(crate) fn text(&self) -> String {
        match self {
            Failure::Status {
                message, details, ..
            } => {
                let mut text = message.clone();
                for detail in details {
                    if !text.contains(detail.as_str()) {
                        if !text.is_empty() {
                            text.push_str(": ");
                        }
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
    /// before retry number `retry` (0-based) and whether the forge named it.
    pub(crate) fn rate_limit_wait(
        &self,
        retry: u32,
        policy: &RateLimitRetry,
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
                from_forge: true,
            });
        }
        if *ratelimit_remaining == Some(0) {
            if let Some(reset) = ratelimit_reset {
                return Some(RateLimitWait {
                    wait: Duration::from_secs(reset.saturating_sub(now_unix).saturating_add(1)),
                    from_forge: true,
                });
            }
        }
        let text = self.text().to_ascii_lowercase();
        if *status == 429 || text.contains("rate limit") {
            return Some(RateLimitWait {
                wait: policy.backoff.delay(retry),
                from_forge: false,
            });
        }
        None
    }
}

/// Who a [`Failure`] concerns, to turn it into a [`ForgeError`].
pub(crate) struct Context<'a> {
    pub forge: &'a str,
    pub repo: &'a str,
    pub api_base: &'a str,
    /// The permissions this forge needs, for 403 answers.
    pub needed: &'a str,
    /// Added to 401 errors (e.g. GitHub App advice), starting with "; ".
    pub unauthorized_hint: &'a str,
    pub secrets: &'a [crate::secret::Secret],
}

impl Context<'_> {
    /// The user-facing error for `failure` while doing `action`.
    pub(crate) fn error(&self, action: &str, failure: Failure) -> ForgeError {
        let forge = self.forge.to_string();
        let repo = self.repo.to_string();
        let action = action.to_string();
        let scrub = |text: String| super::scrub(self.secrets, text);
        match failure {
            Failure::RateLimited {
                attempts,
                retry_after,
            } => ForgeError::RateLimited {
                forge,
                repo,
                action,
                attempts,
                retry_after,
            },
            Failure::Status { status, .. } => {
                let message = scrub(failure.text());
                match status {
                    401 => ForgeError::Unauthorized {
                        forge,
                        repo,
                        action,
                        status,
                        message,
                        hint: self.unauthorized_hint.to_string(),
                    },
                    403 => ForgeError::Forbidden {
                        forge,
                        repo,
                        action,
                        message,
                        needed: self.needed.to_string(),
                    },
                    404 => ForgeError::NotFound {
                        forge,
                        repo,
                        action,
                        message,
                    },
                    500..=599 => ForgeError::Server {
                        forge,
                        repo,
                        action,
                        status,
                        message,
                    },
                    _ => ForgeError::Rejected {
                        forge,
                        repo,
                        action,
                        status,
                        message,
                    },
                }
            }
            Failure::Transport(detail) => ForgeError::Transport {
                forge,
                repo,
                action,
                api_base: self.api_base.to_string(),
                detail: scrub(detail),
            },
            Failure::Malformed(detail) | Failure::Other(detail) => ForgeError::Malformed {
                forge,
                repo,
                action,
                detail: scrub(detail),
            },
        }
    }
}

/// An error and its sources on one line, each distinct part once, without
/// the backtraces some client errors append to their `Display`.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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

    fn policy() -> RateLimitRetry {
        RateLimitRetry {
            max_retries: 3,
            backoff: Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(5),
                jitter: false,
            },
        }
    }

    #[test]
    fn only_rate_limits_are_waited_for() {
        let policy = policy();
        assert_eq!(
            status(403, "Resource not accessible by integration").rate_limit_wait(0, &policy, 0),
            None
        );
        assert_eq!(
            status(422, "secondary rate limit").rate_limit_wait(0, &policy, 0),
            None
        );
        let secondary = status(403, "You have exceeded a secondary rate limit.");
        assert_eq!(
            secondary.rate_limit_wait(0, &policy, 0).map(|w| w.wait),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            secondary.rate_limit_wait(1, &policy, 0).map(|w| w.wait),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            secondary.rate_limit_wait(2, &policy, 0).map(|w| w.wait),
            Some(Duration::from_secs(5)),
            "capped"
        );
        assert!(status(429, "").rate_limit_wait(0, &policy, 0).is_some());

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
        let wait = primary.rate_limit_wait(0, &policy, 990).unwrap();
        assert_eq!(wait.wait, Duration::from_secs(11));
        assert!(wait.from_forge);
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
    fn errors_name_the_forge_and_scrub_secrets() {
        let secrets = [crate::secret::Secret::new("tok-123456")];
        let context = Context {
            forge: "GitLab",
            repo: "platform/fleet",
            api_base: "https://gitlab.example.com/api/v4/",
            needed: "the `api` scope",
            unauthorized_hint: "",
            secrets: &secrets,
        };
        let error = context.error("listing merge requests", status(503, "down tok-123456"));
        let text = error.to_string();
        assert!(text.starts_with("GitLab answered HTTP 503"), "{text}");
        assert!(!text.contains("tok-123456"), "{text}");
        let forbidden = context.error("x", status(403, "nope")).to_string();
        assert!(forbidden.contains("the `api` scope"), "{forbidden}");
    }
}
