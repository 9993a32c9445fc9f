//! Refusing replayed webhooks.
//!
//! A signed webhook captured on the way could otherwise be sent again
//! forever. So, for requests that are authenticated with the secret:
//! a delivery id the sender gives (GitHub's `X-GitHub-Delivery`, or
//! `X-Tidewatch-Delivery` for the generic and distribution sources) is
//! accepted once; and a signed timestamp (`X-Tidewatch-Timestamp`, Unix
//! seconds, covered by the HMAC as `timestamp.body`) more than five minutes
//! away from now is refused. The seen ids are kept for a day, at most
//! 10,000 of them.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Request, Source, WebhookError};

/// A signed timestamp must be this close to now.
pub const MAX_AGE: Duration = Duration::from_secs(300);
const KEEP: Duration = Duration::from_secs(86_400);
const MAX_IDS: usize = 10_000;

/// The delivery-id header of a source, if it sends one.
pub fn delivery_header(source: Source) -> Option<&'static str> {
    match source {
        Source::GitHub => Some("x-github-delivery"),
        Source::Generic | Source::Distribution => Some("x-tidewatch-delivery"),
        Source::DockerHub | Source::Harbor | Source::Quay => None,
    }
}

/// The signed-timestamp header (generic and distribution sources).
pub const TIMESTAMP_HEADER: &str = "x-tidewatch-timestamp";

/// The delivery ids seen, and in which order (to forget the oldest).
type Seen = (HashSet<String>, VecDeque<(Instant, String)>);

#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<Seen>,
}

impl ReplayGuard {
    /// Checks a request that has been authenticated; records its delivery
    /// id. `now_unix` is the current Unix time in seconds.
    pub fn check(
        &self,
        source: Source,
        request: &Request,
        now: Instant,
        now_unix: i64,
    ) -> Result<(), WebhookError> {
        if let Some(value) = request.header(TIMESTAMP_HEADER) {
            let sent: i64 = value.trim().parse().map_err(|_| WebhookError::Replay {
                sender: source,
                reason: format!("`{TIMESTAMP_HEADER}` is not Unix seconds"),
            })?;
            let age = now_unix.saturating_sub(sent).unsigned_abs();
            if age > MAX_AGE.as_secs() {
                return Err(WebhookError::Replay {
                    sender: source,
                    reason: format!(
                        "its signed timestamp is {age} s away from now (more than {} s); a replayed or delayed request",
                        MAX_AGE.as_secs()
                    ),
                });
            }
        }
        let Some(header) = delivery_header(source) else {
            return Ok(());
        };
        let Some(id) = request
            .header(header)
            .map(str::trim)
            .filter(|id| !id.is_empty())
        else {
            return Ok(());
        };
        let id: String = id.chars().take(200).collect();
        let mut guard = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (set, order) = &mut *guard;
        while let Some((at, old)) = order.front() {
            if now.saturating_duration_since(*at) > KEEP || order.len() >= MAX_IDS {
                set.remove(old);
                order.pop_front();
            } else {
                break;
            }
        }
        if !set.insert(id.clone()) {
            return Err(WebhookError::Replay {
                sender: source,
                reason: format!("delivery `{id}` was already received"),
            });
        }
        order.push_back((now, id));
        Ok(())
    }
}
