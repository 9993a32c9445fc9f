//! The service's counters, rendered in the Prometheus text format.
//! Labels carry policy, update, registry and error-kind names only.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::time::Duration;

use crate::engine::{CycleReport, EngineError, Outcome};
use crate::registry::Metrics as RegistryMetrics;

/// Upper bounds (seconds) of the cycle-duration histogram buckets.
const BUCKETS: [f64; 8] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Default, Debug)]
pub struct ServiceMetrics {
    cycles: u64,
    scans: BTreeMap<String, u64>,
    updates: BTreeMap<String, u64>,
    commits: u64,
    prs_opened: u64,
    prs_updated: u64,
    prs_closed: u64,
    errors: BTreeMap<String, u64>,
    bucket_counts: [u64; BUCKETS.len()],
    duration_sum: f64,
    last_success: BTreeMap<String, f64>,
    reclones: u64,
}

impl ServiceMetrics {
    pub fn record_error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
    }

    pub fn record_cycle(
        &mut self,
        due: &HashSet<String>,
        report: Option<&CycleReport>,
        error: Option<&EngineError>,
        took: Duration,
    ) {
        self.cycles += 1;
        let seconds = took.as_secs_f64();
        self.duration_sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.bucket_counts[i] += 1;
            }
        }
        for policy in due {
            *self.scans.entry(policy.clone()).or_default() += 1;
        }
        if error.is_some() {
            self.record_error("cycle");
        }
        let Some(report) = report else { return };
        self.reclones += u64::from(report.git.reclones);
        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        for policy in due {
            if !report.scan_errors.contains_key(policy) {
                self.last_success.insert(policy.clone(), now);
            }
        }
        for policy in report.scan_errors.keys() {
            if report.scanned.contains(policy) {
                self.record_error("registry");
            }
        }
        for update in &report.updates {
            match &update.outcome {
                Outcome::Committed { .. } => self.commits += 1,
                Outcome::PullRequestOpened { .. } => self.prs_opened += 1,
                Outcome::PullRequestUpdated { .. } => self.prs_updated += 1,
                Outcome::PullRequestClosed { .. } => self.prs_closed += 1,
                Outcome::Failed { .. } => self.record_error("delivery"),
                _ => {}
            }
            if matches!(
                update.outcome,
                Outcome::Committed { .. }
                    | Outcome::PullRequestOpened { .. }
                    | Outcome::PullRequestUpdated { .. }
            ) {
                for change in &update.changes {
                    *self.updates.entry(change.policy.clone()).or_default() += 1;
                }
            }
        }
    }

    pub fn render(&self, registry: &RegistryMetrics) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "# HELP tidewatch_cycles_total Cycles run.\n# TYPE tidewatch_cycles_total counter"
        );
        let _ = writeln!(text, "tidewatch_cycles_total {}", self.cycles);
        let section =
            |text: &mut String, name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
                let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (labels, value) in rows {
                    let _ = writeln!(text, "{name}{labels} {value}");
                }
            };
        let per = |map: &BTreeMap<String, u64>, label: &str| -> Vec<(String, String)> {
            map.iter()
                .map(|(k, v)| (format!("{{{label}=\"{}\"}}", escape(k)), v.to_string()))
                .collect()
        };
        section(
            &mut text,
            "tidewatch_scans_total",
            "counter",
            "Scans per image policy.",
            per(&self.scans, "policy"),
        );
        section(
            &mut text,
            "tidewatch_updates_total",
            "counter",
            "Changes delivered per image policy.",
            per(&self.updates, "policy"),
        );
        section(
            &mut text,
            "tidewatch_commits_total",
            "counter",
            "Direct commits pushed.",
            vec![(String::new(), self.commits.to_string())],
        );
        section(
            &mut text,
            "tidewatch_pull_requests_opened_total",
            "counter",
            "Pull requests opened.",
            vec![(String::new(), self.prs_opened.to_string())],
        );
        section(
            &mut text,
            "tidewatch_pull_requests_updated_total",
            "counter",
            "Pull requests updated.",
            vec![(String::new(), self.prs_updated.to_string())],
        );
        section(
            &mut text,
            "tidewatch_pull_requests_closed_total",
            "counter",
            "Pull requests closed as already applied.",
            vec![(String::new(), self.prs_closed.to_string())],
        );
        section(
            &mut text,
            "tidewatch_workdir_reclones_total",
            "counter",
            "Work directories found unusable and cloned afresh.",
            vec![(String::new(), self.reclones.to_string())],
        );
        section(
            &mut text,
            "tidewatch_errors_total",
            "counter",
            "Errors by kind.",
            per(&self.errors, "kind"),
        );
        let requests: Vec<(String, String)> = {
            let mut rows: BTreeMap<(String, String, String), u64> = BTreeMap::new();
            for r in registry.requests() {
                *rows.entry((r.host, r.method, r.status)).or_default() += r.count;
            }
            rows.into_iter()
                .map(|((host, method, status), n)| {
                    (
                        format!(
                            "{{registry=\"{}\",method=\"{}\",status=\"{}\"}}",
                            escape(&host),
                            escape(&method),
                            escape(&status)
                        ),
                        n.to_string(),
                    )
                })
                .collect()
        };
        section(
            &mut text,
            "tidewatch_registry_requests_total",
            "counter",
            "Registry requests by registry, method and status.",
            requests,
        );
        let (hits, misses) = registry.cache();
        section(
            &mut text,
            "tidewatch_metadata_cache_hits_total",
            "counter",
            "Metadata served from the digest cache.",
            vec![(String::new(), hits.to_string())],
        );
        section(
            &mut text,
            "tidewatch_metadata_cache_misses_total",
            "counter",
            "Metadata fetched from the registry.",
            vec![(String::new(), misses.to_string())],
        );
        let mut histogram: Vec<(String, String)> = BUCKETS
            .iter()
            .zip(self.bucket_counts)
            .map(|(bound, n)| (format!("_bucket{{le=\"{bound}\"}}"), n.to_string()))
            .collect();
        histogram.push(("_bucket{le=\"+Inf\"}".into(), self.cycles.to_string()));
        histogram.push(("_sum".into(), format!("{:.6}", self.duration_sum)));
        histogram.push(("_count".into(), self.cycles.to_string()));
        section(
            &mut text,
            "tidewatch_cycle_duration_seconds",
            "histogram",
            "Duration of cycles.",
            histogram,
        );
        let last: Vec<(String, String)> = self
            .last_success
            .iter()
            .map(|(k, v)| (format!("{{policy=\"{}\"}}", escape(k)), format!("{v:.3}")))
            .collect();
        section(
            &mut text,
            "tidewatch_last_successful_scan_timestamp_seconds",
            "gauge",
            "Unix time of the last successful scan per policy.",
            last,
        );
        text
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
