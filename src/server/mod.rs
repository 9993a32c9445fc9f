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
mod hooks;
mod leases;
mod listen;
mod metrics;
mod page;
mod ratelimit;
mod routes;
mod scheduler;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use tokio::sync::Notify;

use crate::config::Config;
use crate::engine::{self, Engine};
use crate::webhook::{Authentication, ReplayGuard};

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
    /// When a webhook last caused a scan of each policy.
    webhook_scans: Mutex<HashMap<String, Instant>>,
    replays: ReplayGuard,
    limiter: ratelimit::RateLimiter,
    health: Mutex<health::Health>,
    status: Mutex<Status>,
    metrics: Mutex<ServiceMetrics>,
    /// Leader election (`server.leaderElection`): cycles run only while
    /// this replica holds the repository's Lease. `None`: one replica.
    election: Option<Arc<leases::Election>>,
}

/// Webhooks scan a policy at most once per this window, however many
/// arrive: a burst (or a sustained flood) costs one scan now and at most
/// one at the end of the window.
pub const WEBHOOK_WINDOW: Duration = Duration::from_secs(5);

impl AppState {
    /// Marks policies as asked for by a webhook, and wakes the scheduler.
    fn request_scans(&self, policies: &[String]) {
        lock(&self.requested).extend(policies.iter().cloned());
        self.wake.notify_one();
    }

    /// The requested policies whose webhook window has passed (they are
    /// taken), and when the earliest of the others may go.
    fn take_requested(&self, now: Instant) -> (HashSet<String>, Option<Instant>) {
        let mut requested = lock(&self.requested);
        let mut last = lock(&self.webhook_scans);
        let mut ready = HashSet::new();
        let mut later: Option<Instant> = None;
        requested.retain(|policy| match last.get(policy) {
            Some(at) if now.saturating_duration_since(*at) < WEBHOOK_WINDOW => {
                let when = *at + WEBHOOK_WINDOW;
                later = Some(later.map_or(when, |l| l.min(when)));
                true
            }
            _ => {
                ready.insert(policy.clone());
                false
            }
        });
        for policy in &ready {
            last.insert(policy.clone(), now);
        }
        (ready, later)
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
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: options.listen,
            source,
        })?;
    let election = leases::start(&config).await?;
    let state = Arc::new(AppState {
        engine,
        webhook_auth: webhook_auth(&config)?,
        workdir: options.workdir,
        requested: Mutex::new(HashSet::new()),
        wake: Notify::new(),
        stopping: AtomicBool::new(false),
        stop: Notify::new(),
        cycle_timeout,
        webhook_scans: Mutex::new(HashMap::new()),
        replays: ReplayGuard::default(),
        limiter: ratelimit::RateLimiter::new(50.0, 200.0),
        health: Mutex::new(health::Health::default()),
        status: Mutex::new(Status::new(&config)),
        metrics: Mutex::new(ServiceMetrics::default()),
        election,
        config,
    });
    listen::raise_fd_limit();
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
    let signalled = state.clone();
    listen::serve(
        listener,
        routes::router(state.clone()),
        routes::probes(state.clone()),
        listen::Limits::default(),
        async move {
            wait_for_signal().await;
            tracing::info!("shutting down after the cycle in progress");
            signalled.stopping.store(true, Ordering::SeqCst);
            signalled.stop.notify_one();
        },
    )
    .await;
    state.stopping.store(true, Ordering::SeqCst);
    state.stop.notify_one();
    let _ = watcher.await;
    if let Some(election) = &state.election {
        // After the last cycle (and any git work it left running): give the
        // Lease back so a standby takes over now, not after leaseDuration.
        let settle = Instant::now() + election.elector.settings().renew_deadline;
        while state.engine.git_busy() && Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        election.elector.shutdown().await;
    }
    Ok(())
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
