//! GitHub's pull requests behind the [`Forge`] trait.

use std::future::Future;
use std::sync::atomic::Ordering;

use octocrab::models::pulls::PullRequest;
use octocrab::models::IssueState;
use octocrab::Page;
use serde_json::json;

use super::{GitHub, FORGE};
use crate::forge::{Forge, ForgeError, PrState, PullRequestInfo, PullRequestSpec};

/// Pull request lists are read 100 at a time, at most this many pages.
const MAX_PAGES: usize = 10;
const PER_PAGE: u8 = 100;

#[async_trait::async_trait]
impl Forge for GitHub {
    fn describe(&self) -> String {
        format!("{FORGE} {}", self.full_name)
    }

    async fn open_pr_for_head(&self, head: &str) -> Result<Option<PullRequestInfo>, ForgeError> {
        let action = format!("looking up open pull requests for branch {head}");
        let open = self
            .list_for_head(head, octocrab::params::State::Open, &action)
            .await?;
        if open.len() > 1 {
            tracing::warn!(
                repo = %self.full_name,
                head,
                count = open.len(),
                "several open pull requests for one head branch (different bases?); using the newest"
            );
        }
        match open.into_iter().next() {
            Some(pr) => Ok(Some(self.info(pr, &action)?)),
            None => Ok(None),
        }
    }

    async fn commit_status(
        &self,
        sha: &str,
    ) -> Result<Option<crate::forge::CommitState>, ForgeError> {
        self.combined_status(sha).await
    }

    async fn closed_prs_for_head(&self, head: &str) -> Result<Vec<PullRequestInfo>, ForgeError> {
        let action = format!("looking up closed pull requests for branch {head}");
        self.list_for_head(head, octocrab::params::State::Closed, &action)
            .await?
            .into_iter()
            .map(|pr| self.info(pr, &action))
            .collect()
    }

    /// Opens a pull request, then adds labels, requests reviews and adds
    /// assignees. If GitHub says one is already open for `spec.head`, that
    /// one is returned (with missing labels and assignees added; reviews
    /// are not re-requested). Failures of the extras after the pull request
    /// exists are logged as warnings, not returned: the pull request is
    /// there and opening it again would be wrong.
    async fn create_pr(&self, spec: &PullRequestSpec) -> Result<PullRequestInfo, ForgeError> {
        let action = format!(
            "opening a pull request from {} into {}",
            spec.head, spec.base
        );
        self.check_spec(spec)?;
        let created = self
            .call(&action, true, || async {
                self.crab
                    .pulls(&self.owner, &self.repo)
                    .create(&spec.title, &spec.head, &spec.base)
                    .body(spec.body.as_str())
                    .draft(spec.draft)
                    .send()
                    .await
            })
            .await;
        match created {
            Ok(pr) => {
                let info = self.info(pr, &action)?;
                self.add_labels(info.number, &spec.labels).await;
                self.request_reviews(info.number, &spec.reviewers, &spec.team_reviewers)
                    .await;
                self.add_assignees(info.number, &spec.assignees).await;
                tracing::info!(repo = %self.full_name, number = info.number, head = %spec.head, "opened pull request");
                Ok(info)
            }
            Err(failure) if failure.is(422, "a pull request already exists") => {
                let lookup = format!("{action} (GitHub says one is already open)");
                let existing = self
                    .list_for_head(&spec.head, octocrab::params::State::Open, &lookup)
                    .await?;
                let Some(pr) = existing.into_iter().next() else {
                    return Err(ForgeError::Rejected {
                        forge: FORGE.into(),
                        repo: self.full_name.clone(),
                        action,
                        status: 422,
                        message: format!(
                            "{}, but no open pull request for {} was found; look for one from another fork or owner",
                            self.scrub(failure.text()),
                            spec.head
                        ),
                    });
                };
                let have_labels: Vec<String> = pr
                    .labels
                    .iter()
                    .flatten()
                    .map(|label| label.name.clone())
                    .collect();
                let have_assignees: Vec<String> = pr
                    .assignees
                    .iter()
                    .flatten()
                    .map(|user| user.login.to_ascii_lowercase())
                    .collect();
                let info = self.info(pr, &lookup)?;
                let labels: Vec<String> = spec
                    .labels
                    .iter()
                    .filter(|l| !have_labels.iter().any(|h| h.eq_ignore_ascii_case(l)))
                    .cloned()
                    .collect();
                let assignees: Vec<String> = spec
                    .assignees
                    .iter()
                    .filter(|a| !have_assignees.contains(&a.to_ascii_lowercase()))
                    .cloned()
                    .collect();
                self.add_labels(info.number, &labels).await;
                self.add_assignees(info.number, &assignees).await;
                tracing::info!(repo = %self.full_name, number = info.number, head = %spec.head, "pull request already open; reusing it");
                Ok(info)
            }
            Err(failure) if failure.is(422, "no commits between") => Err(ForgeError::NoCommits {
                forge: FORGE.into(),
                repo: self.full_name.clone(),
                head: spec.head.clone(),
                base: spec.base.clone(),
            }),
            Err(failure) => Err(self.error(&action, failure)),
        }
    }

    async fn update_pr(&self, number: u64, title: &str, body: &str) -> Result<(), ForgeError> {
        let action = format!("updating pull request #{number}");
        let path = format!("/repos/{}/{}/pulls/{number}", self.owner, self.repo);
        let payload = json!({ "title": title, "body": body });
        self.call(&action, true, || self.raw_patch(&path, &payload))
            .await
            .map_err(|f| self.error(&action, f))?;
        Ok(())
    }

    async fn comment(&self, number: u64, text: &str) -> Result<(), ForgeError> {
        let action = format!("commenting on pull request #{number}");
        let path = format!(
            "/repos/{}/{}/issues/{number}/comments",
            self.owner, self.repo
        );
        let payload = json!({ "body": text });
        self.call(&action, true, || self.raw_post(&path, &payload))
            .await
            .map_err(|f| self.error(&action, f))?;
        Ok(())
    }

    async fn close_pr(&self, number: u64) -> Result<(), ForgeError> {
        let action = format!("closing pull request #{number}");
        let path = format!("/repos/{}/{}/pulls/{number}", self.owner, self.repo);
        let payload = json!({ "state": "closed" });
        self.call(&action, true, || self.raw_patch(&path, &payload))
            .await
            .map_err(|f| self.error(&action, f))?;
        tracing::info!(repo = %self.full_name, number, "closed pull request");
        Ok(())
    }

    fn write_calls(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

impl GitHub {
    fn check_spec(&self, spec: &PullRequestSpec) -> Result<(), ForgeError> {
        let config_error = |detail: String| ForgeError::Config {
            forge: FORGE.into(),
            repo: self.full_name.clone(),
            detail,
        };
        for (value, what) in [
            (&spec.head, "head branch"),
            (&spec.base, "base branch"),
            (&spec.title, "title"),
        ] {
            if value.trim().is_empty() {
                return Err(config_error(format!(
                    "cannot open a pull request with an empty {what}"
                )));
            }
        }
        if spec.head == spec.base {
            return Err(config_error(format!(
                "cannot open a pull request from branch {} into itself; use a separate head branch",
                spec.head
            )));
        }
        Ok(())
    }

    /// Pull requests in `state` whose head is `head` in this repository,
    /// newest first. GitHub's `head` filter is also checked here: should it
    /// be ignored (as GitHub does with a malformed one), other pull requests
    /// must not be mistaken for ours.
    async fn list_for_head(
        &self,
        head: &str,
        state: octocrab::params::State,
        action: &str,
    ) -> Result<Vec<PullRequest>, ForgeError> {
        let filter = format!("{}:{head}", self.owner);
        let first: Page<PullRequest> = self
            .call(action, false, || async {
                self.crab
                    .pulls(&self.owner, &self.repo)
                    .list()
                    .state(state)
                    .head(filter.as_str())
                    .per_page(PER_PAGE)
                    .send()
                    .await
            })
            .await
            .map_err(|f| self.error(action, f))?;
        let mut next = first.next.as_ref().and_then(|uri| self.same_api(uri));
        let mut all = first.items;
        let mut pages = 1;
        while let Some(path) = next.take() {
            if pages >= MAX_PAGES {
                tracing::warn!(repo = %self.full_name, head, pages, "more pull requests than read; using the newest only");
                break;
            }
            let page: Page<PullRequest> = self
                .call(action, false, || self.crab.get(path.as_str(), None::<&()>))
                .await
                .map_err(|f| self.error(action, f))?;
            next = page.next.as_ref().and_then(|uri| self.same_api(uri));
            all.extend(page.items);
            pages += 1;
        }
        all.retain(|pr| {
            pr.head.ref_field == head
                && pr.head.label.as_deref().is_none_or(|label| {
                    label
                        .split_once(':')
                        .is_none_or(|(owner, _)| owner.eq_ignore_ascii_case(&self.owner))
                })
        });
        Ok(all)
    }

    /// The path and query of a pagination link, if it points at our API
    /// host (octocrab only authenticates relative requests for GitHub Apps,
    /// and a link elsewhere must not get our token anyway).
    fn same_api<U: std::fmt::Display>(&self, uri: &U) -> Option<String> {
        let link = uri.to_string();
        if link.starts_with('/') {
            return Some(link);
        }
        let base = url::Url::parse(&self.api_base).ok()?;
        match url::Url::parse(&link) {
            Ok(target) if target.origin() == base.origin() => {
                let mut path = target.path().to_string();
                if let Some(query) = target.query() {
                    path.push('?');
                    path.push_str(query);
                }
                Some(path)
            }
            _ => {
                tracing::warn!(repo = %self.full_name, "GitHub pagination link points at another host; not following it");
                None
            }
        }
    }

    fn info(&self, pr: PullRequest, action: &str) -> Result<PullRequestInfo, ForgeError> {
        let state = match pr.state {
            Some(IssueState::Open) => PrState::Open,
            Some(IssueState::Closed) => {
                if pr.merged_at.is_some() || pr.merged == Some(true) {
                    PrState::Merged
                } else {
                    PrState::Closed
                }
            }
            _ => {
                return Err(ForgeError::Malformed {
                    forge: FORGE.into(),
                    repo: self.full_name.clone(),
                    action: action.to_string(),
                    detail: format!("pull request #{} has no known state", pr.number),
                })
            }
        };
        Ok(PullRequestInfo {
            number: pr.number,
            head: pr.head.ref_field,
            base: pr.base.ref_field,
            title: pr.title.unwrap_or_default(),
            body: pr.body.unwrap_or_default(),
            url: pr.html_url.map(|u| u.to_string()).unwrap_or(pr.url),
            state,
            closed_at: pr.merged_at.or(pr.closed_at).map(|t| t.to_rfc3339()),
        })
    }

    async fn add_labels(&self, number: u64, labels: &[String]) {
        if labels.is_empty() {
            return;
        }
        let action = format!("adding labels to pull request #{number}");
        let path = format!("/repos/{}/{}/issues/{number}/labels", self.owner, self.repo);
        let payload = json!({ "labels": labels });
        self.best_effort(&action, || self.raw_post(&path, &payload))
            .await;
    }

    async fn request_reviews(&self, number: u64, reviewers: &[String], teams: &[String]) {
        if reviewers.is_empty() && teams.is_empty() {
            return;
        }
        let action = format!("requesting reviews on pull request #{number}");
        let path = format!(
            "/repos/{}/{}/pulls/{number}/requested_reviewers",
            self.owner, self.repo
        );
        let payload = json!({ "reviewers": reviewers, "team_reviewers": teams });
        self.best_effort(&action, || self.raw_post(&path, &payload))
            .await;
    }

    async fn add_assignees(&self, number: u64, assignees: &[String]) {
        if assignees.is_empty() {
            return;
        }
        let action = format!("adding assignees to pull request #{number}");
        let path = format!(
            "/repos/{}/{}/issues/{number}/assignees",
            self.owner, self.repo
        );
        let payload = json!({ "assignees": assignees });
        self.best_effort(&action, || self.raw_post(&path, &payload))
            .await;
    }

    async fn best_effort<F, Fut>(&self, action: &str, op: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = octocrab::Result<String>>,
    {
        if let Err(failure) = self.call(action, true, op).await {
            let error = self.error(action, failure);
            tracing::warn!(repo = %self.full_name, error = %error, "pull request opened, but an extra step failed");
        }
    }

    async fn raw_post(&self, path: &str, payload: &serde_json::Value) -> octocrab::Result<String> {
        let response = self.crab._post(path, Some(payload)).await?;
        let response = octocrab::map_github_error(response).await?;
        self.crab.body_to_string(response).await
    }

    async fn raw_patch(&self, path: &str, payload: &serde_json::Value) -> octocrab::Result<String> {
        let response = self.crab._patch(path, Some(payload)).await?;
        let response = octocrab::map_github_error(response).await?;
        self.crab.body_to_string(response).await
    }
}
