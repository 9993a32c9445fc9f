//! Delivering changes as GitHub pull requests, through `octocrab`.
//!
//! One [`Forge`] talks to one repository. Its rules:
//!
//! * **One pull request per head.** Callers look for an open one first
//!   ([`Forge::open_pr_for_head`]), and [`Forge::create_pr`] also turns
//!   GitHub's 422 "A pull request already exists" into the existing one.
//! * **Never spin on a refusal.** "No commits between base and head" is
//!   [`ForgeError::NoCommits`]; no 4xx other than rate limiting is retried.
//! * **Rate limits are waited out, boundedly.** A 403/429 carrying
//!   `Retry-After`, an exhausted primary limit or a "secondary rate limit"
//!   message is retried after the wait GitHub asks for (else exponential
//!   back-off, see [`Backoff`]), then reported as [`ForgeError::RateLimited`].
//! * **No state of our own.** What a pull request proposes lives in a hidden
//!   block of its body ([`render_body`], [`parse_body`]); closed, unmerged
//!   ones tell which versions a human declined ([`declined_versions`]).
//!
//! Typed octocrab calls are used where we read the answer (pull requests);
//! writes whose answer we do not need (labels, reviewers, assignees,
//! comments, updates, branch deletion) go through octocrab's raw request
//! methods and ignore the body, so a model change on GitHub's side cannot
//! make a write that succeeded look failed (and be repeated).

mod body;
mod error;
mod retry;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use octocrab::models::pulls::PullRequest;
use octocrab::models::{AppId, InstallationId, IssueState};
use octocrab::{Octocrab, Page};
use serde_json::json;

use crate::secret::Secret;
use retry::Failure;

pub use body::{declined_versions, parse_body, render_body, PrChange, PrRecord, RecordedChange};
pub use error::ForgeError;
pub use retry::Backoff;

/// Used when [`ForgeOptions::api_base`] is `None`.
pub const DEFAULT_API_BASE: &str = "https://api.github.com/";

/// Pull request lists are read 100 at a time, at most this many pages.
const MAX_PAGES: usize = 10;
const PER_PAGE: u8 = 100;

/// How the forge authenticates. `Debug` never shows the secrets.
#[derive(Debug, Clone)]
pub enum GitHubAuth {
    /// A personal access token (classic or fine-grained) or any other
    /// bearer token.
    Token(Secret),
    /// A GitHub App: an app JWT signed with `private_key_pem` (RS256) is
    /// exchanged for an installation token, which octocrab renews.
    App {
        app_id: u64,
        installation_id: u64,
        private_key_pem: Secret,
    },
}

#[derive(Debug, Clone)]
pub struct ForgeOptions {
    /// The REST API root, for GitHub Enterprise Server
    /// (`https://ghe.example.com/api/v3/`) or tests
    /// (`http://127.0.0.1:PORT/`); default [`DEFAULT_API_BASE`].
    pub api_base: Option<String>,
    pub owner: String,
    pub repo: String,
    pub auth: GitHubAuth,
}

/// A pull request to open. `head` and `base` are branch names in the
/// repository itself (no `owner:` prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequestSpec {
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    /// User logins.
    pub reviewers: Vec<String>,
    /// Team slugs (without the organisation).
    pub team_reviewers: Vec<String>,
    pub assignees: Vec<String>,
    pub draft: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrState {
    Open,
    /// Closed without merging.
    Closed,
    Merged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestInfo {
    pub number: u64,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    /// The page for humans (`html_url`), else the API URL.
    pub url: String,
    pub state: PrState,
}

/// A GitHub repository to open pull requests on.
pub struct Forge {
    crab: Octocrab,
    owner: String,
    repo: String,
    /// `owner/repo`, for messages.
    full_name: String,
    api_base: String,
    backoff: Backoff,
    writes: AtomicU64,
    /// Scrubbed from every error message, just in case.
    secrets: Vec<Secret>,
}

impl std::fmt::Debug for Forge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forge")
            .field("repo", &self.full_name)
            .field("api_base", &self.api_base)
            .field("backoff", &self.backoff)
            .field("write_calls", &self.write_calls())
            .finish_non_exhaustive()
    }
}

impl Forge {
    /// Sets up the client and checks, with one `GET /repos/{owner}/{repo}`,
    /// that the credentials work and can see the repository. For a GitHub
    /// App, an installation token is obtained first.
    pub async fn connect(options: ForgeOptions) -> Result<Forge, ForgeError> {
        let full_name = format!("{}/{}", options.owner, options.repo);
        let config_error = |detail: String| ForgeError::Config {
            repo: full_name.clone(),
            detail,
        };
        check_name(&options.owner, "owner").map_err(config_error)?;
        check_name(&options.repo, "repository name").map_err(config_error)?;
        let api_base = options
            .api_base
            .as_deref()
            .map(str::trim)
            .filter(|base| !base.is_empty())
            .unwrap_or(DEFAULT_API_BASE)
            .to_string();
        check_api_base(&api_base).map_err(config_error)?;

        let builder = Octocrab::builder()
            .set_connect_timeout(Some(Duration::from_secs(15)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .set_write_timeout(Some(Duration::from_secs(60)))
            .base_uri(api_base.as_str())
            .map_err(|_| {
                config_error(format!(
                    "api_base {api_base:?} is not a valid URL; use e.g. https://ghe.example.com/api/v3/"
                ))
            })?;

        let app = match &options.auth {
            GitHubAuth::App {
                app_id,
                installation_id,
                ..
            } => Some((*app_id, *installation_id)),
            GitHubAuth::Token(_) => None,
        };
        let (crab, secrets) = match options.auth {
            GitHubAuth::Token(token) => {
                let token = token.expose().trim();
                if token.is_empty() {
                    return Err(config_error(
                        "the GitHub token is empty; set it to a personal access token or use GitHub App credentials".into(),
                    ));
                }
                if !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(config_error(
                        "the GitHub token contains spaces or characters that cannot be sent in an HTTP header; check how it is read (a stray newline or quote?)".into(),
                    ));
                }
                let crab = builder
                    .personal_token(token.to_string())
                    .build()
                    .map_err(|e| {
                        config_error(format!(
                            "cannot set up the GitHub client: {}",
                            Failure::from_octocrab(e).text()
                        ))
                    })?;
                (crab, vec![Secret::new(token)])
            }
            GitHubAuth::App {
                app_id,
                installation_id,
                private_key_pem,
            } => {
                let app_error = |detail: String| ForgeError::AppAuth {
                    app_id,
                    installation_id,
                    status: None,
                    detail,
                };
                let app_crab = builder
                    .app_from_rsa_pem(AppId(app_id), private_key_pem.expose().trim().as_bytes())
                    .map_err(|_| {
                        app_error("the private key is not an RSA private key in PEM form; use the .pem file GitHub generated for the App".into())
                    })?
                    .build()
                    .map_err(|e| {
                        app_error(format!("cannot set up the GitHub client: {}", Failure::from_octocrab(e).text()))
                    })?;
                let crab = app_crab
                    .installation(InstallationId(installation_id))
                    .map_err(|e| app_error(Failure::from_octocrab(e).text()))?;
                (crab, vec![private_key_pem])
            }
        };

        let forge = Forge {
            crab,
            owner: options.owner,
            repo: options.repo,
            full_name,
            api_base,
            backoff: Backoff::default(),
            writes: AtomicU64::new(0),
            secrets,
        };
        if let Some((app_id, installation_id)) = app {
            forge
                .fetch_installation_token(app_id, installation_id)
                .await?;
        }
        forge.check_repository().await?;
        Ok(forge)
    }

    /// Replaces the default rate-limit [`Backoff`].
    pub fn with_backoff(mut self, backoff: Backoff) -> Forge {
        self.backoff = backoff;
        self
    }

    /// `owner/repo`.
    pub fn repository(&self) -> &str {
        &self.full_name
    }

    /// How many writing requests (POST/PATCH/PUT/DELETE) this forge has sent,
    /// each retry counted. Installation-token renewals that octocrab makes
    /// on its own after the first are not included.
    pub fn write_calls(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// The open pull request whose head is branch `head` of this repository.
    pub async fn open_pr_for_head(
        &self,
        head: &str,
    ) -> Result<Option<PullRequestInfo>, ForgeError> {
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

    /// Closed pull requests (merged or not) whose head is branch `head`,
    /// newest first (at most 1000).
    pub async fn closed_prs_for_head(
        &self,
        head: &str,
    ) -> Result<Vec<PullRequestInfo>, ForgeError> {
        let action = format!("looking up closed pull requests for branch {head}");
        self.list_for_head(head, octocrab::params::State::Closed, &action)
            .await?
            .into_iter()
            .map(|pr| self.info(pr, &action))
            .collect()
    }

    /// Opens a pull request, then adds labels, requests reviews and adds
    /// assignees. If GitHub says one is already open for `spec.head`, that
    /// one is returned (with missing labels and assignees added; reviews are
    /// not re-requested). Failures of the extras after the pull request
    /// exists are logged as warnings, not returned: the pull request is there
    /// and opening it again would be wrong.
    pub async fn create_pr(&self, spec: &PullRequestSpec) -> Result<PullRequestInfo, ForgeError> {
        let action = format!(
            "opening a pull request from {} into {}",
            spec.head, spec.base
        );
        for (value, what) in [
            (&spec.head, "head branch"),
            (&spec.base, "base branch"),
            (&spec.title, "title"),
        ] {
            if value.trim().is_empty() {
                return Err(ForgeError::Config {
                    repo: self.full_name.clone(),
                    detail: format!("cannot open a pull request with an empty {what}"),
                });
            }
        }
        if spec.head == spec.base {
            return Err(ForgeError::Config {
                repo: self.full_name.clone(),
                detail: format!(
                    "cannot open a pull request from branch {} into itself; use a separate head branch",
                    spec.head
                ),
            });
        }

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
                repo: self.full_name.clone(),
                head: spec.head.clone(),
                base: spec.base.clone(),
            }),
            Err(failure) => Err(self.error(&action, failure)),
        }
    }

    /// Sets the title and body of pull request `number`.
    pub async fn update_pr(&self, number: u64, title: &str, body: &str) -> Result<(), ForgeError> {
        let action = format!("updating pull request #{number}");
        let path = format!("/repos/{}/{}/pulls/{number}", self.owner, self.repo);
        let payload = json!({ "title": title, "body": body });
        self.call(&action, true, || self.raw_patch(&path, &payload))
            .await
            .map_err(|f| self.error(&action, f))?;
        Ok(())
    }

    /// Comments on pull request `number` (unless `comment` is blank), then
    /// closes it without merging.
    pub async fn close_pr(&self, number: u64, comment: &str) -> Result<(), ForgeError> {
        if !comment.trim().is_empty() {
            let action = format!("commenting on pull request #{number} before closing it");
            let path = format!(
                "/repos/{}/{}/issues/{number}/comments",
                self.owner, self.repo
            );
            let payload = json!({ "body": comment });
            self.call(&action, true, || self.raw_post(&path, &payload))
                .await
                .map_err(|f| self.error(&action, f))?;
        }
        let action = format!("closing pull request #{number}");
        let path = format!("/repos/{}/{}/pulls/{number}", self.owner, self.repo);
        let payload = json!({ "state": "closed" });
        self.call(&action, true, || self.raw_patch(&path, &payload))
            .await
            .map_err(|f| self.error(&action, f))?;
        tracing::info!(repo = %self.full_name, number, "closed pull request");
        Ok(())
    }

    /// Deletes branch `branch`. A branch that is already gone (404, or 422
    /// "Reference does not exist") is fine.
    pub async fn delete_branch(&self, branch: &str) -> Result<(), ForgeError> {
        let action = format!("deleting branch {branch}");
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        if branch.trim().is_empty() {
            return Err(ForgeError::Config {
                repo: self.full_name.clone(),
                detail: "cannot delete a branch with an empty name".into(),
            });
        }
        let path = format!(
            "/repos/{}/{}/git/refs/heads/{}",
            self.owner,
            self.repo,
            encode_path(branch)
        );
        match self.call(&action, true, || self.raw_delete(&path)).await {
            Ok(_) => {
                tracing::info!(repo = %self.full_name, branch, "deleted branch");
                Ok(())
            }
            Err(failure)
                if failure.status() == Some(404)
                    || failure.is(422, "reference does not exist")
                    || failure.is(422, "not found") =>
            {
                tracing::debug!(repo = %self.full_name, branch, "branch already gone");
                Ok(())
            }
            Err(failure) => Err(self.error(&action, failure)),
        }
    }

    // ----- internals -----

    async fn fetch_installation_token(
        &self,
        app_id: u64,
        installation_id: u64,
    ) -> Result<(), ForgeError> {
        // The token request is a POST to /app/installations/{id}/access_tokens.
        let result = self
            .call("getting an installation token", true, || async {
                self.crab.installation_token().await.map(|_| ())
            })
            .await;
        let failure = match result {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        let status = failure.status();
        let hint = match status {
            Some(401) => "GitHub did not accept the App's JWT: check the app id, that the private key belongs to this App, and the machine's clock",
            Some(403) => "the App may not use this installation (suspended, or the JWT is for another App)",
            Some(404) => "the App has no installation with this id: check installation_id (Settings → Installations)",
            _ => "check api_base and the App settings",
        };
        if let Failure::RateLimited {
            attempts,
            retry_after,
        } = failure
        {
            return Err(ForgeError::RateLimited {
                repo: self.full_name.clone(),
                action: "getting an installation token".into(),
                attempts,
                retry_after,
            });
        }
        Err(ForgeError::AppAuth {
            app_id,
            installation_id,
            status,
            detail: format!("{} ({hint})", self.scrub(failure.text())),
        })
    }

    async fn check_repository(&self) -> Result<(), ForgeError> {
        let action = "reading the repository";
        let path = format!("/repos/{}/{}", self.owner, self.repo);
        self.call(action, false, || async {
            let response = self.crab._get(path.as_str()).await?;
            let response = octocrab::map_github_error(response).await?;
            self.crab.body_to_string(response).await
        })
        .await
        .map_err(|f| self.error(action, f))?;
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

    /// The path and query of a pagination link, if it points at our API host
    /// (octocrab only authenticates relative requests for GitHub Apps, and
    /// a link elsewhere must not get our token anyway).
    fn same_api<U: std::fmt::Display>(&self, uri: &U) -> Option<String> {
        let link = uri.to_string();
        let base_authority = authority_of(&self.api_base);
        if link.starts_with('/') {
            return Some(link);
        }
        let authority = authority_of(&link);
        if authority.is_some() && authority == base_authority {
            let rest = link.split_once("://").map(|(_, r)| r).unwrap_or(&link);
            let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
            return Some(path.to_string());
        }
        tracing::warn!(repo = %self.full_name, "GitHub pagination link points at another host; not following it");
        None
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

    async fn raw_delete(&self, path: &str) -> octocrab::Result<String> {
        let response = self.crab._delete(path, None::<&()>).await?;
        let response = octocrab::map_github_error(response).await?;
        self.crab.body_to_string(response).await
    }

    /// Runs `op`, retrying it while GitHub rate-limits it (see [`Backoff`]).
    async fn call<T, F, Fut>(&self, action: &str, write: bool, mut op: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = octocrab::Result<T>>,
    {
        let mut retry = 0u32;
        loop {
            if write {
                self.writes.fetch_add(1, Ordering::Relaxed);
            }
            let failure = match op().await {
                Ok(value) => return Ok(value),
                Err(error) => Failure::from_octocrab(error),
            };
            let now = u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0);
            let Some(wait) = failure.rate_limit_wait(retry, &self.backoff, now) else {
                return Err(failure);
            };
            if retry >= self.backoff.max_retries || wait.wait > self.backoff.max_wait {
                return Err(Failure::RateLimited {
                    attempts: retry + 1,
                    retry_after: wait.from_github.then_some(wait.wait),
                });
            }
            tracing::warn!(
                repo = %self.full_name,
                action,
                wait_ms = u64::try_from(wait.wait.as_millis()).unwrap_or(u64::MAX),
                attempt = retry + 1,
                "GitHub rate limit; waiting before retrying"
            );
            tokio::time::sleep(wait.wait).await;
            retry += 1;
        }
    }

    fn error(&self, action: &str, failure: Failure) -> ForgeError {
        let repo = self.full_name.clone();
        let action = action.to_string();
        match failure {
            Failure::RateLimited {
                attempts,
                retry_after,
            } => ForgeError::RateLimited {
                repo,
                action,
                attempts,
                retry_after,
            },
            Failure::Status { status, .. } => {
                let message = self.scrub(failure.text());
                match status {
                    401 => ForgeError::Unauthorized {
                        repo,
                        action,
                        status,
                        message,
                    },
                    403 => ForgeError::Forbidden {
                        repo,
                        action,
                        message,
                    },
                    404 => ForgeError::NotFound {
                        repo,
                        action,
                        message,
                    },
                    500..=599 => ForgeError::Server {
                        repo,
                        action,
                        status,
                        message,
                    },
                    _ => ForgeError::Rejected {
                        repo,
                        action,
                        status,
                        message,
                    },
                }
            }
            Failure::Transport(detail) => ForgeError::Transport {
                repo,
                action,
                api_base: self.api_base.clone(),
                detail: self.scrub(detail),
            },
            Failure::Malformed(detail) | Failure::Other(detail) => ForgeError::Malformed {
                repo,
                action,
                detail: self.scrub(detail),
            },
        }
    }

    fn scrub(&self, mut text: String) -> String {
        for secret in &self.secrets {
            let value = secret.expose().trim();
            if value.len() >= 4 && text.contains(value) {
                text = text.replace(value, "***");
            }
        }
        text
    }
}

/// GitHub owner and repository names: letters, digits, `-`, `_`, `.`.
fn check_name(name: &str, what: &str) -> Result<(), String> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(format!(
            "the {what} {name:?} is not a GitHub name (letters, digits, '-', '_' and '.')"
        ));
    }
    Ok(())
}

fn check_api_base(base: &str) -> Result<(), String> {
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"));
    let valid = rest.is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or_default();
        !host.is_empty() && !rest.contains('?') && !rest.contains('#') && !host.contains('@')
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "api_base {base:?} must be an http(s) URL without credentials, query or fragment, e.g. https://ghe.example.com/api/v3/"
        ))
    }
}

fn authority_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    Some(
        rest.split('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase(),
    )
}

/// Percent-encodes a branch name for a URL path, keeping its `/`s.
fn encode_path(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(byte))
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_paths_are_encoded() {
        assert_eq!(encode_path("tidewatch/prod"), "tidewatch/prod");
        assert_eq!(encode_path("a#b?c d%é"), "a%23b%3Fc%20d%25%C3%A9");
    }

    #[test]
    fn names_and_bases_are_checked() {
        assert!(check_name("acme-corp", "owner").is_ok());
        assert!(check_name("my.repo_1", "repository name").is_ok());
        assert!(check_name("acme/x", "owner").is_err());
        assert!(check_name("", "owner").is_err());
        assert!(check_name("..", "owner").is_err());
        assert!(check_api_base("https://api.github.com/").is_ok());
        assert!(check_api_base("http://127.0.0.1:8080").is_ok());
        assert!(check_api_base("https://ghe.example.com/api/v3/").is_ok());
        assert!(check_api_base("ftp://x").is_err());
        assert!(check_api_base("https://user:pw@host/").is_err());
        assert!(check_api_base("https://host/?q").is_err());
        assert_eq!(
            authority_of("http://127.0.0.1:99/repos?page=2").as_deref(),
            Some("127.0.0.1:99")
        );
    }

    #[test]
    fn auth_debug_hides_secrets() {
        let auth = GitHubAuth::App {
            app_id: 1,
            installation_id: 2,
            private_key_pem: Secret::new("-----BEGIN RSA PRIVATE KEY----- sekrit"),
        };
        let text = format!(
            "{auth:?} {:?}",
            GitHubAuth::Token(Secret::new("ghp_sekrit"))
        );
        assert!(!text.contains("sekrit"), "{text}");
    }
}
