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
