//! Pull requests on the forge that hosts the environment repository.
//!
//! The engine knows only the [`Forge`] trait: find the open pull request of
//! a head branch, list the closed ones, open, update, comment and close.
//! Each forge is a module behind it (today [`github`]). Their shared rules:
//!
//! * **One pull request per head.** Callers look for an open one first, and
//!   `create_pr` also turns the forge's "already exists" refusal into the
//!   existing pull request, never into a second one.
//! * **Never spin on a refusal.** "No commits between base and head" is
//!   [`ForgeError::NoCommits`]; no 4xx other than rate limiting is retried.
//! * **Rate limits are waited out, boundedly**, with the project's one
//!   backoff ([`crate::retry`]) and `Retry-After` parser (see [`RateLimitRetry`]).
//! * **No state of our own.** What a pull request proposes lives in a hidden
//!   block of its body ([`render_body`], [`parse_body`]); closed, unmerged
//!   ones that tidewatch did not close itself tell which versions a human
//!   declined ([`declines`]).
//! * **Tokens go to the configured API host only**, and never appear in
//!   errors or logs: every message is scrubbed of the known secrets.

mod body;
mod error;
mod failure;
pub mod github;

pub use body::{
    declines, mark_closed_by_tidewatch, parse_body, render_body, render_body_with_origins, Decline,
    PrChange, PrRecord, RecordedChange, CLOSED_BY_TIDEWATCH,
};
pub use error::ForgeError;
pub use failure::RateLimitRetry;
pub use github::{GitHub, GitHubAuth, GitHubOptions};

/// A pull request to open. `head` and `base` are branch names in the
/// repository itself (no `owner:` prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequestSpec {
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    /// User logins.
    pub reviewers: Vec<String>,
    /// Team slugs (without the organisation).
    pub team_reviewers: Vec<String>,
    pub assignees: Vec<String>,
    pub draft: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrState {
    Open,
    /// Closed without merging.
    Closed,
    Merged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestInfo {
    pub number: u64,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    /// The page for humans, else the API URL.
    pub url: String,
    pub state: PrState,
    /// When it was closed or merged (RFC 3339), as the forge reports it.
    pub closed_at: Option<String>,
}

/// The operations the engine needs from a forge. Every method names what
/// it was doing in its error; none retries a write that may have happened.
#[async_trait::async_trait]
pub trait Forge: Send + Sync + std::fmt::Debug {
    /// The forge and repository for messages, e.g. `GitHub acme/fleet`.
    fn describe(&self) -> String;

    /// The open pull request whose head is branch `head`.
    async fn open_pr_for_head(&self, head: &str) -> Result<Option<PullRequestInfo>, ForgeError>;

    /// Closed pull requests (merged or not) from branch `head`, newest first.
    async fn closed_prs_for_head(&self, head: &str) -> Result<Vec<PullRequestInfo>, ForgeError>;

    /// Opens a pull request with its labels, reviewers and assignees; an
    /// "already exists" answer resolves to the existing one.
    async fn create_pr(&self, spec: &PullRequestSpec) -> Result<PullRequestInfo, ForgeError>;

    /// Sets the title and body of pull request `number`.
    async fn update_pr(&self, number: u64, title: &str, body: &str) -> Result<(), ForgeError>;

    /// Adds a comment to pull request `number`.
    async fn comment(&self, number: u64, text: &str) -> Result<(), ForgeError>;

    /// Closes pull request `number` without merging it.
    async fn close_pr(&self, number: u64) -> Result<(), ForgeError>;

    /// The combined commit status of commit `sha` (what CI, Flux's
    /// notification-controller and Argo CD notifications write), or `None`
    /// when nothing has reported a status for it. Forges without commit
    /// statuses keep this default, which says so.
    async fn commit_status(&self, sha: &str) -> Result<Option<CommitState>, ForgeError> {
        let _ = sha;
        Err(ForgeError::Unsupported {
            forge: self.describe(),
            feature: "commit statuses".to_string(),
        })
    }

    /// Writing requests sent so far (each retry counted), for reports.
    fn write_calls(&self) -> u64;
}

/// A commit's combined status, in the words GitHub, GitLab and Gitea share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitState {
    Success,
    Pending,
    Failure,
    Error,
}

impl CommitState {
    /// The state as `requireStatus:` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitState::Success => "success",
            CommitState::Pending => "pending",
            CommitState::Failure => "failure",
            CommitState::Error => "error",
        }
    }
}

/// Scrubs every known secret (of at least 4 characters) out of `text`.
pub(crate) fn scrub(secrets: &[crate::secret::Secret], mut text: String) -> String {
    for secret in secrets {
        let value = secret.expose().trim();
        if value.len() >= 4 && text.contains(value) {
            text = text.replace(value, "***");
        }
    }
    text
}
