//! What a cycle did, for `once`, the service's logs, metrics and status page.

use std::collections::BTreeMap;

use crate::forge::Decline;
use crate::git::GitStats;

/// One image moving to a new value in one update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub policy: String,
    pub image: String,
    pub old: String,
    pub new: String,
    pub files: Vec<String>,
}

/// What a cycle did for one update group (or pull-request head).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Git already holds every known pick.
    UpToDate,
    /// `--dry-run`: what would have been done, in the words of the plan.
    DryRun {
        intent: String,
    },
    Committed {
        branch: String,
        commit: String,
        attempts: u32,
    },
    /// Between planning and pushing, someone else made the same change.
    AlreadyDone {
        branch: String,
    },
    PullRequestOpened {
        number: u64,
        head: String,
    },
    PullRequestUpdated {
        number: u64,
        head: String,
    },
    PullRequestUnchanged {
        number: u64,
        head: String,
    },
    PullRequestClosed {
        number: u64,
        head: String,
    },
    /// Left exactly as it was, and why.
    Held {
        number: Option<u64>,
        reason: String,
    },
    Failed {
        error: String,
    },
}

impl Outcome {
    /// The outcome in one line, as `once` prints it.
    pub fn describe(&self) -> String {
        match self {
            Outcome::UpToDate => "up to date".to_string(),
            Outcome::DryRun { intent } => format!("dry run: would {intent}"),
            Outcome::Committed {
                branch,
                commit,
                attempts,
            } => format!(
                "committed {} to {branch} ({attempts} attempt(s))",
                &commit[..commit.len().min(12)]
            ),
            Outcome::AlreadyDone { branch } => format!("{branch} already has these changes"),
            Outcome::PullRequestOpened { number, head } => {
                format!("opened PR #{number} from {head}")
            }
            Outcome::PullRequestUpdated { number, .. } => format!("updated PR #{number}"),
            Outcome::PullRequestUnchanged { number, .. } => format!("PR #{number} is up to date"),
            Outcome::PullRequestClosed { number, .. } => {
                format!("closed PR #{number}: nothing left to change")
            }
            Outcome::Held {
                number: Some(number),
                reason,
            } => format!("held PR #{number} as it is: {reason}"),
            Outcome::Held {
                number: None,
                reason,
            } => format!("held: {reason}"),
            Outcome::Failed { error } => format!("FAILED: {error}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct UpdateReport {
    pub update: String,
    /// For pull requests, the head branch.
    pub head: Option<String>,
    pub changes: Vec<Change>,
    pub outcome: Outcome,
    /// Unknown policies, policies without a pick, files skipped or refused.
    pub notes: Vec<String>,
    /// Unified diff of the planned edits.
    pub diff: String,
    /// Per policy, the value in Git when the cycle looked (tag or digest).
    pub current: BTreeMap<String, String>,
    /// Per policy, the pick of this cycle.
    pub picks: BTreeMap<String, String>,
    /// Declined versions in force for this head.
    pub declines: Vec<Decline>,
    /// The plan's intent, described.
    pub intent: String,
    /// The gates' verdicts on candidates (`1.4.0 waits until …`).
    pub gates: Vec<super::GateLine>,
}

#[derive(Clone, Debug, Default)]
pub struct CycleReport {
    pub updates: Vec<UpdateReport>,
    /// Per policy used by some update: why it is unknown this cycle.
    pub scan_errors: BTreeMap<String, String>,
    /// Per policy: when its value was last observed (this cycle or carried).
    pub observed_at: BTreeMap<String, jiff::Timestamp>,
    /// Policies scanned at the registry this cycle.
    pub scanned: Vec<String>,
    pub git: GitStats,
    /// Why the work directory was cloned afresh during this cycle.
    pub reclones: Vec<String>,
    /// Writing requests sent to the forge during this cycle.
    pub forge_writes: u64,
    pub registry_requests: u64,
    /// An error that stopped the cycle before any update was planned (the
    /// environment repository could not be fetched).
    pub error: Option<String>,
}

impl CycleReport {
    /// True when anything failed or an input was unknown: `once` exits 1.
    pub fn has_failures(&self) -> bool {
        self.error.is_some()
            || !self.scan_errors.is_empty()
            || self
                .updates
                .iter()
                .any(|u| matches!(u.outcome, Outcome::Failed { .. }))
    }
}
