//! Opening, fetching, resetting and committing in the clone.

use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{
    BranchType, ErrorCode, IndexAddOption, Oid, Repository, RepositoryInitOptions, ResetType,
    Signature,
};

use super::auth::Auth;
use super::url::{RemoteUrl, Transport};
use super::{
    fetch_into, redact_url, valid_branch, GitError, GitStats, Identity, Workspace,
    WorkspaceOptions, REMOTE,
};

impl Workspace {
    /// Opens the workspace for `options.url`: reuses the clone in the work
    /// directory when there is one for this URL, else clones into it. A
    /// fresh clone has fetched every branch but checked nothing out; call
    /// [`Workspace::reset_to`] (or the retry loop) before editing.
    pub fn open(options: WorkspaceOptions) -> Result<Workspace, GitError> {
        let url = RemoteUrl::parse(&options.url);
        let auth = Auth::new(&options.credentials, &url, &options.url);
        let path = options.resolved_workdir()?;
        let deadline = options.deadline.clone();
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
        let mut reclones = Vec::new();
        let repo = if path.join(".git").exists() {
            match reuse(&path, &url).and_then(|repo| healthy(repo, &path, &url)) {
                Ok(repo) => repo,
                Err(problem) if ours(&path, &url) => {
                    // A clone tidewatch made that git can no longer use
                    // (a stale lock, a broken object, no HEAD, another
                    // URL): clone afresh rather than fail every cycle.
                    tracing::warn!(url = %url.display, path = %path.display(), problem = %problem, "the work directory is unusable; cloning it afresh");
                    let repo = reclone(&path, &url, &auth, depth, deadline.as_ref())?;
                    stats.clones += 1;
                    stats.reclones += 1;
                    reclones.push(problem.to_string());
                    repo
                }
                Err(problem) => return Err(problem),
            }
        } else {
            let repo = clone(&path, &url, &auth, depth, deadline.as_ref())?;
            stats.clones += 1;
            repo
        };
        Ok(Workspace {
            repo,
            reclones,
            deadline,
            path,
            url,
            auth,
            depth,
            retry: options.retry,
            stats,
        })
    }

    /// Network operations still running at `deadline` are abandoned, and no
    /// push starts after it.
    pub fn set_deadline(&mut self, deadline: Option<crate::deadline::Deadline>) {
        self.deadline = deadline;
    }

    pub(super) fn deadline_passed(&self) -> bool {
        self.deadline.as_ref().is_some_and(|d| d.passed())
    }

    /// Throws the clone away and clones afresh, after an operation found it
    /// unusable (say, a corrupted object). Only a clone tidewatch made (or
    /// one of the same URL) is thrown away.
    pub fn reclone(&mut self, problem: &GitError) -> Result<(), GitError> {
        if !ours(&self.path, &self.url) {
            return Err(GitError::Open {
                url: self.url.display.clone(),
                path: self.path.clone(),
                detail: problem.to_string(),
            });
        }
        tracing::warn!(url = %self.url.display, path = %self.path.display(), problem = %problem, "the work directory is unusable; cloning it afresh");
        self.repo = reclone(
            &self.path,
            &self.url,
            &self.auth,
            self.depth,
            self.deadline.as_ref(),
        )?;
        self.stats.clones += 1;
        self.stats.reclones += 1;
        self.reclones.push(problem.to_string());
        Ok(())
    }

    /// Why the work directory was cloned afresh since it was opened.
    pub fn reclone_reasons(&self) -> &[String] {
        &self.reclones
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
        fetch_into(
            &self.repo,
            &self.url,
            &self.auth,
            self.depth,
            "fetch",
            self.deadline.as_ref(),
        )
        .map_err(|failure| {
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

    pub(super) fn repo_error(&self, operation: &'static str, err: &git2::Error) -> GitError {
        GitError::Repository {
            url: self.url.display.clone(),
            operation,
            detail: self.auth.scrub(err.message()),
        }
    }
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

/// The file in `.git` that marks a clone tidewatch made.
const MARKER: &str = "tidewatch-clone";

/// Whether the directory is a clone tidewatch may throw away: it carries
/// tidewatch's marker, or (for clones made before the marker existed) its
/// origin is this URL.
fn ours(path: &Path, url: &RemoteUrl) -> bool {
    if path.join(".git").join(MARKER).is_file() {
        return true;
    }
    Repository::open(path)
        .ok()
        .and_then(|repo| {
            repo.find_remote(REMOTE)
                .ok()
                .and_then(|r| r.url().ok().map(redact_url))
        })
        .is_some_and(|found| found == url.stored)
}

/// Problems that make a clone unusable although it opens: a lock file left
/// by a killed process (the process lock makes any such file stale) and a
/// HEAD that does not resolve to a commit.
fn healthy(repo: Repository, path: &Path, url: &RemoteUrl) -> Result<Repository, GitError> {
    let unusable = |detail: String| GitError::Open {
        url: url.display.clone(),
        path: path.to_path_buf(),
        detail,
    };
    for lock in ["index.lock", "HEAD.lock", "config.lock"] {
        if repo.path().join(lock).exists() {
            return Err(unusable(format!(
                "a stale lock file .git/{lock} was left by a process that was killed"
            )));
        }
    }
    match repo.head() {
        Ok(head) if head.peel_to_commit().is_err() => {
            return Err(unusable("HEAD does not point at a commit".into()))
        }
        // An unborn HEAD is how a fresh clone starts.
        Err(err) if err.code() != ErrorCode::UnbornBranch => {
            return Err(unusable(format!("HEAD cannot be read: {}", err.message())))
        }
        _ => {}
    }
    Ok(repo)
}

/// Moves the unusable clone aside, clones afresh, then deletes the old one.
fn reclone(
    path: &Path,
    url: &RemoteUrl,
    auth: &Auth,
    depth: Option<i32>,
    deadline: Option<&crate::deadline::Deadline>,
) -> Result<Repository, GitError> {
    let aside = path.with_file_name(format!(
        ".{}.broken-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    if aside.exists() {
        let _ = std::fs::remove_dir_all(&aside);
    }
    std::fs::rename(path, &aside).map_err(|source| GitError::Workdir {
        url: url.display.clone(),
        path: path.to_path_buf(),
        action: "move aside the unusable",
        source,
    })?;
    let repo = clone(path, url, auth, depth, deadline)?;
    if let Err(err) = std::fs::remove_dir_all(&aside) {
        tracing::warn!(path = %aside.display(), error = %err, "could not remove the old work directory");
    }
    Ok(repo)
}

/// Clones `url` into `path` via a sibling temporary directory.
fn clone(
    path: &Path,
    url: &RemoteUrl,
    auth: &Auth,
    depth: Option<i32>,
    deadline: Option<&crate::deadline::Deadline>,
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
    // Partial clones of a process that was killed are stale: the work
    // directory's lock says no other process is cloning here.
    if let Ok(entries) = std::fs::read_dir(&parent) {
        let prefix = format!(".{name}.partial-");
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
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
        fetch_into(&repo, url, auth, depth, "clone", deadline)
            .map_err(|failure| failure.into_error(url, auth, "clone", clone_error))?;
        std::fs::write(repo.path().join(MARKER), format!("{}\n", url.stored))
            .map_err(|err| io_error("mark", &partial, err))?;
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
