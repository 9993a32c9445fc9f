//! Remote URL handling: which transport a URL uses, stripping credentials
//! out of it (for display and for what is stored in `.git/config`), the SSH
//! host and port (for known_hosts), and the default work directory name.

use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// The transport a remote URL selects, as far as authentication cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `file://` URLs and plain paths: libgit2's local transport, no auth.
    Local,
    /// `http://` and `https://`: token as basic auth.
    Http,
    /// `ssh://` and scp-like `user@host:path`: keys or agent, host keys.
    Ssh,
    /// `git://` and anything else libgit2 may understand: no auth from us.
    Other,
}

/// A remote URL split for tidewatch's purposes.
#[derive(Clone)]
pub(crate) struct RemoteUrl {
    /// The URL without any password or token: what `origin` points at and
    /// what the work directory name is derived from. For SSH URLs the user
    /// name (`git@`) is kept, it is no secret and SSH needs it.
    pub(crate) stored: String,
    /// What messages and logs show: like `stored`.
    pub(crate) display: String,
    pub(crate) transport: Transport,
    /// Credentials that were embedded in an HTTP(S) URL
    /// (`https://user:password@host/...` or `https://token@host/...`).
    pub(crate) embedded: Option<Embedded>,
}

/// Userinfo that was cut out of an HTTP(S) URL.
#[derive(Clone)]
pub(crate) enum Embedded {
    /// `user:password@`
    UserPassword(String, Secret),
    /// `something@` without a password: a token, or a user name to send
    /// with the configured token.
    Single(Secret),
}

impl RemoteUrl {
    pub(crate) fn parse(url: &str) -> RemoteUrl {
        let transport = transport_of(url);
        match transport {
            Transport::Local => {
                // Plain relative paths are made absolute so that the remote
                // (and the default work directory derived from it) does not
                // depend on the current directory.
                let stored = if url.starts_with("file://") {
                    url.to_string()
                } else {
                    std::path::absolute(url)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_else(|_| url.to_string())
                };
                RemoteUrl {
                    display: stored.clone(),
                    stored,
                    transport,
                    embedded: None,
                }
            }
            Transport::Ssh => {
                let stored = redact_url(url);
                RemoteUrl {
                    display: stored.clone(),
                    stored,
                    transport,
                    embedded: None,
                }
            }
            Transport::Http | Transport::Other => {
                let (stored, userinfo) = split_scheme_userinfo(url);
                let embedded = userinfo.and_then(|info| {
                    if info.is_empty() {
                        return None;
                    }
                    Some(match info.split_once(':') {
                        Some((user, password)) => Embedded::UserPassword(
                            percent_decode(user),
                            Secret::new(percent_decode(password)),
                        ),
                        None => Embedded::Single(Secret::new(percent_decode(&info))),
                    })
                });
                RemoteUrl {
                    display: stored.clone(),
                    stored,
                    transport,
                    embedded,
                }
            }
        }
    }
}

/// `url` with credentials removed, safe to show in messages and logs.
///
/// * `http(s)://user:password@host/...`, `https://token@host/...` and any
///   other `scheme://userinfo@host` form: the whole userinfo is removed.
/// * `ssh://user:password@host/...`: the password is removed, the user name
///   kept (`ssh://user@host/...`); SSH user names are not secrets.
/// * scp-like `user@host:path` and local paths are returned unchanged (they
///   cannot carry a password).
pub fn redact_url(url: &str) -> String {
    match transport_of(url) {
        Transport::Local => url.to_string(),
        Transport::Ssh => {
            if let Some(rest) = url.strip_prefix("ssh://") {
                let (authority, path) = split_authority(rest);
                match authority.rfind('@') {
                    Some(at) => {
                        let userinfo = &authority[..at];
                        let user = userinfo.split(':').next().unwrap_or("");
                        format!("ssh://{user}@{}{path}", &authority[at + 1..])
                    }
                    None => url.to_string(),
                }
            } else {
                url.to_string()
            }
        }
        Transport::Http | Transport::Other => split_scheme_userinfo(url).0,
    }
}

/// Which transport libgit2 will use for `url` (following git's rules: a
/// colon before any slash makes `host:path` scp-like syntax).
pub(crate) fn transport_of(url: &str) -> Transport {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("file://") {
        Transport::Local
    } else if lower.starts_with("http://") || lower.starts_with("https://") {
        Transport::Http
    } else if lower.starts_with("ssh://")
        || lower.starts_with("git+ssh://")
        || lower.starts_with("ssh+git://")
    {
        Transport::Ssh
    } else if url.contains("://") {
        Transport::Other
    } else if is_scp_like(url) {
        Transport::Ssh
    } else {
        Transport::Local
    }
}

fn is_scp_like(url: &str) -> bool {
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => colon < slash && colon > 0,
        (Some(colon), None) => colon > 0,
        _ => false,
    }
}

/// `scheme://authority/path` → (`rest before first '/'`, `"/path..."`).
fn split_authority(rest: &str) -> (&str, &str) {
    match rest.find(['/', '?', '#']) {
        Some(end) => (&rest[..end], &rest[end..]),
        None => (rest, ""),
    }
}

/// Removes `userinfo@` from `scheme://userinfo@host...`, returning the
/// cleaned URL and the raw (still percent-encoded) userinfo.
fn split_scheme_userinfo(url: &str) -> (String, Option<String>) {
    let Some(scheme_end) = url.find("://") else {
        return (url.to_string(), None);
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let (authority, path) = split_authority(rest);
    match authority.rfind('@') {
        Some(at) => (
            format!("{scheme}{}{path}", &authority[at + 1..]),
            Some(authority[..at].to_string()),
        ),
        None => (url.to_string(), None),
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Host and port of an SSH URL (`ssh://[user@]host[:port]/path` or
/// `[user@]host:path`), as known_hosts matching needs them.
pub(crate) fn ssh_host_port(url: &str) -> Option<(String, u16)> {
    let lower = url.to_ascii_lowercase();
    if ["ssh://", "git+ssh://", "ssh+git://"]
        .iter()
        .any(|prefix| lower.starts_with(prefix))
    {
        let parsed = url::Url::parse(url).ok()?;
        let host = match parsed.host()? {
            url::Host::Ipv6(address) => address.to_string(),
            host => host.to_string(),
        };
        return Some((host, parsed.port().unwrap_or(22)));
    }
    if is_scp_like(url) {
        let (userhost, _) = url.split_once(':')?;
        let host = userhost.rsplit('@').next().unwrap_or(userhost);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        return Some((host.to_string(), 22));
    }
    None
}

/// The default work directory for `stored_url` under `cache_root`:
/// `<cache_root>/tidewatch/<last path segment>-<16 hex digits of a hash of
/// the credential-free URL>`.
pub(crate) fn default_workdir(cache_root: &Path, stored_url: &str) -> PathBuf {
    cache_root.join("tidewatch").join(workdir_name(stored_url))
}

pub(crate) fn workdir_name(stored_url: &str) -> String {
    let trimmed = stored_url.trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':', '\\']).next().unwrap_or(trimmed);
    let last = last.strip_suffix(".git").unwrap_or(last);
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let name_trimmed = name.trim_matches('.').to_string();
    name = if name_trimmed.is_empty() {
        "repo".to_string()
    } else {
        name_trimmed
    };
    format!("{name}-{:016x}", url_hash(stored_url.as_bytes()))
}

/// The first 8 bytes of SHA-256, as a number: stable across Rust releases
/// (unlike `DefaultHasher`), so the default work directory survives an
/// upgrade.
fn url_hash(bytes: &[u8]) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The cache root from the environment: `$XDG_CACHE_HOME` when set to an
/// absolute path, else `$HOME/.cache`.
pub(crate) fn cache_root() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME") {
        let xdg = PathBuf::from(xdg);
        if xdg.is_absolute() {
            return Some(xdg);
        }
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_http_userinfo() {
        assert_eq!(
            redact_url("https://x-access-token:ghp_secret@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            redact_url("https://ghp_secret@github.com/o/r"),
            "https://github.com/o/r"
        );
        assert_eq!(
            redact_url("http://u:p%40ss@127.0.0.1:8080/r.git?x=1"),
            "http://127.0.0.1:8080/r.git?x=1"
        );
        assert_eq!(
            redact_url("https://github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        // A password containing '@' is still cut at the last '@' of the authority.
        assert_eq!(
            redact_url("https://u:a@b@example.com/r"),
            "https://example.com/r"
        );
    }

    #[test]
    fn redaction_keeps_ssh_user_but_not_password() {
        assert_eq!(
            redact_url("ssh://git:hunter2@example.com:2222/r.git"),
            "ssh://git@example.com:2222/r.git"
        );
        assert_eq!(
            redact_url("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
        assert_eq!(redact_url("/srv/git/r.git"), "/srv/git/r.git");
        assert_eq!(redact_url("file:///srv/r.git"), "file:///srv/r.git");
    }

    #[test]
    fn transports() {
        assert_eq!(transport_of("/a/b"), Transport::Local);
        assert_eq!(transport_of("./a:b"), Transport::Local);
        assert_eq!(transport_of("relative/dir"), Transport::Local);
        assert_eq!(transport_of("file:///a"), Transport::Local);
        assert_eq!(transport_of("HTTPS://h/r"), Transport::Http);
        assert_eq!(transport_of("git@h:o/r"), Transport::Ssh);
        assert_eq!(transport_of("h:r"), Transport::Ssh);
        assert_eq!(transport_of("ssh://h/r"), Transport::Ssh);
        assert_eq!(transport_of("git://h/r"), Transport::Other);
    }

    #[test]
    fn embedded_credentials_are_extracted() {
        let url = RemoteUrl::parse("https://bot:s%3Acret@example.com/r.git");
        assert_eq!(url.stored, "https://example.com/r.git");
        match url.embedded {
            Some(Embedded::UserPassword(user, password)) => {
                assert_eq!(user, "bot");
                assert_eq!(password.expose(), "s:cret");
            }
            _ => panic!("expected user and password"),
        }
        let url = RemoteUrl::parse("https://tok@example.com/r.git");
        assert!(matches!(url.embedded, Some(Embedded::Single(ref t)) if t.expose() == "tok"));
        assert!(RemoteUrl::parse("https://example.com/r").embedded.is_none());
    }

    #[test]
    fn ssh_hosts_and_ports() {
        assert_eq!(
            ssh_host_port("ssh://git@example.com:2222/r.git"),
            Some(("example.com".into(), 2222))
        );
        assert_eq!(
            ssh_host_port("ssh://example.com/r.git"),
            Some(("example.com".into(), 22))
        );
        assert_eq!(
            ssh_host_port("ssh://git@[::1]:2200/r"),
            Some(("::1".into(), 2200))
        );
        assert_eq!(
            ssh_host_port("git@github.com:o/r.git"),
            Some(("github.com".into(), 22))
        );
        assert_eq!(ssh_host_port("/srv/r"), None);
    }

    #[test]
    fn workdir_names_are_stable_and_sanitised() {
        let a = workdir_name("https://github.com/acme/env-repo.git");
        assert!(a.starts_with("env-repo-"), "{a}");
        assert_eq!(a.len(), "env-repo-".len() + 16);
        assert_eq!(a, workdir_name("https://github.com/acme/env-repo.git"));
        assert_ne!(a, workdir_name("https://github.com/other/env-repo.git"));
        assert!(workdir_name("git@h:o/we ird$name").starts_with("we-ird-name-"));
        assert!(workdir_name("/").starts_with("repo-"));
        // SHA-256("abc") starts with ba7816bf 8f01cfea.
        assert_eq!(url_hash(b"abc"), 0xba78_16bf_8f01_cfea);
    }
}
