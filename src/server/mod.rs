//! `tidewatch run`: the service.
//!
//! One scheduler task runs cycles, one at a time, so cycles for the
//! environment repository never overlap. A cycle covers the policies that
//! are due (by `interval`/`schedule`) or were named by a webhook. Webhooks
//! only *request* an early scan: they mark policies due and wake the
//! scheduler, which waits a moment to coalesce a burst into one cycle. The
//! HTTP side serves `/healthz`, `/readyz`, `/metrics`, the status page `/`
//! and `/webhook/{source}`.

mod health;
mod metrics;
mod page;
mod scheduler;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

use crate::config::Config;
use crate::engine::{self, Engine};
use crate::reference::ImageName;
use crate::webhook::{self, Authentication, Source};

pub use metrics::ServiceMetrics;
pub use page::Status;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Config(String),
}

pub struct ServerOptions {
    pub listen: SocketAddr,
    pub workdir: Option<PathBuf>,
    /// A cycle's deadline.
    pub cycle_timeout: Duration,
}

struct AppState {
    config: Config,
    engine: Engine,
    workdir: Option<PathBuf>,
    webhook_auth: Option<Authentication>,
    /// Policies named by webhooks since the last cycle.
    requested: Mutex<HashSet<String>>,
    wake: Notify,
    /// Set on SIGTERM/SIGINT; the scheduler stops after the cycle in progress.
    stopping: AtomicBool,
    /// Wakes the scheduler to stop; `notify_one` keeps a permit, so a signal
    /// that arrives mid-cycle is not lost.
    stop: Notify,
    /// A cycle's deadline (`server.cycleTimeout`).
    cycle_timeout: Duration,
    health: Mutex<health::Health>,
    status: Mutex<Status>,
    metrics: Mutex<ServiceMetrics>,
}

impl AppState {
    /// The policies webhooks asked for since the last cycle.
    fn take_requested(&self) -> HashSet<String> {
        std::mem::take(&mut *lock(&self.requested))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data behind the lock; a panic elsewhere does not make it unusable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn webhook_auth(config: &Config) -> Result<Option<Authentication>, ServerError> {
    let server = config
        .server
        .as_ref()
        .map(|s| s.item.clone())
        .unwrap_or_default();
    if let Some(source) = &server.webhook_secret {
        let secret = source
            .read("webhook secret")
            .map_err(|e| ServerError::Config(e.to_string()))?;
        return Ok(Some(Authentication::Secret(secret)));
    }
    // No secret: webhooks are refused unless explicitly opened.
    Ok(server
        .allow_unauthenticated_webhooks
        .then_some(Authentication::Disabled))
}

/// Runs the service until SIGTERM or SIGINT; the cycle in progress is
/// finished before it returns. The work directory is locked first, so a
/// second process on it exits with an error naming the lock.
pub async fn run(config: Config, options: ServerOptions) -> Result<(), ServerError> {
    let engine = Engine::new(Arc::new(engine::client_for(&config)));
    engine
        .lock_workdir(&config, options.workdir.clone())
        .map_err(|e| ServerError::Config(e.to_string()))?;
    let cycle_timeout = options.cycle_timeout;
    let state = Arc::new(AppState {
        engine,
        webhook_auth: webhook_auth(&config)?,
        workdir: options.workdir,
        requested: Mutex::new(HashSet::new()),
        wake: Notify::new(),
        stopping: AtomicBool::new(false),
        stop: Notify::new(),
        cycle_timeout,
        health: Mutex::new(health::Health::default()),
        status: Mutex::new(Status::new(&config)),
        metrics: Mutex::new(ServiceMetrics::default()),
        config,
    });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: options.listen,
            source,
        })?;
    tracing::info!(addr = %options.listen, "tidewatch is serving");
    let scheduler = tokio::spawn(scheduler::run(state.clone()));
    // If the scheduler ever stops while the service is not stopping, that
    // is a fault /healthz must report.
    let watched = state.clone();
    let watcher = tokio::spawn(async move {
        let reason = match scheduler.await {
            Ok(()) => "it returned".to_string(),
            Err(e) if e.is_panic() => "it panicked".to_string(),
            Err(e) => e.to_string(),
        };
        if !watched.stopping.load(Ordering::SeqCst) {
            tracing::error!(%reason, "the scheduler stopped");
            lock(&watched.health).scheduler_stopped = Some(reason);
        }
    });
    let app = router(state.clone());
    let signalled = state.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            wait_for_signal().await;
            tracing::info!("shutting down after the cycle in progress");
            signalled.stopping.store(true, Ordering::SeqCst);
            signalled.stop.notify_one();
        })
        .await;
    state.stopping.store(true, Ordering::SeqCst);
    state.stop.notify_one();
    let _ = watcher.await;
    served.map_err(ServerError::Serve)
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/webhook/{source}", post(receive_webhook))
        .layer(DefaultBodyLimit::max(webhook::MAX_BODY))
        .with_state(state)
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let busy = state.engine.git_busy();
    match lock(&state.health).problem(Instant::now(), busy) {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {reason}\n"),
        )
            .into_response(),
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match lock(&state.health).unready() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let text = lock(&state.metrics).render(state.engine.client().metrics());
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

async fn status_page(State(state): State<Arc<AppState>>) -> Html<String> {
    let last = lock(&state.health).last.clone();
    Html(lock(&state.status).render(last.as_ref()))
}

async fn receive_webhook(
    State(state): State<Arc<AppState>>,
    Path(source): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let source: Source = match source.parse() {
        Ok(s) => s,
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                format!("unknown webhook source `{source}`\n"),
            )
                .into_response()
        }
    };
    let Some(auth) = &state.webhook_auth else {
        lock(&state.metrics).record_error("webhook_unauthenticated");
        return (
            StatusCode::UNAUTHORIZED,
            "webhooks are refused: set server.webhookSecret (or server.allowUnauthenticatedWebhooks)\n",
        )
            .into_response();
    };
    let header_pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let request = webhook::Request {
        headers: &header_pairs,
        query: query.as_deref(),
        body: &body,
    };
    let events = match webhook::handle(source, auth, &request) {
        Ok(events) => events,
        Err(e) => {
            lock(&state.metrics).record_error("webhook_rejected");
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return (status, format!("{e}\n")).into_response();
        }
    };
    let images: HashSet<&ImageName> = events.iter().map(|e| &e.image).collect();
    let matched: Vec<String> = state
        .config
        .images
        .iter()
        .filter(|i| ImageName::parse(&i.image).is_ok_and(|n| images.contains(&n)))
        .map(|i| i.name.clone())
        .collect();
    if matched.is_empty() {
        return (StatusCode::OK, "no image policy watches that image\n").into_response();
    }
    lock(&state.requested).extend(matched.iter().cloned());
    state.wake.notify_one();
    (
        StatusCode::ACCEPTED,
        format!("scan requested for: {}\n", matched.join(", ")),
    )
        .into_response()
}
