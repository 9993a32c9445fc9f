//! Registry authentication: the `WWW-Authenticate` challenge and bearer tokens.
//!
//! A registry tells how to authenticate in its 401 challenge: `Basic` (send
//! the credential on every request) or `Bearer realm=…,service=…` (exchange
//! the credential, or nothing for anonymous pulls, for a token scoped to
//! `repository:NAME:pull` at the realm). The challenge is learned once per
//! host; after that requests carry authorisation up front, so a scan does not
//! pay a 401 round trip per repository.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::credentials::Secret;

/// How a host wants to be authenticated, learned from its first 401.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// No 401 seen: requests go without authorisation.
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value. Unknown schemes yield `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        }),
        _ => None,
    }
}

/// `key="quoted, value", key2=token` → map (keys lowercased).
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.insert(key, value);
    }
    params
}

/// A token service reply (Docker token auth and OAuth2 spellings).
#[derive(Deserialize)]
pub struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenReply {
    /// The token and how long to use it. Tokens are dropped 10 s before
    /// they expire so a request never goes out with a stale one; the Docker
    /// token spec's default lifetime is 60 s.
    pub fn into_token(self) -> Option<(Secret, Duration)> {
        let token = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        let lifetime = Duration::from_secs(self.expires_in.unwrap_or(60).max(1));
        let usable = lifetime
            .saturating_sub(Duration::from_secs(10))
            .max(Duration::from_secs(1));
        Some((Secret::new(token), usable))
    }
}

/// Bearer tokens per scope, each until shortly before it expires.
#[derive(Default)]
pub struct TokenCache {
    tokens: HashMap<String, (Secret, Instant)>,
}

impl TokenCache {
    pub fn get(&self, scope: &str) -> Option<Secret> {
        self.tokens
            .get(scope)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(token, _)| token.clone())
    }
    pub fn insert(&mut self, scope: &str, token: Secret, usable_for: Duration) {
        self.tokens
            .insert(scope.to_string(), (token, Instant::now() + usable_for));
    }
    pub fn remove(&mut self, scope: &str) {
        self.tokens.remove(scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
    }

    #[test]
    fn parses_basic_and_unquoted_and_escaped_values() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://x/token, service="a\"b""#),
            Some(Challenge::Bearer {
                realm: "http://x/token".into(),
                service: Some("a\"b".into())
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn token_reply_spellings_and_lifetime() {
        let r: TokenReply =
            serde_json::from_str(r#"{"access_token":"t","expires_in":300}"#).unwrap();
        let (t, life) = r.into_token().unwrap();
        assert_eq!(t.expose(), "t");
        assert_eq!(life, Duration::from_secs(290));
        let r: TokenReply = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(r.into_token().is_none());
    }

    #[test]
    fn cache_forgets_expired_tokens() {
        let mut cache = TokenCache::default();
        cache.insert("s", Secret::new("t"), Duration::from_secs(0));
        assert!(cache.get("s").is_none());
        cache.insert("s", Secret::new("t"), Duration::from_secs(60));
        assert!(cache.get("s").is_some());
        cache.remove("s");
        assert!(cache.get("s").is_none());
    }
}
