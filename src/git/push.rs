//! Pushing: plain, forced (pull-request heads), deletions, and the
//! race-safe commit-and-push loop of direct commits.

use std::cell::RefCell;
use std::path::Path;

use git2::{ErrorCode, Oid, PushOptions};

use super::auth::CallbackState;
use super::{
    valid_branch, Failure, GitError, Identity, PushOutcome, RetryOutcome, Workspace, REMOTE,
};

/// The path of a ref lock file (`…/refs/heads/main.lock`) named in a git
/// error or push status, if any.
pub(super) fn lock_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '`' | ':' | ','))
        .find(|token| token.ends_with(".lock") && token.contains("refs/"))
        .map(str::to_string)
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

    /// Force-pushes `oid` to `branch` only if the remote branch still points
    /// at `expected` (`None`: does not exist), as read just before: a push
    /// someone made to it since it was observed is never overwritten.
    /// [`PushOutcome::Rejected`] when it moved.
    pub fn push_with_lease(
        &mut self,
        oid: Oid,
        branch: &str,
        expected: Option<Oid>,
    ) -> Result<PushOutcome, GitError> {
        valid_branch(branch)?;
        let now = self.ls_remote_branch(branch)?;
        if now != expected {
            return Ok(PushOutcome::Rejected {
                reason: format!(
                    "{branch} moved since it was read (it is now {}); not overwriting it",
                    now.map_or_else(|| "gone".to_string(), |o| o.to_string())
                ),
            });
        }
        self.push(oid, branch, true)
    }

    /// Where `branch` points on the remote right now (one connection).
    pub fn ls_remote_branch(&mut self, branch: &str) -> Result<Option<Oid>, GitError> {
        let state = RefCell::new(CallbackState::default());
        let wanted = format!("refs/heads/{branch}");
        let result = {
            let callbacks = self.auth.callbacks(&state, self.deadline.as_ref());
            self.repo.find_remote(REMOTE).and_then(|mut remote| {
                let connection =
                    remote.connect_auth(git2::Direction::Fetch, Some(callbacks), None)?;
                Ok(connection
                    .list()?
                    .iter()
                    .find(|head| head.name() == wanted)
                    .map(|head| head.oid()))
            })
        };
        result.map_err(|error| {
            Failure {
                error,
                state: state.into_inner(),
            }
            .into_error(&self.url, &self.auth, "fetch", |detail| GitError::Fetch {
                url: self.url.display.clone(),
                detail,
            })
        })
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
        apply: F,
    ) -> Result<RetryOutcome, GitError>
    where
        F: FnMut(&Path) -> Result<Option<String>, anyhow::Error>,
    {
        self.commit_and_push(branch, base, author, true, apply)
    }

    /// [`Workspace::commit_and_push_with_retry`] for a caller that has just
    /// fetched: the first attempt starts from the last fetch, and only a
    /// retry fetches again.
    pub fn commit_and_push_after_fetch<F>(
        &mut self,
        branch: &str,
        base: &str,
        author: &Identity,
        apply: F,
    ) -> Result<RetryOutcome, GitError>
    where
        F: FnMut(&Path) -> Result<Option<String>, anyhow::Error>,
    {
        self.commit_and_push(branch, base, author, false, apply)
    }

    fn commit_and_push<F>(
        &mut self,
        branch: &str,
        base: &str,
        author: &Identity,
        fetch_first: bool,
        mut apply: F,
    ) -> Result<RetryOutcome, GitError>
    where
        F: FnMut(&Path) -> Result<Option<String>, anyhow::Error>,
    {
        valid_branch(branch)?;
        valid_branch(base)?;
        let max_attempts = self.retry.max_attempts.max(1);
        let mut last_reason = String::new();
        for attempt in 1..=max_attempts {
            if fetch_first || attempt > 1 {
                self.fetch()?;
            }
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
                        let backoff = self.retry.backoff.delay(attempt - 1);
                        tracing::warn!(
                            url = %self.url.display,
                            branch,
                            attempt,
                            backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                            "branch moved during the update, fetching and redoing it"
                        );
                        // This runs on a blocking thread (git2 is synchronous),
                        // never on an async worker.
                        std::thread::sleep(backoff);
                    }
                }
            }
        }
        if let Some(lock) = lock_in(&last_reason) {
            return Err(GitError::RemoteRefLocked {
                url: self.url.display.clone(),
                branch: branch.to_string(),
                lock,
            });
        }
        Err(GitError::RetriesExhausted {
            url: self.url.display.clone(),
            branch: branch.to_string(),
            attempts: max_attempts,
            last_reason,
        })
    }

    fn push_refspec(&mut self, refspec: &str, branch: &str) -> Result<PushOutcome, GitError> {
        // No push starts once the cycle's deadline has passed: an abandoned
        // cycle leaves the remote exactly as it was.
        if self.deadline_passed() {
            return Err(GitError::Deadline {
                url: self.url.display.clone(),
                operation: "push",
            });
        }
        self.stats.pushes += 1;
        let state = RefCell::new(CallbackState::default());
        let result = {
            let mut callbacks = self.auth.callbacks(&state, self.deadline.as_ref());
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
            // A ref lock on the remote: held by a push in progress (retry),
            // or left by a killed one (named once the retries run out).
            Err(err) if lock_in(err.message()).is_some() => Ok(PushOutcome::Rejected {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_paths_are_found_in_messages() {
        assert_eq!(
            lock_in("failed to lock file '/srv/env.git/refs/heads/dev.lock' for writing")
                .as_deref(),
            Some("/srv/env.git/refs/heads/dev.lock")
        );
        assert_eq!(
            lock_in("cannot lock ref 'refs/heads/dev': Unable to create '/x/refs/heads/dev.lock': File exists").as_deref(),
            Some("/x/refs/heads/dev.lock")
        );
        assert_eq!(lock_in("non-fast-forward"), None);
    }

    #[test]
    fn stale_statuses() {
        assert!(is_stale("non-fast-forward"));
        assert!(is_stale("failed to lock"));
        assert!(is_stale("fetch first"));
        assert!(!is_stale("pre-receive hook declined"));
        assert!(!is_stale("protected branch hook declined"));
    }
}
