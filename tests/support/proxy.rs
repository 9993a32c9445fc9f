//! An HTTP proxy in front of a registry: forwards everything verbatim (auth
//! headers and challenges included) except that it can paginate
//! `tags/list` the way GHCR/Quay do and answer with injected faults.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;

use super::AbortOnDrop;

/// A canned misbehaviour for one request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` if given) and a
    /// distribution-style JSON error body; the upstream is not contacted.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// `200 OK`, `Content-Type: application/json`, but a body that is not JSON.
    Garbage,
    /// Sleep this long, then handle the request normally.
    Hang(Duration),
    /// `307 Temporary Redirect` to this absolute URL (another host).
    Redirect(String),
    /// `200 OK` with this JSON body, as if the registry had sent it.
    Json(String),
    /// Forward to the registry, but flip the last byte of the body it sends
    /// (headers, digest included, untouched): content that does not match
    /// its digest.
    WrongBytes,
}

/// How the proxy treats `GET /v2/<name>/tags/list`.
#[derive(Clone, Debug, Default)]
pub struct ProxyBehavior {
    /// `Some(max)`: answer tags/list itself from the upstream's full list,
    /// sorted ascending, honouring `?n=` (capped to `max`, default `max`) and
    /// `?last=`. `None`: forward tags/list like anything else.
    pub page_size: Option<usize>,
    /// Add `Link: </v2/<name>/tags/list?last=<last tag>&n=<n>>; rel="next"`
    /// when more tags remain. Without it clients must page with `last=`.
    pub send_link: bool,
    /// Buggy registry: ignore `last` and always serve the first page (and,
    /// with `send_link`, the same `Link` every time).
    pub repeat_first_page: bool,
}

/// One request the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiedRequest {
    pub method: String,
    /// E.g. `/v2/foo/tags/list?n=100`.
    pub path_and_query: String,
    /// Status answered; 0 while in flight or if the client went away first.
    pub status: u16,
}

/// A running proxy on `127.0.0.1:PORT`; stops when dropped.
pub struct TestProxy {
    /// `127.0.0.1:PORT`
    pub host: String,
    shared: Arc<Shared>,
    _server: AbortOnDrop,
}

struct Shared {
    /// `http://host:port`, no trailing slash.
    upstream: String,
    behavior: Mutex<ProxyBehavior>,
    /// Pending faults as (path prefix, fault), consumed first-match in order.
    faults: Mutex<VecDeque<(String, Fault)>>,
    /// Seen requests, tagged with an id so the status can be filled in later
    /// without disturbing arrival order.
    seen: Mutex<Vec<(u64, ProxiedRequest)>>,
    next_id: AtomicU64,
    client: reqwest::Client,
}

impl TestProxy {
    /// Starts a proxy for `upstream_base_url` (e.g. `registry.base_url()`).
    pub async fn start(upstream_base_url: &str, behavior: ProxyBehavior) -> TestProxy {
        let shared = Arc::new(Shared {
            upstream: upstream_base_url.trim_end_matches('/').to_owned(),
            behavior: Mutex::new(behavior),
            faults: Mutex::new(VecDeque::new()),
            seen: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            client: super::http_client(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("proxy server");
        });
        TestProxy {
            host: addr.to_string(),
            shared,
            _server: AbortOnDrop(server),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// Replaces the behaviour for subsequent requests.
    pub fn set_behavior(&self, behavior: ProxyBehavior) {
        *self.shared.behavior.lock().expect("proxy lock") = behavior;
    }

    /// Queues faults: each of the next requests whose path starts with
    /// `path_prefix` takes the next of these faults, in order; afterwards
    /// such requests are handled normally again. Faults queued by several
    /// calls are consumed in the order they were queued.
    pub fn inject(&self, path_prefix: &str, faults: Vec<Fault>) {
        let mut queue = self.shared.faults.lock().expect("proxy lock");
        queue.extend(faults.into_iter().map(|f| (path_prefix.to_owned(), f)));
    }

    /// Every request seen, in arrival order, with the status answered.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        let seen = self.shared.seen.lock().expect("proxy lock");
        seen.iter().map(|(_, request)| request.clone()).collect()
    }

    pub fn clear_requests(&self) {
        self.shared.seen.lock().expect("proxy lock").clear();
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    shared.seen.lock().expect("proxy lock").push((
        id,
        ProxiedRequest {
            method: request.method().to_string(),
            path_and_query,
            status: 0,
        },
    ));

    let fault = {
        let mut queue = shared.faults.lock().expect("proxy lock");
        queue
            .iter()
            .position(|(prefix, _)| path.starts_with(prefix.as_str()))
            .and_then(|i| queue.remove(i))
            .map(|(_, fault)| fault)
    };
    let response = match fault {
        Some(Fault::Status {
            status,
            retry_after,
        }) => fault_response(status, retry_after),
        Some(Fault::Garbage) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "<html><body>this is not JSON {\"tags\": [</body></html>",
        )
            .into_response(),
        Some(Fault::Hang(delay)) => {
            tokio::time::sleep(delay).await;
            shared.respond(request).await
        }
        Some(Fault::Json(body)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Some(Fault::Redirect(location)) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Some(Fault::WrongBytes) => {
            let response = shared.respond(request).await;
            let (parts, body) = response.into_parts();
            let mut bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            if let Some(last) = bytes.last_mut() {
                *last ^= 0x01;
            }
            Response::from_parts(parts, Body::from(bytes))
        }
        None => shared.respond(request).await,
    };

    let status = response.status().as_u16();
    let mut seen = shared.seen.lock().expect("proxy lock");
    if let Some((_, entry)) = seen.iter_mut().find(|(entry_id, _)| *entry_id == id) {
        entry.status = status;
    }
    response
}

/// An error the way distribution words them, with the code matching the
/// status where there is an obvious one.
fn fault_response(status: u16, retry_after: Option<String>) -> Response {
    let status = StatusCode::from_u16(status).expect("valid fault status");
    let code = match status.as_u16() {
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        404 => "NAME_UNKNOWN",
        429 => "TOOMANYREQUESTS",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    let body = json!({"errors": [{"code": code, "message": "fault injected by TestProxy"}]});
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(retry_after) = retry_after {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&retry_after).expect("valid Retry-After value"),
        );
    }
    response
}

impl Shared {
    async fn respond(&self, request: Request) -> Response {
        let page_size = self.behavior.lock().expect("proxy lock").page_size;
        let method = request.method();
        if let Some(page_size) = page_size {
            if method == Method::GET || method == Method::HEAD {
                if let Some(name) = tags_list_name(request.uri().path()) {
                    let name = name.to_owned();
                    return self.paginate(request, &name, page_size).await;
                }
            }
        }
        self.forward(request).await
    }

    /// Sends `request` to the upstream unchanged and relays the answer.
    async fn forward(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(body) => body,
            Err(error) => return bad_gateway(format!("reading request body: {error}")),
        };
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let url = format!("{}{path_and_query}", self.upstream);
        let had_body = !body.is_empty() || parts.headers.contains_key(header::CONTENT_LENGTH);
        let mut upstream = self
            .client
            .request(parts.method, url)
            .headers(end_to_end(&parts.headers));
        if had_body {
            upstream = upstream.body(body);
        }
        match upstream.send().await {
            Ok(response) => relay(response).await,
            Err(error) => bad_gateway(format!("upstream request failed: {error}")),
        }
    }

    /// Serves one page of `name`'s tags from the upstream's full list.
    async fn paginate(&self, request: Request, name: &str, page_size: usize) -> Response {
        let behavior = self.behavior.lock().expect("proxy lock").clone();
        let (mut n, mut last) = (page_size, None);
        for (key, value) in super::parse_query(request.uri().query().unwrap_or("")) {
            match key.as_str() {
                "n" => {
                    if let Ok(asked) = value.parse::<usize>() {
                        n = asked.min(page_size);
                    }
                }
                "last" => last = Some(value),
                _ => {}
            }
        }

        // Ask for the full list with the client's credentials, so auth
        // challenges reach the client exactly as the registry sent them.
        let url = format!("{}/v2/{name}/tags/list", self.upstream);
        let upstream = match self
            .client
            .get(url)
            .headers(end_to_end(request.headers()))
            .send()
            .await
        {
            Ok(response) => response,
            Err(error) => return bad_gateway(format!("upstream request failed: {error}")),
        };
        if upstream.status() != reqwest::StatusCode::OK {
            return relay(upstream).await;
        }
        let listing: serde_json::Value = match upstream.json().await {
            Ok(listing) => listing,
            Err(error) => return bad_gateway(format!("upstream tags/list: {error}")),
        };
        let mut tags: Vec<String> = listing["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();

        let start = match (&last, behavior.repeat_first_page) {
            (Some(last), false) => tags.partition_point(|tag| tag <= last),
            _ => 0,
        };
        let end = (start + n).min(tags.len());
        let page = &tags[start..end];

        let mut response = if request.method() == Method::HEAD {
            StatusCode::OK.into_response()
        } else {
            axum::Json(json!({"name": name, "tags": page})).into_response()
        };
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers.insert(
            HeaderName::from_static("docker-distribution-api-version"),
            HeaderValue::from_static("registry/2.0"),
        );
        if behavior.send_link && end < tags.len() {
            if let Some(last_tag) = page.last() {
                let link = format!("</v2/{name}/tags/list?last={last_tag}&n={n}>; rel=\"next\"");
                headers.insert(
                    header::LINK,
                    HeaderValue::from_str(&link).expect("valid Link header"),
                );
            }
        }
        response
    }
}

/// `/v2/<name>/tags/list` -> `<name>` (names may contain slashes).
fn tags_list_name(path: &str) -> Option<&str> {
    let name = path.strip_prefix("/v2/")?.strip_suffix("/tags/list")?;
    (!name.is_empty()).then_some(name)
}

/// Hop-by-hop headers (and `Host`/`Content-Length`, which the next hop
/// recomputes) must not be copied from one connection to the other.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    )
}

fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if !is_hop_by_hop(name) && name != header::CONTENT_LENGTH {
            out.append(name, value.clone());
        }
    }
    out
}

/// Turns an upstream answer into ours: same status, headers and body.
/// `Content-Length` is kept so `HEAD` answers still announce the size.
async fn relay(upstream: reqwest::Response) -> Response {
    let status = upstream.status();
    let mut headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if !is_hop_by_hop(name) {
            headers.append(name, value.clone());
        }
    }
    let body: Bytes = match upstream.bytes().await {
        Ok(body) => body,
        Err(error) => return bad_gateway(format!("reading upstream body: {error}")),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn bad_gateway(message: String) -> Response {
    (StatusCode::BAD_GATEWAY, message).into_response()
}
