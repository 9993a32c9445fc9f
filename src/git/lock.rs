//! An exclusive lock on a work directory, so that two tidewatch processes
//! never share one clone (their resets and commits would interleave).
//!
//! The lock is an advisory `flock` on a file beside the work directory
//! (`<workdir>.lock`), not inside it, so that re-cloning the directory does
//! not drop it. The kernel releases it when the process exits, however it
//! exits, so a `kill -9` never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::GitError;

/// Held for as long as the process uses the work directory.
#[derive(Debug)]
pub struct WorkdirLock {
    _file: File,
    path: PathBuf,
}

impl WorkdirLock {
    /// Takes the lock of `workdir`, or fails at once (naming the lock file)
    /// when another process holds it.
    pub fn acquire(workdir: &Path) -> Result<WorkdirLock, GitError> {
        let path = lock_path(workdir);
        let io_error = |action: &'static str, source: std::io::Error| GitError::Workdir {
            url: String::new(),
            path: path.clone(),
            action,
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| io_error("create the parent of", e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_error("open the lock file of", e))?;
        match file.try_lock() {
            Ok(()) => Ok(WorkdirLock { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(GitError::Locked {
                path: workdir.to_path_buf(),
                lock: path,
            }),
            Err(TryLockError::Error(e)) => Err(io_error("lock", e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn lock_path(workdir: &Path) -> PathBuf {
    let name = workdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workdir".to_string());
    workdir.with_file_name(format!("{name}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let workdir = dir.path().join("work");
        let first = WorkdirLock::acquire(&workdir).unwrap();
        assert_eq!(first.path(), dir.path().join("work.lock"));
        let error = WorkdirLock::acquire(&workdir).unwrap_err().to_string();
        assert!(error.contains("work.lock"), "{error}");
        assert!(
            error.contains("in use by another tidewatch process"),
            "{error}"
        );
        drop(first);
        WorkdirLock::acquire(&workdir).unwrap();
    }
}
