//! Commit statuses in the GitHub stand-in, with GitHub's documented rules:
//!
//! * `POST /repos/{o}/{r}/statuses/{sha}` takes `state` (`error`,
//!   `failure`, `pending` or `success`; anything else is 422 Validation
//!   Failed), optional `context` (default `default`), `description` and
//!   `target_url`; a commit that does not exist is 422 `No commit found for
//!   SHA: …`;
//! * `GET /repos/{o}/{r}/commits/{ref}/status` (ref: a SHA or a branch)
//!   combines the *latest* status of each context: `failure` if any is
//!   `error` or `failure`, else `pending` if there are none or one is
//!   `pending`, else `success`; it answers `total_count` and the latest
//!   statuses, newest first.

use serde_json::{json, Value};

use super::{branch_sha, git, timestamp, Inner, Reply};

/// One status as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeStatus {
    pub id: u64,
    pub sha: String,
    pub state: String,
    pub context: String,
    pub description: Option<String>,
    pub created_at: String,
}

const STATES: [&str; 4] = ["error", "failure", "pending", "success"];

impl Inner {
    /// The full commit id `reference` (a SHA or branch) names, if any.
    fn commit_of(&self, reference: &str) -> Option<String> {
        if let Some(sha) = branch_sha(&self.bare, reference) {
            return Some(sha);
        }
        if reference.is_empty() || !reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        git(
            &self.bare,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{reference}^{{commit}}"),
            ],
        )
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
    }

    pub(super) fn create_status(&mut self, sha: &str, body: &Value) -> Reply {
        let Some(commit) = self
            .commit_of(sha)
            .filter(|c| c.starts_with(&sha.to_lowercase()))
        else {
            return Reply::json(
                422,
                json!({
                    "message": format!("No commit found for SHA: {sha}"),
                    "documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
                    "status": "422",
                }),
            );
        };
        let state = body
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !STATES.contains(&state) {
            return Reply::invalid(
                json!({ "resource": "Status", "field": "state", "code": "custom",
                "message": format!("state is not included in the list") }),
            );
        }
        let context = body
            .get("context")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let status = FakeStatus {
            id: self.next_id,
            sha: commit,
            state: state.to_string(),
            context,
            description: body
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            created_at: timestamp(),
        };
        self.next_id += 1;
        let answer = self.status_json(&status);
        self.statuses.push(status);
        Reply::json(201, answer)
    }

    pub(super) fn combined_status(&self, reference: &str) -> Reply {
        let Some(commit) = self.commit_of(reference) else {
            return Reply::json(
                422,
                json!({
                    "message": format!("No commit found for SHA: {reference}"),
                    "documentation_url": "https://docs.github.com/rest/commits/statuses#get-the-combined-status-for-a-specific-reference",
                    "status": "422",
                }),
            );
        };
        // The latest status of each context, newest first.
        let mut latest: Vec<&FakeStatus> = Vec::new();
        for status in self.statuses.iter().rev().filter(|s| s.sha == commit) {
            if !latest.iter().any(|l| l.context == status.context) {
                latest.push(status);
            }
        }
        let state = if latest
            .iter()
            .any(|s| s.state == "error" || s.state == "failure")
        {
            "failure"
        } else if latest.is_empty() || latest.iter().any(|s| s.state == "pending") {
            "pending"
        } else {
            "success"
        };
        let full_name = format!("{}/{}", self.owner, self.repo);
        Reply::json(
            200,
            json!({
                "state": state,
                "statuses": latest.iter().map(|s| self.status_json(s)).collect::<Vec<_>>(),
                "sha": commit,
                "total_count": latest.len(),
                "repository": self.repository_json(),
                "commit_url": format!("{}repos/{full_name}/commits/{commit}", self.api_base),
                "url": format!("{}repos/{full_name}/commits/{commit}/status", self.api_base),
            }),
        )
    }

    fn status_json(&self, status: &FakeStatus) -> Value {
        json!({
            "id": status.id,
            "state": status.state,
            "context": status.context,
            "description": status.description,
            "target_url": Value::Null,
            "created_at": status.created_at,
            "updated_at": status.created_at,
            "creator": self.user_json(super::BOT_LOGIN),
        })
    }
}

impl super::FakeGitHub {
    /// What a CI system or Flux's notification-controller does: posts
    /// status `state` under `context` for commit `sha` (as
    /// `POST /repos/{o}/{r}/statuses/{sha}` would). Panics if refused.
    pub fn set_status(&self, sha: &str, context: &str, state: &str) {
        let mut inner = self.lock();
        let reply = inner.create_status(sha, &json!({ "state": state, "context": context }));
        assert_eq!(
            reply.status, 201,
            "fake GitHub refused the status for {sha}"
        );
    }

    /// Every status posted, oldest first.
    pub fn statuses(&self) -> Vec<FakeStatus> {
        self.lock().statuses.clone()
    }
}
