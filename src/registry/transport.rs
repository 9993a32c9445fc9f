//! One registry host: pacing, concurrency, authentication and retries.
//!
//! Every request to a host goes through [`Host::send`], which is where the
//! politeness rules live: at most `concurrency` requests in flight, at most
//! `requestsPerSecond`, a 429 pauses *this host only* for its `Retry-After`,
//! and 5xx / connection errors / timeouts are retried with exponential
//! backoff and jitter, a bounded number of times. Other hosts have their own
//! `Host` and are never slowed by this one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use tokio::sync::Semaphore;

use super::auth::{parse_challenge, Challenge, TokenCache, TokenReply};
use super::credentials::{default_docker_config, Credential, CredentialSource};
use super::error::RegistryError;
use super::metrics::Metrics;
use crate::retry::{parse_retry_after, Backoff};

/// Per-registry limits and connection settings.
#[derive(Clone, Debug)]
pub struct HostSettings {
    pub insecure: bool,
    pub ca_file: Option<std::path::PathBuf>,
    pub credentials: Option<CredentialSource>,
    pub requests_per_second: Option<f64>,
    pub concurrency: usize,
    /// Tags asked for per page (`?n=`).
    pub page_size: usize,
    /// Most pages read for one repository before giving up with an error.
    pub page_budget: usize,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// First backoff delay; doubles per attempt, with jitter.
    pub backoff: Duration,
    /// Longest `Retry-After` honoured; longer ones are capped to this.
    pub max_retry_after: Duration,
    /// A credential helper still running after this is killed.
    pub helper_timeout: Duration,
}

impl Default for HostSettings {
    fn default() -> Self {
        HostSettings {
            insecure: false,
            ca_file: None,
            credentials: None,
            requests_per_second: None,
            concurrency: 8,
            page_size: 1000,
            page_budget: 100,
            timeout: crate::timeouts::REGISTRY_REQUEST,
            max_attempts: 4,
            backoff: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(120),
            helper_timeout: crate::timeouts::CREDENTIAL_HELPER,
        }
    }
}

/// What a request is for: its URL path, the repository it concerns (for the
/// token scope and error messages), and a label for metrics.
pub struct Call<'a> {
    pub method: Method,
    /// Path and query, starting with `/v2/`.
    pub path: String,
    pub repository: &'a str,
    pub accept: Option<&'static str>,
    pub kind: &'static str,
    /// Human description for errors, e.g. "the tags of acme/app".
    pub what: String,
}

struct AuthState {
    challenge: Option<Challenge>,
    tokens: TokenCache,
    /// Resolved once per host, and again after a 401 with credentials.
    credential: Option<Option<Credential>>,
}

pub struct Host {
    /// The registry as written in image references (`docker.io`, `localhost:5000`).
    pub name: String,
    /// `scheme://host[:port]`, without a trailing slash, to prefix paths.
    base_url: String,
    root: url::Url,
    http: reqwest::Client,
    pub settings: HostSettings,
    permits: Semaphore,
    next_slot: Mutex<Instant>,
    paused_until: Mutex<Option<Instant>>,
    /// Never held across an await: no request, helper run or token fetch
    /// happens with it taken.
    auth: Mutex<AuthState>,
    /// Held while the first request learns the host's challenge, so that a
    /// burst of first requests does not collect a 401 each.
    first_contact: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
}

impl Host {
    pub fn new(
        name: &str,
        api_host: &str,
        settings: HostSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Host, RegistryError> {
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(crate::timeouts::REGISTRY_CONNECT))
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("tidewatch/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &settings.ca_file {
            let pem = std::fs::read(ca).map_err(|e| RegistryError::Tls {
                host: name.to_string(),
                detail: format!("cannot read caFile {}: {e}", ca.display()),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| RegistryError::Tls {
                    host: name.to_string(),
                    detail: format!("caFile {} holds no PEM certificate: {e}", ca.display()),
                })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| RegistryError::Tls {
            host: name.to_string(),
            detail: e.to_string(),
        })?;
        let scheme = if settings.insecure { "http" } else { "https" };
        let base_url = format!("{scheme}://{api_host}");
        let root = url::Url::parse(&base_url).map_err(|e| RegistryError::Unreachable {
            host: name.to_string(),
            detail: format!("{base_url} is not a valid registry URL ({e})"),
        })?;
        Ok(Host {
            name: name.to_string(),
            base_url,
            root,
            http,
            permits: Semaphore::new(settings.concurrency.max(1)),
            settings,
            next_slot: Mutex::new(Instant::now()),
            paused_until: Mutex::new(None),
            auth: Mutex::new(AuthState {
                challenge: None,
                tokens: TokenCache::default(),
                credential: None,
            }),
            first_contact: tokio::sync::Mutex::new(()),
            metrics,
        })
    }

    /// The registry's root URL (`https://host[:port]/`), for resolving and
    /// checking links it sends.
    pub fn base_url(&self) -> &url::Url {
        &self.root
    }

    /// Sends a request, with authentication, limits and retries, and returns
    /// a successful (2xx) response or the error that ended the attempts.
    pub async fn send(&self, call: &Call<'_>) -> Result<Response, RegistryError> {
        let unknown = self.auth_state().challenge.is_none();
        // The first request to a host learns its challenge; a burst of first
        // requests waits for it rather than collecting a 401 each. The guard
        // covers that one plain request only: it is released as soon as an
        // answer arrives, before any credential or token is fetched.
        let mut learning = if unknown {
            let guard = self.first_contact.lock().await;
            let still_unknown = self.auth_state().challenge.is_none();
            still_unknown.then_some(guard)
        } else {
            None
        };
        let mut attempt: u32 = 0;
        // Re-authentications allowed for this call: one to learn the
        // challenge, one to refresh a stale token or credential.
        let mut auth_retries: u32 = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            self.wait_for_turn().await;
            let permit = self.permits.acquire().await;
            let authorization = self.authorization(call.repository).await?;
            let sent_authorization = authorization.is_some();
            let mut request = self.http.request(
                call.method.clone(),
                format!("{}{}", self.base_url, call.path),
            );
            if let Some(accept) = call.accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some(value) = authorization {
                request = request.header(AUTHORIZATION, value);
            }
            let result = request.send().await;
            drop(permit);
            learning.take();
            let response = match result {
                Ok(r) => r,
                Err(e) => {
                    self.metrics
                        .record_request(&self.name, call.method.as_str(), call.kind, None);
                    let error = self.classify(&e, attempt);
                    let retriable = matches!(
                        error,
                        RegistryError::Unreachable { .. } | RegistryError::Timeout { .. }
                    );
                    if retriable && attempt < self.settings.max_attempts {
                        tracing::debug!(host = %self.name, attempt, "retrying after {}", error.kind());
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(error);
                }
            };
            let status = response.status();
            self.metrics.record_request(
                &self.name,
                call.method.as_str(),
                call.kind,
                Some(status.as_u16()),
            );
            if status.is_success() {
                let mut state = self.auth_state();
                if state.challenge.is_none() {
                    state.challenge = Some(Challenge::Anonymous);
                }
                return Ok(response);
            }
            match status {
                StatusCode::UNAUTHORIZED => {
                    let challenge = response
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|h| h.to_str().ok())
                        .and_then(parse_challenge);
                    let mut state = self.auth_state();
                    let learned = challenge.is_some() && state.challenge != challenge;
                    if let Some(c) = challenge {
                        state.challenge = Some(c);
                    }
                    // Retry: either we just learned how to authenticate, or
                    // the token or credential we sent went stale (refresh it
                    // once: a helper may hand out a new one).
                    if auth_retries < 2 && (learned || (sent_authorization && !refreshed)) {
                        auth_retries += 1;
                        state.tokens.remove(&scope(call.repository));
                        if !learned {
                            refreshed = true;
                            state.credential = None;
                        }
                        attempt -= 1;
                        continue;
                    }
                    let had_credentials = matches!(state.credential, Some(Some(_)));
                    return Err(RegistryError::Unauthorized {
                        host: self.name.clone(),
                        repository: call.repository.to_string(),
                        had_credentials,
                    });
                }
                StatusCode::FORBIDDEN => {
                    return Err(RegistryError::Forbidden {
                        host: self.name.clone(),
                        repository: call.repository.to_string(),
                    })
                }
                StatusCode::NOT_FOUND => {
                    return Err(RegistryError::NotFound {
                        host: self.name.clone(),
                        repository: call.repository.to_string(),
                    })
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    // What the server asked for is reported as sent; the
                    // wait itself is capped so one host cannot stall a cycle.
                    let asked = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|h| h.to_str().ok())
                        .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
                    let wait = asked
                        .unwrap_or_else(|| self.backoff(attempt))
                        .min(self.settings.max_retry_after);
                    self.pause(wait);
                    if attempt < self.settings.max_attempts {
                        tracing::info!(host = %self.name, seconds = wait.as_secs_f64(), "429 from registry; pausing this host");
                        continue;
                    }
                    return Err(RegistryError::RateLimited {
                        host: self.name.clone(),
                        retry_after: asked,
                    });
                }
                s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                    if attempt < self.settings.max_attempts {
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(RegistryError::Status {
                        host: self.name.clone(),
                        status: s.as_u16(),
                        what: call.what.clone(),
                        attempts: attempt,
                    });
                }
                s => {
                    return Err(RegistryError::Status {
                        host: self.name.clone(),
                        status: s.as_u16(),
                        what: call.what.clone(),
                        attempts: attempt,
                    })
                }
            }
        }
    }

    /// Waits out a 429 pause and the requests-per-second pacing.
    async fn wait_for_turn(&self) {
        let paused = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = paused {
            tokio::time::sleep_until(until.into()).await;
        }
        if let Some(rps) = self.settings.requests_per_second.filter(|r| *r > 0.0) {
            let interval = Duration::from_secs_f64(1.0 / rps);
            let slot = {
                let mut next = self.next_slot.lock().unwrap_or_else(|p| p.into_inner());
                let slot = (*next).max(Instant::now());
                *next = slot + interval;
                slot
            };
            tokio::time::sleep_until(slot.into()).await;
        }
    }

    fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    /// The project's backoff (see [`crate::retry`]) from this host's first
    /// delay, capped at 30 s, for attempt number `attempt` (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        Backoff {
            initial: self.settings.backoff,
            max: Duration::from_secs(30),
            jitter: true,
        }
        .delay(attempt.saturating_sub(1))
    }

    fn auth_state(&self) -> std::sync::MutexGuard<'_, AuthState> {
        // Plain data; a panic elsewhere leaves it usable.
        self.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `Authorization` header for a request about `repository`, fetching
    /// a bearer token first if the host wants one and none is cached. The
    /// auth state is only read and written here, never held across the
    /// credential helper or the token request.
    async fn authorization(&self, repository: &str) -> Result<Option<HeaderValue>, RegistryError> {
        let scope = scope(repository);
        let (challenge, known_credential, cached_token) = {
            let state = self.auth_state();
            let challenge = match &state.challenge {
                None | Some(Challenge::Anonymous) => return Ok(None),
                Some(c) => c.clone(),
            };
            (
                challenge,
                state.credential.clone(),
                state.tokens.get(&scope),
            )
        };
        let credential = match known_credential {
            Some(credential) => credential,
            None => {
                let resolved = self.resolve_credential().await?;
                self.auth_state().credential = Some(resolved.clone());
                resolved
            }
        };
        let value = match challenge {
            Challenge::Anonymous => return Ok(None),
            Challenge::Basic => match &credential {
                Some(c) => c.basic_header(),
                None => return Ok(None),
            },
            Challenge::Bearer { realm, service } => {
                let token = match cached_token {
                    Some(token) => {
                        self.metrics.record_cache(true);
                        token
                    }
                    None => {
                        let (token, usable) = self
                            .fetch_token(
                                &realm,
                                service.as_deref(),
                                &scope,
                                credential.as_ref(),
                                repository,
                            )
                            .await?;
                        self.auth_state()
                            .tokens
                            .insert(&scope, token.clone(), usable);
                        token
                    }
                };
                format!("Bearer {}", token.expose())
            }
        };
        let mut header = HeaderValue::from_str(&value).map_err(|_| RegistryError::Credentials {
            host: self.name.clone(),
            detail: "the credential contains characters not allowed in an HTTP header".into(),
        })?;
        header.set_sensitive(true);
        Ok(Some(header))
    }

    async fn resolve_credential(&self) -> Result<Option<Credential>, RegistryError> {
        match &self.settings.credentials {
            Some(source) => {
                source
                    .resolve(&self.name, self.settings.helper_timeout)
                    .await
            }
            None => match default_docker_config() {
                Some(path) => {
                    CredentialSource::DockerConfig(path)
                        .resolve(&self.name, self.settings.helper_timeout)
                        .await
                }
                None => Ok(None),
            },
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credential: Option<&Credential>,
        repository: &str,
    ) -> Result<(super::credentials::Secret, Duration), RegistryError> {
        let fail = |detail: String| RegistryError::Token {
            host: self.name.clone(),
            realm: realm.to_string(),
            detail,
        };
        // The realm is named by the registry's challenge, which anyone able
        // to answer for the registry controls: the registry's credentials go
        // to its own origin, or to another host only over https.
        let realm_url =
            url::Url::parse(realm).map_err(|e| fail(format!("the realm is not a URL ({e})")))?;
        if !matches!(realm_url.scheme(), "https" | "http") {
            return Err(fail(format!(
                "the realm's scheme `{}` is not http(s)",
                realm_url.scheme()
            )));
        }
        let may_carry_credentials =
            realm_url.origin() == self.root.origin() || realm_url.scheme() == "https";
        if credential.is_some() && !may_carry_credentials {
            return Err(fail(
                "it is plain HTTP on another host than the registry, so tidewatch does not send the registry's credentials there; serve the token service over https, or from the registry's own host and port"
                    .into(),
            ));
        }
        let mut request = self.http.get(realm_url).query(&[("scope", scope)]);
        if let Some(service) = service {
            request = request.query(&[("service", service)]);
        }
        if let Some(c) = credential {
            // Docker clients name the account too; some token services use it.
            request = request.query(&[("account", c.username.as_str())]);
            let mut header = HeaderValue::from_str(&c.basic_header())
                .map_err(|_| fail("the credential is not a valid header value".into()))?;
            header.set_sensitive(true);
            request = request.header(AUTHORIZATION, header);
        }
        let response = request.send().await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                self.metrics
                    .record_request(&self.name, "GET", "token", None);
                return Err(fail(deepest_message(&e)));
            }
        };
        let status = response.status();
        self.metrics
            .record_request(&self.name, "GET", "token", Some(status.as_u16()));
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                host: self.name.clone(),
                repository: repository.to_string(),
                had_credentials: credential.is_some(),
            });
        }
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}")));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| fail(deepest_message(&e)))?;
        let reply: TokenReply =
            serde_json::from_slice(&body).map_err(|e| fail(format!("malformed JSON: {e}")))?;
        reply
            .into_token()
            .ok_or_else(|| fail("the reply holds no token".into()))
    }

    fn classify(&self, error: &reqwest::Error, attempts: u32) -> RegistryError {
        let detail = deepest_message(error);
        let lower = detail.to_lowercase();
        if error.is_timeout() {
            RegistryError::Timeout {
                host: self.name.clone(),
                attempts,
            }
        } else if [
            "certificate",
            "tls",
            "handshake",
            "corrupt message",
            "invalidcontenttype",
        ]
        .iter()
        .any(|needle| lower.contains(needle))
        {
            // rustls reports a plain-HTTP server as a "corrupt message".
            RegistryError::Tls {
                host: self.name.clone(),
                detail,
            }
        } else {
            RegistryError::Unreachable {
                host: self.name.clone(),
                detail,
            }
        }
    }
}

/// The token scope for pulling a repository.
pub fn scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The innermost cause of an HTTP error: "dns error: failed to lookup
/// address", "connection refused", "invalid peer certificate: UnknownIssuer".
/// Our URLs never hold credentials, so the text is safe to show.
fn deepest_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current: &(dyn std::error::Error + 'static) = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let host = Host::new("h", "h", HostSettings::default(), Arc::default()).unwrap();
        let first = host.backoff(1);
        assert!(
            first >= Duration::from_millis(125) && first < Duration::from_millis(250),
            "{first:?}"
        );
        let third = host.backoff(3);
        assert!(
            third >= Duration::from_millis(500) && third < Duration::from_secs(1),
            "{third:?}"
        );
        assert!(host.backoff(30) <= Duration::from_secs(30));
    }
}
