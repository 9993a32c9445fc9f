//! What one cycle observed, as plain data: the input of the pure plan.
//!
//! Every input is either known (with what was seen) or unknown (with why).
//! The plan never reads an unknown as "nothing to do": a pull request whose
//! policies are not all known is held as it is.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::forge::{CommitState, Decline, PullRequestInfo};
use crate::gate::SignatureVerdict;
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
    /// The cycle's clock: minimum ages and soaks are measured against it,
    /// so the plan stays a pure function of what was observed.
    pub now: jiff::Timestamp,
    /// What the gates need to know about candidates (see `gating.rs`).
    pub gates: GateFacts,
}

/// Facts the gates decide on, each known or unknown with why. Keyed by
/// policy because the repository (and the trusted keys) are the policy's.
#[derive(Debug, Default)]
pub struct GateFacts {
    /// `(policy, digest)` → the image's config `created` (`None`: it has
    /// none).
    pub created: HashMap<(String, String), Result<Option<jiff::Timestamp>, String>>,
    /// `(policy, digest)` → the signature verdict under the policy's keys.
    pub signatures: HashMap<(String, String), Result<SignatureVerdict, String>>,
    /// `(source update, policy)` → what the source of a promotion holds.
    pub held: HashMap<(String, String), Result<SourceValue, String>>,
    /// Commit → its combined status on the forge (`None`: no status).
    pub statuses: HashMap<String, Result<Option<CommitState>, String>>,
}

/// What the source update of a promotion holds for one policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceValue {
    /// Its files hold no reference of the policy.
    Absent,
    /// Its files disagree: these values are all written.
    Several(Vec<String>),
    Held(Held),
}

/// One value held by a promotion's source, and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub tag: Option<String>,
    pub digest: Option<String>,
    /// The first commit of the source branch's history (walking back
    /// along first parents) from which on its files hold this value.
    pub commit: String,
    /// That commit's committer time.
    pub since: jiff::Timestamp,
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
