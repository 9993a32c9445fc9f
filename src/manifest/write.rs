//! The one way tidewatch writes a file in the worktree.
//!
//! The worktree's content comes from the environment repository, which
//! anyone with write access to it controls, so a write may not follow any
//! symbolic link: each directory of the path is opened relative to the one
//! before it with `O_NOFOLLOW`, starting from a handle on the repository
//! root; the target must be a regular file; and the new content goes to a
//! temporary file created with `O_EXCL` under a random name (never one taken
//! from repository content), which is then renamed over the target in the
//! same directory. The target keeps its permission bits, so a commit never
//! changes a file's mode or type, and a crash leaves either the old file or
//! the new one, never half of either.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, CWD};

/// Why a write was refused or failed, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: `{component}` is a symbolic link or not a directory; tidewatch writes through no link")]
    NotADirectory { path: String, component: String },
    #[error("{path} is not a regular file (a symbolic link, a directory or a device); tidewatch only rewrites regular files")]
    NotARegularFile { path: String },
    #[error("{path} is not a relative path inside the repository")]
    OutsideTheRepository { path: String },
    #[error("writing {path} failed: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Replaces the regular file `rel` (relative to `root`, `/`-separated)
/// with `content`, refusing symbolic links on every component.
pub fn write_inside(root: &Path, rel: &str, content: &[u8]) -> Result<(), WriteError> {
    let io = |source: rustix::io::Errno| WriteError::Io {
        path: rel.to_string(),
        source: source.into(),
    };
    let components: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    let Some((name, dirs)) = components.split_last() else {
        return Err(WriteError::OutsideTheRepository {
            path: rel.to_string(),
        });
    };
    if rel.starts_with('/') || components.iter().any(|c| *c == ".." || *c == ".") {
        return Err(WriteError::OutsideTheRepository {
            path: rel.to_string(),
        });
    }
    let directory = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    let mut dir: OwnedFd = fs::openat(CWD, root, directory, Mode::empty()).map_err(io)?;
    for component in dirs {
        dir = fs::openat(
            &dir,
            *component,
            directory | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => WriteError::NotADirectory {
                path: rel.to_string(),
                component: component.to_string(),
            },
            other => io(other),
        })?;
    }
    let target = fs::statat(&dir, *name, AtFlags::SYMLINK_NOFOLLOW).map_err(io)?;
    if FileType::from_raw_mode(target.st_mode) != FileType::RegularFile {
        return Err(WriteError::NotARegularFile {
            path: rel.to_string(),
        });
    }
    let permissions = Mode::from_raw_mode(target.st_mode) & Mode::from_raw_mode(0o7777);
    let temporary = format!(".tidewatch-{:016x}.tmp", fastrand::u64(..));
    let file = fs::openat(
        &dir,
        temporary.as_str(),
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::RUSR | Mode::WUSR,
    )
    .map_err(io)?;
    let written = (|| -> Result<(), WriteError> {
        fs::fchmod(&file, permissions).map_err(io)?;
        let mut file = std::fs::File::from(file);
        file.write_all(content).map_err(|source| WriteError::Io {
            path: rel.to_string(),
            source,
        })?;
        file.sync_all().map_err(|source| WriteError::Io {
            path: rel.to_string(),
            source,
        })?;
        fs::renameat(&dir, temporary.as_str(), &dir, *name).map_err(io)
    })();
    if written.is_err() {
        let _ = fs::unlinkat(&dir, temporary.as_str(), AtFlags::empty());
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn writes_regular_files_and_keeps_their_mode() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("envs/dev")).unwrap();
        let file = root.path().join("envs/dev/app.yaml");
        std::fs::write(&file, "old\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        write_inside(root.path(), "envs/dev/app.yaml", b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new\n");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
        let leftovers: Vec<_> = std::fs::read_dir(root.path().join("envs/dev"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn refuses_links_on_any_component() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("app.yaml"), "outside\n").unwrap();
        let root = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.path().join("escape")).unwrap();
        symlink(
            outside.path().join("app.yaml"),
            root.path().join("link.yaml"),
        )
        .unwrap();
        let err = write_inside(root.path(), "escape/app.yaml", b"x").unwrap_err();
        assert!(matches!(err, WriteError::NotADirectory { .. }), "{err}");
        let err = write_inside(root.path(), "link.yaml", b"x").unwrap_err();
        assert!(matches!(err, WriteError::NotARegularFile { .. }), "{err}");
        assert!(write_inside(root.path(), "../x.yaml", b"x").is_err());
        assert_eq!(
            std::fs::read_to_string(outside.path().join("app.yaml")).unwrap(),
            "outside\n"
        );
    }
}
