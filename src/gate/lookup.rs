//! The signature lookup of one digest, with its verdict cached.
//!
//! Verification costs registry requests, so each (repository, digest, key
//! set) is looked up once: a verified verdict is kept as long as the cache
//! holds it (a digest's content never changes). A verdict that is not
//! "verified" is looked up again after [`RECHECK_UNVERIFIED`], because
//! cosign attaches signatures *after* the push: an image seen unsigned a
//! minute after its push is usually signed a minute later.
//!
//! The `.sig` tag is read first (one manifest `GET`, plus one blob per
//! signature); only when it yields no verified signature are the referrers
//! read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cosign::{self, SignatureVerdict};
use super::keys::Keys;
use crate::reference::ImageName;
use crate::registry::{Client, RegistryError, SignatureMaterial};

/// How long a verdict other than "verified" is trusted before the
/// registry is asked again.
pub const RECHECK_UNVERIFIED: Duration = Duration::from_secs(15 * 60);
/// Most verdicts kept.
const CAPACITY: usize = 4096;

/// Signature verdicts by repository, digest and key set.
#[derive(Debug, Default)]
pub struct SignatureCache {
    entries: Mutex<HashMap<String, (SignatureVerdict, Instant)>>,
}

impl SignatureCache {
    fn key(image: &ImageName, digest: &str, keys: &Keys) -> String {
        format!(
            "{}/{}@{digest}#{}",
            image.registry,
            image.repository,
            hex::encode(keys.fingerprint())
        )
    }

    fn get(&self, key: &str) -> Option<SignatureVerdict> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (verdict, at) = entries.get(key)?;
        (verdict.is_verified() || at.elapsed() < RECHECK_UNVERIFIED).then(|| verdict.clone())
    }

    fn put(&self, key: String, verdict: SignatureVerdict) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            // Expired verdicts go first, then half of the rest: a digest
            // still watched is simply looked up once more.
            entries.retain(|_, (v, at)| v.is_verified() || at.elapsed() < RECHECK_UNVERIFIED);
            if entries.len() >= CAPACITY {
                let keep: std::collections::HashSet<String> =
                    entries.keys().take(CAPACITY / 2).cloned().collect();
                entries.retain(|k, _| keep.contains(k));
            }
        }
        entries.insert(key, (verdict, Instant::now()));
    }

    /// How many verdicts are held (for tests and the status page).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The signature verdict of `image@digest` under `keys`: from the cache,
    /// or looked up at the registry (the `.sig` tag, then referrers). A
    /// registry failure is an error, never a verdict.
    pub async fn verdict(
        &self,
        client: &Client,
        image: &ImageName,
        digest: &str,
        keys: &Keys,
    ) -> Result<SignatureVerdict, RegistryError> {
        let key = Self::key(image, digest, keys);
        if let Some(verdict) = self.get(&key) {
            client.metrics().record_cache(true);
            return Ok(verdict);
        }
        client.metrics().record_cache(false);
        let simple = client.sig_tag_signatures(image, digest).await?;
        let mut material = SignatureMaterial {
            simple,
            bundles: Vec::new(),
        };
        let mut verdict = cosign::verify(&material, digest, keys);
        if !verdict.is_verified() {
            material.simple.clear();
            material.bundles = client.referrer_bundles(image, digest).await?;
            verdict = verdict.or(cosign::verify(&material, digest, keys));
        }
        self.put(key, verdict.clone());
        Ok(verdict)
    }
}
