//! Durations written in policy files (`30s`, `5m`, `1h30m`, `2d`), parsed
//! with jiff's friendly format. Days and weeks count as 24 and 168 hours:
//! these are intervals and ages, not calendar arithmetic.

use std::time::Duration;

use jiff::SpanRelativeTo;

/// Parses a non-negative duration such as `30s`, `5m`, `1h30m` or `3d`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let span: jiff::Span = trimmed.parse().map_err(|e| {
        format!("`{trimmed}` is not a duration ({e}); write a number and a unit, e.g. 30s, 5m, 1h or 2d")
    })?;
    if span.is_negative() {
        return Err(format!(
            "`{trimmed}` is negative; write a positive duration"
        ));
    }
    let signed = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|e| {
            format!("`{trimmed}` cannot be used as a duration ({e}); use s, m, h, d or w")
        })?;
    Duration::try_from(signed).map_err(|e| format!("`{trimmed}` is out of range ({e})"))
}

/// Parses a duration and checks it lies within `min..=max`; `what` names
/// the setting in the error.
pub fn parse_within(
    text: &str,
    min: Duration,
    max: Duration,
    what: &str,
) -> Result<Duration, String> {
    let duration = parse(text)?;
    if duration < min || duration > max {
        return Err(format!(
            "{what} must be between {} and {}, not `{}`",
            show(min),
            show(max),
            text.trim()
        ));
    }
    Ok(duration)
}

/// A duration in jiff's friendly form (`1h 30m`), for messages.
pub fn show(duration: Duration) -> String {
    match jiff::SignedDuration::try_from(duration) {
        Ok(signed) => format!("{signed:#}"),
        Err(_) => format!("{}s", duration.as_secs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_durations_with_days_as_24_hours() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("3d"), Ok(Duration::from_secs(3 * 86_400)));
        assert_eq!(parse("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse(" 2h "), Ok(Duration::from_secs(7200)));
        assert!(parse("5 minutes").is_ok());
        for bad in ["", "90", "5M", "-5m", "soon", "1mo"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_are_checked_with_a_clear_message() {
        let year = Duration::from_secs(365 * 86_400);
        let error = parse_within("1000000h", Duration::from_secs(1), year, "interval").unwrap_err();
        assert!(
            error.starts_with("interval must be between 1s and "),
            "{error}"
        );
        assert!(error.ends_with("not `1000000h`"), "{error}");
        assert!(parse_within("0s", Duration::from_secs(1), year, "interval").is_err());
        assert_eq!(
            parse_within("1h", Duration::from_secs(1), year, "interval"),
            Ok(Duration::from_secs(3600))
        );
    }
}
