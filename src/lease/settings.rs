//! `server.leaderElection`, checked: the durations parsed and related to
//! each other as client-go requires, the names valid for the Kubernetes API.

use std::time::Duration;

use crate::config::LeaderElection;

/// Default Lease name.
pub const DEFAULT_NAME: &str = "tidewatch";
/// client-go's defaults for core clients.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// client-go's `JitterFactor`: the renew deadline must leave room for more
/// than one retry period, jittered.
pub const JITTER: f64 = 1.2;

/// `leaseDuration`: whole seconds (the Lease stores an integer), from 2 s
/// (room for a renew deadline and a retry below it) to an hour.
const LEASE_DURATION: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(3600));
/// `renewDeadline`: from a second to just under an hour.
const RENEW_DEADLINE: (Duration, Duration) =
    (Duration::from_millis(1000), Duration::from_secs(3599));
/// `retryPeriod`: from 100 ms to 10 minutes.
const RETRY_PERIOD: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(600));

/// Leader election, ready to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `None`: `POD_NAMESPACE`, else the client config's namespace.
    pub namespace: Option<String>,
    /// The Lease's name (the repository's Lease today; see `Elector`).
    pub name: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// A problem with one field of `server.leaderElection`.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The field, e.g. `renewDeadline`.
    pub field: &'static str,
    pub message: String,
}

impl Settings {
    /// Checks `config` and fills in the defaults; every problem is
    /// returned, each naming its field.
    pub fn from_config(config: &LeaderElection) -> Result<Settings, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut duration = |field: &'static str, text: &Option<String>, default, range| {
            let Some(text) = text else { return default };
            let (min, max) = range;
            match crate::duration::parse_within(text, min, max, &format!("`{field}`")) {
                Ok(d) => d,
                Err(message) => {
                    problems.push(Problem { field, message });
                    default
                }
            }
        };
        let lease_duration = duration(
            "leaseDuration",
            &config.lease_duration,
            DEFAULT_LEASE_DURATION,
            LEASE_DURATION,
        );
        let renew_deadline = duration(
            "renewDeadline",
            &config.renew_deadline,
            DEFAULT_RENEW_DEADLINE,
            RENEW_DEADLINE,
        );
        let retry_period = duration(
            "retryPeriod",
            &config.retry_period,
            DEFAULT_RETRY_PERIOD,
            RETRY_PERIOD,
        );
        if lease_duration.subsec_nanos() != 0 {
            problems.push(Problem {
                field: "leaseDuration",
                message: format!(
                    "`leaseDuration` must be a whole number of seconds (the Lease stores it as leaseDurationSeconds, an integer), not {}",
                    crate::duration::show(lease_duration)
                ),
            });
        }
        if renew_deadline >= lease_duration {
            problems.push(Problem {
                field: "renewDeadline",
                message: format!(
                    "`renewDeadline` ({}) must be less than `leaseDuration` ({}): a holder that cannot renew must stop before another replica may take the Lease over",
                    crate::duration::show(renew_deadline),
                    crate::duration::show(lease_duration)
                ),
            });
        }
        if retry_period.as_secs_f64() * JITTER >= renew_deadline.as_secs_f64() {
            problems.push(Problem {
                field: "retryPeriod",
                message: format!(
                    "`retryPeriod` ({}) must be less than `renewDeadline` ({}) divided by {JITTER}, so that a holder tries to renew more than once before it gives up",
                    crate::duration::show(retry_period),
                    crate::duration::show(renew_deadline)
                ),
            });
        }
        let name = config.name.clone().unwrap_or_else(|| DEFAULT_NAME.into());
        if let Err(why) = dns_subdomain(&name) {
            problems.push(Problem {
                field: "name",
                message: format!("`{name}` is not a valid Lease name: {why}"),
            });
        }
        if let Some(namespace) = &config.namespace {
            if let Err(why) = dns_label(namespace) {
                problems.push(Problem {
                    field: "namespace",
                    message: format!("`{namespace}` is not a valid namespace: {why}"),
                });
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Settings {
            namespace: config.namespace.clone(),
            name,
            lease_duration,
            renew_deadline,
            retry_period,
        })
    }

    /// `leaseDurationSeconds` as written into the Lease.
    pub fn lease_duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

/// A DNS-1123 subdomain, as Kubernetes requires of object names: at most
/// 253 characters, lowercase letters, digits, `-` and `.`, starting and
/// ending with a letter or digit (each dot-separated part, too).
pub fn dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("it must be 1 to 253 characters long".into());
    }
    for part in name.split('.') {
        label_chars(part).map_err(|e| {
            format!("{e} (lowercase letters, digits and '-', each '.'-separated part starting and ending with a letter or digit)")
        })?;
    }
    Ok(())
}

/// A DNS-1123 label, as Kubernetes requires of namespaces: at most 63
/// characters, lowercase letters, digits and `-`, starting and ending with
/// a letter or digit.
pub fn dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err("it must be 1 to 63 characters long".into());
    }
    label_chars(name).map_err(|e| {
        format!(
            "{e} (lowercase letters, digits and '-', starting and ending with a letter or digit)"
        )
    })
}

fn label_chars(part: &str) -> Result<(), String> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = !part.is_empty()
        && part.chars().all(|c| alnum(c) || c == '-')
        && part.starts_with(alnum)
        && part.ends_with(alnum);
    if ok {
        Ok(())
    } else {
        Err(format!("`{part}` is not allowed"))
    }
}

/// This replica's identity in the Lease: the pod's name (`POD_NAME`, from
/// the downward API) or the host name, and a random suffix, so that a
/// restarted container never mistakes its predecessor's Lease for its own.
pub fn identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| {
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned()
        });
    let base = if base.is_empty() {
        "tidewatch".to_string()
    } else {
        base
    };
    format!("{base}_{:08x}", fastrand::u32(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lease: &str, renew: &str, retry: &str) -> LeaderElection {
        LeaderElection {
            lease_duration: Some(lease.into()),
            renew_deadline: Some(renew.into()),
            retry_period: Some(retry.into()),
            ..LeaderElection::default()
        }
    }

    #[test]
    fn the_defaults_are_client_gos() {
        let settings = Settings::from_config(&LeaderElection::default()).unwrap();
        assert_eq!(settings.name, "tidewatch");
        assert_eq!(settings.namespace, None);
        assert_eq!(settings.lease_duration, Duration::from_secs(15));
        assert_eq!(settings.renew_deadline, Duration::from_secs(10));
        assert_eq!(settings.retry_period, Duration::from_secs(2));
        assert_eq!(settings.lease_duration_seconds(), 15);
    }

    #[test]
    fn the_durations_must_nest() {
        let problems = Settings::from_config(&config("10s", "10s", "9s")).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["renewDeadline", "retryPeriod"], "{problems:?}");
        assert!(problems[0]
            .message
            .contains("must be less than `leaseDuration` (10s)"));
        // client-go's jitter rule: 2 s * 1.2 >= 2.4 s.
        let problems = Settings::from_config(&config("5s", "2400ms", "2s")).unwrap_err();
        assert_eq!(problems[0].field, "retryPeriod");
        assert!(Settings::from_config(&config("3s", "2s", "500ms")).is_ok());
    }

    #[test]
    fn out_of_range_and_fractional_values_are_refused() {
        let problems = Settings::from_config(&config("1500ms", "1s", "100ms")).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.field == "leaseDuration" && p.message.contains("between 2s and 1h")),
            "{problems:?}"
        );
        let problems = Settings::from_config(&config("2500ms", "1s", "100ms")).unwrap_err();
        assert!(
            problems[0].message.contains("whole number of seconds"),
            "{problems:?}"
        );
        let problems = Settings::from_config(&config("15s", "10s", "10ms")).unwrap_err();
        assert_eq!(problems[0].field, "retryPeriod");
        let problems = Settings::from_config(&config("15s", "ten", "2s")).unwrap_err();
        assert!(
            problems[0].message.contains("is not a duration"),
            "{problems:?}"
        );
    }

    #[test]
    fn names_follow_kubernetes_rules() {
        let mut bad = LeaderElection {
            name: Some("Tidewatch_Lease".into()),
            namespace: Some("team.a".into()),
            ..LeaderElection::default()
        };
        let problems = Settings::from_config(&bad).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["name", "namespace"], "{problems:?}");
        bad.name = Some("tidewatch.fleet-a".into());
        bad.namespace = Some("team-a".into());
        assert!(Settings::from_config(&bad).is_ok());
        assert!(dns_label(&"a".repeat(64)).is_err());
        assert!(dns_subdomain("-a").is_err());
        assert!(dns_subdomain("a..b").is_err());
    }

    #[test]
    fn identities_carry_the_pod_name_and_differ() {
        let (a, b) = (identity(), identity());
        assert_ne!(a, b);
        let (base, suffix) = a.rsplit_once('_').unwrap();
        assert!(!base.is_empty());
        assert_eq!(suffix.len(), 8);
    }
}
