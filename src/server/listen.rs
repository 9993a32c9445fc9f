//! The HTTP server's accept loop, with the limits an unauthenticated
//! network demands.
//!
//! * Every connection must send its request headers within
//!   [`HTTP_HEADER_READ`] (hyper's header-read timeout, which also closes a
//!   keep-alive connection that stays idle that long).
//! * At most [`Limits::connections`] connections are served at once; a few
//!   more ([`Limits::reserve`]) are kept for the probes: a connection that
//!   gets a reserve slot is answered only on `/healthz` and `/readyz`, with
//!   a short header timeout, so a flood of idle connections can hold the
//!   main slots but never starve Kubernetes' probes. Past both, connections
//!   are closed at once, and `accept` never spins on a full fd table.
//! * The soft file-descriptor limit is raised to the hard one at start.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::timeouts::HTTP_HEADER_READ;

/// How many connections the server takes.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub connections: usize,
    pub reserve: usize,
    /// The header timeout of a reserve (probe) connection.
    pub reserve_header_read: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections: 256,
            reserve: 16,
            reserve_header_read: Duration::from_secs(2),
        }
    }
}

/// Raises the soft limit of open files to the hard limit (servers hold one
/// descriptor per connection; the default soft limit is often 1024).
pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "could not raise the open-files limit");
        }
    }
}

/// Serves `app` (and `probes` on reserve slots) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    probes: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let main = Arc::new(Semaphore::new(limits.connections.max(1)));
    let reserve = Arc::new(Semaphore::new(limits.reserve));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors or memory: wait for connections to end
                // instead of spinning on accept.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (permit, router, header_read) = match main.clone().try_acquire_owned() {
            Ok(permit) => (permit, app.clone(), HTTP_HEADER_READ),
            Err(_) => match reserve.clone().try_acquire_owned() {
                Ok(permit) => (permit, probes.clone(), limits.reserve_header_read),
                // Full: closing at once costs nothing and frees the slot.
                Err(_) => continue,
            },
        };
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                let router = router.clone();
                async move {
                    Ok::<_, Infallible>(
                        router.oneshot(request).await.unwrap_or_else(|e| match e {}),
                    )
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

/// The address a request came from, set by [`serve`].
pub fn peer(request_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}
