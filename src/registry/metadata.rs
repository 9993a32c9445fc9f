//! Tag metadata: the manifest digest (one `HEAD`), and the build time from
//! the image config (manifest and config blob `GET`s, cached by digest).
//!
//! A digest names immutable content, so once a digest's build time is known
//! it is never fetched again: a tag whose digest did not change costs one
//! `HEAD` per cycle and nothing more. `HEAD` requests also do not count
//! against Docker Hub's pull rate limit, unlike manifest `GET`s.

use oci_client::manifest::{ImageIndexEntry, OciManifest};
use reqwest::Method;
use serde::Deserialize;

use super::error::RegistryError;
use super::tags::read_body;
use super::transport::{Call, Host};

/// Every manifest type a tag may point at; the registry answers with the
/// digest of exactly what the tag names (an index's own digest, for an index).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The digest a tag points at now, from `Docker-Content-Digest`.
pub async fn digest(host: &Host, repository: &str, tag: &str) -> Result<String, RegistryError> {
    let what = format!("the manifest of {repository}:{tag}");
    let response = host
        .send(&Call {
            method: Method::HEAD,
            path: format!("/v2/{repository}/manifests/{tag}"),
            repository,
            accept: Some(MANIFEST_ACCEPT),
            kind: "manifest-head",
            what: what.clone(),
        })
        .await?;
    response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or_else(|| RegistryError::Malformed {
            host: host.name.clone(),
            what: what.clone(),
            detail: "the response has no Docker-Content-Digest header".into(),
        })
        .and_then(|d| {
            if super::digest::is_valid(d) {
                Ok(d.to_string())
            } else {
                Err(RegistryError::Malformed {
                    host: host.name.clone(),
                    what,
                    detail: "its Docker-Content-Digest is not a valid sha256/sha512 digest".into(),
                })
            }
        })
}

#[derive(Deserialize)]
struct ConfigCreated {
    #[serde(default)]
    created: Option<String>,
}

/// The build time of the image at `digest`. For an index, the entry for the
/// first matching platform in `platforms` (`os/arch[/variant]`) is used; with
/// no platforms, `linux/amd64` if present, else the first real image (entries
/// for attestations, platform `unknown/unknown`, are skipped). `None` when no
/// entry matches or the config has no `created`.
pub async fn created(
    host: &Host,
    repository: &str,
    digest: &str,
    platforms: &[String],
) -> Result<Option<jiff::Timestamp>, RegistryError> {
    let manifest = fetch_manifest(host, repository, digest).await?;
    let image = match manifest {
        OciManifest::Image(image) => image,
        OciManifest::ImageIndex(index) => {
            let Some(entry) = choose_platform(&index.manifests, platforms) else {
                return Ok(None);
            };
            match fetch_manifest(host, repository, &entry.digest).await? {
                OciManifest::Image(image) => image,
                OciManifest::ImageIndex(_) => {
                    return Err(RegistryError::Malformed {
                        host: host.name.clone(),
                        what: format!("the index {digest} of {repository}"),
                        detail: "an index entry points at another index".into(),
                    })
                }
            }
        }
    };
    let what = format!("the config blob of {repository}@{digest}");
    let response = host
        .send(&Call {
            method: Method::GET,
            path: format!("/v2/{repository}/blobs/{}", image.config.digest),
            repository,
            accept: None,
            kind: "blob",
            what: what.clone(),
        })
        .await?;
    let body = read_body(host, response, &what).await?;
    super::digest::verify(&host.name, &what, &image.config.digest, &body)?;
    let config: ConfigCreated =
        serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
            host: host.name.clone(),
            what: what.clone(),
            detail: e.to_string(),
        })?;
    match config.created {
        None => Ok(None),
        Some(text) => {
            text.parse::<jiff::Timestamp>()
                .map(Some)
                .map_err(|e| RegistryError::Malformed {
                    host: host.name.clone(),
                    what,
                    detail: format!("created `{text}` is not an RFC 3339 time: {e}"),
                })
        }
    }
}

async fn fetch_manifest(
    host: &Host,
    repository: &str,
    reference: &str,
) -> Result<OciManifest, RegistryError> {
    let what = format!("the manifest {repository}@{reference}");
    let response = host
        .send(&Call {
            method: Method::GET,
            path: format!("/v2/{repository}/manifests/{reference}"),
            repository,
            accept: Some(MANIFEST_ACCEPT),
            kind: "manifest",
            what: what.clone(),
        })
        .await?;
    let body = read_body(host, response, &what).await?;
    if reference.contains(':') {
        super::digest::verify(&host.name, &what, reference, &body)?;
    }
    serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
        host: host.name.clone(),
        what,
        detail: e.to_string(),
    })
}

fn platform_of(entry: &ImageIndexEntry) -> Option<String> {
    let p = entry.platform.as_ref()?;
    let mut s = format!("{}/{}", p.os, p.architecture);
    if let Some(variant) = &p.variant {
        s.push('/');
        s.push_str(variant);
    }
    Some(s)
}

fn choose_platform<'a>(
    entries: &'a [ImageIndexEntry],
    platforms: &[String],
) -> Option<&'a ImageIndexEntry> {
    let real = |e: &&ImageIndexEntry| platform_of(e).is_some_and(|p| !p.starts_with("unknown/"));
    if platforms.is_empty() {
        return entries
            .iter()
            .filter(real)
            .find(|e| {
                platform_of(e).is_some_and(|p| p == "linux/amd64" || p.starts_with("linux/amd64/"))
            })
            .or_else(|| entries.iter().find(real));
    }
    platforms.iter().find_map(|wanted| {
        entries.iter().filter(real).find(|e| {
            platform_of(e).is_some_and(|p| p == *wanted || p.starts_with(&format!("{wanted}/")))
        })
    })
}
