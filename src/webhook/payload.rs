//! Payload shapes of each registry's push notification, and turning them
//! into [`ImageEvent`]s.
//!
//! Every field is optional at the serde level so that a missing field gives
//! a message naming it, and unknown fields are ignored (registries add
//! fields over time) — except in tidewatch's own `generic` format, where an
//! unknown field is most likely a typo.

use std::collections::HashSet;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;

use super::{ImageEvent, Source, WebhookError};
use crate::reference::{Reference, DOCKER_HUB};

/// Parses an (already authenticated) webhook body into image events.
///
/// Non-push events yield an empty list; a body that is not the source's
/// format is an error (400). Duplicate events are dropped, order kept.
pub fn parse(source: Source, body: &[u8]) -> Result<Vec<ImageEvent>, WebhookError> {
    let events = match source {
        Source::DockerHub => docker_hub(decode(source, body)?)?,
        Source::GitHub => github(decode(source, body)?)?,
        Source::Harbor => harbor(decode(source, body)?)?,
        Source::Quay => quay(decode(source, body)?)?,
        Source::Distribution => distribution(decode(source, body)?)?,
        Source::Generic => generic(decode(source, body)?)?,
    };
    let mut seen = HashSet::new();
    Ok(events
        .into_iter()
        .filter(|event| seen.insert(event.clone()))
        .collect())
}

fn decode<T: DeserializeOwned>(source: Source, body: &[u8]) -> Result<T, WebhookError> {
    let hint = if source == Source::GitHub && body.starts_with(b"payload=") {
        "; the body is form-encoded, set the GitHub webhook's content type to application/json"
    } else {
        ""
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = if inner.is_syntax() || inner.is_eof() || path == "." {
            format!("not the expected JSON: {inner}{hint}")
        } else {
            format!("at `{path}`: {inner}")
        };
        malformed(source, reason)
    })?;
    deserializer
        .end()
        .map_err(|e| malformed(source, format!("not the expected JSON: {e}{hint}")))?;
    Ok(value)
}

fn malformed(source: Source, reason: impl Into<String>) -> WebhookError {
    WebhookError::Malformed {
        sender: source,
        reason: reason.into(),
    }
}

/// Builds an event from an image name and an optional tag. `image` may carry
/// a tag only when `tag_in_image` (Harbor's `resource_url`, `generic`); a
/// digest there is ignored. An empty tag counts as no tag; a tag that differs
/// from the image's own is an error.
fn event(
    source: Source,
    image: &str,
    tag: Option<&str>,
    tag_in_image: bool,
) -> Result<ImageEvent, WebhookError> {
    let invalid = |error| WebhookError::InvalidImage {
        sender: source,
        error,
    };
    let reference = Reference::parse(image.trim()).map_err(invalid)?;
    if !tag_in_image && (reference.tag.is_some() || reference.digest.is_some()) {
        return Err(malformed(
            source,
            format!("image `{image}` must be a repository without `:tag` or `@digest`"),
        ));
    }
    let tag = tag.map(str::trim).filter(|t| !t.is_empty());
    let tag = match (tag, reference.tag.as_deref()) {
        (Some(given), Some(own)) if given != own => {
            return Err(malformed(
                source,
                format!("image `{image}` has tag `{own}` but the payload's tag is `{given}`"),
            ));
        }
        (Some(given), _) => {
            // Checks the tag's grammar with the reference parser.
            let tagged =
                Reference::parse(&format!("{}:{given}", reference.name)).map_err(invalid)?;
            if tagged.tag.as_deref() != Some(given) {
                return Err(malformed(source, format!("`{given}` is not a valid tag")));
            }
            Some(given.to_string())
        }
        (None, own) => own.map(str::to_string),
    };
    Ok(ImageEvent {
        image: reference.name,
        tag,
    })
}

fn required<'a>(
    source: Source,
    value: &'a Option<String>,
    field: &str,
) -> Result<&'a str, WebhookError> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| malformed(source, format!("`{field}` is missing or empty")))
}

// ---------------------------------------------------------------- Docker Hub

#[derive(Deserialize)]
struct DockerHubPayload {
    push_data: Option<DockerHubPush>,
    repository: Option<DockerHubRepository>,
}

#[derive(Deserialize)]
struct DockerHubPush {
    tag: Option<String>,
}

#[derive(Deserialize)]
struct DockerHubRepository {
    repo_name: Option<String>,
}

/// Docker Hub only sends pushes; `push_data` marks the payload as one.
fn docker_hub(payload: DockerHubPayload) -> Result<Vec<ImageEvent>, WebhookError> {
    let source = Source::DockerHub;
    let push = payload.push_data.ok_or_else(|| {
        malformed(
            source,
            "`push_data` is missing; is this a Docker Hub webhook?",
        )
    })?;
    let repository = payload
        .repository
        .ok_or_else(|| malformed(source, "`repository` is missing"))?;
    let name = required(source, &repository.repo_name, "repository.repo_name")?;
    // Always on Docker Hub; `nginx` becomes `docker.io/library/nginx`.
    let image = format!("{DOCKER_HUB}/{name}");
    Ok(vec![event(source, &image, push.tag.as_deref(), false)?])
}

// -------------------------------------------------------------------- GitHub

#[derive(Deserialize)]
struct GitHubPayload {
    action: Option<String>,
    package: Option<GitHubPackage>,
    registry_package: Option<GitHubPackage>,
    /// Present in every GitHub event (and `zen` in `ping`): marks a GitHub
    /// payload that is simply not about packages.
    sender: Option<IgnoredAny>,
    zen: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct GitHubPackage {
    name: Option<String>,
    namespace: Option<String>,
    owner: Option<GitHubOwner>,
    package_type: Option<String>,
    package_version: Option<GitHubVersion>,
}

#[derive(Deserialize)]
struct GitHubOwner {
    login: Option<String>,
}

#[derive(Deserialize)]
struct GitHubVersion {
    container_metadata: Option<GitHubContainerMetadata>,
}

#[derive(Deserialize)]
struct GitHubContainerMetadata {
    tag: Option<GitHubTag>,
}

#[derive(Deserialize)]
struct GitHubTag {
    name: Option<String>,
}

/// `package` / `registry_package` events with action `published` or
/// `updated` for container packages; everything else is not a push.
fn github(payload: GitHubPayload) -> Result<Vec<ImageEvent>, WebhookError> {
    let source = Source::GitHub;
    let package = match (payload.package, payload.registry_package) {
        (Some(package), _) | (None, Some(package)) => package,
        (None, None) if payload.sender.is_some() || payload.zen.is_some() => return Ok(Vec::new()),
        (None, None) => {
            return Err(malformed(
                source,
                "neither `package` nor `registry_package` is present; is this a GitHub webhook?",
            ))
        }
    };
    let published = matches!(payload.action.as_deref(), Some("published" | "updated"));
    let container = package
        .package_type
        .as_deref()
        .is_some_and(|kind| kind.eq_ignore_ascii_case("container"));
    if !published || !container {
        return Ok(Vec::new());
    }
    let name = required(source, &package.name, "package.name")?;
    let owner = package
        .namespace
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .or_else(|| {
            package
                .owner
                .as_ref()
                .and_then(|o| o.login.as_deref())
                .map(str::trim)
                .filter(|n| !n.is_empty())
        })
        .ok_or_else(|| {
            malformed(
                source,
                "neither `package.namespace` nor `package.owner.login` is present",
            )
        })?;
    let tag = package
        .package_version
        .and_then(|v| v.container_metadata)
        .and_then(|m| m.tag)
        .and_then(|t| t.name);
    // GHCR names are lower case whatever the account's spelling.
    let image = format!(
        "ghcr.io/{}/{}",
        owner.to_ascii_lowercase(),
        name.to_ascii_lowercase()
    );
    Ok(vec![event(source, &image, tag.as_deref(), false)?])
}

// -------------------------------------------------------------------- Harbor

#[derive(Deserialize)]
struct HarborPayload {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// `data` in Harbor's CloudEvents format.
    #[serde(alias = "data")]
    event_data: Option<HarborData>,
}

#[derive(Deserialize)]
struct HarborData {
    resources: Option<Vec<HarborResource>>,
}

#[derive(Deserialize)]
struct HarborResource {
    tag: Option<String>,
    resource_url: Option<String>,
}

/// Push types: `PUSH_ARTIFACT` (Harbor 2), `pushImage` (Harbor 1),
/// `harbor.artifact.pushed` (CloudEvents). One event per resource.
fn harbor(payload: HarborPayload) -> Result<Vec<ImageEvent>, WebhookError> {
    let source = Source::Harbor;
    let kind = required(source, &payload.kind, "type")?;
    if !matches!(
        kind,
        "PUSH_ARTIFACT" | "pushImage" | "harbor.artifact.pushed"
    ) {
        return Ok(Vec::new());
    }
    let resources = payload
        .event_data
        .and_then(|data| data.resources)
        .ok_or_else(|| malformed(source, "`event_data.resources` is missing"))?;
    resources
        .iter()
        .enumerate()
        .map(|(i, resource)| {
            let field = format!("event_data.resources[{i}].resource_url");
            let url = required(source, &resource.resource_url, &field)?;
            event(source, url, resource.tag.as_deref(), true)
        })
        .collect()
}

// ---------------------------------------------------------------------- Quay

#[derive(Deserialize)]
struct QuayPayload {
    repository: Option<String>,
    docker_url: Option<String>,
    updated_tags: Option<Vec<String>>,
}

/// `repo_push` notifications carry `updated_tags`; Quay's other
/// notifications (builds, vulnerabilities) do not and yield nothing.
fn quay(payload: QuayPayload) -> Result<Vec<ImageEvent>, WebhookError> {
    let source = Source::Quay;
    required(source, &payload.repository, "repository").map_err(|_| {
        malformed(
            source,
            "`repository` is missing; is this a Quay notification?",
        )
    })?;
    let Some(tags) = payload.updated_tags else {
        return Ok(Vec::new());
    };
    let url = required(source, &payload.docker_url, "docker_url")?;
    let image = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    if tags.is_empty() {
        return Ok(vec![event(source, image, None, false)?]);
    }
    tags.iter()
        .map(|tag| event(source, image, Some(tag), false))
        .collect()
}

// -------------------------------------------------------------- distribution

#[derive(Deserialize)]
struct DistributionEnvelope {
    events: Option<Vec<DistributionEvent>>,
}

#[derive(Deserialize)]
struct DistributionEvent {
    action: Option<String>,
    target: Option<DistributionTarget>,
    request: Option<DistributionRequest>,
}

#[derive(Deserialize)]
struct DistributionTarget {
    repository: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize)]
struct DistributionRequest {
    host: Option<String>,
}

/// Push events with a tag; pulls, deletes and tag-less pushes (blobs,
/// manifests by digest) are skipped. The registry host is the `Host` the
/// pusher used (`request.host`).
fn distribution(payload: DistributionEnvelope) -> Result<Vec<ImageEvent>, WebhookError> {
    let source = Source::Distribution;
    let events = payload.events.ok_or_else(|| {
        malformed(
            source,
            "`events` is missing; is this a distribution notification envelope?",
        )
    })?;
    let mut out = Vec::new();
    for (i, item) in events.iter().enumerate() {
        if item.action.as_deref() != Some("push") {
            continue;
        }
        let Some(target) = &item.target else {
            return Err(malformed(
                source,
                format!("`events[{i}].target` is missing"),
            ));
        };
        let Some(tag) = target
            .tag
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            continue;
        };
        let repository = required(
            source,
            &target.repository,
            &format!("events[{i}].target.repository"),
        )?;
        let host = item.request.as_ref().and_then(|r| r.host.clone());
        let host = required(source, &host, &format!("events[{i}].request.host"))?;
        let host = host.to_ascii_lowercase();
        let found = event(source, &format!("{host}/{repository}"), Some(tag), false)?;
        // A host without `.` or `:` (and not `localhost`) would be read as a
        // Docker Hub namespace.
        if found.image.registry != host {
            return Err(malformed(
                source,
                format!("`events[{i}].request.host` `{host}` is not usable as a registry host; push through a name with a `.` or a `:port`"),
            ));
        }
        out.push(found);
    }
    Ok(out)
}

// ------------------------------------------------------------------- generic

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericPayload {
    image: Option<String>,
    tag: Option<String>,
}

/// `{"image": "ghcr.io/acme/app", "tag": "1.2.3"}`; the tag is optional and
/// may be written in `image` instead.
fn generic(payload: GenericPayload) -> Result<Vec<ImageEvent>, WebhookError> {
    let source = Source::Generic;
    let image = required(source, &payload.image, "image")?;
    Ok(vec![event(source, image, payload.tag.as_deref(), true)?])
}
