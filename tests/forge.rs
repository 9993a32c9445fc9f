//! The forge against the fake GitHub: pull requests on a real bare git
//! repository, with GitHub's rules enforced by the fake.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::github::{FakeGitHub, APP_LOGIN, BOT_LOGIN};
use tidewatch::forge::{
    declines, parse_body, render_body, Decline, Forge, ForgeError, GitHub, GitHubAuth,
    GitHubOptions as ForgeOptions, PrChange, PrState, PullRequestSpec, RateLimitRetry,
};
use tidewatch::retry::Backoff;
use tidewatch::secret::Secret;

const OWNER: &str = "acme";
const REPO: &str = "env";
const TOKEN: &str = "ghp_fakeTOKEN0123456789";
const HEAD: &str = "tidewatch/prod";

/// A bare repository with `main`, `tidewatch/prod` (one commit ahead of
/// main) and `tidewatch/noop` (same commit as main).
struct Repo {
    _dir: tempfile::TempDir,
    bare: PathBuf,
    work: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().expect("temporary directory");
        let bare = dir.path().join("env.git");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&bare).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        git(&bare, &["init", "--bare", "-b", "main"]);
        git(&work, &["init", "-b", "main"]);
        std::fs::write(work.join("app.yaml"), "image: ghcr.io/acme/app:1.0.0\n").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-m", "initial"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        git(&work, &["push", "origin", "main"]);
        let repo = Repo {
            _dir: dir,
            bare,
            work,
        };
        repo.branch(HEAD, "app.yaml", "image: ghcr.io/acme/app:1.2.3\n");
        git(
            &repo.work,
            &["push", "origin", "main:refs/heads/tidewatch/noop"],
        );
        repo
    }

    /// Creates (or resets) `name` as main plus one commit writing `file`.
    fn branch(&self, name: &str, file: &str, content: &str) {
        git(&self.work, &["checkout", "-q", "-B", name, "main"]);
        std::fs::write(self.work.join(file), content).unwrap();
        git(&self.work, &["add", "."]);
        git(
            &self.work,
            &["commit", "-q", "-m", &format!("update on {name}")],
        );
        git(&self.work, &["push", "-q", "-f", "origin", name]);
        git(&self.work, &["checkout", "-q", "main"]);
    }
}

fn options(fake: &FakeGitHub, auth: GitHubAuth) -> ForgeOptions {
    ForgeOptions {
        api_base: Some(fake.api_base.clone()),
        owner: OWNER.into(),
        repo: REPO.into(),
        auth,
        timeout: Duration::from_secs(10),
    }
}

async fn setup() -> (Repo, FakeGitHub, GitHub) {
    let repo = Repo::new();
    let fake = FakeGitHub::start(OWNER, REPO, &repo.bare, TOKEN).await;
    let forge = GitHub::connect(options(&fake, GitHubAuth::Token(Secret::new(TOKEN))))
        .await
        .expect("connect to the fake GitHub");
    (repo, fake, forge)
}

fn spec(head: &str) -> PullRequestSpec {
    PullRequestSpec {
        head: head.into(),
        base: "main".into(),
        title: "tidewatch: update prod".into(),
        body: render_body(
            "prod",
            &[PrChange {
                policy: "app".into(),
                image: "ghcr.io/acme/app".into(),
                old: "1.0.0".into(),
                new: "1.2.3".into(),
                files: vec!["app.yaml".into()],
            }],
        ),
        ..PullRequestSpec::default()
    }
}

fn count(fake: &FakeGitHub, method: &str, path_suffix: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|(m, p, _)| m == method && p.ends_with(path_suffix))
        .count()
}

#[tokio::test]
async fn create_pr_applies_labels_reviewers_assignees_and_draft() {
    let (_repo, fake, forge) = setup().await;
    let spec = PullRequestSpec {
        labels: vec!["tidewatch".into(), "env/prod".into()],
        reviewers: vec!["alice".into(), "bob".into()],
        team_reviewers: vec!["platform".into()],
        assignees: vec!["carol".into()],
        draft: true,
        ..spec(HEAD)
    };
    let pr = forge
        .create_pr(&spec)
        .await
        .expect("create the pull request");

    assert_eq!(pr.head, HEAD);
    assert_eq!(pr.base, "main");
    assert_eq!(pr.state, PrState::Open);
    assert_eq!(pr.title, spec.title);
    assert_eq!(pr.body, spec.body);
    assert!(
        pr.url.ends_with(&format!("/pull/{}", pr.number)),
        "{}",
        pr.url
    );

    let prs = fake.prs();
    assert_eq!(prs.len(), 1);
    let stored = &prs[0];
    assert_eq!(stored.number, pr.number);
    assert_eq!(stored.author, BOT_LOGIN);
    assert_eq!(stored.labels, ["tidewatch", "env/prod"]);
    assert_eq!(stored.reviewers, ["alice", "bob"]);
    assert_eq!(stored.team_reviewers, ["platform"]);
    assert_eq!(stored.assignees, ["carol"]);
    assert!(stored.draft);
    assert_eq!(stored.body, spec.body);
    // One create, one each for labels, reviewers, assignees; every write
    // the fake saw was counted by the forge.
    assert_eq!(forge.write_calls(), 4);
    assert_eq!(fake.write_count(), 4);
}

#[tokio::test]
async fn second_create_for_the_same_head_returns_the_open_pr() {
    let (_repo, fake, forge) = setup().await;
    let first = forge.create_pr(&spec(HEAD)).await.unwrap();
    let again = PullRequestSpec {
        labels: vec!["late-label".into()],
        ..spec(HEAD)
    };
    let second = forge
        .create_pr(&again)
        .await
        .expect("the existing PR, not an error");
    assert_eq!(second.number, first.number);
    assert_eq!(fake.prs().len(), 1, "no second pull request");
    // GitHub was asked (and refused with 422) exactly once more.
    let creates: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/pulls"))
        .map(|(_, _, s)| *s)
        .collect();
    assert_eq!(creates, [201, 422]);
    // A label missing from the existing PR is still added.
    assert_eq!(fake.prs()[0].labels, ["late-label"]);
}

#[tokio::test]
async fn no_commits_between_base_and_head_is_its_own_error_and_not_retried() {
    let (_repo, fake, forge) = setup().await;
    let error = forge
        .create_pr(&spec("tidewatch/noop"))
        .await
        .expect_err("nothing to propose");
    match &error {
        ForgeError::NoCommits {
            repo, head, base, ..
        } => {
            assert_eq!(repo, "acme/env");
            assert_eq!(head, "tidewatch/noop");
            assert_eq!(base, "main");
        }
        other => panic!("expected NoCommits, got {other:?}"),
    }
    assert!(error.to_string().contains("no commits between"), "{error}");
    assert_eq!(
        count(&fake, "POST", "/pulls"),
        1,
        "exactly one create attempt"
    );
    assert_eq!(fake.write_count(), 1);
    assert!(fake.prs().is_empty());
}

#[tokio::test]
async fn missing_branches_are_rejected_with_the_branch_named() {
    let (_repo, fake, forge) = setup().await;
    let error = forge.create_pr(&spec("tidewatch/gone")).await.unwrap_err();
    assert!(
        matches!(error, ForgeError::Rejected { status: 422, .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("tidewatch/gone") && text.contains("422"),
        "{text}"
    );
    assert_eq!(count(&fake, "POST", "/pulls"), 1);
}

#[tokio::test]
async fn open_pr_for_head_finds_it_and_update_pr_changes_it() {
    let (repo, fake, forge) = setup().await;
    assert_eq!(forge.open_pr_for_head(HEAD).await.unwrap(), None);

    let created = forge.create_pr(&spec(HEAD)).await.unwrap();
    // A PR from another head must not be taken for ours.
    repo.branch("other", "other.yaml", "x: 1\n");
    forge.create_pr(&spec("other")).await.unwrap();

    let found = forge
        .open_pr_for_head(HEAD)
        .await
        .unwrap()
        .expect("open PR");
    assert_eq!(found, created);

    forge
        .update_pr(created.number, "tidewatch: update prod (2)", "new body")
        .await
        .unwrap();
    let stored = fake.pr(created.number).unwrap();
    assert_eq!(stored.title, "tidewatch: update prod (2)");
    assert_eq!(stored.body, "new body");
    let found = forge.open_pr_for_head(HEAD).await.unwrap().unwrap();
    assert_eq!(found.title, "tidewatch: update prod (2)");
    assert_eq!(found.body, "new body");

    let error = forge.update_pr(999, "t", "b").await.unwrap_err();
    assert!(matches!(error, ForgeError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("#999"), "{error}");
}

#[tokio::test]
async fn close_pr_comments_then_closes_and_declined_versions_remember_it() {
    let (repo, fake, forge) = setup().await;
    let declined = forge.create_pr(&spec(HEAD)).await.unwrap();
    forge
        .comment(declined.number, "Superseded by a newer version.")
        .await
        .unwrap();
    forge.close_pr(declined.number).await.unwrap();
    let stored = fake.pr(declined.number).unwrap();
    assert_eq!(stored.state, "closed");
    assert!(!stored.merged);
    assert_eq!(stored.comments, ["Superseded by a newer version."]);
    // Comment first, then close.
    let writes: Vec<String> = fake
        .requests()
        .iter()
        .filter(|(m, _, _)| m != "GET")
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert_eq!(
        writes[1..],
        [
            format!("POST /repos/acme/env/issues/{}/comments", declined.number),
            format!("PATCH /repos/acme/env/pulls/{}", declined.number),
        ]
    );
    assert_eq!(forge.open_pr_for_head(HEAD).await.unwrap(), None);

    // A second PR on the same head, merged by a human: not declined.
    repo.branch(HEAD, "app.yaml", "image: ghcr.io/acme/app:1.3.0\n");
    let mut merged_spec = spec(HEAD);
    merged_spec.body = render_body(
        "prod",
        &[PrChange {
            policy: "app".into(),
            image: "ghcr.io/acme/app".into(),
            old: "1.0.0".into(),
            new: "1.3.0".into(),
            files: vec!["app.yaml".into()],
        }],
    );
    let merged = forge.create_pr(&merged_spec).await.unwrap();
    let main_before = git(&repo.bare, &["rev-parse", "refs/heads/main"]);
    fake.merge_pr(merged.number);
    let main_after = git(&repo.bare, &["rev-parse", "refs/heads/main"]);
    assert_ne!(main_before, main_after, "merging moved main");
    assert_eq!(
        git(&repo.bare, &["show", "main:app.yaml"]),
        "image: ghcr.io/acme/app:1.3.0"
    );

    let closed = forge.closed_prs_for_head(HEAD).await.unwrap();
    let states: Vec<(u64, PrState)> = closed.iter().map(|p| (p.number, p.state)).collect();
    assert_eq!(
        states,
        [
            (merged.number, PrState::Merged),
            (declined.number, PrState::Closed)
        ]
    );
    let found = declines(&closed);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (
            found[0].policy.as_str(),
            found[0].version.as_str(),
            found[0].number
        ),
        ("app", "1.2.3", declined.number)
    );
    assert!(found[0].closed_at.is_some(), "{found:?}");
    let _: &Decline = &found[0];
}

#[tokio::test]
async fn closed_prs_are_read_across_pages() {
    let (repo, fake, forge) = setup().await;
    fake.set_max_per_page(2);
    let mut numbers = Vec::new();
    for version in ["2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0"] {
        repo.branch(
            HEAD,
            "app.yaml",
            &format!("image: ghcr.io/acme/app:{version}\n"),
        );
        let pr = forge.create_pr(&spec(HEAD)).await.unwrap();
        fake.close_pr(pr.number);
        numbers.push(pr.number);
    }
    let closed = forge.closed_prs_for_head(HEAD).await.unwrap();
    let got: Vec<u64> = closed.iter().map(|p| p.number).collect();
    numbers.reverse();
    assert_eq!(got, numbers, "all five, newest first");
    assert_eq!(count(&fake, "GET", "/pulls"), 3, "three pages of two");
}

#[tokio::test]
async fn a_wrong_token_is_a_clear_401_without_the_token() {
    let repo = Repo::new();
    let fake = FakeGitHub::start(OWNER, REPO, &repo.bare, TOKEN).await;
    let wrong = "ghp_WRONGsecretVALUE42";
    let error = GitHub::connect(options(&fake, GitHubAuth::Token(Secret::new(wrong))))
        .await
        .expect_err("bad credentials");
    assert!(
        matches!(error, ForgeError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    let text = error.to_string();
    let debug = format!("{error:?}");
    assert!(text.contains("acme/env") && text.contains("401"), "{text}");
    assert!(text.contains("Bad credentials"), "{text}");
    assert!(text.contains("token"), "says what to fix: {text}");
    assert!(!text.contains("WRONGsecret") && !debug.contains("WRONGsecret"));

    let error = GitHub::connect(options(
        &fake,
        GitHubAuth::Token(Secret::new("bad token\n")),
    ))
    .await
    .expect_err("a token with a space cannot be sent");
    assert!(matches!(error, ForgeError::Config { .. }), "{error:?}");
    assert!(!error.to_string().contains("bad token"));

    let mut other_repo = options(&fake, GitHubAuth::Token(Secret::new(TOKEN)));
    other_repo.repo = "nope".into();
    let error = GitHub::connect(other_repo)
        .await
        .expect_err("no such repository");
    assert!(matches!(error, ForgeError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("acme/nope"), "{error}");
}

#[tokio::test]
async fn secondary_rate_limit_is_waited_out() {
    let (_repo, fake, forge) = setup().await;
    fake.rate_limit_next(1, Some(1));
    let started = Instant::now();
    let pr = forge
        .create_pr(&spec(HEAD))
        .await
        .expect("succeeds after waiting");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    let creates: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/pulls"))
        .map(|(_, _, s)| *s)
        .collect();
    assert_eq!(creates, [403, 201]);
    assert_eq!(fake.prs().len(), 1);
    assert_eq!(fake.prs()[0].number, pr.number);
    assert_eq!(forge.write_calls(), 2);
}

#[tokio::test]
async fn rate_limiting_gives_up_after_bounded_retries() {
    let (_repo, fake, forge) = setup().await;
    let forge = forge.with_retry(RateLimitRetry {
        max_retries: 2,
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_secs(30),
            jitter: false,
        },
    });
    // No Retry-After: exponential back-off, 3 attempts in all.
    fake.rate_limit_next(3, None);
    let error = forge.update_pr(1, "t", "b").await.unwrap_err();
    match &error {
        ForgeError::RateLimited {
            attempts,
            retry_after,
            ..
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(*retry_after, None);
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(
        error.to_string().contains("updating pull request #1"),
        "{error}"
    );
    assert_eq!(count(&fake, "PATCH", "/pulls/1"), 3);

    // A Retry-After beyond max_wait is not slept through.
    fake.rate_limit_next(1, Some(3600));
    let started = Instant::now();
    let error = forge.open_pr_for_head(HEAD).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(
            error,
            ForgeError::RateLimited {
                attempts: 1,
                retry_after: Some(d),
                ..
            } if d == Duration::from_secs(3600)
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn reviewer_refusal_does_not_lose_the_pr() {
    let (_repo, fake, forge) = setup().await;
    let spec = PullRequestSpec {
        labels: vec!["tidewatch".into()],
        // GitHub refuses a review request from the PR's own author.
        reviewers: vec![BOT_LOGIN.into()],
        assignees: vec!["carol".into()],
        ..spec(HEAD)
    };
    let pr = forge
        .create_pr(&spec)
        .await
        .expect("the PR itself was opened");
    let stored = fake.pr(pr.number).unwrap();
    assert_eq!(stored.labels, ["tidewatch"]);
    assert_eq!(stored.assignees, ["carol"]);
    assert!(stored.reviewers.is_empty());
    assert_eq!(
        count(&fake, "POST", "/requested_reviewers"),
        1,
        "not retried"
    );
}

#[tokio::test]
async fn enterprise_style_api_base_with_a_path() {
    let repo = Repo::new();
    let fake = FakeGitHub::start(OWNER, REPO, &repo.bare, TOKEN).await;
    let mut opts = options(&fake, GitHubAuth::Token(Secret::new(TOKEN)));
    opts.api_base = Some(format!("{}api/v3", fake.api_base));
    let forge = GitHub::connect(opts).await.unwrap();
    let pr = forge.create_pr(&spec(HEAD)).await.unwrap();
    assert_eq!(
        forge.open_pr_for_head(HEAD).await.unwrap().unwrap().number,
        pr.number
    );
    assert!(fake
        .requests()
        .iter()
        .all(|(_, path, _)| path.starts_with("/api/v3/repos/acme/env")));
}

#[test]
fn body_round_trip_keeps_dashes_and_declines() {
    let changes = [
        PrChange {
            policy: "app--canary".into(),
            image: "ghcr.io/acme/app".into(),
            old: "1.0.0".into(),
            new: "1.2.3--rc.1-->".into(),
            files: vec!["apps/app.yaml".into(), "apps/app-canary.yaml".into()],
        },
        PrChange {
            policy: "db".into(),
            image: "docker.io/library/postgres".into(),
            old: "16.1".into(),
            new: "16.2".into(),
            files: vec![],
        },
    ];
    let body = render_body("prod", &changes);
    assert!(body.contains("| Image | Old → New | Policy | Files |"));
    assert!(body.contains("`docker.io/library/postgres` | `16.1` → `16.2`"));
    let block = &body[body.find("<!-- tidewatch:v1").unwrap()..];
    assert_eq!(block.matches("-->").count(), 1, "{block}");
    assert!(block.is_ascii());

    let record = parse_body(&body).expect("our block");
    assert_eq!(record.update, "prod");
    assert_eq!(record.changes.len(), 2);
    assert_eq!(record.changes[0].policy, "app--canary");
    assert_eq!(record.changes[0].new, "1.2.3--rc.1-->");
    assert_eq!(record.changes[1].image, "docker.io/library/postgres");
    assert_eq!(parse_body("A human's PR.\n<!-- a comment -->"), None);
}

fn openssl(args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl {args:?}");
}

#[tokio::test]
async fn github_app_installation_token() {
    let repo = Repo::new();
    let keys = tempfile::tempdir().unwrap();
    let private = keys.path().join("app.pem");
    let public = keys.path().join("app.pub.pem");
    let other = keys.path().join("other.pem");
    let (private_s, public_s, other_s) = (
        private.to_str().unwrap(),
        public.to_str().unwrap(),
        other.to_str().unwrap(),
    );
    // GitHub hands out PKCS#1 ("BEGIN RSA PRIVATE KEY") keys.
    openssl(&["genrsa", "-traditional", "-out", private_s, "2048"]);
    openssl(&["rsa", "-in", private_s, "-pubout", "-out", public_s]);
    openssl(&["genrsa", "-traditional", "-out", other_s, "2048"]);
    let pem = std::fs::read_to_string(&private).unwrap();
    let other_pem = std::fs::read_to_string(&other).unwrap();
    let public_pem = std::fs::read_to_string(&public).unwrap();

    let fake = FakeGitHub::start(OWNER, REPO, &repo.bare, TOKEN)
        .await
        .with_app(4242, 77, &public_pem);
    let app = |app_id, installation_id, key: &str| GitHubAuth::App {
        app_id,
        installation_id,
        private_key_pem: Secret::new(key),
    };

    let forge = GitHub::connect(options(&fake, app(4242, 77, &pem)))
        .await
        .expect("App authentication");
    let pr = forge.create_pr(&spec(HEAD)).await.unwrap();
    assert_eq!(fake.pr(pr.number).unwrap().author, APP_LOGIN);
    assert_eq!(
        count(&fake, "POST", "/app/installations/77/access_tokens"),
        1
    );
    assert_eq!(forge.write_calls() as usize, fake.write_count());

    let failures = [
        (app(1, 77, &pem), Some(401)),          // wrong app id
        (app(4242, 78, &pem), Some(404)),       // wrong installation
        (app(4242, 77, &other_pem), Some(401)), // key of another App
        (app(4242, 77, "not a key"), None),     // not PEM at all
    ];
    for (auth, status) in failures {
        let error = GitHub::connect(options(&fake, auth)).await.unwrap_err();
        match &error {
            ForgeError::AppAuth { status: got, .. } => assert_eq!(*got, status, "{error}"),
            other => panic!("expected AppAuth, got {other:?}"),
        }
        let text = format!("{error} {error:?}");
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("not a key"),
            "{text}"
        );
    }
    assert_eq!(fake.prs().len(), 1);
}

#[tokio::test]
async fn fake_answers_deserialize_into_octocrab_models() {
    // The fake is only useful if its JSON is what octocrab expects from
    // GitHub: exercise octocrab's typed calls against it.
    let (_repo, fake, _forge) = setup().await;
    let crab = octocrab::Octocrab::builder()
        .base_uri(fake.api_base.as_str())
        .unwrap()
        .personal_token(TOKEN.to_string())
        .build()
        .unwrap();
    let repository = crab.repos(OWNER, REPO).get().await.expect("Repository");
    assert_eq!(repository.name, REPO);
    let pulls = crab.pulls(OWNER, REPO);
    let pr = pulls
        .create("t", HEAD, "main")
        .body("b")
        .send()
        .await
        .expect("PullRequest from create");
    let issues = crab.issues(OWNER, REPO);
    let labels = issues
        .add_labels(pr.number, &["x".to_string()])
        .await
        .expect("Vec<Label>");
    assert_eq!(labels[0].name, "x");
    let issue = issues
        .add_assignees(pr.number, &["carol"])
        .await
        .expect("Issue");
    assert_eq!(issue.assignees[0].login, "carol");
    let comment = issues
        .create_comment(pr.number, "hi")
        .await
        .expect("Comment");
    assert_eq!(comment.body.as_deref(), Some("hi"));
    let got = pulls.get(pr.number).await.expect("PullRequest from get");
    assert_eq!(got.merged, Some(false));
    assert_eq!(got.labels.unwrap()[0].name, "x");
    let list = pulls
        .list()
        .state(octocrab::params::State::All)
        .send()
        .await
        .expect("Page<PullRequest>");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].merged, None, "lists carry merged_at only");
}

#[tokio::test]
async fn an_unreachable_api_is_a_transport_error_naming_it() {
    let port = support::free_port();
    let error = GitHub::connect(ForgeOptions {
        api_base: Some(format!("http://127.0.0.1:{port}/")),
        owner: OWNER.into(),
        repo: REPO.into(),
        auth: GitHubAuth::Token(Secret::new(TOKEN)),
        timeout: Duration::from_secs(10),
    })
    .await
    .expect_err("nothing listens there");
    assert!(matches!(error, ForgeError::Transport { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains(TOKEN), "{text}");

    let error = GitHub::connect(ForgeOptions {
        api_base: Some("ftp://example.com/".into()),
        owner: OWNER.into(),
        repo: REPO.into(),
        auth: GitHubAuth::Token(Secret::new(TOKEN)),
        timeout: Duration::from_secs(10),
    })
    .await
    .expect_err("not an http(s) URL");
    assert!(matches!(error, ForgeError::Config { .. }), "{error:?}");
}
