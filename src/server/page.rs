//! The status page: what tidewatch sees and did, server-rendered HTML that
//! needs no JavaScript and reads on a phone (one column, wrapping tables).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write;

use super::health::LastCycle;
use crate::config::Config;
use crate::engine::{CycleReport, EngineError, GateLine, Outcome};
use crate::forge::Decline;

const RECENT_COMMITS: usize = 20;

#[derive(Debug, Default)]
struct PolicyStatus {
    image: String,
    last_scan: Option<jiff::Timestamp>,
    last_error: Option<String>,
    /// update → (value in Git, latest pick)
    per_update: BTreeMap<String, (String, String)>,
}

#[derive(Debug)]
pub struct Status {
    policies: BTreeMap<String, PolicyStatus>,
    /// head branch → (PR number, update, what tidewatch did with it)
    open_prs: BTreeMap<String, (u64, String, String)>,
    /// head branch (or update) → declined versions in force
    declines: BTreeMap<String, Vec<Decline>>,
    commits: VecDeque<(jiff::Timestamp, String, String, String)>,
    last_cycle_error: Option<String>,
    /// The last time the work directory was cloned afresh, and why.
    last_reclone: Option<(jiff::Timestamp, String)>,
    /// head branch (or update) → the gates' verdicts of its last cycle
    gates: BTreeMap<String, Vec<GateLine>>,
}

impl Status {
    pub fn new(config: &Config) -> Status {
        Status {
            policies: config
                .images
                .iter()
                .map(|i| {
                    (
                        i.name.clone(),
                        PolicyStatus {
                            image: i.image.clone(),
                            ..PolicyStatus::default()
                        },
                    )
                })
                .collect(),
            open_prs: BTreeMap::new(),
            declines: BTreeMap::new(),
            commits: VecDeque::new(),
            last_cycle_error: None,
            last_reclone: None,
            gates: BTreeMap::new(),
        }
    }

    pub fn record_cycle(
        &mut self,
        due: &HashSet<String>,
        result: &Result<CycleReport, EngineError>,
    ) {
        let now = jiff::Timestamp::now();
        let report = match result {
            Ok(r) => {
                self.last_cycle_error = None;
                r
            }
            Err(e) => {
                self.last_cycle_error = Some(e.to_string());
                for policy in due {
                    if let Some(p) = self.policies.get_mut(policy) {
                        p.last_scan = Some(now);
                        p.last_error = Some(e.to_string());
                    }
                }
                return;
            }
        };
        if let Some(reason) = report.reclones.last() {
            self.last_reclone = Some((now, reason.clone()));
        }
        for policy in &report.scanned {
            if let Some(p) = self.policies.get_mut(policy) {
                p.last_scan = Some(now);
                p.last_error = report.scan_errors.get(policy).cloned();
            }
        }
        for update in &report.updates {
            let key = update.head.clone().unwrap_or_else(|| update.update.clone());
            if update.gates.is_empty() {
                self.gates.remove(&key);
            } else {
                self.gates.insert(key.clone(), update.gates.clone());
            }
            if update.declines.is_empty() {
                self.declines.remove(&key);
            } else {
                self.declines.insert(key, update.declines.clone());
            }
            // After a direct commit, Git holds the pick.
            let committed = matches!(
                update.outcome,
                Outcome::Committed { .. } | Outcome::AlreadyDone { .. }
            );
            for (policy, current) in &update.current {
                if let Some(p) = self.policies.get_mut(policy) {
                    let pick = update.picks.get(policy).cloned().unwrap_or_default();
                    let in_git = if committed && !pick.is_empty() {
                        pick.clone()
                    } else {
                        current.clone()
                    };
                    p.per_update.insert(update.update.clone(), (in_git, pick));
                }
            }
            match &update.outcome {
                Outcome::Committed { branch, commit, .. } => {
                    self.commits.push_front((
                        now,
                        update.update.clone(),
                        branch.clone(),
                        commit.clone(),
                    ));
                    self.commits.truncate(RECENT_COMMITS);
                }
                Outcome::PullRequestOpened { number, head }
                | Outcome::PullRequestUpdated { number, head }
                | Outcome::PullRequestUnchanged { number, head } => {
                    self.open_prs.insert(
                        head.clone(),
                        (*number, update.update.clone(), update.outcome.describe()),
                    );
                }
                Outcome::Held {
                    number: Some(number),
                    ..
                } => {
                    if let Some(head) = &update.head {
                        self.open_prs.insert(
                            head.clone(),
                            (*number, update.update.clone(), update.outcome.describe()),
                        );
                    }
                }
                Outcome::PullRequestClosed { head, .. } => {
                    self.open_prs.remove(head);
                }
                Outcome::UpToDate => {
                    if let Some(head) = &update.head {
                        self.open_prs.remove(head);
                    }
                }
                Outcome::Failed { error } => {
                    for policy in update.current.keys() {
                        if let Some(p) = self.policies.get_mut(policy) {
                            p.last_error = Some(error.clone());
                        }
                    }
                }
                _ => {}
            }
        }
    }

    pub fn render(&self, last: Option<&LastCycle>) -> String {
        self.render_with(last, "")
    }

    /// The page with `sections` (ready HTML, e.g. the Leases and their
    /// holders) after the summary of the last cycle.
    pub fn render_with(&self, last: Option<&LastCycle>, sections: &str) -> String {
        let mut html = String::from(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>tidewatch</title><style>\
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;line-height:1.4}\
table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd;vertical-align:top;overflow-wrap:anywhere}\
.error{color:#b00020}.muted{color:#666}\
@media (max-width:40rem){table,thead,tbody,tr,th,td{display:block}thead{display:none}td{border:0;padding:.15rem 0}td[data-label]:not(:empty)::before{content:attr(data-label) \": \";color:#666}tr{border-bottom:1px solid #ddd;padding:.5rem 0}}\
</style></head><body><h1>tidewatch</h1>",
        );
        match last {
            Some(cycle) => {
                let _ = write!(
                    html,
                    "<p>Last cycle: #{} started {}, took {:.1} s, {}</p>",
                    cycle.number,
                    cycle.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    cycle.took.as_secs_f64(),
                    escape(&cycle.outcome)
                );
            }
            None => html.push_str("<p class=\"muted\">No cycle has completed yet.</p>"),
        }
        html.push_str(sections);
        if let Some((when, why)) = &self.last_reclone {
            let _ = write!(
                html,
                "<p>The work directory was cloned afresh at {}: {}</p>",
                when.strftime("%Y-%m-%d %H:%M:%S UTC"),
                escape(why)
            );
        }
        if let Some(e) = &self.last_cycle_error {
            let _ = write!(
                html,
                "<p class=\"error\">Last cycle failed: {}</p>",
                escape(e)
            );
        }
        html.push_str("<h2>Image policies</h2><table><thead><tr><th>Policy</th><th>Image</th><th>In Git / latest pick</th><th>Last scan</th><th>Last error</th></tr></thead><tbody>");
        for (name, p) in &self.policies {
            let values = if p.per_update.is_empty() {
                "<span class=\"muted\">not scanned yet</span>".to_string()
            } else {
                p.per_update
                    .iter()
                    .map(|(update, (current, pick))| {
                        format!(
                            "{}: {} → {}",
                            escape(update),
                            escape(current),
                            if pick.is_empty() {
                                "—".into()
                            } else {
                                escape(pick)
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("<br>")
            };
            let _ = write!(
                html,
                "<tr><td data-label=\"Policy\"><b>{}</b></td><td data-label=\"Image\">{}</td><td data-label=\"In Git → pick\">{}</td><td data-label=\"Last scan\">{}</td><td data-label=\"Last error\" class=\"error\">{}</td></tr>",
                escape(name),
                escape(&p.image),
                values,
                p.last_scan.map_or_else(
                    || "never".to_string(),
                    |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
                ),
                p.last_error.as_deref().map(escape).unwrap_or_default()
            );
        }
        html.push_str("</tbody></table><h2>Open pull requests</h2>");
        if self.open_prs.is_empty() {
            html.push_str("<p class=\"muted\">None.</p>");
        } else {
            html.push_str(
                "<table><thead><tr><th>PR</th><th>Update</th><th>Head</th><th>Last cycle</th></tr></thead><tbody>",
            );
            for (head, (number, update, state)) in &self.open_prs {
                let _ = write!(
                    html,
                    "<tr><td data-label=\"PR\">#{number}</td><td data-label=\"Update\">{}</td><td data-label=\"Head\">{}</td><td data-label=\"Last cycle\">{}</td></tr>",
                    escape(update),
                    escape(head),
                    escape(state)
                );
            }
            html.push_str("</tbody></table>");
        }
        render_gates(&mut html, &self.gates);
        html.push_str("<h2>Declined versions</h2>");
        if self.declines.is_empty() {
            html.push_str("<p class=\"muted\">None.</p>");
        } else {
            html.push_str("<table><thead><tr><th>Head</th><th>Policy</th><th>Version</th><th>PR</th><th>Closed</th></tr></thead><tbody>");
            for (head, declines) in &self.declines {
                for d in declines {
                    let _ = write!(
                        html,
                        "<tr><td data-label=\"Head\">{}</td><td data-label=\"Policy\">{}</td><td data-label=\"Version\"><code>{}</code></td><td data-label=\"PR\">#{}</td><td data-label=\"Closed\">{}</td></tr>",
                        escape(head),
                        escape(&d.policy),
                        escape(&d.version),
                        d.number,
                        escape(d.closed_at.as_deref().unwrap_or("—"))
                    );
                }
            }
            html.push_str("</tbody></table>");
        }
        html.push_str("<h2>Recent commits</h2>");
        if self.commits.is_empty() {
            html.push_str("<p class=\"muted\">None yet.</p>");
        } else {
            html.push_str("<table><thead><tr><th>When</th><th>Update</th><th>Branch</th><th>Commit</th></tr></thead><tbody>");
            for (when, update, branch, commit) in &self.commits {
                let _ = write!(
                    html,
                    "<tr><td data-label=\"When\">{}</td><td data-label=\"Update\">{}</td><td data-label=\"Branch\">{}</td><td data-label=\"Commit\"><code>{}</code></td></tr>",
                    when.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    escape(update),
                    escape(branch),
                    escape(&commit[..commit.len().min(12)])
                );
            }
            html.push_str("</tbody></table>");
        }
        html.push_str("</body></html>\n");
        html
    }
}

/// The gates' verdicts: why a version is (not yet) proposed.
fn render_gates(html: &mut String, gates: &BTreeMap<String, Vec<GateLine>>) {
    html.push_str("<h2>Gates</h2>");
    if gates.is_empty() {
        html.push_str("<p class=\"muted\">No gated candidates.</p>");
        return;
    }
    html.push_str("<table><thead><tr><th>Update</th><th>Policy</th><th>Candidate</th><th>Verdict</th></tr></thead><tbody>");
    for (update, lines) in gates {
        for line in lines {
            let _ = write!(
                html,
                "<tr><td data-label=\"Update\">{}</td><td data-label=\"Policy\">{}</td><td data-label=\"Candidate\"><code>{}</code></td><td data-label=\"Verdict\"{}>{}</td></tr>",
                escape(update),
                escape(&line.policy),
                escape(&line.candidate),
                if line.passed { "" } else { " class=\"muted\"" },
                escape(&line.verdict)
            );
        }
    }
    html.push_str("</tbody></table>");
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::UpdateReport;

    #[test]
    fn declines_and_holds_are_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.yaml");
        std::fs::write(
            &file,
            "repository: { url: 'file:///x' }\nimages:\n  - { name: app, image: ghcr.io/acme/app }\nupdates:\n  - { name: prod, paths: [envs], pullRequest: {} }\n",
        )
        .unwrap();
        let config = Config::load(&file).unwrap();
        let mut status = Status::new(&config);
        let report = CycleReport {
            updates: vec![UpdateReport {
                update: "prod".into(),
                head: Some("tidewatch/prod".into()),
                changes: Vec::new(),
                outcome: Outcome::Held {
                    number: Some(9),
                    reason: "policy app is unknown (registry down)".into(),
                },
                notes: Vec::new(),
                diff: String::new(),
                current: BTreeMap::new(),
                picks: BTreeMap::new(),
                declines: vec![Decline {
                    policy: "app".into(),
                    version: "1.2.0".into(),
                    number: 3,
                    closed_at: Some("2026-11-30T10:00:00Z".into()),
                }],
                intent: String::new(),
                gates: vec![GateLine {
                    policy: "app".into(),
                    candidate: "1.4.0".into(),
                    verdict: "waits until 2026-12-04T11:00:00Z (created 2026-12-01T11:00:00Z, minimumAge 3d)".into(),
                    passed: false,
                }],
            }],
            reclones: vec![
                "a stale lock file .git/index.lock was left by a process that was killed".into(),
            ],
            ..CycleReport::default()
        };
        status.record_cycle(&HashSet::new(), &Ok(report));
        let html = status.render(None);
        assert!(html.contains("<code>1.2.0</code></td><td data-label=\"PR\">#3</td><td data-label=\"Closed\">2026-11-30T10:00:00Z"), "{html}");
        assert!(
            html.contains("held PR #9 as it is: policy app is unknown (registry down)"),
            "{html}"
        );
        assert!(
            html.contains("<code>1.4.0</code></td><td data-label=\"Verdict\" class=\"muted\">waits until 2026-12-04T11:00:00Z"),
            "{html}"
        );
    }
}
