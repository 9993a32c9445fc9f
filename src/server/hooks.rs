//! Receiving webhooks: rate limited per sender, bodies read under a time
//! limit, authenticated, checked for replays, and turned into scan
//! requests that the scheduler coalesces.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{listen, lock, AppState};
use crate::reference::ImageName;
use crate::timeouts::HTTP_BODY_READ;
use crate::webhook::{self, Source};

pub async fn receive_webhook(
    State(state): State<Arc<AppState>>,
    Path(source): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
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
    if let Some(peer) = listen::peer(&extensions) {
        if !state.limiter.allow(peer.ip(), Instant::now()) {
            lock(&state.metrics).record_error("webhook_rate_limited");
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "too many webhooks from this address; slow down\n",
            )
                .into_response();
        }
    }
    let Some(auth) = &state.webhook_auth else {
        lock(&state.metrics).record_error("webhook_unauthenticated");
        return (
            StatusCode::UNAUTHORIZED,
            "webhooks are refused: set server.webhookSecret (or server.allowUnauthenticatedWebhooks)\n",
        )
            .into_response();
    };
    // The body must arrive in time and within the size limit.
    let body = match tokio::time::timeout(
        HTTP_BODY_READ,
        axum::body::to_bytes(body, webhook::MAX_BODY),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the webhook body is over the {}-byte limit\n",
                    webhook::MAX_BODY
                ),
            )
                .into_response()
        }
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                "the webhook body did not arrive in time\n",
            )
                .into_response()
        }
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
    let events = match webhook::handle_guarded(source, auth, &request, &state.replays) {
        Ok(events) => events,
        Err(e) => {
            lock(&state.metrics).record_error(if e.status() == 409 {
                "webhook_replay"
            } else {
                "webhook_rejected"
            });
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return (status, format!("{e}\n")).into_response();
        }
    };
    let images: HashSet<&ImageName> = events.iter().map(|e| &e.image).collect();
    let matched: Vec<String> = state
        .config
        .images
        .iter()
        .filter(|i| {
            state
                .config
                .image_names
                .get(&i.name)
                .is_some_and(|n| images.contains(n))
        })
        .map(|i| i.name.clone())
        .collect();
    if matched.is_empty() {
        return (StatusCode::OK, "no image policy watches that image\n").into_response();
    }
    state.request_scans(&matched);
    (
        StatusCode::ACCEPTED,
        format!("scan requested for: {}\n", matched.join(", ")),
    )
        .into_response()
}
