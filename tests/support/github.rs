//! A stateful fake of the GitHub REST API for one repository.
//!
//! [`FakeGitHub`] is an axum server on a loopback port. Branches are the refs
//! of a real bare git repository, so "no commits between", branch deletion
//! and merging are decided by git itself. It enforces the rules of GitHub
//! that the forge relies on:
//!
//! * every request needs `Authorization: Bearer <token>` (or `token <token>`)
//!   with a known token: 401 `Requires authentication` / `Bad credentials`;
//! * `POST /repos/{o}/{r}/pulls`: 422 if `title`, `head` or `base` is missing,
//!   if either branch does not exist (or `head` names another owner), if an
//!   open pull request already has the same head and base (`A pull request
//!   already exists for owner:branch.`), or if `git rev-list base..head` is
//!   empty (`No commits between base and head`);
//! * `GET /repos/{o}/{r}/pulls`: `state` (open, closed, all; default open),
//!   `head=owner:branch` (a value without `owner:` is ignored, as GitHub
//!   does), `base`, `per_page` (max 100, or less, see
//!   [`FakeGitHub::set_max_per_page`]), `page`, and `Link` headers;
//! * list answers carry `merged_at` but not `merged`, like GitHub's;
//! * `PATCH .../pulls/{n}`: title, body, state, base; a merged pull request
//!   cannot be reopened, nor one whose head branch is gone or duplicated;
//! * review requests from the pull request's author are refused (422);
//! * deleting a branch closes the open pull requests from it; deleting a
//!   missing ref is 422 `Reference does not exist`;
//! * `POST /app/installations/{id}/access_tokens` (after
//!   [`FakeGitHub::with_app`]) checks the RS256 JWT: header, `iss` = app
//!   id, `iat`/`exp` window, and the signature (with the `openssl` CLI);
//! * commit statuses, created and combined as GitHub does (`github/status.rs`);
//! * unknown routes: 404 with a message naming the route;
//! * paths may carry a `/api/v3` prefix (GitHub Enterprise Server style).
//!
//! Answers are shaped to deserialize into octocrab's models (`PullRequest`,
//! `Label`, `Comment`, `Issue`, `InstallationToken`, `Repository`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};

use super::AbortOnDrop;

mod status;
pub use status::FakeStatus;

/// The login that personal tokens act as.
pub const BOT_LOGIN: &str = "tidewatch-bot";
/// The login that installation tokens act as.
pub const APP_LOGIN: &str = "tidewatch-app[bot]";

/// A pull request as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePr {
    pub number: u64,
    /// `open` or `closed`.
    pub state: String,
    pub merged: bool,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub author: String,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub team_reviewers: Vec<String>,
    pub assignees: Vec<String>,
    pub draft: bool,
    pub comments: Vec<String>,
    /// Last known head commit (kept when the branch is deleted).
    pub head_sha: String,
    pub merge_commit_sha: Option<String>,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub merged_at: Option<String>,
}

pub struct FakeGitHub {
    /// `http://127.0.0.1:PORT/`
    pub api_base: String,
    shared: Arc<Mutex<Inner>>,
    _server: AbortOnDrop,
}

struct AppConfig {
    app_id: u64,
    installation_id: u64,
    dir: tempfile::TempDir,
    public_key: PathBuf,
    issued: u64,
}

struct Inner {
    owner: String,
    repo: String,
    bare: PathBuf,
    api_base: String,
    /// (token, login)
    tokens: Vec<(String, String)>,
    app: Option<AppConfig>,
    prs: Vec<FakePr>,
    /// Issue and pull request numbers share one sequence, as on GitHub.
    next_number: u64,
    next_id: u64,
    requests: Vec<(String, String, u16)>,
    writes: usize,
    /// Pending secondary-rate-limit answers, each with its `Retry-After`.
    rate_limits: VecDeque<Option<u64>>,
    max_per_page: usize,
    /// While set, every request is answered with this status (an outage).
    outage: Option<u16>,
    /// Commit statuses, oldest first (see `github/status.rs`).
    statuses: Vec<FakeStatus>,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    fn message(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({
                "message": message,
                "documentation_url": "https://docs.github.com/rest",
                "status": status.to_string(),
            }),
        )
    }

    /// 422 Validation Failed with one entry in `errors`.
    fn invalid(error: Value) -> Reply {
        Reply::json(
            422,
            json!({
                "message": "Validation Failed",
                "errors": [error],
                "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
                "status": "422",
            }),
        )
    }

    fn custom(message: &str) -> Reply {
        Reply::invalid(json!({ "resource": "PullRequest", "code": "custom", "message": message }))
    }

    fn field(field: &str, code: &str) -> Reply {
        Reply::invalid(json!({ "resource": "PullRequest", "field": field, "code": code }))
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut builder = Response::builder()
            .status(self.status)
            .header("x-github-media-type", "github.v3; format=json");
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = match self.body {
            Some(value) => {
                builder = builder.header("content-type", "application/json; charset=utf-8");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        builder
            .body(body)
            .expect("fake GitHub builds valid responses")
    }
}

impl FakeGitHub {
    /// Serves `owner/repo`, whose branches are those of `bare_repo`, to
    /// requests carrying `token` (acting as [`BOT_LOGIN`]).
    pub async fn start(owner: &str, repo: &str, bare_repo: &Path, token: &str) -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the fake GitHub to a loopback port");
        let port = listener.local_addr().expect("fake GitHub address").port();
        let api_base = format!("http://127.0.0.1:{port}/");
        let shared = Arc::new(Mutex::new(Inner {
            owner: owner.to_string(),
            repo: repo.to_string(),
            bare: bare_repo.to_path_buf(),
            api_base: api_base.clone(),
            tokens: vec![(token.to_string(), BOT_LOGIN.to_string())],
            app: None,
            prs: Vec::new(),
            next_number: 1,
            next_id: 1000,
            requests: Vec::new(),
            writes: 0,
            rate_limits: VecDeque::new(),
            max_per_page: 100,
            outage: None,
            statuses: Vec::new(),
        }));
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeGitHub {
            api_base,
            shared,
            _server: AbortOnDrop(server),
        }
    }

    /// Accept GitHub App `app_id` with installation `installation_id`: JWTs
    /// signed by the key whose public half is `public_key_pem` are exchanged
    /// for installation tokens (acting as [`APP_LOGIN`]).
    pub fn with_app(self, app_id: u64, installation_id: u64, public_key_pem: &str) -> FakeGitHub {
        let dir = tempfile::tempdir().expect("temporary directory for the App key");
        let public_key = dir.path().join("app-public.pem");
        std::fs::write(&public_key, public_key_pem).expect("write the App public key");
        self.lock().app = Some(AppConfig {
            app_id,
            installation_id,
            dir,
            public_key,
            issued: 0,
        });
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// All pull requests, oldest first.
    pub fn prs(&self) -> Vec<FakePr> {
        let inner = self.lock();
        inner
            .prs
            .iter()
            .map(|pr| {
                let mut pr = pr.clone();
                if let Some(sha) = branch_sha(&inner.bare, &pr.head) {
                    pr.head_sha = sha;
                }
                pr
            })
            .collect()
    }

    pub fn pr(&self, number: u64) -> Option<FakePr> {
        self.prs().into_iter().find(|pr| pr.number == number)
    }

    /// Every request seen: method, path (without query) and status.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.lock().requests.clone()
    }

    /// POST, PATCH, PUT and DELETE requests seen, whatever their answer.
    pub fn write_count(&self) -> usize {
        self.lock().writes
    }

    /// Answer the next `count` authenticated requests with 403 "You have
    /// exceeded a secondary rate limit", with `Retry-After: retry_after`
    /// when given.
    pub fn rate_limit_next(&self, count: usize, retry_after: Option<u64>) {
        let mut inner = self.lock();
        for _ in 0..count {
            inner.rate_limits.push_back(retry_after);
        }
    }

    /// An outage: while `Some(status)`, every request is answered with that
    /// status and GitHub's JSON error body (`None` ends it).
    pub fn set_outage(&self, status: Option<u16>) {
        self.lock().outage = status;
    }

    /// Lower the largest page of pull requests served (GitHub's is 100).
    pub fn set_max_per_page(&self, max: usize) {
        self.lock().max_per_page = max.max(1);
    }

    /// Simulate a human pressing "Merge pull request": a merge commit of the
    /// head into the base (GitHub's default method, even when a fast-forward
    /// were possible), then the pull request is closed as merged.
    pub fn merge_pr(&self, number: u64) {
        let mut inner = self.lock();
        let bare = inner.bare.clone();
        let owner = inner.owner.clone();
        let pr = inner
            .prs
            .iter_mut()
            .find(|pr| pr.number == number)
            .unwrap_or_else(|| panic!("fake GitHub: no pull request #{number} to merge"));
        assert_eq!(pr.state, "open", "fake GitHub: #{number} is not open");
        let base_sha = branch_sha(&bare, &pr.base).expect("base branch of the merged PR");
        let head_sha = branch_sha(&bare, &pr.head).expect("head branch of the merged PR");
        let tree = git(&bare, &["merge-tree", "--write-tree", &base_sha, &head_sha])
            .unwrap_or_else(|e| panic!("fake GitHub: #{number} does not merge cleanly: {e}"));
        let tree = tree.lines().next().unwrap_or_default().trim().to_string();
        let message = format!("Merge pull request #{number} from {owner}/{}", pr.head);
        let commit = git(
            &bare,
            &[
                "commit-tree",
                &tree,
                "-p",
                &base_sha,
                "-p",
                &head_sha,
                "-m",
                &message,
            ],
        )
        .expect("create the merge commit");
        let commit = commit.trim().to_string();
        git(
            &bare,
            &[
                "update-ref",
                &format!("refs/heads/{}", pr.base),
                &commit,
                &base_sha,
            ],
        )
        .expect("move the base branch to the merge commit");
        let now = timestamp();
        pr.state = "closed".into();
        pr.merged = true;
        pr.head_sha = head_sha;
        pr.merge_commit_sha = Some(commit);
        pr.merged_at = Some(now.clone());
        pr.closed_at = Some(now);
    }

    /// Simulate a human closing the pull request without merging.
    pub fn close_pr(&self, number: u64) {
        let mut inner = self.lock();
        let pr = inner
            .prs
            .iter_mut()
            .find(|pr| pr.number == number)
            .unwrap_or_else(|| panic!("fake GitHub: no pull request #{number} to close"));
        pr.state = "closed".into();
        pr.closed_at = Some(timestamp());
    }
}

async fn handle(
    State(shared): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let mut inner = shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let path = uri.path().to_string();
    if let Some(status) = inner.outage {
        inner
            .requests
            .push((method.as_str().to_string(), path, status));
        return Reply::message(status, "Service Unavailable");
    }
    let reply = inner.route(
        method.as_str(),
        &path,
        uri.query().unwrap_or(""),
        &headers,
        &body,
    );
    if matches!(method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE") {
        inner.writes += 1;
    }
    inner
        .requests
        .push((method.as_str().to_string(), path, reply.status));
    reply
}

impl Inner {
    fn route(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Reply {
        let (prefix, path) = match path.strip_prefix("/api/v3") {
            Some(rest) if rest.starts_with('/') => ("/api/v3", rest),
            _ => ("", path),
        };
        let segments: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(decode_segment)
            .collect();
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();

        if let ["app", "installations", id, "access_tokens"] = seg.as_slice() {
            if method != "POST" {
                return not_found_route(method, path);
            }
            return self.access_token(id, headers);
        }

        let login = match self.authenticate(headers) {
            Ok(login) => login,
            Err(reply) => return reply,
        };
        if let Some(retry_after) = self.rate_limits.pop_front() {
            let reply = Reply::message(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            return match retry_after {
                Some(seconds) => reply.header("retry-after", seconds.to_string()),
                None => reply,
            };
        }

        if seg.first() == Some(&"repos") {
            let ours = seg.len() >= 3
                && seg[1].eq_ignore_ascii_case(&self.owner)
                && seg[2].eq_ignore_ascii_case(&self.repo);
            if !ours {
                return Reply::message(404, "Not Found");
            }
        }
        let body = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(value) => value,
                Err(_) => return Reply::message(400, "Problems parsing JSON"),
            }
        };
        match (method, &seg[..]) {
            ("GET", ["repos", _, _]) => Reply::json(200, self.repository_json()),
            ("GET", ["repos", _, _, "pulls"]) => self.list_pulls(query, prefix),
            ("POST", ["repos", _, _, "pulls"]) => self.create_pull(&login, &body),
            ("GET", ["repos", _, _, "pulls", n]) => match self.find(n) {
                Some(i) => Reply::json(200, self.pr_json(i, true)),
                None => Reply::message(404, "Not Found"),
            },
            ("PATCH", ["repos", _, _, "pulls", n]) => self.update_pull(n, &body),
            ("POST", ["repos", _, _, "pulls", n, "requested_reviewers"]) => {
                self.request_reviewers(n, &body)
            }
            ("POST", ["repos", _, _, "issues", n, "comments"]) => self.comment(&login, n, &body),
            ("GET", ["repos", _, _, "issues", n, "comments"]) => self.list_comments(n),
            ("POST", ["repos", _, _, "issues", n, "labels"]) => self.add_labels(n, &body),
            ("POST", ["repos", _, _, "issues", n, "assignees"]) => self.add_assignees(n, &body),
            ("GET", ["repos", _, _, "git", "ref" | "refs", rest @ ..]) if !rest.is_empty() => {
                self.get_ref(&rest.join("/"))
            }
            ("POST", ["repos", _, _, "statuses", sha]) => self.create_status(sha, &body),
            ("GET", ["repos", _, _, "commits", reference, "status"]) => {
                self.combined_status(reference)
            }
            ("DELETE", ["repos", _, _, "git", "refs", rest @ ..]) if !rest.is_empty() => {
                self.delete_ref(&rest.join("/"))
            }
            _ => not_found_route(method, path),
        }
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<String, Reply> {
        let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return Err(Reply::message(401, "Requires authentication"));
        };
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| {
                scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")
            })
            .map(|(_, token)| token.trim());
        token
            .and_then(|token| self.tokens.iter().find(|(t, _)| t == token))
            .map(|(_, login)| login.clone())
            .ok_or_else(|| Reply::message(401, "Bad credentials"))
    }

    fn find(&self, number: &str) -> Option<usize> {
        let number: u64 = number.parse().ok()?;
        self.prs.iter().position(|pr| pr.number == number)
    }

    // ----- pull requests -----

    fn create_pull(&mut self, login: &str, body: &Value) -> Reply {
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
        let Some(title) = text("title").filter(|t| !t.trim().is_empty()) else {
            return Reply::field("title", "missing_field");
        };
        let Some(head) = text("head").filter(|h| !h.is_empty()) else {
            return Reply::field("head", "missing_field");
        };
        let Some(base) = text("base").filter(|b| !b.is_empty()) else {
            return Reply::field("base", "missing_field");
        };
        let head = match head.split_once(':') {
            Some((owner, branch)) if owner.eq_ignore_ascii_case(&self.owner) => branch.to_string(),
            Some(_) => return Reply::field("head", "invalid"),
            None => head,
        };
        let Some(base_sha) = branch_sha(&self.bare, &base) else {
            return Reply::field("base", "invalid");
        };
        let Some(head_sha) = branch_sha(&self.bare, &head) else {
            return Reply::field("head", "invalid");
        };
        if self
            .prs
            .iter()
            .any(|pr| pr.state == "open" && pr.head == head && pr.base == base)
        {
            return Reply::custom(&format!(
                "A pull request already exists for {}:{head}.",
                self.owner
            ));
        }
        let ahead = git(
            &self.bare,
            &["rev-list", "--count", &format!("{base_sha}..{head_sha}")],
        )
        .map(|count| count.trim().to_string());
        if ahead.as_deref() == Ok("0") {
            return Reply::custom(&format!("No commits between {base} and {head}"));
        }
        let number = self.next_number;
        self.next_number += 1;
        self.prs.push(FakePr {
            number,
            state: "open".into(),
            merged: false,
            head,
            base,
            title,
            body: text("body").unwrap_or_default(),
            author: login.to_string(),
            labels: Vec::new(),
            reviewers: Vec::new(),
            team_reviewers: Vec::new(),
            assignees: Vec::new(),
            draft: body.get("draft").and_then(Value::as_bool).unwrap_or(false),
            comments: Vec::new(),
            head_sha,
            merge_commit_sha: None,
            created_at: timestamp(),
            closed_at: None,
            merged_at: None,
        });
        let index = self.prs.len() - 1;
        let location = format!(
            "{}repos/{}/{}/pulls/{number}",
            self.api_base, self.owner, self.repo
        );
        Reply::json(201, self.pr_json(index, true)).header("location", location)
    }

    fn list_pulls(&self, query: &str, prefix: &str) -> Reply {
        let params = super::parse_query(query);
        let param = |name: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let state = param("state").unwrap_or("open");
        if !matches!(state, "open" | "closed" | "all") {
            return Reply::invalid(
                json!({ "resource": "PullRequest", "field": "state", "code": "invalid" }),
            );
        }
        // GitHub wants `user:ref-name`; anything else is ignored.
        let head = param("head").and_then(|h| h.split_once(':'));
        let base = param("base");
        let per_page = param("per_page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(30)
            .clamp(1, 100)
            .min(self.max_per_page);
        let page = param("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);

        let mut matching: Vec<usize> = (0..self.prs.len())
            .filter(|&i| {
                let pr = &self.prs[i];
                (state == "all" || pr.state == state)
                    && head.is_none_or(|(owner, branch)| {
                        owner.eq_ignore_ascii_case(&self.owner) && pr.head == branch
                    })
                    && base.is_none_or(|b| pr.base == b)
            })
            .collect();
        // Default sort: newest first.
        matching.reverse();
        let pages = matching.len().div_ceil(per_page).max(1);
        let items: Vec<Value> = matching
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|&i| self.pr_json(i, false))
            .collect();

        let link = |target: usize| {
            let mut pairs: Vec<(String, String)> = params
                .iter()
                .filter(|(k, _)| k != "page" && k != "per_page")
                .cloned()
                .collect();
            pairs.push(("per_page".into(), per_page.to_string()));
            pairs.push(("page".into(), target.to_string()));
            let query: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
                .collect();
            format!(
                "{}{prefix}/repos/{}/{}/pulls?{}",
                self.api_base.trim_end_matches('/'),
                self.owner,
                self.repo,
                query.join("&")
            )
        };
        let mut links = Vec::new();
        if page < pages {
            links.push(format!("<{}>; rel=\"next\"", link(page + 1)));
            links.push(format!("<{}>; rel=\"last\"", link(pages)));
        }
        if page > 1 {
            links.push(format!("<{}>; rel=\"prev\"", link(page - 1)));
            links.push(format!("<{}>; rel=\"first\"", link(1)));
        }
        let reply = Reply::json(200, Value::Array(items));
        if links.is_empty() {
            reply
        } else {
            reply.header("link", links.join(", "))
        }
    }

    fn update_pull(&mut self, number: &str, body: &Value) -> Reply {
        let Some(i) = self.find(number) else {
            return Reply::message(404, "Not Found");
        };
        if !body.is_object() {
            return Reply::message(400, "Problems parsing JSON");
        }
        if let Some(title) = body.get("title") {
            match title.as_str() {
                Some(t) if !t.trim().is_empty() => {}
                _ => return Reply::field("title", "invalid"),
            }
        }
        if let Some(base) = body.get("base").and_then(Value::as_str) {
            if branch_sha(&self.bare, base).is_none() {
                return Reply::field("base", "invalid");
            }
        }
        match body.get("state").map(|s| s.as_str()) {
            None | Some(Some("closed")) => {}
            Some(Some("open")) => {
                let pr = &self.prs[i];
                if pr.merged {
                    return Reply::custom(
                        "state cannot be changed. The pull request has been merged.",
                    );
                }
                if pr.state == "closed" {
                    if branch_sha(&self.bare, &pr.head).is_none() {
                        return Reply::custom(
                            "state cannot be changed. The head branch was deleted.",
                        );
                    }
                    let duplicate = self.prs.iter().any(|other| {
                        other.state == "open" && other.head == pr.head && other.base == pr.base
                    });
                    if duplicate {
                        return Reply::custom(&format!(
                            "A pull request already exists for {}:{}.",
                            self.owner, pr.head
                        ));
                    }
                }
            }
            Some(_) => return Reply::field("state", "invalid"),
        }
        let pr = &mut self.prs[i];
        if let Some(title) = body.get("title").and_then(Value::as_str) {
            pr.title = title.to_string();
        }
        match body.get("body") {
            Some(Value::String(text)) => pr.body = text.clone(),
            Some(Value::Null) => pr.body.clear(),
            _ => {}
        }
        if let Some(base) = body.get("base").and_then(Value::as_str) {
            pr.base = base.to_string();
        }
        match body.get("state").and_then(Value::as_str) {
            Some("closed") if pr.state == "open" => {
                pr.state = "closed".into();
                pr.closed_at = Some(timestamp());
            }
            Some("open") if pr.state == "closed" => {
                pr.state = "open".into();
                pr.closed_at = None;
            }
            _ => {}
        }
        Reply::json(200, self.pr_json(i, true))
    }

    fn request_reviewers(&mut self, number: &str, body: &Value) -> Reply {
        let Some(i) = self.find(number) else {
            return Reply::message(404, "Not Found");
        };
        let (Some(users), Some(teams)) = (
            string_list(body.get("reviewers")),
            string_list(body.get("team_reviewers")),
        ) else {
            return Reply::message(
                422,
                "Invalid request: reviewers and team_reviewers must be arrays of strings.",
            );
        };
        if users.is_empty() && teams.is_empty() {
            return Reply::message(
                422,
                "Invalid request: no reviewers or team_reviewers given.",
            );
        }
        let pr = &mut self.prs[i];
        if users.iter().any(|u| u.eq_ignore_ascii_case(&pr.author)) {
            return Reply::message(422, "Review cannot be requested from pull request author.");
        }
        add_unique(&mut pr.reviewers, users);
        add_unique(&mut pr.team_reviewers, teams);
        Reply::json(201, self.pr_json(i, true))
    }

    // ----- issues -----

    fn comment(&mut self, login: &str, number: &str, body: &Value) -> Reply {
        let Some(i) = self.find(number) else {
            return Reply::message(404, "Not Found");
        };
        let Some(text) = body
            .get("body")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        else {
            return Reply::invalid(
                json!({ "resource": "IssueComment", "field": "body", "code": "missing_field" }),
            );
        };
        self.prs[i].comments.push(text.to_string());
        let id = self.next_id;
        self.next_id += 1;
        let pr_number = self.prs[i].number;
        Reply::json(201, self.comment_json(pr_number, id, login, text))
    }

    fn list_comments(&self, number: &str) -> Reply {
        let Some(i) = self.find(number) else {
            return Reply::message(404, "Not Found");
        };
        let pr = &self.prs[i];
        let comments: Vec<Value> = pr
            .comments
            .iter()
            .enumerate()
            .map(|(k, text)| self.comment_json(pr.number, k as u64 + 1, &pr.author, text))
            .collect();
        Reply::json(200, Value::Array(comments))
    }

    fn add_labels(&mut self, number: &str, body: &Value) -> Reply {
        let Some(i) = self.find(number) else {
            return Reply::message(404, "Not Found");
        };
        let labels = match body {
            Value::Array(_) => string_list(Some(body)),
            _ => string_list(body.get("labels")),
        };
        let Some(labels) =
            labels.filter(|l| !l.is_empty() && l.iter().all(|n| !n.trim().is_empty()))
        else {
            return Reply::invalid(
                json!({ "resource": "Label", "field": "name", "code": "invalid" }),
            );
        };
        add_unique(&mut self.prs[i].labels, labels);
        let all: Vec<Value> = self.prs[i]
            .labels
            .iter()
            .map(|l| self.label_json(l))
            .collect();
        Reply::json(200, Value::Array(all))
    }

    fn add_assignees(&mut self, number: &str, body: &Value) -> Reply {
        let Some(i) = self.find(number) else {
            return Reply::message(404, "Not Found");
        };
        let Some(assignees) = string_list(body.get("assignees")) else {
            return Reply::invalid(
                json!({ "resource": "Issue", "field": "assignees", "code": "invalid" }),
            );
        };
        add_unique(&mut self.prs[i].assignees, assignees);
        Reply::json(201, self.issue_json(i))
    }

    // ----- git refs -----

    fn get_ref(&self, name: &str) -> Reply {
        let sha = name
            .strip_prefix("heads/")
            .and_then(|branch| branch_sha(&self.bare, branch));
        match sha {
            Some(sha) => Reply::json(
                200,
                json!({
                    "ref": format!("refs/{name}"),
                    "node_id": format!("REF_{}", stable_id(name)),
                    "url": format!("{}repos/{}/{}/git/refs/{name}", self.api_base, self.owner, self.repo),
                    "object": {
                        "sha": sha,
                        "type": "commit",
                        "url": format!("{}repos/{}/{}/git/commits/{sha}", self.api_base, self.owner, self.repo),
                    },
                }),
            ),
            None => Reply::message(404, "Not Found"),
        }
    }

    fn delete_ref(&mut self, name: &str) -> Reply {
        let Some(branch) = name.strip_prefix("heads/") else {
            return Reply::message(422, "Reference does not exist");
        };
        let Some(sha) = branch_sha(&self.bare, branch) else {
            return Reply::message(422, "Reference does not exist");
        };
        if let Err(error) = git(
            &self.bare,
            &["update-ref", "-d", &format!("refs/heads/{branch}"), &sha],
        ) {
            return Reply::message(
                500,
                &format!("fake GitHub could not delete the ref: {error}"),
            );
        }
        // GitHub closes the open pull requests whose head branch is deleted.
        let now = timestamp();
        for pr in self
            .prs
            .iter_mut()
            .filter(|pr| pr.state == "open" && pr.head == branch)
        {
            pr.state = "closed".into();
            pr.closed_at = Some(now.clone());
        }
        Reply::empty(204)
    }

    // ----- GitHub App -----

    fn access_token(&mut self, installation: &str, headers: &HeaderMap) -> Reply {
        let Some(app) = self.app.as_ref() else {
            return Reply::message(404, "Not Found");
        };
        let jwt = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, jwt)| jwt.trim().to_string());
        let Some(jwt) = jwt else {
            return Reply::message(401, "A JSON web token could not be decoded");
        };
        if let Err(problem) = verify_jwt(app, &jwt) {
            return Reply::message(401, &problem);
        }
        if installation.parse::<u64>().ok() != Some(app.installation_id) {
            return Reply::message(404, "Not Found");
        }
        if let Some(retry_after) = self.rate_limits.pop_front() {
            let reply = Reply::message(403, "You have exceeded a secondary rate limit.");
            return match retry_after {
                Some(seconds) => reply.header("retry-after", seconds.to_string()),
                None => reply,
            };
        }
        let issued = {
            let app = self.app.as_mut().expect("checked above");
            app.issued += 1;
            app.issued
        };
        let token = format!("ghs_fake{issued:04}installation{installation}");
        self.tokens.push((token.clone(), APP_LOGIN.to_string()));
        let expires = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(1))
            .expect("an hour from now");
        Reply::json(
            201,
            json!({
                "token": token,
                "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "permissions": {
                    "contents": "write",
                    "issues": "write",
                    "metadata": "read",
                    "pull_requests": "write",
                },
                "repository_selection": "selected",
            }),
        )
    }

    // ----- JSON -----

    fn url(&self, rest: &str) -> String {
        format!("{}repos/{}/{}/{rest}", self.api_base, self.owner, self.repo)
    }

    fn html(&self, rest: &str) -> String {
        format!("{}{}/{}/{rest}", self.api_base, self.owner, self.repo)
    }

    fn user_json(&self, login: &str) -> Value {
        let base = format!("{}users/{login}", self.api_base);
        json!({
            "login": login,
            "id": stable_id(login),
            "node_id": format!("U_{}", stable_id(login)),
            "avatar_url": format!("{}avatars/{login}", self.api_base),
            "gravatar_id": "",
            "url": base,
            "html_url": format!("{}{login}", self.api_base),
            "followers_url": format!("{base}/followers"),
            "following_url": format!("{base}/following{{/other_user}}"),
            "gists_url": format!("{base}/gists{{/gist_id}}"),
            "starred_url": format!("{base}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{base}/subscriptions"),
            "organizations_url": format!("{base}/orgs"),
            "repos_url": format!("{base}/repos"),
            "events_url": format!("{base}/events{{/privacy}}"),
            "received_events_url": format!("{base}/received_events"),
            "type": if login.ends_with("[bot]") { "Bot" } else { "User" },
            "site_admin": false,
        })
    }

    fn repository_json(&self) -> Value {
        let full_name = format!("{}/{}", self.owner, self.repo);
        json!({
            "id": stable_id(&full_name),
            "node_id": format!("R_{}", stable_id(&full_name)),
            "name": self.repo,
            "full_name": full_name,
            "owner": self.user_json(&self.owner),
            "private": true,
            "html_url": format!("{}{full_name}", self.api_base),
            "url": format!("{}repos/{full_name}", self.api_base),
            "default_branch": "main",
            "permissions": { "admin": false, "maintain": false, "push": true, "triage": true, "pull": true },
        })
    }

    fn label_json(&self, name: &str) -> Value {
        json!({
            "id": stable_id(&format!("label:{}", name.to_ascii_lowercase())),
            "node_id": format!("LA_{}", stable_id(name)),
            "url": self.url(&format!("labels/{}", encode_component(name))),
            "name": name,
            "description": null,
            "color": "ededed",
            "default": false,
        })
    }

    fn team_json(&self, slug: &str) -> Value {
        let url = format!("{}orgs/{}/teams/{slug}", self.api_base, self.owner);
        json!({
            "id": stable_id(&format!("team:{slug}")),
            "node_id": format!("T_{}", stable_id(slug)),
            "url": url,
            "html_url": format!("{}orgs/{}/teams/{slug}", self.api_base, self.owner),
            "name": slug,
            "slug": slug,
            "description": null,
            "privacy": "closed",
            "permission": "pull",
            "members_url": format!("{url}/members{{/member}}"),
            "repositories_url": format!("{url}/repos"),
        })
    }

    fn comment_json(&self, number: u64, id: u64, login: &str, text: &str) -> Value {
        json!({
            "id": id,
            "node_id": format!("IC_{id}"),
            "url": self.url(&format!("issues/comments/{id}")),
            "html_url": self.html(&format!("pull/{number}#issuecomment-{id}")),
            "issue_url": self.url(&format!("issues/{number}")),
            "body": text,
            "user": self.user_json(login),
            "author_association": "CONTRIBUTOR",
            "created_at": timestamp(),
            "updated_at": timestamp(),
        })
    }

    fn issue_json(&self, i: usize) -> Value {
        let pr = &self.prs[i];
        let n = pr.number;
        json!({
            "id": 50_000 + n,
            "node_id": format!("I_{n}"),
            "url": self.url(&format!("issues/{n}")),
            "repository_url": format!("{}repos/{}/{}", self.api_base, self.owner, self.repo),
            "labels_url": self.url(&format!("issues/{n}/labels{{/name}}")),
            "comments_url": self.url(&format!("issues/{n}/comments")),
            "events_url": self.url(&format!("issues/{n}/events")),
            "html_url": self.html(&format!("pull/{n}")),
            "number": n,
            "state": pr.state,
            "title": pr.title,
            "body": if pr.body.is_empty() { Value::Null } else { Value::String(pr.body.clone()) },
            "user": self.user_json(&pr.author),
            "labels": pr.labels.iter().map(|l| self.label_json(l)).collect::<Vec<_>>(),
            "assignee": pr.assignees.first().map(|a| self.user_json(a)),
            "assignees": pr.assignees.iter().map(|a| self.user_json(a)).collect::<Vec<_>>(),
            "milestone": null,
            "locked": false,
            "comments": pr.comments.len(),
            "pull_request": {
                "url": self.url(&format!("pulls/{n}")),
                "html_url": self.html(&format!("pull/{n}")),
                "diff_url": self.html(&format!("pull/{n}.diff")),
                "patch_url": self.html(&format!("pull/{n}.patch")),
            },
            "closed_at": pr.closed_at,
            "created_at": pr.created_at,
            "updated_at": timestamp(),
        })
    }

    /// A pull request as GitHub shows it; `full` adds what only the
    /// single-pull-request answers carry (`merged`, `mergeable`, counts).
    fn pr_json(&self, i: usize, full: bool) -> Value {
        let pr = &self.prs[i];
        let n = pr.number;
        let head_sha = branch_sha(&self.bare, &pr.head).unwrap_or_else(|| pr.head_sha.clone());
        let base_sha = branch_sha(&self.bare, &pr.base).unwrap_or_default();
        let api = self.url(&format!("pulls/{n}"));
        let html = self.html(&format!("pull/{n}"));
        let branch = |name: &str, sha: &str| {
            json!({
                "label": format!("{}:{name}", self.owner),
                "ref": name,
                "sha": sha,
                "user": self.user_json(&self.owner),
                "repo": self.repository_json(),
            })
        };
        let links = json!({
            "self": { "href": api },
            "html": { "href": html },
            "issue": { "href": self.url(&format!("issues/{n}")) },
            "comments": { "href": self.url(&format!("issues/{n}/comments")) },
            "review_comments": { "href": format!("{api}/comments") },
            "review_comment": { "href": self.url("pulls/comments{/number}") },
            "commits": { "href": format!("{api}/commits") },
            "statuses": { "href": self.url(&format!("statuses/{head_sha}")) },
        });
        let mut value = json!({
            "_links": links,
            "url": api,
            "id": 90_000 + n,
            "node_id": format!("PR_{n}"),
            "html_url": html,
            "diff_url": format!("{html}.diff"),
            "patch_url": format!("{html}.patch"),
            "issue_url": self.url(&format!("issues/{n}")),
            "commits_url": format!("{api}/commits"),
            "review_comments_url": format!("{api}/comments"),
            "review_comment_url": self.url("pulls/comments{/number}"),
            "comments_url": self.url(&format!("issues/{n}/comments")),
            "statuses_url": self.url(&format!("statuses/{head_sha}")),
            "number": n,
            "state": pr.state,
            "locked": false,
            "title": pr.title,
            "user": self.user_json(&pr.author),
            "body": if pr.body.is_empty() { Value::Null } else { Value::String(pr.body.clone()) },
            "labels": pr.labels.iter().map(|l| self.label_json(l)).collect::<Vec<_>>(),
            "milestone": null,
            "active_lock_reason": null,
            "created_at": pr.created_at,
            "updated_at": timestamp(),
            "closed_at": pr.closed_at,
            "merged_at": pr.merged_at,
            "merge_commit_sha": pr.merge_commit_sha,
            "assignee": pr.assignees.first().map(|a| self.user_json(a)),
            "assignees": pr.assignees.iter().map(|a| self.user_json(a)).collect::<Vec<_>>(),
            "requested_reviewers": pr.reviewers.iter().map(|r| self.user_json(r)).collect::<Vec<_>>(),
            "requested_teams": pr.team_reviewers.iter().map(|t| self.team_json(t)).collect::<Vec<_>>(),
            "head": branch(&pr.head, &head_sha),
            "base": branch(&pr.base, &base_sha),
            "author_association": "CONTRIBUTOR",
            "auto_merge": null,
            "draft": pr.draft,
        });
        if full {
            let extra = json!({
                "merged": pr.merged,
                "mergeable": if pr.state == "open" { Value::Bool(true) } else { Value::Null },
                "mergeable_state": if pr.state == "open" { "clean" } else { "unknown" },
                "merged_by": if pr.merged { self.user_json(&self.owner) } else { Value::Null },
                "comments": pr.comments.len(),
                "review_comments": 0,
                "maintainer_can_modify": false,
                "commits": 1,
                "additions": 1,
                "deletions": 1,
                "changed_files": 1,
            });
            if let (Some(target), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
                for (k, v) in extra {
                    target.insert(k.clone(), v.clone());
                }
            }
        }
        value
    }
}

fn not_found_route(method: &str, path: &str) -> Reply {
    Reply::message(
        404,
        &format!("Not Found (the fake GitHub has no route for {method} {path})"),
    )
}

fn verify_jwt(app: &AppConfig, jwt: &str) -> Result<(), String> {
    let undecodable = || "A JSON web token could not be decoded".to_string();
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(undecodable());
    };
    let decode = |part: &str| -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| undecodable())
    };
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|_| undecodable())?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("'alg' must be RS256".into());
    }
    let claims_json: Value = serde_json::from_slice(&decode(claims)?).map_err(|_| undecodable())?;
    let iss = match claims_json.get("iss") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    if iss != Some(app.app_id) {
        return Err(format!(
            "Integration not found: 'Issuer' claim ('iss') {:?} is not app {}",
            claims_json.get("iss"),
            app.app_id
        ));
    }
    let now = jiff::Timestamp::now().as_second();
    let (Some(iat), Some(exp)) = (
        claims_json.get("iat").and_then(Value::as_i64),
        claims_json.get("exp").and_then(Value::as_i64),
    ) else {
        return Err("'iat' and 'exp' claims must be integers".into());
    };
    if iat > now + 60 {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing a time in the past.".into(),
        );
    }
    if exp <= now {
        return Err("'Expiration time' claim ('exp') is in the past.".into());
    }
    if exp > now + 600 + 60 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    let signature = decode(signature)?;
    let signature_path = app.dir.path().join(format!("sig-{}", app.issued));
    std::fs::write(&signature_path, signature).map_err(|e| format!("fake GitHub: {e}"))?;
    let signed = format!("{}.{}", parts[0], parts[1]);
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&app.public_key)
        .arg("-signature")
        .arg(&signature_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("fake GitHub cannot run openssl: {e}"))?;
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(signed.as_bytes())
            .map_err(|e| format!("fake GitHub: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("fake GitHub: {e}"))?;
    if !output.status.success() {
        return Err("A JSON web token could not be decoded: signature verification failed".into());
    }
    Ok(())
}

/// The commit `refs/heads/{branch}` points at, if the branch exists.
fn branch_sha(bare: &Path, branch: &str) -> Option<String> {
    if branch.is_empty() || branch.starts_with('-') {
        return None;
    }
    let reference = format!("refs/heads/{branch}");
    git(bare, &["check-ref-format", &reference]).ok()?;
    git(
        bare,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{reference}^{{commit}}"),
        ],
    )
    .ok()
    .map(|sha| sha.trim().to_string())
    .filter(|sha| !sha.is_empty())
}

fn git(bare: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(bare)
        .args(args)
        .env("GIT_AUTHOR_NAME", "GitHub")
        .env("GIT_AUTHOR_EMAIL", "noreply@github.com")
        .env("GIT_COMMITTER_NAME", "GitHub")
        .env("GIT_COMMITTER_EMAIL", "noreply@github.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "git {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        ))
    }
}

fn string_list(value: Option<&Value>) -> Option<Vec<String>> {
    match value {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect(),
        Some(_) => None,
    }
}

fn add_unique(target: &mut Vec<String>, items: Vec<String>) {
    for item in items {
        if !target.iter().any(|t| t.eq_ignore_ascii_case(&item)) {
            target.push(item);
        }
    }
}

fn timestamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A small positive id that stays the same for the same text.
fn stable_id(text: &str) -> u64 {
    text.bytes().fold(1_469_598_103u64, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
    }) % 1_000_000_000
        + 1
}

fn decode_segment(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}
