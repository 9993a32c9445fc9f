//! The registry client: tags, digests and build times, with as few requests
//! as possible and every common form of authentication.
//!
//! The HTTP exchange is our own, on `reqwest`, and the manifest model is
//! `oci-client`'s. We measured `oci-client` 0.18's own client sending a
//! `GET /v2/` before *every* request to an anonymous registry (it caches
//! only tokens, and an anonymous registry yields none), and it neither
//! follows `Link` pagination nor handles 429/`Retry-After`. Counting requests
//! is the point of this module, so the exchange is done here: one request per
//! tags page, the auth challenge learned once per host, tokens cached per
//! scope until they expire.

mod auth;
mod credentials;
pub mod digest;
mod error;
mod metadata;
mod metrics;
mod signatures;
mod tags;
mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use credentials::{Credential, CredentialSource, Secret};
pub use error::RegistryError;
pub use metadata::MANIFEST_ACCEPT;
pub use metrics::{Metrics, RequestCount};
pub use signatures::{SignatureMaterial, SimpleSignature};
pub use tags::{is_valid_tag, TagList};
pub use transport::HostSettings;

use crate::reference::{ImageName, DOCKER_HUB};
use transport::Host;

/// A registry client for one process: hosts are set up on first use and
/// keep their auth state, limits and caches across cycles.
pub struct Client {
    settings: HashMap<String, HostSettings>,
    defaults: HostSettings,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    /// Build times by `digest|platforms`; a digest's content never changes.
    created_cache: Mutex<HashMap<String, Option<jiff::Timestamp>>>,
    metrics: Arc<Metrics>,
}

impl Client {
    /// A client with per-host settings (keyed by registry host as written in
    /// image references) and defaults for every other host.
    pub fn new(settings: HashMap<String, HostSettings>, defaults: HostSettings) -> Client {
        Client {
            settings: settings
                .into_iter()
                .map(|(host, s)| (canonical_host(&host), s))
                .collect(),
            defaults,
            hosts: Mutex::new(HashMap::new()),
            created_cache: Mutex::new(HashMap::new()),
            metrics: Arc::new(Metrics::default()),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn host(&self, image: &ImageName) -> Result<Arc<Host>, RegistryError> {
        let name = canonical_host(&image.registry);
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(host) = hosts.get(&name) {
            return Ok(host.clone());
        }
        let settings = self
            .settings
            .get(&name)
            .cloned()
            .unwrap_or_else(|| self.defaults.clone());
        let host = Arc::new(Host::new(
            &name,
            image.api_host(),
            settings,
            self.metrics.clone(),
        )?);
        hosts.insert(name, host.clone());
        Ok(host)
    }

    /// Every valid tag of the repository, deduplicated, across all pages.
    pub async fn list_tags(&self, image: &ImageName) -> Result<Vec<String>, RegistryError> {
        self.tags(image).await.map(|list| list.tags)
    }

    /// Like [`Client::list_tags`], also counting the invalid tags skipped.
    pub async fn tags(&self, image: &ImageName) -> Result<TagList, RegistryError> {
        let host = self.host(image)?;
        tags::list_tags(&host, &image.repository).await
    }

    /// The digest `tag` points at now (one `HEAD`).
    pub async fn digest(&self, image: &ImageName, tag: &str) -> Result<String, RegistryError> {
        let host = self.host(image)?;
        metadata::digest(&host, &image.repository, tag).await
    }

    /// The signatures of `digest` in cosign's `.sig` tag (none when absent).
    pub async fn sig_tag_signatures(
        &self,
        image: &ImageName,
        digest: &str,
    ) -> Result<Vec<SimpleSignature>, RegistryError> {
        let host = self.host(image)?;
        signatures::sig_tag(&host, &image.repository, digest).await
    }

    /// The sigstore bundles stored as referrers of `digest` (referrers API,
    /// else the `sha256-<hex>` tag schema).
    pub async fn referrer_bundles(
        &self,
        image: &ImageName,
        digest: &str,
    ) -> Result<Vec<Vec<u8>>, RegistryError> {
        let host = self.host(image)?;
        signatures::referrer_bundles(&host, &image.repository, digest).await
    }

    /// The build time of the image at `digest`, from the cache when known.
    pub async fn created(
        &self,
        image: &ImageName,
        digest: &str,
        platforms: &[String],
    ) -> Result<Option<jiff::Timestamp>, RegistryError> {
        let key = format!("{digest}|{}", platforms.join(","));
        let cached = self
            .created_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied();
        if let Some(created) = cached {
            self.metrics.record_cache(true);
            return Ok(created);
        }
        self.metrics.record_cache(false);
        let host = self.host(image)?;
        let created = metadata::created(&host, &image.repository, digest, platforms).await?;
        let mut cache = self.created_cache.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: past the cap, half the entries go (a digest whose tag is
        // still watched is simply fetched once more).
        if cache.len() >= CREATED_CACHE_CAP {
            let keep: std::collections::HashSet<String> =
                cache.keys().take(CREATED_CACHE_CAP / 2).cloned().collect();
            cache.retain(|k, _| keep.contains(k));
        }
        cache.insert(key, created);
        Ok(created)
    }
}

/// Most build times kept (one per digest and platform filter).
const CREATED_CACHE_CAP: usize = 8192;

/// Docker Hub has several names; settings and hosts use `docker.io`.
fn canonical_host(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        other => other.to_string(),
    }
}
