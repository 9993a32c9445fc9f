//! What one cycle observed, as plain data: the input of the pure plan.
//!
//! Every input is either known (with what was seen) or unknown (with why).
//! The plan never reads an unknown as "nothing to do": a pull request whose
//! policies are not all known is held as it is.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::forge::{Decline, PullRequestInfo};
use crate::git::ForeignCommit;
use crate::manifest;
use crate::policy::TagMetadata;

/// What is known about one image policy this cycle.
#[derive(Clone, Debug)]
pub enum PolicyState {
    Known(Arc<Observation>),
    Unknown { reason: String },
}

impl PolicyState {
    pub fn known(&self) -> Option<&Observation> {
        match self {
            PolicyState::Known(observation) => Some(observation),
            PolicyState::Unknown { .. } => None,
        }
    }
}

/// A successful scan of a policy's repository.
#[derive(Clone, Debug)]
pub struct Observation {
    pub tags: Arc<Vec<String>>,
    /// Digests and build times of the tags the policy could use.
    pub metadata: HashMap<String, TagMetadata>,
    pub observed_at: jiff::Timestamp,
    /// Tags the registry listed that are not valid OCI tags (skipped).
    pub invalid_tags: usize,
}

/// Everything one cycle saw.
#[derive(Debug)]
pub struct Snapshot {
    /// By policy name: every image policy of the config.
    pub policies: BTreeMap<String, PolicyState>,
    /// One per update group, in config order.
    pub updates: Vec<UpdateView>,
    /// Digests of picked tags that pinned references need, looked up once
    /// per cycle: `(policy, tag)` → digest or why it is unknown.
    pub digests: HashMap<(String, String), Result<String, String>>,
}

/// What one update group's files and pull requests looked like.
#[derive(Debug)]
pub struct UpdateView {
    pub update: String,
    /// The files read (at the target branch, or the base when the branch
    /// does not exist yet), or why they could not be read.
    pub files: Result<FilesView, String>,
    /// Pull-request updates: one per head branch.
    pub heads: Vec<HeadView>,
}

/// The files of an update at one commit.
#[derive(Debug)]
pub struct FilesView {
    /// The branch whose tip was read.
    pub branch: String,
    pub tip: String,
    pub scan: manifest::Scan,
}

/// One pull-request head branch of an update.
#[derive(Debug)]
pub struct HeadView {
    pub head: String,
    /// The policy of a per-policy head (`{policy}` in the template).
    pub policy: Option<String>,
    /// The forge's view of this head, or why it could not be read.
    pub forge: Result<ForgeView, String>,
    /// The head branch on the remote, when it exists.
    pub branch: Option<HeadBranch>,
}

#[derive(Debug, Default)]
pub struct ForgeView {
    pub open: Option<PullRequestInfo>,
    /// Versions humans declined by closing this head's pull requests.
    pub declines: Vec<Decline>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadBranch {
    pub tip: String,
    /// Commits on it (beyond the base) that tidewatch did not make.
    pub foreign: Vec<ForeignCommit>,
}
