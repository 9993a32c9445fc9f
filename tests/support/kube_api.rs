//! A stateful stand-in of the Kubernetes API server for one resource:
//! `coordination.k8s.io/v1` Lease (GET, POST, PUT), enough for the real
//! `kube` client and tidewatch's leader election.
//!
//! [`KubeApi`] is an axum server on a loopback port (plain http; a
//! kubeconfig from [`KubeApi::kubeconfig`] points the client at it). It
//! keeps the rules of the real API server that leader election relies on,
//! with the answers the real one sends (a `Status` object, `kind: Status`,
//! `apiVersion: v1`, the same `reason`, `code`, `message` and `details`):
//!
//! * every request needs `Authorization: Bearer <token>`: else 401
//!   `Unauthorized`;
//! * `GET .../namespaces/{ns}/leases/{name}`: 200 with the object, or 404
//!   `NotFound`, message `leases.coordination.k8s.io "{name}" not found`;
//! * `POST .../namespaces/{ns}/leases`: 201; 409 `AlreadyExists`
//!   (`leases.coordination.k8s.io "{name}" already exists`) when it exists;
//!   400 `BadRequest` when the object's namespace is not the URL's;
//! * `PUT .../namespaces/{ns}/leases/{name}`: optimistic concurrency on
//!   `metadata.resourceVersion` — empty: 422 `Invalid`
//!   (`metadata.resourceVersion: Invalid value: 0x0: must be specified for
//!   an update`; Lease does not allow unconditional updates); stale: 409
//!   `Conflict` (`Operation cannot be fulfilled on
//!   leases.coordination.k8s.io "{name}": the object has been modified;
//!   please apply your changes to the latest version and try again`); a
//!   missing Lease: 404 (no create on update); a body whose name differs
//!   from the URL's: 400 `BadRequest`; an update that changes nothing is
//!   not written and keeps its resourceVersion;
//! * validation (422 `Invalid`, kind `Lease`): `metadata.name` a DNS-1123
//!   subdomain, `spec.leaseDurationSeconds` > 0, `spec.leaseTransitions`
//!   >= 0;
//! * `resourceVersion` is one counter for the whole store (etcd's
//!   revision), as an opaque decimal string; `uid` and
//!   `creationTimestamp` are set on create and kept;
//! * MicroTime fields come back with exactly six fractional digits and `Z`.
//!
//! For tests: [`KubeApi::fail`] makes it answer 500 `InternalError` (to
//! everything, or to the writes of one holder), and [`KubeApi::writes`] is
//! the history of accepted writes with their times.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use super::AbortOnDrop;

pub const TOKEN: &str = "stand-in-service-account-token";
const PREFIX: &str = "/apis/coordination.k8s.io/v1/namespaces/";
const RESOURCE: &str = "leases.coordination.k8s.io";
const GROUP: &str = "coordination.k8s.io";

/// What to answer 500 to.
#[derive(Clone, Debug, PartialEq)]
pub enum Fail {
    Nothing,
    /// Every request.
    Everything,
    /// PUTs and POSTs whose `spec.holderIdentity` starts with this: that
    /// replica can no longer renew, the others go on.
    WritesBy(String),
}

/// One accepted write.
#[derive(Clone, Debug)]
pub struct Write {
    pub at: SystemTime,
    pub instant: Instant,
    pub method: String,
    pub namespace: String,
    pub name: String,
    /// `spec.holderIdentity` after the write (`None` when empty).
    pub holder: Option<String>,
    pub resource_version: u64,
}

#[derive(Default)]
struct Store {
    revision: u64,
    uids: u64,
    leases: BTreeMap<(String, String), Value>,
    writes: Vec<Write>,
    fail: Option<Fail>,
    requests: u64,
}

pub struct KubeApi {
    pub url: String,
    store: Arc<Mutex<Store>>,
    _server: AbortOnDrop,
}

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

impl KubeApi {
    pub async fn start() -> KubeApi {
        let store = Arc::new(Mutex::new(Store::default()));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the Kubernetes API stand-in");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = Router::new().fallback(handle).with_state(store.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        KubeApi {
            url,
            store,
            _server: AbortOnDrop(server),
        }
    }

    /// Writes a kubeconfig for this server (namespace `namespace`, the
    /// stand-in's token) into `dir`.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n  - name: stand-in\n    cluster:\n      server: {}\nusers:\n  - name: tidewatch\n    user:\n      token: {TOKEN}\ncontexts:\n  - name: stand-in\n    context:\n      cluster: stand-in\n      user: tidewatch\n      namespace: {namespace}\ncurrent-context: stand-in\n",
                self.url
            ),
        )
        .unwrap();
        path
    }

    /// A `kube` client config for this server.
    pub fn client_config(&self) -> kube::Config {
        let mut config = kube::Config::new(self.url.parse().unwrap());
        config.auth_info.token = Some(TOKEN.to_string().into());
        config
    }

    pub fn fail(&self, fail: Fail) {
        lock(&self.store).fail = (fail != Fail::Nothing).then_some(fail);
    }

    /// The stored Lease.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Value> {
        lock(&self.store)
            .leases
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// The stored Lease's holder (`None` when unheld or missing).
    pub fn holder(&self, namespace: &str, name: &str) -> Option<String> {
        self.lease(namespace, name).and_then(|l| holder_of(&l))
    }

    pub fn writes(&self) -> Vec<Write> {
        lock(&self.store).writes.clone()
    }

    pub fn requests(&self) -> u64 {
        lock(&self.store).requests
    }
}

fn holder_of(lease: &Value) -> Option<String> {
    lease["spec"]["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

/// A `Status` answer as the API server writes it.
fn status(code: StatusCode, reason: &str, message: String, details: Value) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if !details.is_null() {
        body["details"] = details;
    }
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn not_found(name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{RESOURCE} \"{name}\" not found"),
        json!({"name": name, "group": GROUP, "kind": "leases"}),
    )
}

fn bad_request(message: String) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, Value::Null)
}

/// 422 `Invalid` for field errors `(field, value as Go prints it, detail)`.
fn invalid(kind: &str, name: &str, errors: &[(String, String, String)]) -> Response {
    let causes: Vec<Value> = errors
        .iter()
        .map(|(field, value, detail)| {
            json!({"reason": "FieldValueInvalid", "message": format!("Invalid value: {value}: {detail}"), "field": field})
        })
        .collect();
    let listed: Vec<String> = errors
        .iter()
        .map(|(field, value, detail)| format!("{field}: Invalid value: {value}: {detail}"))
        .collect();
    let aggregate = if listed.len() == 1 {
        listed[0].clone()
    } else {
        format!("[{}]", listed.join(", "))
    };
    let qualified = if kind == "Lease" {
        format!("Lease.{GROUP}")
    } else {
        RESOURCE.to_string()
    };
    status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        format!("{qualified} \"{name}\" is invalid: {aggregate}"),
        json!({"name": name, "group": GROUP, "kind": kind, "causes": causes}),
    )
}

fn dns_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| alnum(c) || c == '-')
                && part.starts_with(alnum)
                && part.ends_with(alnum)
        })
}

/// Lease validation (`ValidateLease`): name and spec.
fn validate(lease: &Value, name: &str) -> Option<Response> {
    let mut errors = Vec::new();
    if !dns_subdomain(name) {
        errors.push((
            "metadata.name".to_string(),
            format!("{name:?}"),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string(),
        ));
    }
    if let Some(seconds) = lease["spec"]["leaseDurationSeconds"].as_i64() {
        if seconds <= 0 {
            errors.push((
                "spec.leaseDurationSeconds".into(),
                seconds.to_string(),
                "must be greater than 0".into(),
            ));
        }
    }
    if let Some(transitions) = lease["spec"]["leaseTransitions"].as_i64() {
        if transitions < 0 {
            errors.push((
                "spec.leaseTransitions".into(),
                transitions.to_string(),
                "must be greater than or equal to 0".into(),
            ));
        }
    }
    (!errors.is_empty()).then(|| invalid("Lease", name, &errors))
}

/// MicroTime as the API server writes it: UTC, six fractional digits.
fn normalise_times(lease: &mut Value) {
    for field in ["acquireTime", "renewTime"] {
        let Some(text) = lease["spec"][field].as_str() else {
            continue;
        };
        if let Ok(t) = text.parse::<jiff::Timestamp>() {
            lease["spec"][field] = json!(t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        }
    }
}

async fn handle(
    State(store): State<Arc<Mutex<Store>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut store = lock(&store);
    store.requests += 1;
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorized {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
            Value::Null,
        );
    }
    let body: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(fail) = &store.fail {
        let writer = body.as_ref().and_then(holder_of);
        let hit = match fail {
            Fail::Nothing => false,
            Fail::Everything => true,
            Fail::WritesBy(prefix) => {
                method != Method::GET && writer.is_some_and(|w| w.starts_with(prefix.as_str()))
            }
        };
        if hit {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "Internal error occurred: injected by the test".into(),
                json!({"causes": [{"message": "injected by the test"}]}),
            );
        }
    }
    let Some(rest) = uri.path().strip_prefix(PREFIX) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
            json!({}),
        );
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match (&method, parts.as_slice()) {
        (&Method::GET, [ns, "leases", name]) => {
            match store.leases.get(&(ns.to_string(), name.to_string())) {
                Some(lease) => (StatusCode::OK, axum::Json(lease.clone())).into_response(),
                None => not_found(name),
            }
        }
        (&Method::POST, [ns, "leases"]) => match body {
            Some(lease) => create(&mut store, ns, lease),
            None => bad_request("the body of the request was in an unknown format".into()),
        },
        (&Method::PUT, [ns, "leases", name]) => match body {
            Some(lease) => update(&mut store, ns, name, lease),
            None => bad_request("the body of the request was in an unknown format".into()),
        },
        (_, [_, "leases"] | [_, "leases", _]) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not supported by this stand-in"),
            json!({}),
        ),
        _ => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
            json!({}),
        ),
    }
}

fn record(store: &mut Store, method: &str, ns: &str, name: &str, lease: &Value) {
    let write = Write {
        at: SystemTime::now(),
        instant: Instant::now(),
        method: method.into(),
        namespace: ns.into(),
        name: name.into(),
        holder: holder_of(lease),
        resource_version: store.revision,
    };
    store.writes.push(write);
}

fn create(store: &mut Store, ns: &str, mut lease: Value) -> Response {
    let name = lease["metadata"]["name"].as_str().unwrap_or("").to_string();
    if let Some(other) = lease["metadata"]["namespace"].as_str() {
        if other != ns {
            return bad_request(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            );
        }
    }
    if let Some(response) = validate(&lease, &name) {
        return response;
    }
    let key = (ns.to_string(), name.clone());
    if store.leases.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{RESOURCE} \"{name}\" already exists"),
            json!({"name": name, "group": GROUP, "kind": "leases"}),
        );
    }
    store.revision += 1;
    store.uids += 1;
    normalise_times(&mut lease);
    let meta = &mut lease["metadata"];
    meta["namespace"] = json!(ns);
    meta["resourceVersion"] = json!(store.revision.to_string());
    meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", store.uids));
    meta["creationTimestamp"] = json!(jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string());
    lease["apiVersion"] = json!("coordination.k8s.io/v1");
    lease["kind"] = json!("Lease");
    record(store, "POST", ns, &name, &lease);
    store.leases.insert(key, lease.clone());
    (StatusCode::CREATED, axum::Json(lease)).into_response()
}

fn update(store: &mut Store, ns: &str, name: &str, mut lease: Value) -> Response {
    let given = lease["metadata"]["name"].as_str().unwrap_or("").to_string();
    if given != name {
        return bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        ));
    }
    let key = (ns.to_string(), name.to_string());
    let Some(stored) = store.leases.get(&key).cloned() else {
        return not_found(name);
    };
    let version = lease["metadata"]["resourceVersion"].as_str().unwrap_or("");
    if version.is_empty() {
        return invalid(
            "leases",
            name,
            &[(
                "metadata.resourceVersion".into(),
                "0x0".into(),
                "must be specified for an update".into(),
            )],
        );
    }
    if version != stored["metadata"]["resourceVersion"].as_str().unwrap_or("") {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Operation cannot be fulfilled on {RESOURCE} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"),
            json!({"name": name, "group": GROUP, "kind": "leases"}),
        );
    }
    if let Some(response) = validate(&lease, name) {
        return response;
    }
    normalise_times(&mut lease);
    // System fields stay the server's.
    for field in ["uid", "creationTimestamp", "namespace", "resourceVersion"] {
        lease["metadata"][field] = stored["metadata"][field].clone();
    }
    lease["apiVersion"] = json!("coordination.k8s.io/v1");
    lease["kind"] = json!("Lease");
    if lease["spec"] == stored["spec"]
        && lease["metadata"]["annotations"] == stored["metadata"]["annotations"]
        && lease["metadata"]["labels"] == stored["metadata"]["labels"]
    {
        return (StatusCode::OK, axum::Json(stored)).into_response();
    }
    store.revision += 1;
    lease["metadata"]["resourceVersion"] = json!(store.revision.to_string());
    record(store, "PUT", ns, name, &lease);
    store.leases.insert(key, lease.clone());
    (StatusCode::OK, axum::Json(lease)).into_response()
}
