//! GitHub's combined commit status: `GET /repos/{owner}/{repo}/commits/{ref}/status`.
//!
//! GitHub combines the latest status of every context: `failure` if any
//! reports `error` or `failure`, `pending` if there are none or one is
//! pending, `success` if all are. With no status at all it still answers
//! `pending`, so `total_count: 0` is read as "no status" instead.

use serde::Deserialize;

use super::{GitHub, FORGE};
use crate::forge::{CommitState, ForgeError};

#[derive(Deserialize)]
struct Combined {
    state: String,
    #[serde(default)]
    total_count: u64,
}

impl GitHub {
    /// The combined status of commit `sha`, or `None` when no context has
    /// reported one.
    pub(super) async fn combined_status(
        &self,
        sha: &str,
    ) -> Result<Option<CommitState>, ForgeError> {
        let action = format!("reading the commit status of {sha}");
        let malformed = |detail: String| ForgeError::Malformed {
            forge: FORGE.into(),
            repo: self.full_name.clone(),
            action: action.clone(),
            detail,
        };
        if sha.is_empty() || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed(format!("`{sha}` is not a commit id")));
        }
        let path = format!("/repos/{}/{}/commits/{sha}/status", self.owner, self.repo);
        let text = self
            .call(&action, false, || async {
                let response = self.crab._get(path.as_str()).await?;
                let response = octocrab::map_github_error(response).await?;
                self.crab.body_to_string(response).await
            })
            .await
            .map_err(|f| self.error(&action, f))?;
        let combined: Combined = serde_json::from_str(&text)
            .map_err(|e| malformed(format!("the answer is not a combined status ({e})")))?;
        if combined.total_count == 0 {
            return Ok(None);
        }
        let state = match combined.state.as_str() {
            "success" => CommitState::Success,
            "pending" => CommitState::Pending,
            "failure" => CommitState::Failure,
            "error" => CommitState::Error,
            other => return Err(malformed(format!("unknown combined state `{other}`"))),
        };
        Ok(Some(state))
    }
}
