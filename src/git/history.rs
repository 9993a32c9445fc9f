//! Reading history: whose commits a branch holds beyond its base.
//!
//! A pull-request head branch belongs to tidewatch only while every commit
//! on it (beyond the base) is one tidewatch made. A human who pushes a fix
//! there must not have it force-pushed away, so observation lists the
//! commits made by anyone else.

use git2::{Oid, Sort};

use super::{GitError, Identity, Workspace};

/// A commit on a branch that tidewatch did not make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignCommit {
    pub id: String,
    /// `Name <email>` of the committer.
    pub committer: String,
    pub summary: String,
}

impl Workspace {
    /// The commits reachable from `head` but not from `base` whose committer
    /// is not `ours` (compared by e-mail, case-insensitively), newest first.
    pub fn foreign_commits(
        &self,
        base: Oid,
        head: Oid,
        ours: &Identity,
    ) -> Result<Vec<ForeignCommit>, GitError> {
        let walk = || -> Result<Vec<ForeignCommit>, git2::Error> {
            let mut revwalk = self.repo.revwalk()?;
            revwalk.set_sorting(Sort::TOPOLOGICAL)?;
            revwalk.push(head)?;
            revwalk.hide(base)?;
            let mut out = Vec::new();
            for id in revwalk {
                let commit = self.repo.find_commit(id?)?;
                let committer = commit.committer();
                let email = committer.email().unwrap_or_default();
                if email.eq_ignore_ascii_case(&ours.email) {
                    continue;
                }
                out.push(ForeignCommit {
                    id: commit.id().to_string(),
                    committer: format!("{} <{email}>", committer.name().unwrap_or_default()),
                    summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                        .into_owned(),
                });
            }
            Ok(out)
        };
        walk().map_err(|err| self.repo_error("read the history of a branch", &err))
    }
}

/// Most commits looked at when finding since when a value is held.
const MAX_COMMITS: usize = 10_000;
/// Most distinct states of the paths scanned along the way.
const MAX_STATES: usize = 200;
/// Most bytes written for one state of the paths.
const MAX_STATE_BYTES: u64 = 64 << 20;

/// The commit from which on a branch has held a value (see
/// [`Workspace::held_since`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldCommit {
    pub id: String,
    /// Its committer time, in seconds since the Unix epoch.
    pub time: i64,
}

impl Workspace {
    /// Walks the first-parent history of `tip` back for as long as `holds`
    /// is true of the files under `paths` (written out to a scratch
    /// directory, as a tree the caller can scan), and returns the oldest
    /// commit of that unbroken run: the one that put the value there.
    ///
    /// Only commits that change `paths` are scanned; the others hold what
    /// their child holds. Links are written as links, so one pointing out
    /// of `paths` dangles and its file is not seen. The walk ends after
    /// 10,000 commits, 200 changes of `paths` or at a shallow clone's
    /// boundary; the answer is then the oldest commit seen, later than the
    /// truth, which only makes a soak last longer. `None` when `tip` itself
    /// does not hold the value.
    pub fn held_since(
        &self,
        tip: Oid,
        paths: &[String],
        mut holds: impl FnMut(&std::path::Path) -> bool,
    ) -> Result<Option<HeldCommit>, GitError> {
        let action = "read the history of the source branch of a promotion";
        let git = |err: git2::Error| self.repo_error(action, &err);
        let mut revwalk = self.repo.revwalk().map_err(git)?;
        revwalk.push(tip).map_err(git)?;
        revwalk.simplify_first_parent().map_err(git)?;
        let mut held: Option<HeldCommit> = None;
        let mut previous: Option<(Vec<Option<Oid>>, bool)> = None;
        let mut states = 0;
        for id in revwalk.take(MAX_COMMITS) {
            // A shallow clone's boundary parent is missing: stop there.
            let Ok(commit) = id.and_then(|id| self.repo.find_commit(id)) else {
                break;
            };
            let tree = commit.tree().map_err(git)?;
            let state: Vec<Option<Oid>> = paths.iter().map(|p| entry_id(&tree, p)).collect();
            let holding = match &previous {
                Some((seen, holding)) if *seen == state => *holding,
                _ => {
                    states += 1;
                    if states > MAX_STATES {
                        break;
                    }
                    let scratch = Scratch::new().map_err(|e| self.io_error(action, &e))?;
                    self.write_paths(&tree, paths, scratch.path())
                        .map_err(|e| self.io_error(action, &e))?;
                    holds(scratch.path())
                }
            };
            if !holding {
                break;
            }
            held = Some(HeldCommit {
                id: commit.id().to_string(),
                time: commit.committer().when().seconds(),
            });
            previous = Some((state, holding));
        }
        Ok(held)
    }

    fn io_error(&self, operation: &'static str, err: &std::io::Error) -> GitError {
        GitError::Repository {
            url: self.url.display.clone(),
            operation,
            detail: err.to_string(),
        }
    }

    /// Writes the files under `paths` of `tree` into `root`.
    fn write_paths(
        &self,
        tree: &git2::Tree<'_>,
        paths: &[String],
        root: &std::path::Path,
    ) -> std::io::Result<()> {
        let mut budget = MAX_STATE_BYTES;
        for path in paths {
            let path = clean(path);
            if path.is_empty() {
                self.write_tree(tree, root, &mut budget)?;
                continue;
            }
            let Ok(entry) = tree.get_path(std::path::Path::new(path)) else {
                continue;
            };
            let target = root.join(path);
            match entry.kind() {
                Some(git2::ObjectType::Tree) => {
                    if let Ok(sub) = self.repo.find_tree(entry.id()) {
                        std::fs::create_dir_all(&target)?;
                        self.write_tree(&sub, &target, &mut budget)?;
                    }
                }
                Some(git2::ObjectType::Blob) => {
                    self.write_blob(entry.id(), entry.filemode(), &target, &mut budget)?
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn write_tree(
        &self,
        tree: &git2::Tree<'_>,
        root: &std::path::Path,
        budget: &mut u64,
    ) -> std::io::Result<()> {
        let mut failure = None;
        let walked = tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            let Ok(name) = entry.name() else {
                return git2::TreeWalkResult::Skip;
            };
            let target = root.join(dir).join(name);
            let result = match entry.kind() {
                Some(git2::ObjectType::Tree) => std::fs::create_dir_all(&target),
                Some(git2::ObjectType::Blob) => {
                    self.write_blob(entry.id(), entry.filemode(), &target, budget)
                }
                _ => Ok(()),
            };
            match result {
                Ok(()) => git2::TreeWalkResult::Ok,
                Err(e) => {
                    failure = Some(e);
                    git2::TreeWalkResult::Abort
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        walked.map_err(|e| std::io::Error::other(e.message().to_string()))
    }

    fn write_blob(
        &self,
        id: Oid,
        mode: i32,
        target: &std::path::Path,
        budget: &mut u64,
    ) -> std::io::Result<()> {
        let blob = self
            .repo
            .find_blob(id)
            .map_err(|e| std::io::Error::other(e.message().to_string()))?;
        let size = blob.content().len() as u64;
        if size > *budget {
            return Err(std::io::Error::other(format!(
                "the files of an earlier commit exceed {} MiB",
                MAX_STATE_BYTES >> 20
            )));
        }
        *budget -= size;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if mode == 0o120000 {
            let link = String::from_utf8_lossy(blob.content()).into_owned();
            std::os::unix::fs::symlink(link, target)
        } else {
            std::fs::write(target, blob.content())
        }
    }
}

/// `./envs/dev/` → `envs/dev`; `.` → `` (the whole tree).
fn clean(path: &str) -> &str {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    if path == "." {
        ""
    } else {
        path
    }
}

/// The object at `path` in `tree` (the tree itself for the root).
fn entry_id(tree: &git2::Tree<'_>, path: &str) -> Option<Oid> {
    match clean(path) {
        "" => Some(tree.id()),
        path => tree
            .get_path(std::path::Path::new(path))
            .ok()
            .map(|e| e.id()),
    }
}

/// A fresh directory under the system temp dir, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "tidewatch-history-{}-{n}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir(&path)?;
        Ok(Scratch(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
