//! An in-process Docker token-auth server (the "realm" of a `Bearer`
//! challenge), trusted by [`super::registry::TestRegistry`] in
//! [`super::registry::AuthMode::Token`].
//!
//! Tokens are RS256 JWTs in the shape distribution 2.8 verifies:
//! * header `{"typ":"JWT","alg":"RS256","x5c":[<base64 DER of the signing cert>]}`;
//!   the registry checks the `x5c` chain against its `rootcertbundle`, which is
//!   the same self-signed certificate (see [`TokenIssuer::write_cert_bundle`]);
//! * claims `iss` (= [`ISSUER`], must equal the registry's `auth.token.issuer`),
//!   `aud` (= the service), `sub`, `exp`, `nbf`, `iat`, `jti` and
//!   `access: [{type, name, actions}]` granting exactly the requested scopes.
//!
//! The RSA key and certificate are made with the `openssl` CLI at start-up and
//! every signature is produced by `openssl dgst -sha256 -sign`, whose output
//! is exactly the PKCS#1 v1.5 signature RS256 wants. No crypto crates needed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::AbortOnDrop;

/// The `service` the issuer and the test registry agree on (JWT `aud`).
pub const SERVICE: &str = "tidewatch-test-registry";
/// The JWT `iss`; the registry config's `auth.token.issuer` must match it.
pub const ISSUER: &str = "tidewatch-test-issuer";
/// `expires_in` of every token. Note that distribution 2.8 adds 60 s of
/// leeway to `exp`, so a registry keeps accepting a token a minute longer.
pub const TOKEN_LIFETIME_SECS: u64 = 300;

/// One `GET /token` the issuer received (successful or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// Every `scope` query parameter, in order (space-separated scopes inside
    /// one parameter are split into separate entries).
    pub scopes: Vec<String>,
    /// The `account` query parameter.
    pub account: Option<String>,
    /// The `service` query parameter.
    pub service: Option<String>,
    /// The user name of the request's Basic credentials, if it had any.
    pub basic_user: Option<String>,
}

/// Handle to a running issuer. Clones share the server; it shuts down when
/// the last clone is dropped.
#[derive(Clone)]
pub struct TokenIssuer {
    /// The realm URL, e.g. `http://127.0.0.1:PORT/token`.
    pub url: String,
    /// The service name the registry is configured with ([`SERVICE`]).
    pub service: String,
    /// The issuer name the registry is configured with ([`ISSUER`]).
    pub issuer: String,
    shared: Arc<Shared>,
    _server: Arc<AbortOnDrop>,
}

/// State shared between the handle and the server task. It must not own the
/// server's abort guard, or the task would keep itself alive.
struct Shared {
    signer: Signer,
    credentials: Option<(String, String)>,
    requests: Mutex<Vec<TokenRequest>>,
    issued: AtomicUsize,
    tls_cert: Option<PathBuf>,
}

struct Signer {
    /// Holds `key.pem` and `cert.pem`; deleted when the issuer goes away.
    dir: tempfile::TempDir,
    cert_pem: String,
    /// Standard base64 of the certificate's DER, as the JWT `x5c` wants it.
    cert_der_b64: String,
}

impl TokenIssuer {
    /// Starts the issuer on a free loopback port. It accepts anonymous token
    /// requests unless `credentials` is `Some((user, pass))`; then requests
    /// must carry exactly that Basic auth or get a 401.
    pub async fn start(credentials: Option<(String, String)>) -> TokenIssuer {
        TokenIssuer::start_with(credentials, false).await
    }

    /// Like [`TokenIssuer::start`], serving HTTPS with a fresh certificate
    /// for 127.0.0.1 ([`TokenIssuer::tls_cert`]): a realm on another host
    /// that may receive the registry's credentials.
    pub async fn start_tls(credentials: Option<(String, String)>) -> TokenIssuer {
        TokenIssuer::start_with(credentials, true).await
    }

    /// The certificate a client must trust for an HTTPS issuer.
    pub fn tls_cert(&self) -> Option<PathBuf> {
        self.shared.tls_cert.clone()
    }

    async fn start_with(credentials: Option<(String, String)>, tls: bool) -> TokenIssuer {
        let signer = Signer::generate().await;
        let tls_files = tls.then(|| super::tls::leaf_certificate(signer.dir.path(), "issuer-tls"));
        let shared = Arc::new(Shared {
            signer,
            credentials,
            requests: Mutex::new(Vec::new()),
            issued: AtomicUsize::new(0),
            tls_cert: tls_files.as_ref().map(|(cert, _)| cert.clone()),
        });

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind token issuer");
        let addr = listener.local_addr().expect("token issuer address");
        let app = Router::new()
            .route("/token", get(token_endpoint))
            .with_state(Arc::clone(&shared));
        let scheme = if tls_files.is_some() { "https" } else { "http" };
        let server = match tls_files {
            Some((cert, key)) => {
                let listener = super::tls::TlsListener::new(listener, &cert, &key);
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .await
                        .expect("token issuer server");
                })
            }
            None => tokio::spawn(async move {
                axum::serve(listener, app)
                    .await
                    .expect("token issuer server");
            }),
        };

        TokenIssuer {
            url: format!("{scheme}://{addr}/token"),
            service: SERVICE.to_owned(),
            issuer: ISSUER.to_owned(),
            shared,
            _server: Arc::new(AbortOnDrop(server)),
        }
    }

    /// Every token request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.requests.lock().expect("issuer lock").clone()
    }

    /// How many tokens were handed out over HTTP (refused requests and
    /// [`Self::mint_token`] calls do not count).
    pub fn token_count(&self) -> usize {
        self.shared.issued.load(Ordering::SeqCst)
    }

    /// Forget recorded requests and reset the token count.
    pub fn clear_requests(&self) {
        self.shared.requests.lock().expect("issuer lock").clear();
        self.shared.issued.store(0, Ordering::SeqCst);
    }

    /// Writes the issuer's certificate (the registry's `rootcertbundle`) into
    /// `dir` and returns the file's path.
    pub fn write_cert_bundle(&self, dir: &Path) -> PathBuf {
        let path = dir.join("token-issuer-root.pem");
        std::fs::write(&path, &self.shared.signer.cert_pem).expect("write rootcertbundle");
        path
    }

    /// Signs a token for `scopes` (e.g. `"repository:foo:pull,push"`) without
    /// going through HTTP, so it shows up neither in [`Self::requests`] nor in
    /// [`Self::token_count`]. The harness uses this to push.
    pub async fn mint_token(&self, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.shared
            .signer
            .sign_token(&scopes, "tidewatch-harness")
            .await
    }
}

/// `GET /token?service=...&scope=...&scope=...[&account=...]`
async fn token_endpoint(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut request = TokenRequest {
        scopes: Vec::new(),
        account: None,
        service: None,
        basic_user: None,
    };
    for (key, value) in super::parse_query(query.as_deref().unwrap_or("")) {
        match key.as_str() {
            "scope" => request
                .scopes
                .extend(value.split_whitespace().map(str::to_owned)),
            "account" => request.account = Some(value),
            "service" => request.service = Some(value),
            _ => {}
        }
    }
    let basic = basic_credentials(&headers);
    request.basic_user = basic.as_ref().map(|(user, _)| user.clone());
    shared
        .requests
        .lock()
        .expect("issuer lock")
        .push(request.clone());

    if let Some(expected) = &shared.credentials {
        if basic.as_ref() != Some(expected) {
            let body = json!({"errors": [{
                "code": "UNAUTHORIZED",
                "message": "authentication required",
            }]});
            return (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    format!("Basic realm=\"{ISSUER}\""),
                )],
                Json(body),
            )
                .into_response();
        }
    }

    let subject = request
        .account
        .clone()
        .or(request.basic_user.clone())
        .unwrap_or_else(|| "anonymous".to_owned());
    let token = shared.signer.sign_token(&request.scopes, &subject).await;
    shared.issued.fetch_add(1, Ordering::SeqCst);
    let issued_at = jiff::Timestamp::from_second(unix_now() as i64)
        .expect("current time is a valid timestamp")
        .to_string();
    Json(json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_LIFETIME_SECS,
        "issued_at": issued_at,
    }))
    .into_response()
}

/// The `(user, password)` of an `Authorization: Basic ...` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `repository:NAME:pull,push` -> `{"type","name","actions"}`. Names may
/// contain `:` only in theory (a registry host with a port), so the type is
/// taken up to the first colon and the actions after the last one.
fn access_entry(scope: &str) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    Some(json!({"type": kind, "name": name, "actions": actions}))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

impl Signer {
    /// A fresh 2048-bit RSA key and a self-signed certificate for it.
    async fn generate() -> Signer {
        let dir = tempfile::tempdir().expect("issuer tempdir");
        let output = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=tidewatch-test-issuer"])
            .arg("-keyout")
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .output()
            .await
            .expect("run openssl (is it installed?)");
        assert!(
            output.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let cert_pem =
            std::fs::read_to_string(dir.path().join("cert.pem")).expect("read issuer cert");
        // A PEM body is the base64 of the DER, just wrapped at 64 columns.
        let cert_der_b64: String = cert_pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .map(str::trim)
            .collect();
        Signer {
            dir,
            cert_pem,
            cert_der_b64,
        }
    }

    async fn sign_token(&self, scopes: &[String], subject: &str) -> String {
        let now = unix_now();
        let header = json!({
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [self.cert_der_b64],
        });
        let access: Vec<serde_json::Value> =
            scopes.iter().filter_map(|s| access_entry(s)).collect();
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + TOKEN_LIFETIME_SECS,
            "nbf": now,
            "iat": now,
            "jti": format!("tidewatch-{now}-{}", next_jti()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.rsa_sha256(signing_input.as_bytes()).await;
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// RSASSA-PKCS1-v1_5 over SHA-256, i.e. the RS256 signature.
    async fn rsa_sha256(&self, data: &[u8]) -> Vec<u8> {
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(self.dir.path().join("key.pem"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn openssl dgst");
        let mut stdin = child.stdin.take().expect("openssl stdin");
        stdin.write_all(data).await.expect("write to openssl");
        drop(stdin);
        let output = child.wait_with_output().await.expect("wait for openssl");
        assert!(
            output.status.success(),
            "openssl dgst failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }
}

/// Makes `jti` unique even for tokens signed within the same second.
fn next_jti() -> usize {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}
