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
mod sha1;
mod url;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::build::CheckoutBuilder;
use git2::{
    AutotagOption, BranchType, ErrorCode, FetchOptions, FetchPrune, IndexAddOption, Oid,
    PushOptions, Repository, RepositoryInitOptions, ResetType, Signature,
};

use crate::secret::Secret;
use auth::{Auth, CallbackState};
use url::{RemoteUrl, Transport};

pub use error::GitError;
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
    /// Sleep after the first rejection; doubled after each further one.
    pub initial_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
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

/// Whether a per-ref push status from the server means "the branch moved,
/// fetch and try again" rather than a policy refusal.
fn is_stale(status: &str) -> bool {
    let status = status.to_ascii_lowercase();
    [
        "non-fast-forward",
        "fetch first",
        "stale info",
        "failed to lock",
        "cannot lock ref",
        "incorrect old value",
    ]
    .iter()
    .any(|needle| status.contains(needle))
}

impl Workspace {
    /// Opens the workspace for `options.url`: reuses the clone in the work
    /// directory when there is one for this URL, else clones into it. A
    /// fresh clone has fetched every branch but checked nothing out; call
    /// [`Workspace::reset_to`] (or the retry loop) before editing.
    pub fn open(options: WorkspaceOptions) -> Result<Workspace, GitError> {
        let url = RemoteUrl::parse(&options.url);
        let auth = Auth::new(&options.credentials, &url, &options.url);
        let path = match options.workdir {
            Some(path) => path,
            None => {
                let root = url::cache_root().ok_or_else(|| GitError::NoCacheDir {
                    url: url.display.clone(),
                })?;
                url::default_workdir(&root, &url.stored)
            }
        };
        let depth = match options.depth {
            Some(depth) if depth > 0 && url.transport == Transport::Local => {
                tracing::debug!(
                    url = %url.display,
                    depth,
                    "ignoring the shallow depth: local remotes are always fetched in full"
                );
                None
            }
            Some(depth) if depth > 0 => Some(depth),
            _ => None,
        };
        let mut stats = GitStats::default();
        let repo = if path.join(".git").exists() {
            reuse(&path, &url)?
        } else {
            let repo = clone(&path, &url, &auth, depth)?;
            stats.clones += 1;
            repo
        };
        Ok(Workspace {
            repo,
            path,
            url,
            auth,
            depth,
            retry: options.retry,
            stats,
        })
    }

    /// The worktree, where the caller edits files.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The remote URL as shown in messages (credentials removed).
    pub fn url(&self) -> &str {
        &self.url.display
    }

    /// Network operations made so far.
    pub fn stats(&self) -> GitStats {
        self.stats
    }

    /// Fetches every branch of `origin` into `refs/remotes/origin/*`,
    /// pruning branches deleted on the remote; only new objects travel.
    pub fn fetch(&mut self) -> Result<(), GitError> {
        self.stats.fetches += 1;
        fetch_into(&self.repo, &self.url, &self.auth, self.depth, "fetch").map_err(|failure| {
            failure.into_error(&self.url, &self.auth, "fetch", |detail| GitError::Fetch {
                url: self.url.display.clone(),
                detail,
            })
        })?;
        tracing::debug!(url = %self.url.display, "fetched");
        Ok(())
    }

    /// The commit `branch` pointed at on the remote as of the last fetch (or
    /// push from this workspace); `None` when the branch does not exist.
    pub fn remote_tip(&self, branch: &str) -> Result<Option<Oid>, GitError> {
        valid_branch(branch)?;
        match self
            .repo
            .find_branch(&format!("{REMOTE}/{branch}"), BranchType::Remote)
        {
            Ok(found) => match found.get().resolve() {
                Ok(reference) => Ok(reference.target()),
                Err(err) => Err(self.repo_error("read a remote-tracking branch", &err)),
            },
            Err(err) if err.code() == ErrorCode::NotFound => Ok(None),
            Err(err) => Err(self.repo_error("read a remote-tracking branch", &err)),
        }
    }

    /// True when the remote `branch` already holds the same change as the
    /// local commit `oid`: a tip with the same parents and the same tree.
    /// A pull-request branch rebuilt on an unchanged base then needs no push,
    /// so a cycle with nothing new makes no commit visible anywhere.
    pub fn remote_has_same_change(&self, oid: Oid, branch: &str) -> Result<bool, GitError> {
        let Some(tip) = self.remote_tip(branch)? else {
            return Ok(false);
        };
        let compare = || -> Result<bool, git2::Error> {
            let ours = self.repo.find_commit(oid)?;
            let theirs = self.repo.find_commit(tip)?;
            Ok(ours.tree_id() == theirs.tree_id() && ours.parent_ids().eq(theirs.parent_ids()))
        };
        compare().map_err(|err| self.repo_error("compare commits", &err))
    }

    /// Makes the worktree exactly the remote tip of `branch` (as of the last
    /// fetch), or of `base` when `branch` does not exist on the remote:
    /// HEAD is detached there, the index and tracked files reset, untracked
    /// and ignored files removed, any merge state dropped. Returns the commit.
    pub fn reset_to(&mut self, branch: &str, base: &str) -> Result<Oid, GitError> {
        valid_branch(branch)?;
        valid_branch(base)?;
        let (oid, from) = match self.remote_tip(branch)? {
            Some(oid) => (oid, branch),
            None => match self.remote_tip(base)? {
                Some(oid) => (oid, base),
                None => {
                    return Err(GitError::BranchNotFound {
                        url: self.url.display.clone(),
                        branch: branch.to_string(),
                        base: base.to_string(),
                    })
                }
            },
        };
        let reset = || -> Result<(), git2::Error> {
            let commit = self.repo.find_commit(oid)?;
            self.repo.cleanup_state()?;
            self.repo.set_head_detached(oid)?;
            self.repo.reset(commit.as_object(), ResetType::Hard, None)?;
            let mut clean = CheckoutBuilder::new();
            clean.force().remove_untracked(true).remove_ignored(true);
            self.repo.checkout_head(Some(&mut clean))?;
            Ok(())
        };
        reset().map_err(|err| GitError::Reset {
            url: self.url.display.clone(),
            path: self.path.clone(),
            branch: from.to_string(),
            detail: self.auth.scrub(err.message()),
        })?;
        tracing::debug!(url = %self.url.display, branch = from, %oid, "worktree reset to remote tip");
        Ok(oid)
    }

    /// Stages every change in the worktree (new, modified and deleted files,
    /// `.gitignore` respected) and, if the tree differs from HEAD, commits it
    /// on top of HEAD with `author` as author and committer. `None` when
    /// nothing changed. The message gets a single trailing newline.
    pub fn commit_all(
        &mut self,
        message: &str,
        author: &Identity,
    ) -> Result<Option<Oid>, GitError> {
        let message = message.trim_end();
        if message.trim().is_empty() {
            return Err(GitError::EmptyMessage);
        }
        let signature =
            Signature::now(&author.name, &author.email).map_err(|err| GitError::Identity {
                name: author.name.clone(),
                email: author.email.clone(),
                detail: err.message().to_string(),
            })?;
        let commit = || -> Result<Option<Oid>, git2::Error> {
            let head = self.repo.head()?.peel_to_commit()?;
            let mut index = self.repo.index()?;
            index.add_all(["*"], IndexAddOption::DEFAULT, None)?;
            index.update_all(["*"], None)?;
            index.write()?;
            let tree_id = index.write_tree()?;
            if tree_id == head.tree_id() {
                return Ok(None);
            }
            let tree = self.repo.find_tree(tree_id)?;
            let oid = self.repo.commit(
                Some("HEAD"),
                &signature,
                &signature,
                &format!("{message}\n"),
                &tree,
                &[&head],
            )?;
            Ok(Some(oid))
        };
        let oid = commit().map_err(|err| GitError::Commit {
            path: self.path.clone(),
            detail: self.auth.scrub(err.message()),
        })?;
        match oid {
            Some(oid) => tracing::info!(url = %self.url.display, %oid, "committed"),
            None => tracing::debug!(url = %self.url.display, "nothing to commit"),
        }
        Ok(oid)
    }

    /// Pushes commit `oid` to `branch` on the remote (creating the branch
    /// if needed). Without `force` the remote branch must fast-forward to
    /// `oid`, else [`PushOutcome::Rejected`]; with `force` it is overwritten
    /// (for pull-request head branches that tidewatch owns).
    pub fn push(&mut self, oid: Oid, branch: &str, force: bool) -> Result<PushOutcome, GitError> {
        valid_branch(branch)?;
        let refspec = format!("{}{oid}:refs/heads/{branch}", if force { "+" } else { "" });
        let outcome = self.push_refspec(&refspec, branch)?;
        match &outcome {
            PushOutcome::Pushed => {
                // Keep remote_tip() truthful without another fetch.
                let tracking = format!("refs/remotes/{REMOTE}/{branch}");
                self.repo
                    .reference(&tracking, oid, true, "tidewatch: push")
                    .map_err(|err| self.repo_error("record the pushed branch", &err))?;
                tracing::info!(url = %self.url.display, branch, %oid, force, "pushed");
            }
            PushOutcome::Rejected { reason } => {
                tracing::info!(url = %self.url.display, branch, %oid, reason = %reason, "push rejected: remote branch moved");
            }
        }
        Ok(outcome)
    }

    /// Deletes `branch` on the remote (e.g. a merged or obsolete PR branch).
    /// Deleting a branch that does not exist succeeds.
    pub fn delete_remote_branch(&mut self, branch: &str) -> Result<(), GitError> {
        valid_branch(branch)?;
        match self.push_refspec(&format!(":refs/heads/{branch}"), branch)? {
            PushOutcome::Pushed => {}
            PushOutcome::Rejected { reason } => {
                return Err(GitError::PushRejected {
                    url: self.url.display.clone(),
                    branch: branch.to_string(),
                    reason,
                })
            }
        }
        if let Ok(mut tracking) = self
            .repo
            .find_reference(&format!("refs/remotes/{REMOTE}/{branch}"))
        {
            tracking
                .delete()
                .map_err(|err| self.repo_error("forget the deleted branch", &err))?;
        }
        tracing::info!(url = %self.url.display, branch, "deleted remote branch");
        Ok(())
    }

    /// The race-safe direct-commit cycle: fetch, reset to the remote tip of
    /// `branch` (or `base` when `branch` does not exist yet), let `apply`
    /// edit the worktree, commit, push without force. When the push is
    /// rejected because the branch moved, start over from the fetch, so
    /// `apply` sees the new tip; up to `retry.max_attempts` times with
    /// doubling backoff.
    ///
    /// `apply` gets the worktree path and returns `Ok(Some(message))` when
    /// it changed files, `Ok(None)` when there is nothing to do (then
    /// nothing is committed or pushed: a change someone else already pushed
    /// is never duplicated).
    pub fn commit_and_push_with_retry<F>(
        &mut self,
        branch: &str,
        base: &str,
        author: &Identity,
        mut apply: F,
    ) -> Result<RetryOutcome, GitError>
    where
        F: FnMut(&Path) -> Result<Option<String>, anyhow::Error>,
    {
        valid_branch(branch)?;
        valid_branch(base)?;
        let max_attempts = self.retry.max_attempts.max(1);
        let mut backoff = self.retry.initial_backoff;
        let mut last_reason = String::new();
        for attempt in 1..=max_attempts {
            self.fetch()?;
            self.reset_to(branch, base)?;
            let message = match apply(&self.path) {
                Ok(Some(message)) => message,
                Ok(None) => {
                    tracing::debug!(url = %self.url.display, branch, attempt, "nothing to change");
                    return Ok(RetryOutcome::NothingToDo { attempts: attempt });
                }
                Err(source) => {
                    return Err(GitError::Edit {
                        url: self.url.display.clone(),
                        branch: branch.to_string(),
                        source,
                    })
                }
            };
            let Some(oid) = self.commit_all(&message, author)? else {
                tracing::debug!(url = %self.url.display, branch, attempt, "edit step changed no file");
                return Ok(RetryOutcome::NothingToDo { attempts: attempt });
            };
            match self.push(oid, branch, false)? {
                PushOutcome::Pushed => {
                    return Ok(RetryOutcome::Committed {
                        oid,
                        attempts: attempt,
                    })
                }
                PushOutcome::Rejected { reason } => {
                    last_reason = reason;
                    if attempt < max_attempts {
                        tracing::warn!(
                            url = %self.url.display,
                            branch,
                            attempt,
                            backoff_ms = backoff.as_millis() as u64,
                            "branch moved during the update, fetching and redoing it"
                        );
                        std::thread::sleep(backoff);
                        backoff = backoff.saturating_mul(2);
                    }
                }
            }
        }
        Err(GitError::RetriesExhausted {
            url: self.url.display.clone(),
            branch: branch.to_string(),
            attempts: max_attempts,
            last_reason,
        })
    }

    /// Paths that differ between the trees of commits `from` and `to`
    /// (added, modified, deleted; renames as delete plus add), sorted.
    pub fn changed_files(&self, from: Oid, to: Oid) -> Result<Vec<PathBuf>, GitError> {
        let diff = || -> Result<Vec<PathBuf>, git2::Error> {
            let old = self.repo.find_commit(from)?.tree()?;
            let new = self.repo.find_commit(to)?.tree()?;
            let diff = self.repo.diff_tree_to_tree(Some(&old), Some(&new), None)?;
            let mut paths: Vec<PathBuf> = diff
                .deltas()
                .flat_map(|delta| {
                    [delta.old_file().path(), delta.new_file().path()]
                        .into_iter()
                        .flatten()
                        .map(Path::to_path_buf)
                        .collect::<Vec<_>>()
                })
                .collect();
            paths.sort();
            paths.dedup();
            Ok(paths)
        };
        diff().map_err(|err| self.repo_error("compare commits", &err))
    }

    fn push_refspec(&mut self, refspec: &str, branch: &str) -> Result<PushOutcome, GitError> {
        self.stats.pushes += 1;
        let state = RefCell::new(CallbackState::default());
        let result = {
            let mut callbacks = self.auth.callbacks(&state);
            callbacks.push_update_reference(|refname, status| {
                if let Some(status) = status {
                    state
                        .borrow_mut()
                        .rejections
                        .push((refname.to_string(), status.to_string()));
                }
                Ok(())
            });
            let mut options = PushOptions::new();
            options.remote_callbacks(callbacks);
            self.repo
                .find_remote(REMOTE)
                .and_then(|mut remote| remote.push(&[refspec], Some(&mut options)))
        };
        let state = state.into_inner();
        match result {
            Err(err) if err.code() == ErrorCode::NotFastForward => Ok(PushOutcome::Rejected {
                reason: self.auth.scrub(err.message()),
            }),
            Err(err) => Err(Failure { error: err, state }.into_error(
                &self.url,
                &self.auth,
                "push",
                |detail| GitError::Push {
                    url: self.url.display.clone(),
                    branch: branch.to_string(),
                    detail: format!("{detail}; check that the remote is reachable and writable"),
                },
            )),
            Ok(()) => match state.rejections.into_iter().next() {
                None => Ok(PushOutcome::Pushed),
                Some((_, status)) if is_stale(&status) => Ok(PushOutcome::Rejected {
                    reason: self.auth.scrub(&status),
                }),
                Some((_, status)) => Err(GitError::PushRejected {
                    url: self.url.display.clone(),
                    branch: branch.to_string(),
                    reason: self.auth.scrub(&status),
                }),
            },
        }
    }

    fn repo_error(&self, operation: &'static str, err: &git2::Error) -> GitError {
        GitError::Repository {
            url: self.url.display.clone(),
            operation,
            detail: self.auth.scrub(err.message()),
        }
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
) -> Result<(), Failure> {
    let state = RefCell::new(CallbackState::default());
    let result = {
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(auth.callbacks(&state))
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

/// Opens an existing clone and checks that it is a clone of `url`.
fn reuse(path: &Path, url: &RemoteUrl) -> Result<Repository, GitError> {
    let open_error = |detail: String| GitError::Open {
        url: url.display.clone(),
        path: path.to_path_buf(),
        detail,
    };
    let repo = Repository::open(path).map_err(|err| open_error(err.message().to_string()))?;
    if repo.is_bare() {
        return Err(open_error("it is a bare repository".to_string()));
    }
    let found = match repo.find_remote(REMOTE) {
        Ok(remote) => remote.url().map(redact_url).unwrap_or_default(),
        Err(err) if err.code() == ErrorCode::NotFound => "a repository without an origin".into(),
        Err(err) => return Err(open_error(err.message().to_string())),
    };
    if found != url.stored {
        return Err(GitError::OriginMismatch {
            path: path.to_path_buf(),
            expected: url.display.clone(),
            found,
        });
    }
    tracing::debug!(url = %url.display, path = %path.display(), "reusing clone");
    Ok(repo)
}

/// Clones `url` into `path` via a sibling temporary directory.
fn clone(
    path: &Path,
    url: &RemoteUrl,
    auth: &Auth,
    depth: Option<i32>,
) -> Result<Repository, GitError> {
    let io_error = |action: &'static str, dir: &Path, source: std::io::Error| GitError::Workdir {
        url: url.display.clone(),
        path: dir.to_path_buf(),
        action,
        source,
    };
    let target_exists = match std::fs::read_dir(path) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(GitError::WorkdirNotEmpty {
                    url: url.display.clone(),
                    path: path.to_path_buf(),
                });
            }
            true
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
        Err(err) => return Err(io_error("read", path, err)),
    };
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|err| io_error("create", &parent, err))?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "clone".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    let partial = parent.join(format!(".{name}.partial-{}-{nanos}", std::process::id()));

    let clone_error = |detail: String| GitError::Clone {
        url: url.display.clone(),
        path: path.to_path_buf(),
        detail,
    };
    let result = (|| -> Result<(), GitError> {
        let mut init = RepositoryInitOptions::new();
        init.no_reinit(true).mkdir(true).mkpath(false);
        let repo = Repository::init_opts(&partial, &init)
            .map_err(|err| clone_error(err.message().to_string()))?;
        repo.remote(REMOTE, &url.stored)
            .map_err(|err| clone_error(auth.scrub(err.message())))?;
        fetch_into(&repo, url, auth, depth, "clone")
            .map_err(|failure| failure.into_error(url, auth, "clone", clone_error))?;
        drop(repo);
        if target_exists {
            std::fs::remove_dir(path).map_err(|err| io_error("replace", path, err))?;
        }
        std::fs::rename(&partial, path)
            .map_err(|err| io_error("move the new clone into", path, err))
    })();
    if let Err(err) = result {
        if let Err(cleanup) = std::fs::remove_dir_all(&partial) {
            if cleanup.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %partial.display(), error = %cleanup, "could not remove a partial clone");
            }
        }
        return Err(err);
    }
    tracing::info!(url = %url.display, path = %path.display(), "cloned");
    Repository::open(path).map_err(|err| GitError::Open {
        url: url.display.clone(),
        path: path.to_path_buf(),
        detail: err.message().to_string(),
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
    fn stale_statuses() {
        assert!(is_stale("non-fast-forward"));
        assert!(is_stale("failed to lock"));
        assert!(is_stale("fetch first"));
        assert!(!is_stale("pre-receive hook declined"));
        assert!(!is_stale("protected branch hook declined"));
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
