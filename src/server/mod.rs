//! `tidewatch run`: the service.
//!
//! One scheduler task runs cycles, one at a time, so cycles for the
//! environment repository never overlap. A cycle covers the policies that
//! are due (by `interval`/`schedule`) or were named by a webhook. Webhooks
//! only *request* an early scan: they mark policies due and wake the
//! scheduler, which waits a moment to coalesce a burst into one cycle. The
//! HTTP side serves `/healthz`, `/readyz`, `/metrics`, the status page `/`
//! and `/webhook/{source}`.

mod metrics;
mod page;

use std::collections::{HashMap, HashSet};
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
use tracing::Instrument;

use crate::config::Config;
use crate::engine::{self, Engine, OnceOptions, Outcome};
use crate::reference::ImageName;
use crate::schedule::Schedule;
use crate::webhook::{self, Authentication, Source};

pub use metrics::ServiceMetrics;
pub use page::Status;

/// How long a webhook burst is collected before its cycle starts.
const COALESCE: Duration = Duration::from_millis(300);

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
    ready: AtomicBool,
    status: Mutex<Status>,
    metrics: Mutex<ServiceMetrics>,
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
/// finished before it returns.
pub async fn run(config: Config, options: ServerOptions) -> Result<(), ServerError> {
    let state = Arc::new(AppState {
        engine: Engine::new(Arc::new(engine::client_for(&config))),
        webhook_auth: webhook_auth(&config)?,
        workdir: options.workdir,
        requested: Mutex::new(HashSet::new()),
        wake: Notify::new(),
        stopping: AtomicBool::new(false),
        stop: Notify::new(),
        ready: AtomicBool::new(false),
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
    let scheduler = tokio::spawn(scheduler(state.clone()));
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
    let _ = scheduler.await;
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
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/webhook/{source}", post(receive_webhook))
        .layer(DefaultBodyLimit::max(webhook::MAX_BODY))
        .with_state(state)
}

/// The scheduler: every policy starts due; after a cycle each scanned
/// policy is due again after its interval (or cron time).
async fn scheduler(state: Arc<AppState>) {
    let policies: Vec<(String, Schedule)> = state
        .config
        .images
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                Schedule::of(i.schedule.as_deref(), i.interval.as_deref()),
            )
        })
        .collect();
    let mut next: HashMap<String, Instant> = policies
        .iter()
        .map(|(p, _)| (p.clone(), Instant::now()))
        .collect();
    let mut seed: u64 = 0x9e37_79b9;
    loop {
        if state.stopping.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        let mut due: HashSet<String> = next
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| p.clone())
            .collect();
        let from_webhooks: HashSet<String> = std::mem::take(&mut *lock(&state.requested));
        due.extend(from_webhooks);
        if due.is_empty() {
            let earliest = next
                .values()
                .min()
                .copied()
                .unwrap_or(now + Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep_until(earliest.into()) => {}
                _ = state.wake.notified() => {
                    // Let a burst of webhooks arrive, then run one cycle.
                    tokio::time::sleep(COALESCE).await;
                }
                _ = state.stop.notified() => return,
            }
            continue;
        }
        run_cycle(&state, &due).await;
        for (policy, schedule) in &policies {
            if due.contains(policy) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                next.insert(
                    policy.clone(),
                    Instant::now() + schedule.next_in(seed >> 33),
                );
            }
        }
    }
}

async fn run_cycle(state: &Arc<AppState>, due: &HashSet<String>) {
    let mut names: Vec<&String> = due.iter().collect();
    names.sort();
    let span = tracing::info_span!("cycle", policies = ?names);
    run_cycle_in_span(state, due).instrument(span).await;
}

async fn run_cycle_in_span(state: &Arc<AppState>, due: &HashSet<String>) {
    let started = Instant::now();
    let options = OnceOptions {
        workdir: state.workdir.clone(),
        dry_run: false,
        only_policies: Some(due.clone()),
    };
    let result = state.engine.cycle(&state.config, &options).await;
    let took = started.elapsed();
    match &result {
        Ok(report) => {
            state.ready.store(true, Ordering::SeqCst);
            for u in &report.updates {
                match &u.outcome {
                    Outcome::Failed { error } => {
                        tracing::warn!(update = %u.update, %error, "update failed")
                    }
                    outcome => {
                        tracing::info!(update = %u.update, ?outcome, changes = u.changes.len(), "update done")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cycle failed"),
    }
    lock(&state.metrics).record_cycle(due, result.as_ref().ok(), result.as_ref().err(), took);
    lock(&state.status).record_cycle(due, &result);
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first fetch of the environment repository has not succeeded yet\n",
        )
            .into_response()
    }
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let text = lock(&state.metrics).render(state.engine.client().metrics());
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

async fn status_page(State(state): State<Arc<AppState>>) -> Html<String> {
    Html(lock(&state.status).render())
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
