//! Registry credentials: where they come from, and a type that cannot leak them.
//!
//! Sources, as in the `credentials:` of a registry entry:
//! - `env: VAR`: `user:password` in an environment variable;
//! - `file: PATH`: `user:password` in a file;
//! - `dockerConfig: PATH`: a docker `config.json`, whose `credHelpers`,
//!   `auths` and `credsStore` are consulted in that order, as docker does;
//! - `helper: NAME`: the `docker-credential-NAME` program, which is how
//!   ECR, GCR and ACR credentials are obtained.
//!
//! With no source configured, the default docker config
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) is consulted
//! if it exists, then the registry is used anonymously.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::error::RegistryError;
use crate::reference::DOCKER_HUB;
pub use crate::secret::Secret;

/// A username and password (or token) for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: Secret,
}

impl Credential {
    /// The value of a Basic `Authorization` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Where a registry's credentials are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    Env(String),
    File(PathBuf),
    DockerConfig(PathBuf),
    Helper(String),
}

impl CredentialSource {
    /// Reads the credential for `host`. `Ok(None)` means "use the registry
    /// anonymously"; an error means the configured source is broken.
    pub async fn resolve(
        &self,
        host: &str,
        helper_timeout: Duration,
    ) -> Result<Option<Credential>, RegistryError> {
        let fail = |detail: String| RegistryError::Credentials {
            host: host.to_string(),
            detail,
        };
        match self {
            CredentialSource::Env(var) => {
                let value = crate::secret::Source::Env(var.clone())
                    .read("registry credentials")
                    .map_err(|e| fail(e.to_string()))?;
                split_user_password(value.expose())
                    .map(Some)
                    .ok_or_else(|| fail(format!("{var} must hold user:password")))
            }
            CredentialSource::File(path) => {
                let value = crate::secret::Source::File(path.clone())
                    .read("registry credentials")
                    .map_err(|e| fail(e.to_string()))?;
                split_user_password(value.expose())
                    .map(Some)
                    .ok_or_else(|| fail(format!("{} must hold user:password", path.display())))
            }
            CredentialSource::DockerConfig(path) => {
                from_docker_config(path, host, helper_timeout).await
            }
            CredentialSource::Helper(name) => run_helper(name, host, helper_timeout).await,
        }
    }
}

/// The docker config used when a registry has no `credentials:`, if present.
pub fn default_docker_config() -> Option<PathBuf> {
    let dir = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".docker"),
    };
    let path = dir.join("config.json");
    path.is_file().then_some(path)
}

fn split_user_password(value: &str) -> Option<Credential> {
    let (user, password) = value.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some(Credential {
        username: user.to_string(),
        password: Secret::new(password),
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::HashMap<String, DockerAuth>,
    #[serde(default)]
    cred_helpers: std::collections::HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Docker writes registry keys as `host`, `https://host`, `host/` or, for
/// Docker Hub, `https://index.docker.io/v1/`. Compare them in one form.
fn config_key_host(key: &str) -> String {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = without_scheme.split('/').next().unwrap_or(without_scheme);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        other => other.to_string(),
    }
}

async fn from_docker_config(
    path: &Path,
    host: &str,
    helper_timeout: Duration,
) -> Result<Option<Credential>, RegistryError> {
    let fail = |detail: String| RegistryError::Credentials {
        host: host.to_string(),
        detail,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(format!("cannot read docker config {}: {e}", path.display())))?;
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| {
        fail(format!(
            "docker config {} is not valid JSON: {e}",
            path.display()
        ))
    })?;
    let wanted = config_key_host(host);
    if let Some((_, helper)) = config
        .cred_helpers
        .iter()
        .find(|(key, _)| config_key_host(key) == wanted)
    {
        return run_helper(helper, host, helper_timeout).await;
    }
    if let Some((_, entry)) = config
        .auths
        .iter()
        .find(|(key, _)| config_key_host(key) == wanted)
    {
        if let Some(encoded) = &entry.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    fail(format!(
                        "the `auth` entry for {host} in {} is not base64 of user:password",
                        path.display()
                    ))
                })?;
            return split_user_password(&decoded).map(Some).ok_or_else(|| {
                fail(format!(
                    "the `auth` entry for {host} in {} is not user:password",
                    path.display()
                ))
            });
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Credential {
                username: username.clone(),
                password: Secret::new(password.clone()),
            }));
        }
    }
    match &config.creds_store {
        Some(store) => run_helper(store, host, helper_timeout).await,
        None => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperReply {
    username: String,
    secret: String,
}

/// Runs `docker-credential-NAME get` with the server URL on stdin, as the
/// docker credential-helper protocol specifies. A helper that says it has no
/// credentials for the host means anonymous access.
async fn run_helper(
    name: &str,
    host: &str,
    timeout: Duration,
) -> Result<Option<Credential>, RegistryError> {
    let program = format!("docker-credential-{name}");
    let fail = |detail: String| RegistryError::Credentials {
        host: host.to_string(),
        detail,
    };
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}; is it on PATH?")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // The helper reads the server URL; a helper that exits without
        // reading it is not an error by itself.
        let _ = stdin.write_all(host.as_bytes()).await;
    }
    // `kill_on_drop`: when the timeout drops the wait, the helper is killed.
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            fail(format!(
                "the credential helper {program} did not answer within {} s and was killed; check the helper (it may be waiting for a login)",
                timeout.as_secs_f64()
            ))
        })?
        .map_err(|e| fail(format!("{program} failed: {e}")))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).to_lowercase()
            + &String::from_utf8_lossy(&output.stderr).to_lowercase();
        if said.contains("credentials not found") {
            return Ok(None);
        }
        // The helper's output may hold secrets; report only its status.
        return Err(fail(format!("{program} get exited with {}", output.status)));
    }
    let reply: HelperReply = serde_json::from_slice(&output.stdout)
        .map_err(|_| fail(format!("{program} get did not print Username/Secret JSON")))?;
    Ok(Some(Credential {
        username: reply.username,
        password: Secret::new(reply.secret),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_in_debug() {
        let c = Credential {
            username: "bot".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("bot"));
        assert_eq!(c.basic_header(), "Basic Ym90Omh1bnRlcjI=");
    }

    #[test]
    fn docker_config_keys_compare_by_host() {
        assert_eq!(config_key_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(config_key_host("ghcr.io"), "ghcr.io");
        assert_eq!(config_key_host("http://localhost:5000/"), "localhost:5000");
    }

    #[tokio::test]
    async fn docker_config_auths_and_env_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"auths": {"https://localhost:5000/": {"auth": "dXNlcjpwYXNz"}, "other.io": {"username": "u", "password": "p"}}}"#,
        )
        .unwrap();
        let source = CredentialSource::DockerConfig(config.clone());
        let t = Duration::from_secs(5);
        let c = source.resolve("localhost:5000", t).await.unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("user", "pass"));
        let c = source.resolve("other.io", t).await.unwrap().unwrap();
        assert_eq!(c.username, "u");
        assert_eq!(source.resolve("nowhere.io", t).await.unwrap(), None);

        let file = dir.path().join("creds");
        std::fs::write(&file, "robot:s3cret\n").unwrap();
        let c = CredentialSource::File(file)
            .resolve("h", t)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.password.expose(), "s3cret");

        let missing = CredentialSource::Env("TIDEWATCH_TEST_UNSET_VARIABLE".into())
            .resolve("h", t)
            .await
            .unwrap_err();
        assert!(missing
            .to_string()
            .contains("TIDEWATCH_TEST_UNSET_VARIABLE"));
    }
}
