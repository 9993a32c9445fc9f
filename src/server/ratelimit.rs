//! A token bucket per client address for webhooks: a sender may burst, but
//! not sustain more than the rate; past it, 429. The table of buckets is
//! bounded (it is cleared when it fills), so addresses cannot exhaust memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Most addresses tracked at once.
const MAX_ADDRESSES: usize = 10_000;

impl RateLimiter {
    pub fn new(per_second: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            per_second,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `address`; false when its bucket is empty.
    pub fn allow(&self, address: IpAddr, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_ADDRESSES && !buckets.contains_key(&address) {
            buckets.clear();
        }
        let (tokens, last) = buckets.entry(address).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_the_rate() {
        let limiter = RateLimiter::new(10.0, 5.0);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let t = Instant::now();
        assert_eq!((0..8).filter(|_| limiter.allow(a, t)).count(), 5);
        assert!(limiter.allow(b, t), "another sender has its own bucket");
        assert!(limiter.allow(a, t + Duration::from_millis(150)));
        assert!(!limiter.allow(a, t + Duration::from_millis(150)));
    }
}
