//! A git smart-HTTP server for tests: real `git http-backend` run as a CGI
//! program behind a tiny axum front end that demands HTTP basic auth.
//!
//! Every request must carry `Authorization: Basic base64(user:token)` with
//! the configured user and token, else it is answered `401` with
//! `WWW-Authenticate: Basic realm="git"` (as GitHub does). Authorised
//! requests run `git http-backend` with `GIT_PROJECT_ROOT` set to the root
//! directory (every repository below it is served, `GIT_HTTP_EXPORT_ALL`)
//! and `REMOTE_USER` set, which also enables `git-receive-pack` (pushes);
//! its CGI headers (`Status:`, `Content-Type:`, ...) become the response.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use tokio::io::AsyncWriteExt;

use super::AbortOnDrop;

/// One request the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitHttpRequest {
    pub method: String,
    /// E.g. `/env.git/info/refs?service=git-upload-pack`.
    pub path_and_query: String,
    /// Whether it carried the right credentials.
    pub authorized: bool,
    pub status: u16,
}

/// A running server on `127.0.0.1:PORT`; stops when dropped.
pub struct GitHttpServer {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    shared: Arc<Shared>,
    _server: AbortOnDrop,
}

struct Shared {
    root: PathBuf,
    user: String,
    token: String,
    seen: Mutex<Vec<GitHttpRequest>>,
}

impl GitHttpServer {
    /// Serves the repositories under `root` to clients that authenticate as
    /// `user` with password `token`.
    pub async fn start(root: &Path, user: &str, token: &str) -> GitHttpServer {
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            user: user.to_owned(),
            token: token.to_owned(),
            seen: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind git http server");
        let addr = listener.local_addr().expect("git http server address");
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("git http server");
        });
        GitHttpServer {
            base_url: format!("http://{addr}"),
            shared,
            _server: AbortOnDrop(server),
        }
    }

    /// `http://127.0.0.1:PORT/<repo>`, `repo` relative to the root.
    pub fn url(&self, repo: &str) -> String {
        format!("{}/{repo}", self.base_url)
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<GitHttpRequest> {
        self.shared.seen.lock().expect("git http lock").clone()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let authorized = shared.authorized(&parts.headers);
    let response = if authorized {
        match axum::body::to_bytes(body, 256 * 1024 * 1024).await {
            Ok(body) => {
                shared
                    .run_backend(
                        parts.method.as_str(),
                        parts.uri.path(),
                        parts.uri.query().unwrap_or(""),
                        &parts.headers,
                        body,
                    )
                    .await
            }
            Err(err) => (StatusCode::BAD_REQUEST, format!("reading body: {err}")).into_response(),
        }
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"git\"")],
            "authentication required\n",
        )
            .into_response()
    };
    shared
        .seen
        .lock()
        .expect("git http lock")
        .push(GitHttpRequest {
            method: parts.method.to_string(),
            path_and_query,
            authorized,
            status: response.status().as_u16(),
        });
    response
}

impl Shared {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(encoded) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return false;
        };
        decoded.split_once(':') == Some((self.user.as_str(), self.token.as_str()))
    }

    async fn run_backend(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response {
        let header_str = |name: HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let mut command = tokio::process::Command::new("git");
        command
            .arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("SERVER_PROTOCOL", "HTTP/1.1")
            .env("REQUEST_METHOD", method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("CONTENT_TYPE", header_str(header::CONTENT_TYPE))
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_USER", &self.user)
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let encoding = header_str(header::CONTENT_ENCODING);
        if !encoding.is_empty() {
            command.env("HTTP_CONTENT_ENCODING", encoding);
        }
        let protocol = header_str(HeaderName::from_static("git-protocol"));
        if !protocol.is_empty() {
            command.env("GIT_PROTOCOL", protocol);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("spawning git http-backend: {err}"),
                )
                    .into_response()
            }
        };
        // Feed the request body while the backend's output is collected, so
        // neither side can block the other on a full pipe.
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(&body).await;
            let _ = stdin.shutdown().await;
        });
        let output = match child.wait_with_output().await {
            Ok(output) => output,
            Err(err) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("running git http-backend: {err}"),
                )
                    .into_response()
            }
        };
        let _ = writer.await;
        cgi_response(&output.stdout, &output.stderr)
    }
}

/// Turns CGI output (headers, blank line, body) into an HTTP response.
fn cgi_response(stdout: &[u8], stderr: &[u8]) -> Response {
    let split = find(stdout, b"\r\n\r\n")
        .map(|at| (at, at + 4))
        .or_else(|| find(stdout, b"\n\n").map(|at| (at, at + 2)));
    let Some((head_end, body_start)) = split else {
        return (
            StatusCode::BAD_GATEWAY,
            format!(
                "git http-backend gave no CGI headers; stderr: {}",
                String::from_utf8_lossy(stderr)
            ),
        )
            .into_response();
    };
    let head = String::from_utf8_lossy(&stdout[..head_end]);
    let mut status = StatusCode::OK;
    let mut builder = Response::builder();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            builder = builder.header(name, value);
        }
    }
    builder
        .status(status)
        .body(Body::from(stdout[body_start..].to_vec()))
        .unwrap_or_else(|err| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("building the response: {err}"),
            )
                .into_response()
        })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
