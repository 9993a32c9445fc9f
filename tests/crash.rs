//! Crash safety: `tidewatch run` killed with SIGKILL at random moments and
//! restarted, while a human keeps pushing to the same branch. At the end
//! every expected change landed exactly once, every human commit survives,
//! and no commit holds a file that does not parse.
//!
//! `TW_KILL_ITERATIONS` sets the number of kills (default 6, for CI);
//! `TW_KILL_ITERATIONS=30 cargo test --test crash` is the full run.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::git;
use support::registry::{AuthMode, TestRegistry};

fn git_ok(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .args([
            "-c",
            "user.name=Human",
            "-c",
            "user.email=human@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Commits `humans/NNN.txt` to `dev` every ~150 ms until told to stop,
/// rebasing over tidewatch's commits; returns the subjects it pushed.
fn human_pusher(bare: PathBuf, clone: PathBuf, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut pushed = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let subject = format!("human change {n}");
        let _ = git_ok(&clone, &["fetch", "-q", "origin"]);
        let _ = git_ok(&clone, &["reset", "-q", "--hard", "origin/dev"]);
        std::fs::create_dir_all(clone.join("humans")).unwrap();
        std::fs::write(clone.join(format!("humans/{n:03}.txt")), format!("{n}\n")).unwrap();
        let _ = git_ok(&clone, &["add", "."]);
        if !git_ok(&clone, &["commit", "-q", "-m", &subject]) {
            continue;
        }
        for _ in 0..20 {
            if git_ok(&clone, &["push", "-q", "origin", "HEAD:dev"]) {
                pushed.push(subject.clone());
                break;
            }
            let _ = git_ok(&clone, &["pull", "-q", "--rebase", "origin", "dev"]);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let _ = bare;
    pushed
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let iterations: usize = std::env::var("TW_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir().unwrap();
    let registry = TestRegistry::start(AuthMode::Anonymous).await;
    registry
        .push_image("team/app", &["1.0.0"], "2024-01-01T00:00:00Z", 1)
        .await;
    let image = format!("{}/team/app", registry.host);

    let manifest = |tag: &str| {
        format!(
            "# the app\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {image}:{tag}   # pinned by tidewatch\n"
        )
    };
    let values = format!("image:\n  repository: {image}\n  tag: 1.0.0\n");
    let (bare, human) = support::environment_repo(
        dir.path(),
        &[
            ("envs/dev/app.yaml", &manifest("1.0.0")),
            ("envs/dev/values.yaml", &values),
        ],
    );
    git(&human, &["push", "-q", "origin", "HEAD:dev"]);

    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!(
            "repository: {{ url: 'file://{}', branch: main, author: {{ name: tidewatch, email: tidewatch@example.com }} }}\nregistries:\n  - {{ host: '{}', insecure: true }}\nimages:\n  - {{ name: app, image: '{image}', semver: ^1, interval: 1s }}\nupdates:\n  - {{ name: dev, paths: [envs/dev], branch: dev }}\nserver: {{ allowUnauthenticatedWebhooks: true }}\n",
            bare.display(),
            registry.host
        ),
    )
    .unwrap();
    let workdir = dir.path().join("work");
    let start_service = || {
        let port = support::free_port();
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["run", "-c", config.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--workdir", workdir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (bare, clone, stop) = (bare.clone(), dir.path().join("pusher"), stop.clone());
        git(
            dir.path(),
            &[
                "clone",
                "-q",
                bare.to_str().unwrap(),
                clone.to_str().unwrap(),
            ],
        );
        std::thread::spawn(move || human_pusher(bare, clone, stop))
    };

    let mut newest = "1.0.0".to_string();
    for i in 0..iterations {
        // A new version for tidewatch to deliver this round.
        newest = format!("1.{}.0", i + 1);
        registry
            .push_image(
                "team/app",
                &[&newest],
                "2024-02-01T00:00:00Z",
                10 + i as u64,
            )
            .await;
        let mut child = start_service();
        let wait = Duration::from_millis(fastrand::u64(50..1500));
        tokio::time::sleep(wait).await;
        // SIGKILL: no chance to clean up.
        child.kill().unwrap();
        child.wait().unwrap();
    }

    // Restart once more and let it converge on the newest version.
    let mut child = start_service();
    let started = Instant::now();
    let want = format!("{image}:{newest}");
    loop {
        let dev = Command::new("git")
            .args(["show", "dev:envs/dev/app.yaml"])
            .current_dir(&bare)
            .output()
            .unwrap();
        if String::from_utf8_lossy(&dev.stdout).contains(&want) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the last restart never delivered {newest}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One more second so a duplicate, if any, would have been pushed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    let human_subjects = pusher.join().unwrap();

    // Every tidewatch commit moved to a version no other commit moved to.
    let log = git(&bare, &["log", "--format=%H %ae %s", "dev"]);
    let mut delivered: Vec<String> = Vec::new();
    for line in log.lines() {
        let mut parts = line.splitn(3, ' ');
        let (_, email, subject) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap_or(""),
        );
        if email == "tidewatch@example.com" {
            let version = subject.rsplit(' ').next().unwrap().to_string();
            assert!(
                !delivered.contains(&version),
                "{version} was delivered twice:\n{log}"
            );
            delivered.push(version);
        }
    }
    assert!(delivered.contains(&newest), "{newest} missing:\n{log}");
    // Every human commit survives.
    for subject in &human_subjects {
        assert!(log.contains(subject.as_str()), "lost `{subject}`:\n{log}");
    }
    // No commit holds a file that does not parse, or a half-written value.
    let commits = git(&bare, &["rev-list", "dev"]);
    for commit in commits.lines() {
        for file in ["envs/dev/app.yaml", "envs/dev/values.yaml"] {
            let text = git(&bare, &["show", &format!("{commit}:{file}")]);
            let parsed: Result<serde_norway::Value, _> = serde_norway::from_str(&text);
            assert!(parsed.is_ok(), "{commit}:{file} does not parse:\n{text}");
            assert!(
                text.lines()
                    .any(|l| l.contains(&format!("{image}:1."))
                        || l.trim_start().starts_with("tag: 1.")),
                "{commit}:{file} lost its value:\n{text}"
            );
        }
    }
    eprintln!(
        "{iterations} kills; delivered {delivered:?}; {} human commits survived",
        human_subjects.len()
    );
}
