//! Errors of the git workspace. Every message names what it concerns (the
//! remote URL with credentials stripped, the branch, the directory) and what
//! to do; none contains a credential (libgit2's messages are scrubbed of
//! every configured secret before they are stored here).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "cannot choose a work directory for {url}: neither XDG_CACHE_HOME nor HOME is set; \
         set an explicit workdir"
    )]
    NoCacheDir { url: String },

    #[error("cannot {action} work directory {path} for {url}: {source}; check its permissions or choose another workdir")]
    Workdir {
        url: String,
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "work directory {path} for {url} exists, is not empty and is not a git repository; \
         remove it or choose another workdir"
    )]
    WorkdirNotEmpty { url: String, path: PathBuf },

    #[error(
        "work directory {path} holds a clone of {found}, not of {expected}; tidewatch does not \
         delete directories it did not create: remove {path} or choose another workdir"
    )]
    OriginMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },

    #[error(
        "cannot open the git repository in work directory {path}: {detail}; remove the \
         directory so tidewatch clones {url} afresh"
    )]
    Open {
        url: String,
        path: PathBuf,
        detail: String,
    },

    #[error("cloning {url} into {path} failed: {detail}; check that the URL is right and the repository reachable")]
    Clone {
        url: String,
        path: PathBuf,
        detail: String,
    },

    #[error("fetching from {url} failed: {detail}; check that the repository is reachable, tidewatch retries on the next cycle")]
    Fetch { url: String, detail: String },

    #[error("authentication to {url} failed while trying to {operation}: {detail}")]
    Auth {
        url: String,
        operation: &'static str,
        detail: String,
    },

    #[error("host key check for {url} failed while trying to {operation}: {detail}")]
    HostKey {
        url: String,
        operation: &'static str,
        detail: String,
    },

    #[error("TLS certificate of {url} was not accepted while trying to {operation}: {detail}; install the CA that signed it in the system trust store")]
    Tls {
        url: String,
        operation: &'static str,
        detail: String,
    },

    #[error(
        "neither branch {branch:?} nor base branch {base:?} exists on {url} (after fetching); \
         create the base branch on the remote or fix the configured branch names"
    )]
    BranchNotFound {
        url: String,
        branch: String,
        base: String,
    },

    #[error("{branch:?} is not a valid git branch name; fix the configured branch name")]
    InvalidBranch { branch: String },

    #[error("invalid commit identity {name:?} <{email}>: {detail}; fix the configured git author")]
    Identity {
        name: String,
        email: String,
        detail: String,
    },

    #[error("the commit message is empty; the edit step must describe its change")]
    EmptyMessage,

    #[error(
        "resetting work directory {path} to branch {branch:?} of {url} failed: {detail}; \
         remove the directory so tidewatch clones afresh"
    )]
    Reset {
        url: String,
        path: PathBuf,
        branch: String,
        detail: String,
    },

    #[error("committing in work directory {path} failed: {detail}; call reset_to first and check the worktree")]
    Commit { path: PathBuf, detail: String },

    #[error("pushing to branch {branch:?} of {url} failed: {detail}")]
    Push {
        url: String,
        branch: String,
        detail: String,
    },

    #[error(
        "{url} refused the push to branch {branch:?}: {reason}; check branch protection rules \
         and server hooks for that branch"
    )]
    PushRejected {
        url: String,
        branch: String,
        reason: String,
    },

    #[error("editing the worktree for branch {branch:?} of {url} failed, nothing was committed or pushed: {source:#}")]
    Edit {
        url: String,
        branch: String,
        #[source]
        source: anyhow::Error,
    },

    #[error(
        "branch {branch:?} of {url} is locked on the remote by {lock}: a push is running there, or one was killed and left its lock behind; if no push to {url} is running, delete {lock} on the remote (tidewatch tries again next cycle)"
    )]
    RemoteRefLocked {
        url: String,
        branch: String,
        lock: String,
    },

    #[error(
        "gave up pushing to branch {branch:?} of {url} after {attempts} attempts, each rejected \
         as not fast-forward (last: {last_reason}); the branch is changing too quickly, \
         tidewatch tries again next cycle"
    )]
    RetriesExhausted {
        url: String,
        branch: String,
        attempts: u32,
        last_reason: String,
    },

    #[error("the cycle's deadline passed while trying to {operation} {url}; the operation was abandoned with nothing pushed, and the next cycle starts again from the remote (raise `server.cycleTimeout` if this repository is slow; under leader election the deadline is also the moment the Lease could be lost, when renewing it failed)")]
    Deadline {
        url: String,
        operation: &'static str,
    },

    #[error("{url} did not answer in time while trying to {operation} ({detail}); check that the remote is reachable, or raise `repository.timeoutSeconds` if it is slow")]
    Timeout {
        url: String,
        operation: &'static str,
        detail: String,
    },

    #[error("cannot set up git: {detail}")]
    Process { detail: String },

    #[error("work directory {path} is in use by another tidewatch process (it holds the lock {lock}); two processes must not share a work directory: stop the other one or give this one another --workdir")]
    Locked { path: PathBuf, lock: PathBuf },

    #[error("reading the local clone of {url} failed while trying to {operation}: {detail}; remove the work directory so tidewatch clones afresh")]
    Repository {
        url: String,
        operation: &'static str,
        detail: String,
    },
}

impl GitError {
    /// True for failures of the local clone itself (not of the network or
    /// the remote): a re-clone is the cure.
    pub fn is_local_breakage(&self) -> bool {
        matches!(
            self,
            GitError::Reset { .. }
                | GitError::Repository { .. }
                | GitError::Open { .. }
                | GitError::Commit { .. }
        )
    }
}
