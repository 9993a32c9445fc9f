//! The one retry policy of the project: exponential backoff with jitter, and
//! the `Retry-After` header. The registry client, the git push loop and the
//! forge clients all wait through these two functions, so "how long until we
//! try again" has one answer and one set of tests.

use std::time::Duration;

/// Exponential backoff: `initial × 2^(retry)`, capped at `max`, optionally
/// spread by a random factor in [0.5, 1.0) so that many clients that failed
/// together do not come back together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait (before retry 0).
    pub initial: Duration,
    /// The longest single wait.
    pub max: Duration,
    /// Multiply each wait by a random factor in [0.5, 1.0).
    pub jitter: bool,
}

impl Backoff {
    /// The wait before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(30)).unwrap_or(u32::MAX);
        let base = self
            .initial
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max);
        if self.jitter {
            base.mul_f64(0.5 + fastrand::f64() / 2.0)
        } else {
            base
        }
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date, as the
/// wait from `now`. A date in the past is no wait; anything else is `None`.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_are_capped() {
        let backoff = Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(1),
            jitter: false,
        };
        let delays: Vec<u128> = (0..5).map(|r| backoff.delay(r).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_half_to_whole() {
        let backoff = Backoff {
            initial: Duration::from_millis(1000),
            max: Duration::from_secs(30),
            jitter: true,
        };
        for _ in 0..200 {
            let d = backoff.delay(0);
            assert!(
                d >= Duration::from_millis(500) && d < Duration::from_millis(1000),
                "{d:?}"
            );
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
        assert_eq!(parse_retry_after("-3", now), None);
    }
}
