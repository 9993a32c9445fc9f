//! Fetching the cosign signature material of one image digest, in both
//! places cosign stores it. This module knows the OCI layouts only; what
//! the material proves is decided by `gate::cosign`.
//!
//! * The **`.sig` tag**: `GET /v2/<repo>/manifests/sha256-<hex>.sig`, then
//!   every simple-signing layer's blob.
//! * **Referrers**: `GET /v2/<repo>/referrers/<digest>` (OCI 1.1). A 404
//!   means the registry has no referrers API (CNCF distribution 2.8 and
//!   3.x have none), and the distribution spec's fallback applies: the
//!   image index tagged `sha256-<hex>` lists the referrers. Each referrer's
//!   manifest is read by digest and its sigstore-bundle layers fetched.
//!
//! A 404 anywhere means "nothing there"; every other failure is an error,
//! so an outage is never mistaken for an unsigned image. Manifests and
//! blobs read by digest are checked against it.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;

use super::error::RegistryError;
use super::metadata::MANIFEST_ACCEPT;
use super::tags::read_body;
use super::transport::{Call, Host};

/// The simple-signing layer media type of the `.sig` tag.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Layers of a bundle referrer start with this media type
/// (`…bundle.v0.3+json`, older `…bundle+json;version=0.x`).
pub const BUNDLE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// At most this many signature layers or referrers are read per digest: a
/// registry cannot make one lookup cost unbounded requests.
const MAX_ITEMS: usize = 16;
/// Signature payloads and bundles are small; larger blobs are refused.
const MAX_BLOB: u64 = 1 << 20;

/// One signature of the `.sig` layout: the payload bytes as stored, and
/// the annotation's base64 signature over them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimpleSignature {
    pub payload: Vec<u8>,
    pub signature: String,
}

/// Everything found for one digest in one or both layouts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureMaterial {
    pub simple: Vec<SimpleSignature>,
    /// Raw sigstore bundle JSON documents.
    pub bundles: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// `sha256-<hex>`: the tag both cosign's `.sig` tag and the referrers tag
/// schema derive from a digest.
fn digest_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// The `.sig` tag's signatures of `digest` (none when the tag is absent).
pub async fn sig_tag(
    host: &Host,
    repository: &str,
    digest: &str,
) -> Result<Vec<SimpleSignature>, RegistryError> {
    let tag = format!("{}.sig", digest_tag(digest));
    let Some(manifest) = get_manifest(host, repository, &tag, false).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING)
        .take(MAX_ITEMS)
    {
        let Some(signature) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
            continue;
        };
        if signature.is_empty() {
            continue;
        }
        if let Some(payload) = get_blob(host, repository, layer).await? {
            out.push(SimpleSignature {
                payload,
                signature: signature.clone(),
            });
        }
    }
    Ok(out)
}

/// The sigstore bundles among the referrers of `digest`.
pub async fn referrer_bundles(
    host: &Host,
    repository: &str,
    digest: &str,
) -> Result<Vec<Vec<u8>>, RegistryError> {
    let index = match referrers_api(host, repository, digest).await? {
        Some(index) => Some(index),
        // No referrers API: the tag schema fallback.
        None => get_manifest(host, repository, &digest_tag(digest), false).await?,
    };
    let Some(index) = index else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let candidates = index.manifests.iter().filter(|d| {
        // Some registries list bundle referrers with the empty type (or
        // none), so only clearly different artifacts are skipped here; the
        // layer media type decides.
        d.artifact_type
            .as_deref()
            .is_none_or(|t| t.starts_with(BUNDLE_PREFIX) || t == OCI_EMPTY || t.is_empty())
    });
    for entry in candidates.take(MAX_ITEMS) {
        if !super::digest::is_valid(&entry.digest) {
            continue;
        }
        let Some(manifest) = get_manifest(host, repository, &entry.digest, true).await? else {
            continue;
        };
        for layer in manifest
            .layers
            .iter()
            .filter(|l| l.media_type.starts_with(BUNDLE_PREFIX))
            .take(MAX_ITEMS)
        {
            if let Some(bundle) = get_blob(host, repository, layer).await? {
                out.push(bundle);
            }
        }
    }
    Ok(out)
}

/// The referrers index from the OCI 1.1 API, or `None` when the registry
/// answers 404 (it has no such API; the spec then says to use the tag).
async fn referrers_api(
    host: &Host,
    repository: &str,
    digest: &str,
) -> Result<Option<Manifest>, RegistryError> {
    let what = format!("the referrers of {repository}@{digest}");
    let call = Call {
        method: Method::GET,
        path: format!("/v2/{repository}/referrers/{digest}"),
        repository,
        accept: Some(OCI_INDEX),
        kind: "signature",
        what: what.clone(),
    };
    let response = match host.send(&call).await {
        Ok(r) => r,
        // 404 is the spec's "no referrers API"; like go-containerregistry,
        // 400 and 406 from registries that predate the API count too.
        Err(RegistryError::NotFound { .. }) => return Ok(None),
        Err(RegistryError::Status {
            status: 400 | 406, ..
        }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let body = read_body(host, response, &what).await?;
    parse(host, &what, &body).map(Some)
}

/// A manifest or index by tag or digest; `None` on 404. `by_digest`
/// checks the bytes against the reference.
async fn get_manifest(
    host: &Host,
    repository: &str,
    reference: &str,
    by_digest: bool,
) -> Result<Option<Manifest>, RegistryError> {
    let what = format!("the manifest {repository}:{reference}");
    let call = Call {
        method: Method::GET,
        path: format!("/v2/{repository}/manifests/{reference}"),
        repository,
        accept: Some(MANIFEST_ACCEPT),
        kind: "signature",
        what: what.clone(),
    };
    let response = match host.send(&call).await {
        Ok(r) => r,
        Err(RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let body = read_body(host, response, &what).await?;
    if by_digest {
        super::digest::verify(&host.name, &what, reference, &body)?;
    }
    parse(host, &what, &body).map(Some)
}

fn parse(host: &Host, what: &str, body: &[u8]) -> Result<Manifest, RegistryError> {
    serde_json::from_slice(body).map_err(|e| RegistryError::Malformed {
        host: host.name.clone(),
        what: what.to_string(),
        detail: e.to_string(),
    })
}

/// A signature layer's blob, checked against its digest; `None` when the
/// registry no longer has it (404).
async fn get_blob(
    host: &Host,
    repository: &str,
    layer: &Descriptor,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let what = format!("the signature blob {repository}@{}", layer.digest);
    if !super::digest::is_valid(&layer.digest) || layer.size > MAX_BLOB {
        return Err(RegistryError::Malformed {
            host: host.name.clone(),
            what,
            detail: format!(
                "the layer descriptor names an invalid digest or more than {MAX_BLOB} bytes"
            ),
        });
    }
    let call = Call {
        method: Method::GET,
        path: format!("/v2/{repository}/blobs/{}", layer.digest),
        repository,
        accept: None,
        kind: "signature",
        what: what.clone(),
    };
    let response = match host.send(&call).await {
        Ok(r) => r,
        Err(RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let body = read_body(host, response, &what).await?;
    super::digest::verify(&host.name, &what, &layer.digest, &body)?;
    Ok(Some(body))
}
