//! From the policy files to the clients of one cycle: registry settings,
//! git workspace options and forge options. Every secret a cycle needs is
//! read here, once per cycle, through [`crate::secret::Source::read`].

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Config, RegistrySettings, Repository};
use crate::forge::{self, Forge, GitHub, GitHubAuth, GitHubOptions};
use crate::git::{self, GitCredentials, Identity, WorkspaceOptions};
use crate::registry::{Client, CredentialSource, HostSettings};

use super::EngineError;

/// The registry client a config describes. The service keeps one for its
/// lifetime, so the digest cache, the tokens and the request counters last.
pub fn client_for(config: &Config) -> Client {
    let settings = config
        .registries
        .iter()
        .map(|r| (r.host.clone(), host_settings(&r.item)))
        .collect();
    Client::new(settings, HostSettings::default())
}

/// Turns a `registries:` entry into host settings.
pub fn host_settings(r: &RegistrySettings) -> HostSettings {
    let defaults = HostSettings::default();
    let credentials = r.credentials.as_ref().and_then(|c| {
        if let Some(var) = &c.env {
            Some(CredentialSource::Env(var.clone()))
        } else if let Some(path) = &c.file {
            Some(CredentialSource::File(expand_home(path)))
        } else if let Some(path) = &c.docker_config {
            Some(CredentialSource::DockerConfig(expand_home(path)))
        } else {
            c.helper
                .as_ref()
                .map(|h| CredentialSource::Helper(h.clone()))
        }
    });
    HostSettings {
        insecure: r.insecure,
        ca_file: r.ca_file.as_deref().map(expand_home),
        credentials,
        requests_per_second: r.requests_per_second,
        concurrency: r.concurrency.unwrap_or(defaults.concurrency),
        page_size: r.page_size.unwrap_or(defaults.page_size),
        page_budget: r.page_budget.unwrap_or(defaults.page_budget),
        // Validation keeps timeouts within range; an out-of-range value
        // that slipped through falls back to the default instead of panicking.
        timeout: crate::timeouts::from_seconds(r.timeout_seconds, defaults.timeout),
        max_attempts: r.max_attempts.unwrap_or(defaults.max_attempts),
        ..defaults
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The git side of a cycle: where and how to clone and fetch.
pub fn workspace_options(
    repository: &Repository,
    workdir: Option<PathBuf>,
) -> Result<WorkspaceOptions, EngineError> {
    let mut credentials = GitCredentials::default();
    if let Some(auth) = &repository.auth {
        if let Some(token) = &auth.token {
            credentials.token = Some(token.read("git token")?);
        }
        if let Some(key) = &auth.ssh_key {
            credentials.ssh_key = Some(git::SshKey {
                path: PathBuf::from(&key.path),
                passphrase: key
                    .passphrase
                    .as_ref()
                    .map(|p| p.read("SSH key passphrase"))
                    .transpose()?,
            });
        }
    }
    let mut options = WorkspaceOptions::new(repository.url.clone());
    options.workdir = workdir;
    options.credentials = credentials;
    options.depth = repository
        .depth
        .and_then(|d| i32::try_from(d).ok())
        .filter(|d| *d > 0);
    Ok(options)
}

/// The commit identity of tidewatch.
pub fn identity(repository: &Repository) -> Identity {
    match &repository.author {
        Some(a) => Identity {
            name: a.name.clone(),
            email: a.email.clone(),
        },
        None => Identity {
            name: "tidewatch".into(),
            email: "tidewatch@localhost".into(),
        },
    }
}

/// Connects to the forge of the environment repository (reading its
/// secrets now). Called lazily, on the first cycle that has pull requests
/// to look after, and again after a failure.
pub async fn connect_forge(repository: &Repository) -> Result<Arc<dyn Forge>, EngineError> {
    let github = repository.github.clone().unwrap_or_default();
    let slug = match &github.repository {
        Some(slug) => slug.clone(),
        None => forge::github::slug_from_url(&repository.url).ok_or_else(|| {
            EngineError::Config(format!(
                "cannot tell the GitHub repository from {}; set `repository.github.repository: owner/name`",
                git::redact_url(&repository.url)
            ))
        })?,
    };
    let (owner, repo) = slug
        .split_once('/')
        .ok_or_else(|| EngineError::Config(format!("`{slug}` is not owner/name")))?;
    let auth = match &github.app {
        Some(app) => GitHubAuth::App {
            app_id: app.app_id,
            installation_id: app.installation_id,
            private_key_pem: app.private_key.read("GitHub App private key")?,
        },
        None => {
            let source = github
                .token
                .clone()
                .or_else(|| repository.auth.as_ref().and_then(|a| a.token.clone()))
                .ok_or_else(|| {
                    EngineError::Config(
                        "pull requests need `repository.github.token` or `repository.auth.token`"
                            .into(),
                    )
                })?;
            GitHubAuth::Token(source.read("GitHub token")?)
        }
    };
    let forge = GitHub::connect(GitHubOptions {
        api_base: github.api_url.clone(),
        owner: owner.to_string(),
        repo: repo.to_string(),
        auth,
        timeout: crate::timeouts::from_seconds(
            github.timeout_seconds,
            crate::timeouts::FORGE_REQUEST,
        ),
    })
    .await?;
    Ok(Arc::new(forge))
}
