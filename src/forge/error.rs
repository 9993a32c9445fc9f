//! Forge errors. Each names the forge and repository (and the pull request,
//! branch or App installation concerned), the HTTP status where the forge
//! answered, and what to do about it. None holds a token, a key or a JWT:
//! they carry our own wording plus the forge's message, with every known
//! secret scrubbed out.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForgeError {
    #[error("{forge} settings for {repo}: {detail}")]
    Config {
        forge: String,
        repo: String,
        detail: String,
    },

    #[error("{forge} answered {status} Unauthorized to {action} on {repo} ({message}); the token is wrong, expired or revoked: replace it{hint}")]
    Unauthorized {
        forge: String,
        repo: String,
        action: String,
        status: u16,
        message: String,
        /// A forge-specific addition, starting with "; " (or empty).
        hint: String,
    },

    #[error("GitHub App authentication for app {app_id}, installation {installation_id} failed{}: {detail}", .status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    AppAuth {
        app_id: u64,
        installation_id: u64,
        status: Option<u16>,
        detail: String,
    },

    #[error("{forge} answered 403 Forbidden to {action} on {repo} ({message}); the credentials lack a permission: {needed}")]
    Forbidden {
        forge: String,
        repo: String,
        action: String,
        message: String,
        /// The permissions or scopes this forge needs, in its own words.
        needed: String,
    },

    #[error("{forge} answered 404 Not Found to {action} on {repo} ({message}); check the repository name and that the credentials can see it")]
    NotFound {
        forge: String,
        repo: String,
        action: String,
        message: String,
    },

    #[error("{forge} refused to open a pull request on {repo} from {head} into {base}: there are no commits between them; push the change to {head} first, or there is nothing to propose")]
    NoCommits {
        forge: String,
        repo: String,
        head: String,
        base: String,
    },

    #[error("{forge} rejected {action} on {repo} with HTTP {status}: {message}; fix the request (branch names, labels, reviewers) rather than retrying it as is")]
    Rejected {
        forge: String,
        repo: String,
        action: String,
        status: u16,
        message: String,
    },

    #[error("{forge} rate limit hit while {action} on {repo}: gave up after {attempts} attempt(s){}; wait and run again, or make fewer changes per cycle", .retry_after.map(|d| format!(" (the forge asked to wait {} s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        forge: String,
        repo: String,
        action: String,
        attempts: u32,
        retry_after: Option<Duration>,
    },

    #[error("{forge} answered HTTP {status} to {action} on {repo}: {message}; this is likely temporary, try again later")]
    Server {
        forge: String,
        repo: String,
        action: String,
        status: u16,
        message: String,
    },

    #[error("cannot reach {forge} at {api_base} while {action} on {repo}: {detail}; check the network and the API URL")]
    Transport {
        forge: String,
        repo: String,
        action: String,
        api_base: String,
        detail: String,
    },

    #[error("{forge}'s answer to {action} on {repo} could not be understood: {detail}; is the API URL really a {forge} API?")]
    Malformed {
        forge: String,
        repo: String,
        action: String,
        detail: String,
    },

    #[error("{forge} does not offer {feature} to tidewatch; remove the setting that needs it, or use a forge that has it")]
    Unsupported { forge: String, feature: String },

    #[error(
        "{forge}: {detail} (pull request #{number} on {repo}); fix the name in `pullRequest:`"
    )]
    UnknownName {
        forge: String,
        repo: String,
        number: u64,
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
            ForgeError::UnknownName { .. } => "unknown_name",
            ForgeError::Unsupported { .. } => "unsupported",
        }
    }
}
