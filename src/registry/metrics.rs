//! Registry request counters, kept for `/metrics` and the benchmarks.
//!
//! Labels are the registry host, the HTTP method, what the request was for
//! (`tags`, `token`, `manifest-head`, `manifest`, `blob`) and the status (or
//! `error` when no response came). Never a URL, header or credential.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One counter row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestCount {
    pub host: String,
    pub method: String,
    pub kind: &'static str,
    pub status: String,
    pub count: u64,
}

#[derive(Default, Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default, Debug)]
struct Inner {
    requests: BTreeMap<(String, String, &'static str, String), u64>,
    cache_hits: u64,
    cache_misses: u64,
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of
        // plain counters; the counts are still usable.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    pub fn record_request(
        &self,
        host: &str,
        method: &str,
        kind: &'static str,
        status: Option<u16>,
    ) {
        let status = status.map_or_else(|| "error".to_string(), |s| s.to_string());
        self.with(|m| {
            *m.requests
                .entry((host.to_string(), method.to_string(), kind, status))
                .or_default() += 1
        });
    }

    pub fn record_cache(&self, hit: bool) {
        self.with(|m| {
            if hit {
                m.cache_hits += 1
            } else {
                m.cache_misses += 1
            }
        });
    }

    pub fn requests(&self) -> Vec<RequestCount> {
        self.with(|m| {
            m.requests
                .iter()
                .map(|((host, method, kind, status), count)| RequestCount {
                    host: host.clone(),
                    method: method.clone(),
                    kind,
                    status: status.clone(),
                    count: *count,
                })
                .collect()
        })
    }

    /// Requests sent, optionally only those of one kind.
    pub fn total(&self, kind: Option<&str>) -> u64 {
        self.with(|m| {
            m.requests
                .iter()
                .filter(|((_, _, k, _), _)| kind.is_none_or(|want| *k == want))
                .map(|(_, n)| n)
                .sum()
        })
    }

    /// Metadata cache hits and misses.
    pub fn cache(&self) -> (u64, u64) {
        self.with(|m| (m.cache_hits, m.cache_misses))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label() {
        let m = Metrics::default();
        m.record_request("h", "GET", "tags", Some(200));
        m.record_request("h", "GET", "tags", Some(200));
        m.record_request("h", "HEAD", "manifest-head", None);
        m.record_cache(true);
        assert_eq!(m.total(None), 3);
        assert_eq!(m.total(Some("tags")), 2);
        assert_eq!(m.requests()[1].status, "error");
        assert_eq!(m.cache(), (1, 0));
    }
}
