//! Registry errors. Each names the registry (and repository where there is
//! one), says what happened in one line and what to do about it. None holds
//! a credential or token: they carry hosts, statuses and our own wording.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {host}: {detail}; check the host name, port and network")]
    Unreachable { host: String, detail: String },

    #[error("TLS with registry {host} failed: {detail}; for a private CA set `caFile`, for a plain-HTTP registry set `insecure: true`")]
    Tls { host: String, detail: String },

    #[error("registry {host} timed out after {attempts} attempt(s); it may be overloaded or unreachable")]
    Timeout { host: String, attempts: u32 },

    #[error("registry {host} answered 401 Unauthorized for {repository} {}", if *.had_credentials { "with the configured credentials; check the user and password or token" } else { "and no credentials are configured; add `credentials` for this registry" })]
    Unauthorized {
        host: String,
        repository: String,
        had_credentials: bool,
    },

    #[error("registry {host} answered 403 Forbidden for {repository}; the credentials lack pull access to it")]
    Forbidden { host: String, repository: String },

    #[error("registry {host} has no repository {repository} (404); check the image name")]
    NotFound { host: String, repository: String },

    #[error("registry {host} kept answering 429 Too Many Requests{}; lower `requestsPerSecond` for it", .retry_after.map(|d| format!(" (last Retry-After {} s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        host: String,
        retry_after: Option<Duration>,
    },

    #[error("registry {host} answered HTTP {status} for {what} after {attempts} attempt(s)")]
    Status {
        host: String,
        status: u16,
        what: String,
        attempts: u32,
    },

    #[error("registry {host} sent malformed data for {what}: {detail}")]
    Malformed {
        host: String,
        what: String,
        detail: String,
    },

    #[error("registry {host} sent bytes for {what} that do not match the digest {expected} (they hash to {actual}); they were refused and not cached: the registry or a proxy in between is corrupting data")]
    DigestMismatch {
        host: String,
        what: String,
        expected: String,
        actual: String,
    },

    #[error("credentials for registry {host}: {detail}")]
    Credentials { host: String, detail: String },

    #[error("registry {host}: {repository} has more than {pages} pages of tags; raise `pageBudget` for this registry")]
    PageBudget {
        host: String,
        repository: String,
        pages: usize,
    },

    #[error("registry {host}: the token service at {realm} failed: {detail}")]
    Token {
        host: String,
        realm: String,
        detail: String,
    },
}

impl RegistryError {
    /// A short stable label for metrics (`errors by kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryError::Unreachable { .. } => "unreachable",
            RegistryError::Tls { .. } => "tls",
            RegistryError::Timeout { .. } => "timeout",
            RegistryError::Unauthorized { .. } => "unauthorized",
            RegistryError::Forbidden { .. } => "forbidden",
            RegistryError::NotFound { .. } => "not_found",
            RegistryError::RateLimited { .. } => "rate_limited",
            RegistryError::Status { .. } => "status",
            RegistryError::Malformed { .. } => "malformed",
            RegistryError::DigestMismatch { .. } => "digest_mismatch",
            RegistryError::Credentials { .. } => "credentials",
            RegistryError::PageBudget { .. } => "page_budget",
            RegistryError::Token { .. } => "token",
        }
    }
}
