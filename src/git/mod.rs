//! A workspace over the GitOps environment repository, on libgit2 (`git2`).
//!
//! One [`Workspace`] is one non-bare clone of one remote (`origin`). A cycle
//! fetches, hard-resets the worktree to the remote tip of the target branch,
//! lets the caller edit files, commits everything that changed and pushes.
//! [`Workspace::commit_and_push_with_retry`] is that cycle made race-safe for
//! direct commits: a push rejected as non-fast-forward (someone pushed in
//! between) is answered by fetching, resetting and redoing the edit on the
//! new tip, never by force-pushing.
//!
//! The API is synchronous because libgit2 is: async callers run it in
//! `tokio::task::spawn_blocking` (a `Workspace` is `Send`).
//!
//! # Work directory
//!
//! Without an explicit `workdir` the clone lives in
//! `$XDG_CACHE_HOME/tidewatch/<repo name>-<hash of the URL>` (or
//! `$HOME/.cache/tidewatch/...`). The hash is over the URL with credentials
//! removed, so rotating a token keeps the clone. An existing clone is reused
//! when its `origin` points at the same (credential-free) URL; when it points
//! elsewhere, or the directory holds something that is not a clone,
//! [`Workspace::open`] fails rather than deleting a directory tidewatch may
//! not own. A new clone is made in a sibling temporary directory and renamed
//! into place, so an interrupted clone never leaves a half-made workspace.
//!
//! # Credentials
//!
//! Credentials are never written to disk: a token or password embedded in an
//! HTTPS URL is cut out (and used as if configured) and `origin` is the bare
//! URL. Every message and log shows URLs through [`redact_url`] and has
//! libgit2's text scrubbed of the configured secrets.
//!
//! SSH host keys are checked against `~/.ssh/known_hosts` by default (by
//! libgit2/libssh2), or against [`GitCredentials::known_hosts`] when set (by
//! tidewatch's own parser, which understands hashed entries, wildcards,
//! negation, `[host]:port` and `@revoked`); unknown and changed keys are
//! refused unless [`GitCredentials::accept_unknown_hosts`] is set. TLS
//! certificates are always verified by libgit2.

mod auth;
mod error;
mod history;
mod lock;
mod push;
mod url;
mod workspace;

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use git2::{AutotagOption, ErrorCode, FetchOptions, FetchPrune, Oid, Repository};

use crate::retry::Backoff;
use crate::secret::Secret;
use auth::{Auth, CallbackState};
use url::{RemoteUrl, Transport};

pub use error::GitError;
pub use history::{ForeignCommit, HeldCommit};
pub use lock::WorkdirLock;
pub use url::redact_url;

/// The refspec every fetch uses: all branches, force-updated, pruned.
const FETCH_REFSPEC: &str = "+refs/heads/*:refs/remotes/origin/*";
const REMOTE: &str = "origin";

/// How to authenticate to the remote. `file://` URLs and local paths need
/// none of it.
#[derive(Clone, Debug, Default)]
pub struct GitCredentials {
    /// HTTPS token, sent as basic auth with user `x-access-token` (GitHub's
    /// convention; a user name in the URL is used instead when present).
    pub token: Option<Secret>,
    /// SSH private key file, tried first for SSH remotes.
    pub ssh_key: Option<SshKey>,
    /// Ask ssh-agent (`SSH_AUTH_SOCK`) for a key, after `ssh_key`.
    pub ssh_agent: bool,
    /// known_hosts file to check SSH host keys against instead of
    /// `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// Accept any SSH host key. Off by default; turning it on makes the
    /// connection open to interception.
    pub accept_unknown_hosts: bool,
}

/// An SSH private key file and its passphrase.
#[derive(Clone, Debug)]
pub struct SshKey {
    pub path: PathBuf,
    pub passphrase: Option<Secret>,
}

/// Author and committer of tidewatch's commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

/// Bounds of [`Workspace::commit_and_push_with_retry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait after each rejection (the project's one backoff).
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            backoff: Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(5),
                jitter: true,
            },
        }
    }
}

/// What [`Workspace::open`] needs.
#[derive(Clone)]
pub struct WorkspaceOptions {
    /// `https://…`, `ssh://…`, `user@host:path`, `file://…` or a local path.
    /// Credentials embedded in an HTTPS URL are used but never stored.
    pub url: String,
    /// Where the clone lives; `None` for the default under the cache dir.
    pub workdir: Option<PathBuf>,
    pub credentials: GitCredentials,
    /// Shallow fetch depth; `None` (or a value below 1) fetches full
    /// history. Ignored for local remotes, whose transport cannot do
    /// shallow fetches (and does not need them).
    pub depth: Option<i32>,
    pub retry: RetryPolicy,
    /// Network operations still running at this deadline are abandoned
    /// (it may move: see [`crate::deadline`]).
    pub deadline: Option<crate::deadline::Deadline>,
}

impl WorkspaceOptions {
    /// Options for `url` with the defaults: cache workdir, no credentials,
    /// full history, 5 attempts from 200 ms.
    pub fn new(url: impl Into<String>) -> WorkspaceOptions {
        WorkspaceOptions {
            url: url.into(),
            workdir: None,
            credentials: GitCredentials::default(),
            depth: None,
            retry: RetryPolicy::default(),
            deadline: None,
        }
    }

    /// The work directory these options use (explicit, or under the cache).
    pub fn resolved_workdir(&self) -> Result<PathBuf, GitError> {
        let url = RemoteUrl::parse(&self.url);
        match &self.workdir {
            Some(path) => Ok(path.clone()),
            None => {
                let root = url::cache_root().ok_or_else(|| GitError::NoCacheDir {
                    url: url.display.clone(),
                })?;
                Ok(url::default_workdir(&root, &url.stored))
            }
        }
    }
}

impl std::fmt::Debug for WorkspaceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceOptions")
            .field("url", &redact_url(&self.url))
            .field("workdir", &self.workdir)
            .field("credentials", &self.credentials)
            .field("depth", &self.depth)
            .field("retry", &self.retry)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Network operations a [`Workspace`] made since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GitStats {
    /// Fresh clones made by [`Workspace::open`] (0 or 1).
    pub clones: u32,
    /// Fetches (the clone's own download is not counted here).
    pub fetches: u32,
    /// Push attempts, rejected ones and branch deletions included.
    pub pushes: u32,
    /// Work directories found unusable and cloned afresh.
    pub reclones: u32,
}

/// The result of a push that reached the remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// The remote branch now points at the pushed commit.
    Pushed,
    /// Refused because the remote branch moved on (not a fast-forward, or
    /// the ref changed during the push): fetch, redo the change, push again.
    /// Other refusals (hooks, branch protection) are [`GitError::PushRejected`].
    Rejected { reason: String },
}

/// The result of [`Workspace::commit_and_push_with_retry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryOutcome {
    /// This commit is now the tip of the branch on the remote.
    Committed { oid: Oid, attempts: u32 },
    /// The edit step found nothing to change (possibly because someone else
    /// pushed the same change meanwhile): nothing was committed or pushed.
    NothingToDo { attempts: u32 },
}

/// A clone of the environment repository; see the module docs.
pub struct Workspace {
    repo: Repository,
    /// Why the clone was made afresh since it was opened.
    reclones: Vec<String>,
    /// Network operations are abandoned once this passes (the cycle's).
    deadline: Option<crate::deadline::Deadline>,
    path: PathBuf,
    url: RemoteUrl,
    auth: Auth,
    depth: Option<i32>,
    retry: RetryPolicy,
    stats: GitStats,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("url", &self.url.display)
            .field("path", &self.path)
            .field("auth", &self.auth)
            .field("depth", &self.depth)
            .field("retry", &self.retry)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Sets libgit2's process-wide network timeouts, and stops it reading the
/// user's global, XDG and system git configuration (which could rewrite
/// URLs, add proxies or change line endings behind tidewatch's back).
///
/// Call once, at startup, before any thread that uses git exists: libgit2
/// keeps these in unsynchronised globals.
pub fn configure_process(connect: Duration, io: Duration) -> Result<(), GitError> {
    let millis = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1);
    let fail = |e: git2::Error| GitError::Process {
        detail: e.message().to_string(),
    };
    // SAFETY: called from `main` before the async runtime (and any other
    // thread) starts, as libgit2 requires for these global settings.
    unsafe {
        git2::opts::set_server_connect_timeout_in_milliseconds(millis(connect)).map_err(fail)?;
        git2::opts::set_server_timeout_in_milliseconds(millis(io)).map_err(fail)?;
        for level in [
            git2::ConfigLevel::Global,
            git2::ConfigLevel::XDG,
            git2::ConfigLevel::System,
        ] {
            git2::opts::set_search_path(level, "").map_err(fail)?;
        }
    }
    Ok(())
}

/// `message` with a `Signed-off-by: name <email>` trailer (DCO), added to an
/// existing trailer block or as a new paragraph, unless it is already there.
/// The result ends with one newline.
pub fn signed_off(message: &str, name: &str, email: &str) -> String {
    let trailer = format!("Signed-off-by: {name} <{email}>");
    let body = message.trim_end();
    if body.lines().any(|line| line.trim() == trailer) {
        return format!("{body}\n");
    }
    let in_trailer_block = match body.rsplit_once("\n\n") {
        Some((_, last)) => last.lines().all(is_trailer_line),
        None => false,
    };
    if body.is_empty() {
        format!("{trailer}\n")
    } else if in_trailer_block {
        format!("{body}\n{trailer}\n")
    } else {
        format!("{body}\n\n{trailer}\n")
    }
}

fn is_trailer_line(line: &str) -> bool {
    match line.split_once(": ") {
        Some((token, value)) => {
            !token.is_empty()
                && !value.trim().is_empty()
                && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        }
        None => false,
    }
}

fn valid_branch(branch: &str) -> Result<(), GitError> {
    if !branch.is_empty() && git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        Ok(())
    } else {
        Err(GitError::InvalidBranch {
            branch: branch.to_string(),
        })
    }
}

/// A failed network operation and what the callbacks saw during it.
struct Failure {
    error: git2::Error,
    state: CallbackState,
}

impl Failure {
    /// Authentication and host key problems get their own variants (with
    /// the callbacks' precise reason); everything else goes to `fallback`.
    fn into_error(
        self,
        url: &RemoteUrl,
        auth: &Auth,
        operation: &'static str,
        fallback: impl FnOnce(String) -> GitError,
    ) -> GitError {
        let detail = auth.scrub(self.error.message());
        if self.state.deadline_passed {
            return GitError::Deadline {
                url: url.display.clone(),
                operation,
            };
        }
        if let Some(failure) = self.state.host_key_failure {
            return GitError::HostKey {
                url: url.display.clone(),
                operation,
                detail: auth.scrub(&failure),
            };
        }
        if let Some(failure) = self.state.auth_failure {
            return GitError::Auth {
                url: url.display.clone(),
                operation,
                detail: auth.scrub(&failure),
            };
        }
        match self.error.code() {
            ErrorCode::Auth => GitError::Auth {
                url: url.display.clone(),
                operation,
                detail: format!("{detail}; check the configured credentials"),
            },
            ErrorCode::Certificate if url.transport == Transport::Ssh => GitError::HostKey {
                url: url.display.clone(),
                operation,
                detail: format!(
                    "{detail}: the server's key is not in {} or differs from it; verify the \
                     server's fingerprint and add it (ssh-keyscan HOST >> {}), configure \
                     known_hosts, or set accept_unknown_hosts (not recommended)",
                    auth.known_hosts_display(),
                    auth.known_hosts_display()
                ),
            },
            ErrorCode::Certificate => GitError::Tls {
                url: url.display.clone(),
                operation,
                detail,
            },
            ErrorCode::Timeout => GitError::Timeout {
                url: url.display.clone(),
                operation,
                detail,
            },
            _ if detail.contains("timed out") => GitError::Timeout {
                url: url.display.clone(),
                operation,
                detail,
            },
            _ => fallback(detail),
        }
    }
}

/// Fetches every branch of `origin` into `repo`.
fn fetch_into(
    repo: &Repository,
    url: &RemoteUrl,
    auth: &Auth,
    depth: Option<i32>,
    reflog: &str,
    deadline: Option<&crate::deadline::Deadline>,
) -> Result<(), Failure> {
    let state = RefCell::new(CallbackState::default());
    let result = {
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(auth.callbacks(&state, deadline))
            .prune(FetchPrune::On)
            .download_tags(AutotagOption::None);
        if let Some(depth) = depth {
            options.depth(depth);
        }
        repo.find_remote(REMOTE).and_then(|mut remote| {
            remote.fetch(
                &[FETCH_REFSPEC],
                Some(&mut options),
                Some(&format!("tidewatch: {reflog} {}", url.display)),
            )
        })
    };
    result.map_err(|error| Failure {
        error,
        state: state.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_off_adds_a_trailer_once() {
        assert_eq!(
            signed_off("Update app to 1.2.3", "Tide Bot", "bot@example.com"),
            "Update app to 1.2.3\n\nSigned-off-by: Tide Bot <bot@example.com>\n"
        );
        let once = signed_off("Subject\n\nBody text.\n", "A", "a@x");
        assert_eq!(once, "Subject\n\nBody text.\n\nSigned-off-by: A <a@x>\n");
        assert_eq!(signed_off(&once, "A", "a@x"), once);
        assert_eq!(
            signed_off("Subject\n\nCo-authored-by: B <b@x>", "A", "a@x"),
            "Subject\n\nCo-authored-by: B <b@x>\nSigned-off-by: A <a@x>\n"
        );
    }

    #[test]
    fn branch_names_are_validated() {
        assert!(valid_branch("main").is_ok());
        assert!(valid_branch("tidewatch/app-1.2.3").is_ok());
        assert!(valid_branch("").is_err());
        assert!(valid_branch("a..b").is_err());
        assert!(valid_branch("has space").is_err());
        let err = valid_branch("bad~name").unwrap_err().to_string();
        assert!(err.contains("bad~name"), "{err}");
    }

    #[test]
    fn options_debug_hides_credentials() {
        let mut options = WorkspaceOptions::new("https://bot:pa55word@example.com/env.git");
        options.credentials.token = Some(Secret::new("tok3n"));
        options.credentials.ssh_key = Some(SshKey {
            path: PathBuf::from("/keys/id"),
            passphrase: Some(Secret::new("s3cr3t-passphr4se")),
        });
        let debug = format!("{options:?}");
        for secret in ["pa55word", "tok3n", "s3cr3t-passphr4se"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("https://example.com/env.git"), "{debug}");
    }

    #[test]
    fn workspace_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Workspace>();
        assert_send::<GitError>();
    }
}
