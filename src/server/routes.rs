//! The HTTP routes: probes, metrics, the status page and webhooks. The
//! probe routes are also served alone on the reserve connection slots
//! (see `listen.rs`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::{hooks, lock, AppState};
use crate::webhook;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/webhook/{source}", post(hooks::receive_webhook))
        .layer(DefaultBodyLimit::max(webhook::MAX_BODY))
        .with_state(state)
}

/// Only the probes: what a connection on a reserve slot may ask for.
pub fn probes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy: the server is at its connection limit; only /healthz and /readyz are answered now\n",
            )
        })
        .with_state(state)
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let busy = state.engine.git_busy();
    // A standby is healthy; a replica whose election stopped is not.
    let election = state.election.as_ref().and_then(|e| e.problem());
    match election.or_else(|| lock(&state.health).problem(Instant::now(), busy)) {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {reason}\n"),
        )
            .into_response(),
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    // Not ready without the repository's Lease, so that the Service sends
    // webhooks to the holder.
    let standby = state.election.as_ref().and_then(|e| e.unready());
    match standby.or_else(|| lock(&state.health).unready()) {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let mut text = lock(&state.metrics).render(state.engine.client().metrics());
    if let Some(election) = &state.election {
        text.push_str(&election.metrics());
    }
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

async fn status_page(State(state): State<Arc<AppState>>) -> Html<String> {
    let last = lock(&state.health).last.clone();
    let leases = state
        .election
        .as_ref()
        .map(|e| e.section())
        .unwrap_or_default();
    Html(lock(&state.status).render_with(last.as_ref(), &leases))
}
