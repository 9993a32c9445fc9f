//! Forge errors. Each names the repository (and the pull request, branch or
//! App installation concerned), the HTTP status where GitHub answered, and
//! what to do about it. None holds a token, a key or a JWT: they carry our
//! own wording plus GitHub's `message`, with any known secret scrubbed out.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForgeError {
    #[error("GitHub settings for {repo}: {detail}")]
    Config { repo: String, detail: String },

    #[error("GitHub answered {status} Unauthorized to {action} on {repo} ({message}); the token is wrong, expired or revoked: replace it (for a GitHub App, check the app id and private key)")]
    Unauthorized {
        repo: String,
        action: String,
        status: u16,
        message: String,
    },

    #[error("GitHub App authentication for app {app_id}, installation {installation_id} failed{}: {detail}", .status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    AppAuth {
        app_id: u64,
        installation_id: u64,
        status: Option<u16>,
        detail: String,
    },

    #[error("GitHub answered 403 Forbidden to {action} on {repo} ({message}); the credentials lack a permission: grant `contents: write`, `pull_requests: write` and `issues: write` on this repository")]
    Forbidden {
        repo: String,
        action: String,
        message: String,
    },

    #[error("GitHub answered 404 Not Found to {action} on {repo} ({message}); check the owner/repo names and that the credentials can see the repository")]
    NotFound {
        repo: String,
        action: String,
        message: String,
    },

    #[error("GitHub refused to open a pull request on {repo} from {head} into {base}: there are no commits between them (HTTP 422); push the change to {head} first, or there is nothing to propose")]
    NoCommits {
        repo: String,
        head: String,
        base: String,
    },

    #[error("GitHub rejected {action} on {repo} with HTTP {status}: {message}; fix the request (branch names, labels, reviewers) rather than retrying it as is")]
    Rejected {
        repo: String,
        action: String,
        status: u16,
        message: String,
    },

    #[error("GitHub rate limit hit while {action} on {repo}: gave up after {attempts} attempt(s){}; wait and run again, or make fewer changes per cycle", .retry_after.map(|d| format!(" (GitHub asked to wait {} s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        repo: String,
        action: String,
        attempts: u32,
        retry_after: Option<Duration>,
    },

    #[error("GitHub answered HTTP {status} to {action} on {repo}: {message}; this is likely temporary, try again later")]
    Server {
        repo: String,
        action: String,
        status: u16,
        message: String,
    },

    #[error("cannot reach GitHub at {api_base} while {action} on {repo}: {detail}; check the network and `api_base`")]
    Transport {
        repo: String,
        action: String,
        api_base: String,
        detail: String,
    },

    #[error("GitHub's answer to {action} on {repo} could not be understood: {detail}; is `api_base` really a GitHub API?")]
    Malformed {
        repo: String,
        action: String,
        detail: String,
    },
}

impl ForgeError {
    /// A short stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ForgeError::Config { .. } => "config",
            ForgeError::Unauthorized { .. } => "unauthorized",
            ForgeError::AppAuth { .. } => "app_auth",
            ForgeError::Forbidden { .. } => "forbidden",
            ForgeError::NotFound { .. } => "not_found",
            ForgeError::NoCommits { .. } => "no_commits",
            ForgeError::Rejected { .. } => "rejected",
            ForgeError::RateLimited { .. } => "rate_limited",
            ForgeError::Server { .. } => "server",
            ForgeError::Transport { .. } => "transport",
            ForgeError::Malformed { .. } => "malformed",
        }
    }
}
