//! The git workspace against real repositories: bare remotes made with the
//! `git` CLI (over `file://` URLs, plain paths and smart HTTP through real
//! `git http-backend`), and a second real `git` process playing the human
//! who pushes at the worst moment.

mod support;

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::git_http::GitHttpServer;
use tempfile::TempDir;
use tidewatch::git::{
    redact_url, signed_off, GitCredentials, GitError, GitStats, Identity, PushOutcome,
    RetryOutcome, RetryPolicy, Workspace, WorkspaceOptions,
};
use tidewatch::retry::Backoff;
use tidewatch::secret::Secret;

const APP: &str = "apps/app/deployment.yaml";
const APP_V1: &str = "image: registry.example.com/app:1.0.0\n";
const APP_V2: &str = "image: registry.example.com/app:2.0.0\n";

fn bot() -> Identity {
    Identity {
        name: "tidewatch bot".into(),
        email: "bot@tidewatch.invalid".into(),
    }
}

/// Runs the real git CLI, isolated from the machine's configuration, as the
/// human "Hu Man". Panics with git's stderr when it fails.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Hu Man")
        .env("GIT_AUTHOR_EMAIL", "human@example.com")
        .env("GIT_COMMITTER_NAME", "Hu Man")
        .env("GIT_COMMITTER_EMAIL", "human@example.com")
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("git output is UTF-8")
        .trim()
        .to_string()
}

fn write(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap();
}

/// A bare repository `env.git` seeded with one commit on `main`, plus a
/// human's clone of it. Everything lives in one temp dir, which also holds
/// the workspaces' work dirs.
struct Remote {
    tmp: TempDir,
    bare: PathBuf,
    human: PathBuf,
}

impl Remote {
    fn new() -> Remote {
        let tmp = TempDir::new().unwrap();
        let bare = tmp.path().join("env.git");
        let human = tmp.path().join("human");
        git(
            tmp.path(),
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                "env.git",
            ],
        );
        git(tmp.path(), &["clone", "--quiet", "env.git", "human"]);
        write(&human.join(APP), APP_V1);
        write(&human.join("README.md"), "# environment\n");
        write(&human.join(".gitignore"), "*.tmp\n");
        git(&human, &["add", "-A"]);
        git(&human, &["commit", "--quiet", "-m", "seed"]);
        git(
            &human,
            &["push", "--quiet", "origin", "HEAD:refs/heads/main"],
        );
        Remote { tmp, bare, human }
    }

    fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    fn workdir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn options(&self, url: String, workdir: &str) -> WorkspaceOptions {
        WorkspaceOptions {
            workdir: Some(self.workdir(workdir)),
            retry: RetryPolicy {
                max_attempts: 5,
                backoff: Backoff {
                    initial: Duration::from_millis(10),
                    max: Duration::from_secs(1),
                    jitter: false,
                },
            },
            ..WorkspaceOptions::new(url)
        }
    }

    /// The human commits `content` to `file` on top of the remote `branch`
    /// and pushes it; returns the new commit id.
    fn human_commit(&self, branch: &str, file: &str, content: &str, message: &str) -> String {
        git(&self.human, &["fetch", "--quiet", "origin"]);
        git(
            &self.human,
            &[
                "checkout",
                "--quiet",
                "-B",
                branch,
                &format!("origin/{branch}"),
            ],
        );
        write(&self.human.join(file), content);
        git(&self.human, &["add", "-A"]);
        git(&self.human, &["commit", "--quiet", "-m", message]);
        git(
            &self.human,
            &[
                "push",
                "--quiet",
                "origin",
                &format!("HEAD:refs/heads/{branch}"),
            ],
        );
        git(&self.human, &["rev-parse", "HEAD"])
    }

    /// `git` against the bare remote.
    fn bare_git(&self, args: &[&str]) -> String {
        git(&self.bare, args)
    }

    fn head(&self, branch: &str) -> String {
        self.bare_git(&["rev-parse", &format!("refs/heads/{branch}")])
    }

    fn has_branch(&self, branch: &str) -> bool {
        !self
            .bare_git(&["branch", "--list", branch])
            .trim()
            .is_empty()
    }

    fn show(&self, branch: &str, file: &str) -> String {
        let output = Command::new("git")
            .args(["show", &format!("{branch}:{file}")])
            .current_dir(&self.bare)
            .output()
            .unwrap();
        assert!(output.status.success(), "{branch}:{file} missing on remote");
        String::from_utf8(output.stdout).unwrap()
    }
}

fn set_app_version(worktree: &Path, content: &str) -> anyhow::Result<Option<String>> {
    let path = worktree.join(APP);
    if fs::read_to_string(&path)? == content {
        return Ok(None);
    }
    fs::write(&path, content)?;
    Ok(Some("Update app to 2.0.0".to_string()))
}

#[test]
fn clone_edit_commit_and_push_over_a_file_url() {
    let remote = Remote::new();
    let seed = remote.head("main");
    let mut ws = Workspace::open(remote.options(remote.file_url(), "work")).unwrap();
    assert_eq!(
        ws.stats(),
        GitStats {
            clones: 1,
            fetches: 0,
            pushes: 0,
            reclones: 0
        }
    );
    assert_eq!(ws.path(), remote.workdir("work"));
    assert_eq!(ws.remote_tip("main").unwrap().unwrap().to_string(), seed);
    assert_eq!(ws.remote_tip("nope").unwrap(), None);

    let tip = ws.reset_to("main", "main").unwrap();
    assert_eq!(tip.to_string(), seed);
    assert_eq!(fs::read_to_string(ws.path().join(APP)).unwrap(), APP_V1);
    // Nothing edited yet: no commit.
    assert_eq!(ws.commit_all("noop", &bot()).unwrap(), None);

    write(&ws.path().join(APP), APP_V2);
    write(&ws.path().join("apps/new/values.yaml"), "replicas: 2\n");
    fs::remove_file(ws.path().join("README.md")).unwrap();
    let message = signed_off(
        "Update app to 2.0.0",
        "tidewatch bot",
        "bot@tidewatch.invalid",
    );
    let oid = ws.commit_all(&message, &bot()).unwrap().expect("a commit");
    assert_eq!(ws.push(oid, "main", false).unwrap(), PushOutcome::Pushed);
    assert_eq!(
        ws.stats(),
        GitStats {
            clones: 1,
            fetches: 0,
            pushes: 1,
            reclones: 0
        }
    );

    assert_eq!(remote.head("main"), oid.to_string());
    assert_eq!(remote.bare_git(&["rev-parse", "main^"]), seed);
    assert_eq!(
        remote.bare_git(&["log", "-1", "--format=%an <%ae>|%cn <%ce>", "main"]),
        "tidewatch bot <bot@tidewatch.invalid>|tidewatch bot <bot@tidewatch.invalid>"
    );
    assert_eq!(
        remote.bare_git(&["log", "-1", "--format=%B", "main"]),
        "Update app to 2.0.0\n\nSigned-off-by: tidewatch bot <bot@tidewatch.invalid>"
    );
    assert_eq!(remote.show("main", APP), APP_V2);
    assert_eq!(remote.show("main", "apps/new/values.yaml"), "replicas: 2\n");
    assert_eq!(
        remote.bare_git(&["ls-tree", "-r", "--name-only", "main"]),
        ".gitignore\napps/app/deployment.yaml\napps/new/values.yaml"
    );
    // The push also moved the local view of the remote branch.
    assert_eq!(ws.remote_tip("main").unwrap(), Some(oid));
    assert_eq!(
        ws.changed_files(seed.parse().unwrap(), oid).unwrap(),
        vec![
            PathBuf::from("README.md"),
            PathBuf::from(APP),
            PathBuf::from("apps/new/values.yaml")
        ]
    );
}

#[test]
fn plain_path_remote_is_reused_and_a_foreign_workdir_is_refused() {
    let remote = Remote::new();
    let url = remote.bare.display().to_string();
    {
        let mut ws = Workspace::open(remote.options(url.clone(), "work")).unwrap();
        assert_eq!(ws.stats().clones, 1);
        let outcome = ws
            .commit_and_push_with_retry("main", "main", &bot(), |dir| set_app_version(dir, APP_V2))
            .unwrap();
        assert!(matches!(
            outcome,
            RetryOutcome::Committed { attempts: 1, .. }
        ));
    }
    assert_eq!(remote.show("main", APP), APP_V2);

    // A later cycle reuses the clone.
    let mut ws = Workspace::open(remote.options(url.clone(), "work")).unwrap();
    assert_eq!(ws.stats(), GitStats::default());
    ws.fetch().unwrap();
    assert_eq!(
        ws.remote_tip("main").unwrap().unwrap().to_string(),
        remote.head("main")
    );
    drop(ws);

    // The same work dir, made by tidewatch, for another remote: it is
    // tidewatch's own clone, so it is thrown away and cloned afresh.
    let other = Remote::new();
    let ws = Workspace::open(WorkspaceOptions {
        workdir: Some(remote.workdir("work")),
        ..WorkspaceOptions::new(other.file_url())
    })
    .unwrap();
    assert_eq!((ws.stats().clones, ws.stats().reclones), (1, 1));
    drop(ws);

    // A clone that tidewatch did not make, of another remote: refused,
    // nothing deleted.
    let foreign = remote.workdir("foreign");
    git(
        remote.tmp.path(),
        &["clone", "-q", &url, foreign.to_str().unwrap()],
    );
    let err = Workspace::open(WorkspaceOptions {
        workdir: Some(foreign.clone()),
        ..WorkspaceOptions::new(other.file_url())
    })
    .unwrap_err();
    assert!(matches!(err, GitError::OriginMismatch { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&foreign.display().to_string()),
        "{message}"
    );
    assert!(message.contains(&other.file_url()), "{message}");
    assert!(foreign.join(APP).exists());

    // A non-empty directory that is no clone: refused, left alone.
    write(&remote.workdir("occupied").join("keep.txt"), "mine\n");
    let err = Workspace::open(remote.options(url.clone(), "occupied")).unwrap_err();
    assert!(matches!(err, GitError::WorkdirNotEmpty { .. }), "{err:?}");
    assert!(err.to_string().contains("occupied"), "{err}");
    assert_eq!(
        fs::read_to_string(remote.workdir("occupied").join("keep.txt")).unwrap(),
        "mine\n"
    );

    // An empty directory is fine to clone into.
    fs::create_dir(remote.workdir("empty")).unwrap();
    let ws = Workspace::open(remote.options(url, "empty")).unwrap();
    assert_eq!(ws.stats().clones, 1);
}

/// The default work directory comes from `XDG_CACHE_HOME`. Setting an
/// environment variable while other tests' threads run libgit2 (which reads
/// the environment from C) would race, so the workspace part runs in a child
/// process of this test binary with its own environment.
#[test]
fn default_workdir_lives_under_the_cache_dir() {
    let remote = Remote::new();
    let cache = remote.workdir("cache");
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "default_workdir_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("XDG_CACHE_HOME", &cache)
        .env("TIDEWATCH_TEST_REMOTE", remote.file_url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Exactly one clone, named after the repository, and no partial clone
    // directories left behind.
    let entries: Vec<String> = fs::read_dir(cache.join("tidewatch"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].starts_with("env-"), "{entries:?}");
    let clone = cache.join("tidewatch").join(&entries[0]);
    assert_eq!(
        git(&clone, &["config", "remote.origin.url"]),
        remote.file_url()
    );
}

/// The child half of [`default_workdir_lives_under_the_cache_dir`]; does
/// nothing unless started by it.
#[test]
#[ignore = "run in a child process by default_workdir_lives_under_the_cache_dir"]
fn default_workdir_child() {
    let Ok(url) = std::env::var("TIDEWATCH_TEST_REMOTE") else {
        return;
    };
    let cache = PathBuf::from(std::env::var("XDG_CACHE_HOME").unwrap());
    let ws = Workspace::open(WorkspaceOptions::new(url.clone())).unwrap();
    let again = Workspace::open(WorkspaceOptions::new(url)).unwrap();
    assert!(
        ws.path().starts_with(cache.join("tidewatch")),
        "{:?}",
        ws.path()
    );
    assert!(ws.path().join(".git").is_dir());
    assert_eq!(again.path(), ws.path());
    assert_eq!((ws.stats().clones, again.stats().clones), (1, 0));
}

#[test]
fn unreachable_remote_is_a_clear_error_and_leaves_nothing_behind() {
    let remote = Remote::new();
    let missing = format!("file://{}", remote.workdir("nowhere.git").display());
    let err = Workspace::open(remote.options(missing.clone(), "work")).unwrap_err();
    assert!(matches!(err, GitError::Clone { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&missing), "{message}");
    assert!(message.contains("check that the URL"), "{message}");
    assert!(!remote.workdir("work").exists());
    let stray: Vec<_> = fs::read_dir(remote.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn a_cycle_with_nothing_to_change_fetches_once_and_does_not_clone_commit_or_push() {
    let remote = Remote::new();
    let mut first = Workspace::open(remote.options(remote.file_url(), "work")).unwrap();
    let outcome = first
        .commit_and_push_with_retry("main", "main", &bot(), |dir| set_app_version(dir, APP_V2))
        .unwrap();
    let RetryOutcome::Committed { oid, attempts: 1 } = outcome else {
        panic!("expected a first-attempt commit, got {outcome:?}");
    };
    assert_eq!(
        first.stats(),
        GitStats {
            clones: 1,
            fetches: 1,
            pushes: 1,
            reclones: 0
        }
    );
    drop(first);

    let mut second = Workspace::open(remote.options(remote.file_url(), "work")).unwrap();
    let outcome = second
        .commit_and_push_with_retry("main", "main", &bot(), |dir| set_app_version(dir, APP_V2))
        .unwrap();
    assert_eq!(outcome, RetryOutcome::NothingToDo { attempts: 1 });
    assert_eq!(
        second.stats(),
        GitStats {
            clones: 0,
            fetches: 1,
            pushes: 0,
            reclones: 0
        }
    );
    assert_eq!(remote.head("main"), oid.to_string());

    // An edit step that claims a change but leaves the files as they were
    // does not produce an empty commit either.
    let outcome = second
        .commit_and_push_with_retry("main", "main", &bot(), |dir| {
            fs::write(dir.join(APP), APP_V2)?;
            Ok(Some("rewrite the same bytes".into()))
        })
        .unwrap();
    assert_eq!(outcome, RetryOutcome::NothingToDo { attempts: 1 });
    assert_eq!(
        second.stats(),
        GitStats {
            clones: 0,
            fetches: 2,
            pushes: 0,
            reclones: 0
        }
    );
    assert_eq!(remote.head("main"), oid.to_string());
}

#[test]
fn a_human_push_between_fetch_and_push_is_kept_and_the_update_redone_on_top() {
    let remote = Remote::new();
    let mut ws = Workspace::open(remote.options(remote.file_url(), "work")).unwrap();
    let calls = Cell::new(0);
    let human_oid = std::cell::RefCell::new(String::new());
    let started = Instant::now();
    let outcome = ws
        .commit_and_push_with_retry("main", "main", &bot(), |dir| {
            calls.set(calls.get() + 1);
            if calls.get() == 1 {
                // tidewatch has fetched and reset; the human pushes now.
                *human_oid.borrow_mut() =
                    remote.human_commit("main", "human.txt", "hand-made\n", "human change");
                assert!(!dir.join("human.txt").exists());
            } else {
                // The retry starts from the new tip, human's work included.
                assert_eq!(fs::read_to_string(dir.join("human.txt"))?, "hand-made\n");
            }
            set_app_version(dir, APP_V2)
        })
        .unwrap();
    let RetryOutcome::Committed { oid, attempts } = outcome else {
        panic!("expected a commit, got {outcome:?}");
    };
    assert_eq!(attempts, 2);
    assert_eq!(calls.get(), 2);
    assert_eq!(
        ws.stats(),
        GitStats {
            clones: 1,
            fetches: 2,
            pushes: 2,
            reclones: 0
        }
    );
    assert!(
        started.elapsed() >= Duration::from_millis(10),
        "backoff slept"
    );

    // History: seed <- human <- tidewatch, nothing overwritten.
    assert_eq!(remote.head("main"), oid.to_string());
    assert_eq!(
        remote.bare_git(&["rev-parse", "main^"]),
        *human_oid.borrow()
    );
    assert_eq!(
        remote.bare_git(&["log", "--format=%an|%s", "main"]),
        "tidewatch bot|Update app to 2.0.0\nHu Man|human change\nHu Man|seed"
    );
    assert_eq!(remote.show("main", "human.txt"), "hand-made\n");
    assert_eq!(remote.show("main", APP), APP_V2);
}

#[test]
fn the_same_change_pushed_by_a_human_meanwhile_is_not_duplicated() {
    let remote = Remote::new();
    let mut ws = Workspace::open(remote.options(remote.file_url(), "work")).unwrap();
    let calls = Cell::new(0);
    let outcome = ws
        .commit_and_push_with_retry("main", "main", &bot(), |dir| {
            calls.set(calls.get() + 1);
            if calls.get() == 1 {
                remote.human_commit("main", APP, APP_V2, "human bumps app too");
            }
            set_app_version(dir, APP_V2)
        })
        .unwrap();
    assert_eq!(outcome, RetryOutcome::NothingToDo { attempts: 2 });
    assert_eq!(ws.stats().pushes, 1);
    assert_eq!(
        remote.bare_git(&["log", "--format=%an|%s", "main"]),
        "Hu Man|human bumps app too\nHu Man|seed"
    );
}

#[test]
fn retries_are_bounded_and_never_force() {
    let remote = Remote::new();
    let mut options = remote.options(remote.file_url(), "work");
    options.retry = RetryPolicy {
        max_attempts: 3,
        backoff: Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_secs(1),
            jitter: false,
        },
    };
    let mut ws = Workspace::open(options).unwrap();
    let calls = Cell::new(0);
    let err = ws
        .commit_and_push_with_retry("main", "main", &bot(), |dir| {
            calls.set(calls.get() + 1);
            let n = calls.get();
            remote.human_commit("main", "busy.txt", &format!("{n}\n"), &format!("human {n}"));
            set_app_version(dir, APP_V2)
        })
        .unwrap_err();
    assert!(
        matches!(err, GitError::RetriesExhausted { attempts: 3, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("\"main\""), "{message}");
    assert!(message.contains(&remote.file_url()), "{message}");
    assert_eq!(calls.get(), 3);
    assert_eq!(ws.stats().pushes, 3);
    // Every human commit survived; none of tidewatch's landed.
    assert_eq!(
        remote.bare_git(&["log", "-1", "--format=%s", "main"]),
        "human 3"
    );
    assert_eq!(remote.bare_git(&["rev-list", "--count", "main"]), "4");
    assert_eq!(remote.show("main", APP), APP_V1);
}

#[test]
fn edit_step_errors_stop_the_cycle_with_context() {
    let remote = Remote::new();
    let mut ws = Workspace::open(remote.options(remote.file_url(), "work")).unwrap();
    let err = ws
        .commit_and_push_with_retry("main", "main", &bot(), |_| {
            Err(anyhow::anyhow!(
                "manifest apps/app/deployment.yaml: no image field"
            ))
        })
        .unwrap_err();
    assert!(matches!(err, GitError::Edit { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("\"main\""), "{message}");
    assert!(message.contains("no image field"), "{message}");
    assert_eq!(ws.stats().pushes, 0);
}

#[test]
fn a_missing_branch_is_created_from_the_base_branch() {
    let remote = Remote::new();
    let base = remote.head("main");
    let mut ws = Workspace::open(remote.options(remote.file_url(), "work")).unwrap();
    let outcome = ws
        .commit_and_push_with_retry("tidewatch/app-2.0.0", "main", &bot(), |dir| {
            set_app_version(dir, APP_V2)
        })
        .unwrap();
    let RetryOutcome::Committed { oid, attempts: 1 } = outcome else {
        panic!("expected a commit, got {outcome:?}");
    };
    assert_eq!(remote.head("tidewatch/app-2.0.0"), oid.to_string());
    assert_eq!(
        remote.bare_git(&["rev-parse", "tidewatch/app-2.0.0^"]),
        base
    );
    assert_eq!(remote.head("main"), base, "the base branch is untouched");

    // Once it exists, the branch itself is the starting point.
    ws.fetch().unwrap();
    assert_eq!(ws.reset_to("tidewatch/app-2.0.0", "main").unwrap(), oid);

    // Neither branch nor base: a clear error naming both.
    let err = ws.reset_to("feature", "develop").unwrap_err();
    assert!(matches!(err, GitError::BranchNotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("\"feature\"") && message.contains("\"develop\""),
        "{message}"
    );

    let err = ws.reset_to("bad..name", "main").unwrap_err();
    assert!(matches!(err, GitError::InvalidBranch { .. }), "{err:?}");
}

#[test]
fn reset_discards_local_drift() {
    let remote = Remote::new();
    let mut ws = Workspace::open(remote.options(remote.file_url(), "work")).unwrap();
    let tip = ws.reset_to("main", "main").unwrap();
    let dir = ws.path().to_path_buf();

    // A stray local commit...
    write(&dir.join(APP), "image: stray/commit:6.6.6\n");
    let stray = ws
        .commit_all("stray local commit", &bot())
        .unwrap()
        .unwrap();
    assert_ne!(stray, tip);
    // ...plus uncommitted edits, staged and unstaged, junk and ignored files.
    write(&dir.join("README.md"), "scribbles\n");
    write(&dir.join("junk.txt"), "junk\n");
    write(&dir.join("deep/nested/junk.yaml"), "junk: true\n");
    write(&dir.join("cache.tmp"), "ignored junk\n");
    write(&dir.join("staged.txt"), "staged\n");
    git(&dir, &["add", "staged.txt"]);
    fs::remove_file(dir.join(".gitignore")).unwrap();

    assert_eq!(ws.reset_to("main", "main").unwrap(), tip);
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), tip.to_string());
    assert_eq!(git(&dir, &["status", "--porcelain", "--ignored"]), "");
    assert_eq!(fs::read_to_string(dir.join(APP)).unwrap(), APP_V1);
    assert_eq!(
        fs::read_to_string(dir.join("README.md")).unwrap(),
        "# environment\n"
    );
    assert!(dir.join(".gitignore").exists());
    for junk in [
        "junk.txt",
        "deep/nested/junk.yaml",
        "cache.tmp",
        "staged.txt",
    ] {
        assert!(!dir.join(junk).exists(), "{junk} survived the reset");
    }
    // And the next commit carries only the new edit, on the remote tip.
    write(&dir.join(APP), APP_V2);
    let oid = ws
        .commit_all("Update app to 2.0.0", &bot())
        .unwrap()
        .unwrap();
    assert_eq!(
        ws.changed_files(tip, oid).unwrap(),
        vec![PathBuf::from(APP)]
    );
    assert_eq!(ws.push(oid, "main", false).unwrap(), PushOutcome::Pushed);
    assert_eq!(remote.bare_git(&["rev-parse", "main^"]), tip.to_string());
    assert_eq!(remote.show("main", "README.md"), "# environment\n");
}

#[test]
fn force_push_for_pr_branches_and_rejection_without_force() {
    let remote = Remote::new();
    let mut ws = Workspace::open(remote.options(remote.file_url(), "work")).unwrap();
    let branch = "tidewatch/pr";

    ws.reset_to(branch, "main").unwrap();
    write(&ws.path().join(APP), APP_V2);
    let first = ws.commit_all("PR: app 2.0.0", &bot()).unwrap().unwrap();
    assert_eq!(ws.push(first, branch, true).unwrap(), PushOutcome::Pushed);
    assert_eq!(remote.head(branch), first.to_string());

    // Recompute the PR from main: a sibling of the pushed commit.
    ws.reset_to("main", "main").unwrap();
    write(
        &ws.path().join(APP),
        "image: registry.example.com/app:2.1.0\n",
    );
    let second = ws.commit_all("PR: app 2.1.0", &bot()).unwrap().unwrap();

    let outcome = ws.push(second, branch, false).unwrap();
    assert!(
        matches!(outcome, PushOutcome::Rejected { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        remote.head(branch),
        first.to_string(),
        "rejected push changed nothing"
    );

    assert_eq!(ws.push(second, branch, true).unwrap(), PushOutcome::Pushed);
    assert_eq!(remote.head(branch), second.to_string());
    assert_eq!(ws.remote_tip(branch).unwrap(), Some(second));
    assert_eq!(ws.stats().pushes, 3);

    // A human's commit on the remote branch is also a rejection, not an error.
    ws.reset_to("main", "main").unwrap();
    remote.human_commit("main", "human.txt", "x\n", "human");
    write(&ws.path().join(APP), APP_V2);
    let stale = ws.commit_all("stale", &bot()).unwrap().unwrap();
    let outcome = ws.push(stale, "main", false).unwrap();
    assert!(
        matches!(outcome, PushOutcome::Rejected { .. }),
        "{outcome:?}"
    );
}

#[test]
fn remote_branches_can_be_deleted() {
    let remote = Remote::new();
    let mut ws = Workspace::open(remote.options(remote.file_url(), "work")).unwrap();
    ws.reset_to("old-pr", "main").unwrap();
    write(&ws.path().join(APP), APP_V2);
    let oid = ws.commit_all("PR", &bot()).unwrap().unwrap();
    ws.push(oid, "old-pr", true).unwrap();
    assert!(remote.has_branch("old-pr"));

    ws.delete_remote_branch("old-pr").unwrap();
    assert!(!remote.has_branch("old-pr"));
    assert!(remote.has_branch("main"));
    assert_eq!(ws.remote_tip("old-pr").unwrap(), None);
    ws.fetch().unwrap();
    assert_eq!(ws.remote_tip("old-pr").unwrap(), None);

    // Deleted by someone else already: still fine.
    ws.delete_remote_branch("old-pr").unwrap();

    // A branch deleted by the human disappears from remote_tip after a fetch.
    remote.human_commit("main", "x.txt", "x\n", "x");
    git(
        &remote.human,
        &["push", "--quiet", "origin", "HEAD:refs/heads/gone"],
    );
    ws.fetch().unwrap();
    assert!(ws.remote_tip("gone").unwrap().is_some());
    git(
        &remote.human,
        &["push", "--quiet", "origin", ":refs/heads/gone"],
    );
    ws.fetch().unwrap();
    assert_eq!(ws.remote_tip("gone").unwrap(), None);
}

#[test]
fn depth_is_ignored_for_local_remotes() {
    // libgit2's local transport cannot fetch shallow; the workspace fetches
    // local remotes in full instead of failing (see the HTTP test for depth).
    let remote = Remote::new();
    remote.human_commit("main", "second.txt", "2\n", "second");
    let mut options = remote.options(remote.file_url(), "work");
    options.depth = Some(1);
    let mut ws = Workspace::open(options).unwrap();
    ws.reset_to("main", "main").unwrap();
    assert_eq!(git(ws.path(), &["rev-list", "--count", "HEAD"]), "2");
    assert_eq!(
        git(ws.path(), &["rev-parse", "--is-shallow-repository"]),
        "false"
    );
}

// ---------------------------------------------------------------- HTTP ----

const TOKEN: &str = "ghs_T0kenThatMustNeverLeak";

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

fn http_options(
    remote: &Remote,
    url: String,
    workdir: &str,
    token: Option<&str>,
) -> WorkspaceOptions {
    let mut options = remote.options(url, workdir);
    options.credentials = GitCredentials {
        token: token.map(Secret::new),
        ..GitCredentials::default()
    };
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_http_with_a_token_clones_fetches_and_pushes() {
    let remote = Remote::new();
    let server = GitHttpServer::start(remote.tmp.path(), "x-access-token", TOKEN).await;
    let url = server.url("env.git");
    let options = http_options(&remote, url.clone(), "work", Some(TOKEN));

    let (outcome, stats, debug, config) = blocking(move || {
        let mut ws = Workspace::open(options).unwrap();
        let outcome = ws
            .commit_and_push_with_retry("main", "main", &bot(), |dir| set_app_version(dir, APP_V2))
            .unwrap();
        let config = fs::read_to_string(ws.path().join(".git/config")).unwrap();
        (outcome, ws.stats(), format!("{ws:?}"), config)
    })
    .await;
    let RetryOutcome::Committed { oid, attempts: 1 } = outcome else {
        panic!("expected a commit, got {outcome:?}");
    };
    assert_eq!(
        stats,
        GitStats {
            clones: 1,
            fetches: 1,
            pushes: 1,
            reclones: 0
        }
    );
    assert_eq!(remote.head("main"), oid.to_string());
    assert_eq!(remote.show("main", APP), APP_V2);
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains(&url), "{debug}");
    assert!(!config.contains(TOKEN), "{config}");

    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.authorized
            && r.path_and_query.ends_with("git-receive-pack")
            && r.status == 200),
        "{requests:#?}"
    );
    assert!(
        requests.iter().any(|r| !r.authorized && r.status == 401),
        "libgit2 authenticates after the challenge: {requests:#?}"
    );

    // The human pushes over plain git; the next cycle fetches it over HTTP.
    let human = remote.human_commit("main", "human.txt", "hi\n", "human");
    let options = http_options(&remote, url, "work", Some(TOKEN));
    let (tip, stats) = blocking(move || {
        let mut ws = Workspace::open(options).unwrap();
        ws.fetch().unwrap();
        (ws.remote_tip("main").unwrap(), ws.stats())
    })
    .await;
    assert_eq!(tip.unwrap().to_string(), human);
    assert_eq!(
        stats,
        GitStats {
            clones: 0,
            fetches: 1,
            pushes: 0,
            reclones: 0
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_token_is_a_clear_error_that_never_shows_the_token() {
    let remote = Remote::new();
    let server = GitHttpServer::start(remote.tmp.path(), "x-access-token", TOKEN).await;
    let url = server.url("env.git");
    let wrong = "ghs_WrongTokenAlsoSecret";

    let options = http_options(&remote, url.clone(), "wrong", Some(wrong));
    let err = blocking(move || Workspace::open(options).unwrap_err()).await;
    assert!(matches!(err, GitError::Auth { .. }), "{err:?}");
    let (message, debug) = (err.to_string(), format!("{err:?}"));
    for text in [&message, &debug] {
        assert!(!text.contains(wrong) && !text.contains(TOKEN), "{text}");
    }
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("token"), "{message}");
    assert!(!remote.workdir("wrong").exists(), "no half clone left");

    let options = http_options(&remote, url.clone(), "none", None);
    let err = blocking(move || Workspace::open(options).unwrap_err()).await;
    assert!(matches!(err, GitError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("no token is configured"), "{err}");

    // A token embedded in the URL works, and is neither shown nor stored.
    let embedded = url.replace("http://", &format!("http://x-access-token:{TOKEN}@"));
    assert!(!redact_url(&embedded).contains(TOKEN));
    assert_eq!(redact_url(&embedded), url);
    let options = http_options(&remote, embedded.clone(), "embedded", None);
    assert!(!format!("{options:?}").contains(TOKEN));
    let (debug, config, tip) = blocking(move || {
        let ws = Workspace::open(options).unwrap();
        (
            format!("{ws:?}"),
            fs::read_to_string(ws.path().join(".git/config")).unwrap(),
            ws.remote_tip("main").unwrap(),
        )
    })
    .await;
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(!config.contains(TOKEN), "{config}");
    assert_eq!(tip.unwrap().to_string(), remote.head("main"));

    // A wrong token embedded in the URL: the error shows neither.
    let bad = url.replace("http://", &format!("http://x-access-token:{wrong}@"));
    let options = http_options(&remote, bad, "embedded-wrong", None);
    let err = blocking(move || Workspace::open(options).unwrap_err()).await;
    assert!(matches!(err, GitError::Auth { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(wrong), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shallow_fetch_over_http() {
    let remote = Remote::new();
    for n in 2..=4 {
        remote.human_commit(
            "main",
            "history.txt",
            &format!("{n}\n"),
            &format!("commit {n}"),
        );
    }
    let server = GitHttpServer::start(remote.tmp.path(), "x-access-token", TOKEN).await;
    let mut options = http_options(&remote, server.url("env.git"), "shallow", Some(TOKEN));
    options.depth = Some(1);
    let options_again = options.clone();
    let dir = blocking(move || {
        let mut ws = Workspace::open(options).unwrap();
        ws.reset_to("main", "main").unwrap();
        ws.path().to_path_buf()
    })
    .await;
    assert_eq!(git(&dir, &["rev-parse", "--is-shallow-repository"]), "true");
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]), "1");
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), remote.head("main"));

    // Incremental shallow fetch, then a commit pushed from the shallow clone.
    let human = remote.human_commit("main", "history.txt", "5\n", "commit 5");
    let outcome = blocking(move || {
        let mut ws = Workspace::open(options_again).unwrap();
        let outcome = ws
            .commit_and_push_with_retry("main", "main", &bot(), |dir| set_app_version(dir, APP_V2))
            .unwrap();
        assert_eq!(
            ws.stats(),
            GitStats {
                clones: 0,
                fetches: 1,
                pushes: 1,
                reclones: 0
            }
        );
        outcome
    })
    .await;
    let RetryOutcome::Committed { oid, .. } = outcome else {
        panic!("expected a commit, got {outcome:?}");
    };
    assert_eq!(remote.head("main"), oid.to_string());
    assert_eq!(remote.bare_git(&["rev-parse", "main^"]), human);
    assert_eq!(remote.bare_git(&["rev-list", "--count", "main"]), "6");
    remote.bare_git(&["fsck", "--no-progress"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_refusals_over_http() {
    // Over smart HTTP the server's receive-pack reports per-ref status,
    // which arrives through libgit2's push_update_reference callback.
    let remote = Remote::new();
    remote.bare_git(&["config", "receive.denyNonFastForwards", "true"]);
    let hook = remote.bare.join("hooks/pre-receive");
    write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  [ \"$ref\" = refs/heads/protected ] && { echo 'protected branch'; exit 1; }\ndone\nexit 0\n",
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let server = GitHttpServer::start(remote.tmp.path(), "x-access-token", TOKEN).await;
    let options = http_options(&remote, server.url("env.git"), "work", Some(TOKEN));
    let url = server.url("env.git");
    let (denied, forced) = blocking(move || {
        let mut ws = Workspace::open(options).unwrap();
        ws.reset_to("main", "main").unwrap();
        write(&ws.path().join(APP), APP_V2);
        let first = ws.commit_all("first", &bot()).unwrap().unwrap();
        // A hook refusal is an error, not a retryable rejection.
        let denied = ws.push(first, "protected", false).unwrap_err();
        assert_eq!(ws.push(first, "pr", false).unwrap(), PushOutcome::Pushed);
        // A sibling force-pushed where the server denies non-fast-forwards:
        // the server's "non-fast-forward" status is a Rejected outcome.
        ws.reset_to("main", "main").unwrap();
        write(
            &ws.path().join(APP),
            "image: registry.example.com/app:3.0.0\n",
        );
        let sibling = ws.commit_all("sibling", &bot()).unwrap().unwrap();
        let forced = ws.push(sibling, "pr", true).unwrap();
        (denied, forced)
    })
    .await;
    assert!(
        matches!(denied, GitError::PushRejected { .. }),
        "{denied:?}"
    );
    let message = denied.to_string();
    assert!(
        message.contains("\"protected\"") && message.contains(&url),
        "{message}"
    );
    assert!(message.contains("hook declined"), "{message}");
    assert!(!remote.has_branch("protected"));
    let PushOutcome::Rejected { reason } = forced else {
        panic!("expected a rejection, got {forced:?}");
    };
    assert!(reason.contains("non-fast-forward"), "{reason}");
}

// ----------------------------------------------------------------- SSH ----

/// A real OpenSSH server on a loopback port, serving the remote's bare
/// repository by absolute path to one authorised client key.
struct SshServer {
    child: std::process::Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SshServer {
    fn start(dir: &Path) -> SshServer {
        fs::create_dir_all(dir).unwrap();
        // sshd refuses to start without its privilege separation directory.
        fs::create_dir_all("/run/sshd").unwrap();
        for (name, passphrase) in [
            ("host", ""),
            ("client", ""),
            ("locked", "open sesame"),
            ("stranger", ""),
        ] {
            git_free_keygen(&dir.join(name), passphrase);
        }
        let mut authorized = fs::read_to_string(dir.join("client.pub")).unwrap();
        authorized.push_str(&fs::read_to_string(dir.join("locked.pub")).unwrap());
        fs::write(dir.join("authorized_keys"), authorized).unwrap();
        let port = support::free_port();
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {keys}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nAllowUsers {user}\n\
             PidFile {pid}\nLogLevel ERROR\n",
            host = dir.join("host").display(),
            keys = dir.join("authorized_keys").display(),
            pid = dir.join("sshd.pid").display(),
        );
        fs::write(dir.join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        SshServer {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn url(&self, bare: &Path) -> String {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        format!("ssh://{user}@127.0.0.1:{}{}", self.port, bare.display())
    }

    /// A known_hosts file naming this server with `key`'s public half.
    fn known_hosts(&self, name: &str, key: &str) -> PathBuf {
        let public = fs::read_to_string(self.dir.join(format!("{key}.pub"))).unwrap();
        let mut fields = public.split_whitespace();
        let (kind, blob) = (fields.next().unwrap(), fields.next().unwrap());
        let path = self.dir.join(name);
        fs::write(
            &path,
            format!("# test\n[127.0.0.1]:{} {kind} {blob}\n", self.port),
        )
        .unwrap();
        path
    }
}

fn git_free_keygen(path: &Path, passphrase: &str) {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "tidewatch-test",
            "-f",
        ])
        .arg(path)
        .status()
        .expect("run ssh-keygen");
    assert!(status.success());
}

fn ssh_options(
    remote: &Remote,
    server: &SshServer,
    workdir: &str,
    credentials: GitCredentials,
) -> WorkspaceOptions {
    let mut options = remote.options(server.url(&remote.bare), workdir);
    options.credentials = credentials;
    options
}

#[test]
fn ssh_key_auth_and_known_hosts_checking() {
    let remote = Remote::new();
    let server = SshServer::start(&remote.workdir("ssh"));
    let key = |name: &str, passphrase: Option<&str>| tidewatch::git::SshKey {
        path: server.dir.join(name),
        passphrase: passphrase.map(Secret::new),
    };
    let trusted = server.known_hosts("known_hosts", "host");

    // The right host key and an authorised key: clone, commit, push.
    let credentials = GitCredentials {
        ssh_key: Some(key("client", None)),
        known_hosts: Some(trusted.clone()),
        ..GitCredentials::default()
    };
    let mut ws = Workspace::open(ssh_options(&remote, &server, "work", credentials)).unwrap();
    let outcome = ws
        .commit_and_push_with_retry("main", "main", &bot(), |dir| set_app_version(dir, APP_V2))
        .unwrap();
    let RetryOutcome::Committed { oid, .. } = outcome else {
        panic!("expected a commit, got {outcome:?}");
    };
    assert_eq!(remote.head("main"), oid.to_string());

    // A key with a passphrase.
    let credentials = GitCredentials {
        ssh_key: Some(key("locked", Some("open sesame"))),
        known_hosts: Some(trusted.clone()),
        ..GitCredentials::default()
    };
    let ws = Workspace::open(ssh_options(&remote, &server, "locked", credentials)).unwrap();
    assert!(format!("{ws:?}").contains("Secret(***)"));
    assert!(!format!("{ws:?}").contains("open sesame"));

    // The host is not in the configured known_hosts: refused, with advice.
    let empty = server.dir.join("empty_known_hosts");
    fs::write(&empty, "# nobody\n").unwrap();
    let credentials = GitCredentials {
        ssh_key: Some(key("client", None)),
        known_hosts: Some(empty.clone()),
        ..GitCredentials::default()
    };
    let err = Workspace::open(ssh_options(&remote, &server, "unknown", credentials)).unwrap_err();
    assert!(matches!(err, GitError::HostKey { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("is not in"), "{message}");
    assert!(message.contains("ssh-keyscan"), "{message}");
    assert!(message.contains("SHA256:"), "{message}");

    // The host presents a different key than recorded: refused as changed.
    let credentials = GitCredentials {
        ssh_key: Some(key("client", None)),
        known_hosts: Some(server.known_hosts("wrong_known_hosts", "stranger")),
        ..GitCredentials::default()
    };
    let err = Workspace::open(ssh_options(&remote, &server, "changed", credentials)).unwrap_err();
    assert!(matches!(err, GitError::HostKey { .. }), "{err:?}");
    assert!(err.to_string().contains("does not match"), "{err}");

    // The explicit opt-out accepts it.
    let credentials = GitCredentials {
        ssh_key: Some(key("client", None)),
        known_hosts: Some(empty),
        accept_unknown_hosts: true,
        ..GitCredentials::default()
    };
    Workspace::open(ssh_options(&remote, &server, "optout", credentials)).unwrap();

    // A key the server does not accept, and a wrong passphrase: auth errors.
    for (workdir, key) in [
        ("stranger", key("stranger", None)),
        ("badphrase", key("locked", Some("wrong phrase"))),
    ] {
        let credentials = GitCredentials {
            ssh_key: Some(key),
            known_hosts: Some(trusted.clone()),
            ..GitCredentials::default()
        };
        let err = Workspace::open(ssh_options(&remote, &server, workdir, credentials)).unwrap_err();
        assert!(matches!(err, GitError::Auth { .. }), "{workdir}: {err:?}");
        assert!(
            !format!("{err} {err:?}").contains("wrong phrase"),
            "{err:?}"
        );
    }
}
