//! When the service scans a policy: every `interval` (with jitter, so many
//! policies on one registry do not fire together) or on a cron `schedule`.

use std::str::FromStr;
use std::time::Duration;

/// The default when a policy sets neither `schedule` nor `interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// The shortest interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest interval accepted: a year.
pub const MAX_INTERVAL: Duration = Duration::from_secs(365 * 86_400);

#[derive(Clone, Debug)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<cron::Schedule>),
}

impl Schedule {
    /// From a policy's `schedule` / `interval` (already validated).
    pub fn of(schedule: Option<&str>, interval: Option<&str>) -> Schedule {
        if let Some(cron) = schedule.and_then(|c| Schedule::parse_cron(c).ok()) {
            return cron;
        }
        Schedule::Every(
            interval
                .and_then(|i| Schedule::parse_interval(i).ok())
                .and_then(|s| match s {
                    Schedule::Every(d) => Some(d),
                    Schedule::Cron(_) => None,
                })
                .unwrap_or(DEFAULT_INTERVAL),
        )
    }

    /// `30s`, `5m`, `1h`, `2d` (jiff's friendly format); from one second
    /// to one year, so a typo can neither spin the scheduler nor stop it.
    pub fn parse_interval(text: &str) -> Result<Schedule, String> {
        crate::duration::parse_within(text, MIN_INTERVAL, MAX_INTERVAL, "the interval")
            .map(Schedule::Every)
    }

    /// A crontab expression: 5 fields (minute precision) or 6 with seconds.
    pub fn parse_cron(text: &str) -> Result<Schedule, String> {
        let fields = text.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {text}"),
            6 | 7 => text.to_string(),
            _ => {
                return Err(format!(
                    "`{text}` is not a cron expression; write 5 fields, e.g. `*/10 * * * *`"
                ))
            }
        };
        cron::Schedule::from_str(&full)
            .map(|s| Schedule::Cron(Box::new(s)))
            .map_err(|e| format!("`{text}` is not a valid cron expression: {e}"))
    }

    /// How long from now until the next scan. Intervals get up to 10 %
    /// jitter; `seed` spreads policies that share an interval.
    pub fn next_in(&self, seed: u64) -> Duration {
        match self {
            Schedule::Every(every) => {
                let spread = every.as_millis() as u64 / 10;
                let jitter = if spread == 0 { 0 } else { seed % spread };
                *every + Duration::from_millis(jitter)
            }
            Schedule::Cron(schedule) => schedule
                .upcoming(chrono::Utc)
                .next()
                .and_then(|at| (at - chrono::Utc::now()).to_std().ok())
                .unwrap_or(DEFAULT_INTERVAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert!(
            matches!(Schedule::parse_interval("30s"), Ok(Schedule::Every(d)) if d == Duration::from_secs(30))
        );
        assert!(
            matches!(Schedule::parse_interval("5m"), Ok(Schedule::Every(d)) if d == Duration::from_secs(300))
        );
        assert!(Schedule::parse_interval("5 minutes").is_ok());
        assert!(Schedule::parse_interval("0s").is_err());
        assert!(Schedule::parse_interval("1000000h").is_err());
        assert!(Schedule::parse_interval("5").is_err());
        let five = Schedule::parse_interval("5m").unwrap().next_in(12_345);
        assert!(
            five >= Duration::from_secs(300) && five < Duration::from_secs(330),
            "{five:?}"
        );
    }

    #[test]
    fn cron_expressions() {
        assert!(Schedule::parse_cron("*/10 * * * *").is_ok());
        assert!(Schedule::parse_cron("0 */10 * * * *").is_ok());
        assert!(Schedule::parse_cron("every day").is_err());
        let next = Schedule::parse_cron("* * * * *").unwrap().next_in(0);
        assert!(next <= Duration::from_secs(60), "{next:?}");
    }
}
