//! GitHub (and GitHub Enterprise Server) through `octocrab`.
//!
//! Typed octocrab calls are used where we read the answer (pull requests);
//! writes whose answer we do not need (labels, reviewers, assignees,
//! comments, updates) go through octocrab's raw request methods and ignore
//! the body, so a model change on GitHub's side cannot make a write that
//! succeeded look failed (and be repeated).
//!
//! A GitHub App client gets an installation token at connect time; octocrab
//! caches it and fetches a new one before each request once less than 30
//! seconds of validity are left, so one client serves for the process
//! lifetime.

mod pulls;
mod status;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use octocrab::models::{AppId, InstallationId};
use octocrab::Octocrab;

use super::failure::{error_chain, Context, Failure, RateLimitRetry};
use super::ForgeError;
use crate::retry::parse_retry_after;
use crate::secret::Secret;
use crate::timeouts::FORGE_CONNECT;

/// Used when [`GitHubOptions::api_base`] is `None`.
pub const DEFAULT_API_BASE: &str = "https://api.github.com/";

const FORGE: &str = "GitHub";
const NEEDED: &str = "grant `contents: write`, `pull_requests: write` and `issues: write` on this repository (a classic token needs the `repo` scope)";

/// How GitHub is authenticated. `Debug` never shows the secrets.
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
pub struct GitHubOptions {
    /// The REST API root, for GitHub Enterprise Server
    /// (`https://ghe.example.com/api/v3/`) or tests
    /// (`http://127.0.0.1:PORT/`); default [`DEFAULT_API_BASE`].
    pub api_base: Option<String>,
    pub owner: String,
    pub repo: String,
    pub auth: GitHubAuth,
    /// One request's timeout ([`crate::timeouts::FORGE_REQUEST`] by default).
    pub timeout: std::time::Duration,
}

/// One GitHub repository to open pull requests on.
pub struct GitHub {
    crab: Octocrab,
    owner: String,
    repo: String,
    /// `owner/repo`, for messages.
    full_name: String,
    api_base: String,
    retry: RateLimitRetry,
    writes: AtomicU64,
    /// Scrubbed from every error message, just in case.
    secrets: Vec<Secret>,
    unauthorized_hint: &'static str,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("repo", &self.full_name)
            .field("api_base", &self.api_base)
            .field("retry", &self.retry)
            .field("write_calls", &self.writes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl GitHub {
    /// Sets up the client and checks, with one `GET /repos/{owner}/{repo}`,
    /// that the credentials work and can see the repository. For a GitHub
    /// App, an installation token is obtained first.
    pub async fn connect(options: GitHubOptions) -> Result<GitHub, ForgeError> {
        let full_name = format!("{}/{}", options.owner, options.repo);
        let config_error = |detail: String| ForgeError::Config {
            forge: FORGE.into(),
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
            .set_connect_timeout(Some(FORGE_CONNECT.min(options.timeout)))
            .set_read_timeout(Some(options.timeout))
            .set_write_timeout(Some(options.timeout))
            .base_uri(api_base.as_str())
            .map_err(|_| {
                config_error(format!(
                    "apiUrl {api_base:?} is not a valid URL; use e.g. https://ghe.example.com/api/v3/"
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
                            from_octocrab(e).text()
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
                        app_error(format!("cannot set up the GitHub client: {}", from_octocrab(e).text()))
                    })?;
                let crab = app_crab
                    .installation(InstallationId(installation_id))
                    .map_err(|e| app_error(from_octocrab(e).text()))?;
                (crab, vec![private_key_pem])
            }
        };

        let forge = GitHub {
            crab,
            owner: options.owner,
            repo: options.repo,
            full_name,
            api_base,
            retry: RateLimitRetry::default(),
            writes: AtomicU64::new(0),
            secrets,
            unauthorized_hint: if app.is_some() {
                "; for a GitHub App, check the app id and private key"
            } else {
                ""
            },
        };
        if let Some((app_id, installation_id)) = app {
            forge
                .fetch_installation_token(app_id, installation_id)
                .await?;
        }
        forge.check_repository().await?;
        Ok(forge)
    }

    /// Replaces the default rate-limit retry policy.
    pub fn with_retry(mut self, retry: RateLimitRetry) -> GitHub {
        self.retry = retry;
        self
    }

    /// `owner/repo`.
    pub fn repository(&self) -> &str {
        &self.full_name
    }

    fn context(&self) -> Context<'_> {
        Context {
            forge: FORGE,
            repo: &self.full_name,
            api_base: &self.api_base,
            needed: NEEDED,
            unauthorized_hint: self.unauthorized_hint,
            secrets: &self.secrets,
        }
    }

    fn error(&self, action: &str, failure: Failure) -> ForgeError {
        self.context().error(action, failure)
    }

    fn scrub(&self, text: String) -> String {
        super::scrub(&self.secrets, text)
    }

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
            _ => "check apiUrl and the App settings",
        };
        if let Failure::RateLimited {
            attempts,
            retry_after,
        } = failure
        {
            return Err(ForgeError::RateLimited {
                forge: FORGE.into(),
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

    /// Runs `op`, retrying it while GitHub rate-limits it.
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
                Err(error) => from_octocrab(error),
            };
            let now = u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0);
            let Some(wait) = failure.rate_limit_wait(retry, &self.retry, now) else {
                return Err(failure);
            };
            if retry >= self.retry.max_retries || wait.wait > self.retry.backoff.max {
                return Err(Failure::RateLimited {
                    attempts: retry + 1,
                    retry_after: wait.from_forge.then_some(wait.wait),
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
}

/// Reduces an octocrab error to what the forge decides on.
fn from_octocrab(error: octocrab::Error) -> Failure {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            let header = |name: &str| -> Option<String> {
                source
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_string())
            };
            let details = source
                .errors
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(
                    |entry| match entry.get("message").and_then(|m| m.as_str()) {
                        Some(message) => message.to_string(),
                        None => match entry.as_str() {
                            Some(text) => text.to_string(),
                            None => entry.to_string(),
                        },
                    },
                )
                .collect();
            Failure::Status {
                status: source.status_code.as_u16(),
                message: source.message.clone(),
                details,
                retry_after: header("retry-after")
                    .and_then(|v| parse_retry_after(&v, jiff::Timestamp::now())),
                ratelimit_remaining: header("x-ratelimit-remaining").and_then(|v| v.parse().ok()),
                ratelimit_reset: header("x-ratelimit-reset").and_then(|v| v.parse().ok()),
            }
        }
        error @ (octocrab::Error::Json { .. } | octocrab::Error::Serde { .. }) => {
            Failure::Malformed(error_chain(&error))
        }
        error @ (octocrab::Error::Hyper { .. }
        | octocrab::Error::Service { .. }
        | octocrab::Error::Http { .. }
        | octocrab::Error::Encoder { .. }
        | octocrab::Error::InvalidUtf8 { .. }) => Failure::Transport(error_chain(&error)),
        other => Failure::Other(error_chain(&other)),
    }
}

/// `owner/name` of a repository URL on github.com:
/// `https://github.com/owner/name(.git)`, `ssh://git@github.com/owner/name`
/// or scp-like `git@github.com:owner/name.git`.
pub fn slug_from_url(url: &str) -> Option<String> {
    let path = match url.strip_prefix("git@github.com:") {
        Some(rest) => rest.to_string(),
        None => {
            let parsed = url::Url::parse(url).ok()?;
            if !matches!(parsed.scheme(), "https" | "http" | "ssh")
                || parsed.host_str() != Some("github.com")
            {
                return None;
            }
            parsed.path().trim_start_matches('/').to_string()
        }
    };
    let slug = path.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = slug.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(owner), Some(name), None) if !owner.is_empty() && !name.is_empty() => {
            Some(slug.to_string())
        }
        _ => None,
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

/// An http(s) URL with a host and no credentials, query or fragment.
fn check_api_base(base: &str) -> Result<(), String> {
    let valid = url::Url::parse(base).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some_and(|h| !h.is_empty())
            && url.username().is_empty()
            && url.password().is_none()
            && url.query().is_none()
            && url.fragment().is_none()
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "apiUrl {base:?} must be an http(s) URL without credentials, query or fragment, e.g. https://ghe.example.com/api/v3/"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_urls() {
        assert_eq!(
            slug_from_url("https://github.com/acme/fleet.git").as_deref(),
            Some("acme/fleet")
        );
        assert_eq!(
            slug_from_url("git@github.com:acme/fleet.git").as_deref(),
            Some("acme/fleet")
        );
        assert_eq!(
            slug_from_url("ssh://git@github.com/acme/fleet").as_deref(),
            Some("acme/fleet")
        );
        assert_eq!(slug_from_url("https://github.com/acme"), None);
        assert_eq!(slug_from_url("https://gitlab.com/acme/fleet.git"), None);
        assert_eq!(slug_from_url("file:///tmp/fleet"), None);
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
