//! Authentication callbacks for libgit2: HTTPS token as basic auth, SSH key
//! file or agent, and SSH host key verification against known_hosts.
//!
//! libgit2 calls the credentials callback again after every rejection, so
//! each kind of credential is offered once per operation; the second request
//! for it means the remote refused it, which is recorded in
//! [`CallbackState`] so the caller can report an authentication error
//! instead of libgit2's generic one.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

use super::url::{Embedded, RemoteUrl, Transport};
use super::{GitCredentials, SshKey};
use crate::secret::Secret;

/// GitHub's convention for the user name that goes with a token.
pub(crate) const TOKEN_USERNAME: &str = "x-access-token";

/// Everything needed to authenticate one remote, resolved once at open.
pub(crate) struct Auth {
    /// `(user name, password or token)` for HTTP(S) basic auth.
    basic: Option<(String, Secret)>,
    ssh_key: Option<SshKey>,
    ssh_agent: bool,
    known_hosts: Option<PathBuf>,
    accept_unknown_hosts: bool,
    transport: Transport,
    /// Host and port of an SSH remote, for known_hosts lookups.
    ssh_endpoint: Option<(String, u16)>,
    /// Every secret value, so error messages from libgit2 can be scrubbed.
    secrets: Vec<Secret>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            // The user name is left out too: it may come from a URL's
            // userinfo, where people also put tokens.
            .field("token", &self.basic.as_ref().map(|(_, token)| token))
            .field("ssh_key", &self.ssh_key)
            .field("ssh_agent", &self.ssh_agent)
            .field("known_hosts", &self.known_hosts)
            .field("accept_unknown_hosts", &self.accept_unknown_hosts)
            .finish()
    }
}

/// What happened inside the callbacks during one network operation.
#[derive(Default)]
pub(crate) struct CallbackState {
    tried_userpass: bool,
    tried_username: bool,
    tried_key: bool,
    tried_agent: bool,
    /// Set when credentials were missing or refused.
    pub(crate) auth_failure: Option<String>,
    /// Set when the SSH host key was not accepted.
    pub(crate) host_key_failure: Option<String>,
    /// `(refname, server status)` for every ref the server refused on push.
    pub(crate) rejections: Vec<(String, String)>,
    /// Set when the transfer was aborted because the deadline passed.
    pub(crate) deadline_passed: bool,
}

impl Auth {
    pub(crate) fn new(credentials: &GitCredentials, url: &RemoteUrl, raw_url: &str) -> Auth {
        let basic = match (&credentials.token, &url.embedded) {
            (Some(token), Some(Embedded::UserPassword(user, _))) => {
                Some((user.clone(), token.clone()))
            }
            (Some(token), Some(Embedded::Single(user))) => {
                Some((user.expose().to_string(), token.clone()))
            }
            (Some(token), None) => Some((TOKEN_USERNAME.to_string(), token.clone())),
            (None, Some(Embedded::UserPassword(user, password))) => {
                Some((user.clone(), password.clone()))
            }
            (None, Some(Embedded::Single(token))) => {
                Some((TOKEN_USERNAME.to_string(), token.clone()))
            }
            (None, None) => None,
        };
        let mut secrets = Vec::new();
        if let Some(token) = &credentials.token {
            secrets.push(token.clone());
        }
        match &url.embedded {
            Some(Embedded::UserPassword(_, password)) => secrets.push(password.clone()),
            Some(Embedded::Single(token)) => secrets.push(token.clone()),
            None => {}
        }
        if let Some(passphrase) = credentials
            .ssh_key
            .as_ref()
            .and_then(|key| key.passphrase.as_ref())
        {
            secrets.push(passphrase.clone());
        }
        secrets.retain(|secret| !secret.expose().is_empty());
        Auth {
            basic,
            ssh_key: credentials.ssh_key.clone(),
            ssh_agent: credentials.ssh_agent,
            known_hosts: credentials.known_hosts.clone(),
            accept_unknown_hosts: credentials.accept_unknown_hosts,
            transport: url.transport,
            ssh_endpoint: super::url::ssh_host_port(raw_url),
            secrets,
        }
    }

    /// `text` with every known secret replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            out = out.replace(secret.expose(), "***");
        }
        out
    }

    /// The known_hosts file host keys are checked against, for messages.
    pub(crate) fn known_hosts_display(&self) -> String {
        match &self.known_hosts {
            Some(path) => path.display().to_string(),
            None => "~/.ssh/known_hosts".to_string(),
        }
    }

    /// Callbacks for one fetch or push; `state` collects what happened. A
    /// transfer still running at `deadline` is aborted (libgit2 stops when a
    /// progress callback says so), so no network operation outlives its cycle.
    pub(crate) fn callbacks<'a>(
        &'a self,
        state: &'a RefCell<CallbackState>,
        deadline: Option<&'a crate::deadline::Deadline>,
    ) -> RemoteCallbacks<'a> {
        let mut callbacks = RemoteCallbacks::new();
        let within = move || {
            let passed = deadline.is_some_and(|d| d.passed());
            if passed {
                state.borrow_mut().deadline_passed = true;
            }
            !passed
        };
        callbacks.transfer_progress(move |_| within());
        callbacks.sideband_progress(move |_| within());
        if self.transport == Transport::Local {
            return callbacks;
        }
        callbacks.credentials(move |_url, username_from_url, allowed| {
            self.credentials(&mut state.borrow_mut(), username_from_url, allowed)
        });
        callbacks.certificate_check(move |cert, hostname| {
            let Some(hostkey) = cert.as_hostkey() else {
                // TLS: libgit2's own verification against the system's CA
                // store decides; tidewatch never weakens it.
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            if self.accept_unknown_hosts {
                tracing::warn!(
                    host = hostname,
                    "accepting the SSH host key without checking known_hosts (accept_unknown_hosts is set)"
                );
                return Ok(CertificateCheckStatus::CertificateOk);
            }
            let Some(file) = &self.known_hosts else {
                // libgit2 checks ~/.ssh/known_hosts itself and refuses
                // unknown hosts when we pass through.
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let port = self
                .ssh_endpoint
                .as_ref()
                .map(|(_, port)| *port)
                .unwrap_or(22);
            let fingerprint = hostkey
                .hash_sha256()
                .map(|hash| {
                    format!(
                        "SHA256:{}",
                        base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
                    )
                })
                .unwrap_or_else(|| "unknown fingerprint".to_string());
            let failure = match (hostkey.hostkey(), std::fs::read_to_string(file)) {
                (None, _) => format!(
                    "the SSH server {hostname} sent no host key that could be checked against {}",
                    file.display()
                ),
                (_, Err(err)) => format!(
                    "cannot read the known_hosts file {}: {err}; create it (e.g. `ssh-keyscan -p {port} {hostname} >> {}` after verifying the fingerprint) or fix the known_hosts setting",
                    file.display(),
                    file.display()
                ),
                (Some(key), Ok(contents)) => match check_known_hosts(&contents, hostname, port, key) {
                    HostKeyVerdict::Known => return Ok(CertificateCheckStatus::CertificateOk),
                    HostKeyVerdict::Unknown => format!(
                        "the SSH host key of {hostname} (port {port}, {fingerprint}) is not in {}; verify the fingerprint and add it (e.g. `ssh-keyscan -p {port} {hostname} >> {}`), or set accept_unknown_hosts to skip the check (not recommended)",
                        file.display(),
                        file.display()
                    ),
                    HostKeyVerdict::Changed => format!(
                        "the SSH host key of {hostname} (port {port}, {fingerprint}) does not match the key recorded in {}: the server's key changed or someone is intercepting the connection; verify the new key with the server's operator and update {}",
                        file.display(),
                        file.display()
                    ),
                    HostKeyVerdict::Revoked => format!(
                        "the SSH host key of {hostname} (port {port}, {fingerprint}) is marked @revoked in {}; the server must present a different key",
                        file.display()
                    ),
                },
            };
            state.borrow_mut().host_key_failure = Some(failure.clone());
            Err(git2::Error::from_str(&failure))
        });
        callbacks
    }

    fn credentials(
        &self,
        state: &mut CallbackState,
        username_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            let failure = match &self.basic {
                Some((user, token)) if !state.tried_userpass => {
                    state.tried_userpass = true;
                    return Cred::userpass_plaintext(user, token.expose());
                }
                Some(_) => "the remote rejected the configured token (HTTP basic auth as user \
                            x-access-token or the URL's user); check that the token is valid, \
                            not expired, and may read and write the repository"
                    .to_string(),
                None => "the remote asks for HTTP credentials but no token is configured; \
                         configure a token for this repository"
                    .to_string(),
            };
            state.auth_failure = Some(failure.clone());
            return Err(git2::Error::from_str(&failure));
        }
        let user = username_from_url.unwrap_or("git");
        if allowed.contains(CredentialType::USERNAME) && !state.tried_username {
            state.tried_username = true;
            return Cred::username(user);
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            if let Some(key) = &self.ssh_key {
                if !state.tried_key {
                    state.tried_key = true;
                    if !key.path.is_file() {
                        let failure = format!(
                            "the SSH key file {} does not exist or is not a file; fix the ssh key path",
                            key.path.display()
                        );
                        state.auth_failure = Some(failure.clone());
                        return Err(git2::Error::from_str(&failure));
                    }
                    return Cred::ssh_key(
                        user,
                        public_key_beside(&key.path).as_deref(),
                        &key.path,
                        key.passphrase.as_ref().map(Secret::expose),
                    );
                }
            }
            if self.ssh_agent && !state.tried_agent {
                state.tried_agent = true;
                return Cred::ssh_key_from_agent(user);
            }
            let failure = if self.ssh_key.is_none() && !self.ssh_agent {
                format!(
                    "the SSH server asks for a key for user {user} but neither an SSH key file nor ssh-agent is configured; configure one"
                )
            } else {
                format!(
                    "the SSH server refused the configured key(s) for user {user}; check that the key (or passphrase) is right and that its public key is authorised for the repository"
                )
            };
            state.auth_failure = Some(failure.clone());
            return Err(git2::Error::from_str(&failure));
        }
        let failure = format!(
            "the remote asks for an authentication method tidewatch does not support ({allowed:?}); use an HTTPS token or an SSH key"
        );
        state.auth_failure = Some(failure.clone());
        Err(git2::Error::from_str(&failure))
    }
}

/// `key.pub` next to `key`, when it exists (libssh2 can derive the public
/// key itself, but some key formats need the file).
fn public_key_beside(private: &Path) -> Option<PathBuf> {
    let mut name = private.file_name()?.to_os_string();
    name.push(".pub");
    let public = private.with_file_name(name);
    public.is_file().then_some(public)
}

/// The result of looking a host key up in a known_hosts file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostKeyVerdict {
    /// A line for this host has exactly this key.
    Known,
    /// No line mentions this host.
    Unknown,
    /// Lines mention this host, but with other keys.
    Changed,
    /// The key is listed under `@revoked`.
    Revoked,
}

/// Looks `key` (the raw key blob the server sent) up for `host`:`port` in
/// the OpenSSH known_hosts format: comma-separated patterns with `*`/`?`
/// wildcards and `!` negation, `[host]:port` for non-standard ports, hashed
/// entries (`|1|salt|hash`), and the `@revoked` marker. `@cert-authority`
/// lines are skipped (certificates are not supported).
pub(crate) fn check_known_hosts(
    contents: &str,
    host: &str,
    port: u16,
    key: &[u8],
) -> HostKeyVerdict {
    let host = host.to_ascii_lowercase();
    let lookup = if port == 22 {
        host.clone()
    } else {
        format!("[{host}]:{port}")
    };
    let mut host_seen = false;
    let mut known = false;
    for line in contents.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or("");
        let marker = if first.starts_with('@') {
            let marker = first;
            first = fields.next().unwrap_or("");
            Some(marker)
        } else {
            None
        };
        let (Some(_key_type), Some(key_b64)) = (fields.next(), fields.next()) else {
            continue;
        };
        if marker == Some("@cert-authority") || !hosts_field_matches(first, &lookup) {
            continue;
        }
        let Ok(line_key) = base64::engine::general_purpose::STANDARD.decode(key_b64) else {
            continue;
        };
        let same = line_key == key;
        match marker {
            Some("@revoked") if same => return HostKeyVerdict::Revoked,
            Some(_) => {}
            None if same => known = true,
            None => host_seen = true,
        }
    }
    if known {
        HostKeyVerdict::Known
    } else if host_seen {
        HostKeyVerdict::Changed
    } else {
        HostKeyVerdict::Unknown
    }
}

fn hosts_field_matches(field: &str, lookup: &str) -> bool {
    if let Some(hashed) = field.strip_prefix("|1|") {
        let Some((salt, hash)) = hashed.split_once('|') else {
            return false;
        };
        let engine = base64::engine::general_purpose::STANDARD;
        return match (engine.decode(salt), engine.decode(hash)) {
            (Ok(salt), Ok(hash)) => hmac_sha1_matches(&salt, lookup.as_bytes(), &hash),
            _ => false,
        };
    }
    let mut matched = false;
    for pattern in field.split(',') {
        let pattern = pattern.to_ascii_lowercase();
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(negated.as_bytes(), lookup.as_bytes()) {
                return false;
            }
        } else if glob(pattern.as_bytes(), lookup.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// `*` matches any run, `?` any one character.
/// Whether `HMAC-SHA1(salt, text)` is `expected`: OpenSSH's hashed
/// known_hosts entries (`|1|salt|hash`). SHA-1 is what that format uses; no
/// collision resistance is relied on here.
fn hmac_sha1_matches(salt: &[u8], text: &[u8], expected: &[u8]) -> bool {
    use hmac::{KeyInit, Mac};
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt) else {
        return false;
    };
    mac.update(text);
    mac.verify_slice(expected).is_ok()
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real ed25519 host key (generated with ssh-keygen for this test).
    const KEY_B64: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHy49wFKLjTfUq8fy4Xeu5GFYVJ5+9yPDyCenNUYjB4X";
    const OTHER_B64: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBm8a+/Y2me3DeMcmBDfGpWZfTHMR0EdQsYA3jr7REAW";

    fn key() -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(KEY_B64)
            .unwrap()
    }

    #[test]
    fn plain_entries() {
        let file = format!("# comment\n\ngit.example.com,10.0.0.1 ssh-ed25519 {KEY_B64} c\n");
        assert_eq!(
            check_known_hosts(&file, "git.example.com", 22, &key()),
            HostKeyVerdict::Known
        );
        assert_eq!(
            check_known_hosts(&file, "GIT.example.com", 22, &key()),
            HostKeyVerdict::Known
        );
        assert_eq!(
            check_known_hosts(&file, "10.0.0.1", 22, &key()),
            HostKeyVerdict::Known
        );
        assert_eq!(
            check_known_hosts(&file, "other.example.com", 22, &key()),
            HostKeyVerdict::Unknown
        );
        // Non-standard ports need a [host]:port entry.
        assert_eq!(
            check_known_hosts(&file, "git.example.com", 2222, &key()),
            HostKeyVerdict::Unknown
        );
        let file = format!("[git.example.com]:2222 ssh-ed25519 {KEY_B64}\n");
        assert_eq!(
            check_known_hosts(&file, "git.example.com", 2222, &key()),
            HostKeyVerdict::Known
        );
    }

    #[test]
    fn changed_and_revoked_keys() {
        let file = format!("git.example.com ssh-ed25519 {OTHER_B64}\n");
        assert_eq!(
            check_known_hosts(&file, "git.example.com", 22, &key()),
            HostKeyVerdict::Changed
        );
        let file =
            format!("git.example.com ssh-ed25519 {KEY_B64}\n@revoked * ssh-ed25519 {KEY_B64}\n");
        assert_eq!(
            check_known_hosts(&file, "git.example.com", 22, &key()),
            HostKeyVerdict::Revoked
        );
        let file = format!("@cert-authority *.example.com ssh-ed25519 {KEY_B64}\n");
        assert_eq!(
            check_known_hosts(&file, "git.example.com", 22, &key()),
            HostKeyVerdict::Unknown
        );
    }

    #[test]
    fn wildcards_and_negation() {
        let file = format!("*.example.com,!evil.example.com ssh-ed25519 {KEY_B64}\n");
        assert_eq!(
            check_known_hosts(&file, "git.example.com", 22, &key()),
            HostKeyVerdict::Known
        );
        assert_eq!(
            check_known_hosts(&file, "evil.example.com", 22, &key()),
            HostKeyVerdict::Unknown
        );
        assert_eq!(
            check_known_hosts(&file, "example.org", 22, &key()),
            HostKeyVerdict::Unknown
        );
        assert!(glob(b"g?t.*", b"git.example.com"));
        assert!(!glob(b"g?t.*", b"gt.example.com"));
        assert!(glob(b"*", b""));
    }

    #[test]
    fn hashed_entries() {
        // `ssh-keygen -H` output for the names "git.example.com" and
        // "[git.example.com]:2222" (generated for this test).
        let file = format!(
            "{} ssh-ed25519 {KEY_B64}\n{} ssh-ed25519 {KEY_B64}\n",
            HASHED_22, HASHED_2222
        );
        assert_eq!(
            check_known_hosts(&file, "git.example.com", 22, &key()),
            HostKeyVerdict::Known
        );
        assert_eq!(
            check_known_hosts(&file, "git.example.com", 2222, &key()),
            HostKeyVerdict::Known
        );
        assert_eq!(
            check_known_hosts(&file, "git.example.org", 22, &key()),
            HostKeyVerdict::Unknown
        );
    }

    const HASHED_22: &str = "|1|UzzbNWMS0Uek7/Vm4wIvp19hoHg=|KS2BlCZfye8jl2P6DaYfVmWmvAs=";
    const HASHED_2222: &str = "|1|W8v53F++Oce7ZE6OFy0G2y5rqdo=|MjV4rLE8C1aQgL3Iyn8/yzxrftQ=";
}
