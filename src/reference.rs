//! Image references: parsing and the normal form used to compare names.
//!
//! `nginx`, `docker.io/library/nginx` and `index.docker.io/library/nginx` are
//! the same repository. Policies, manifests and webhooks each spell images
//! their own way, so every comparison goes through [`ImageName::normalized`].
//! Parsing is `oci-client`'s (Docker's grammar: the first path component is
//! a registry host only if it contains `.` or `:` or is `localhost`;
//! otherwise the image is on Docker Hub, under `library/` if it has one
//! component). This module adds the normal form used as a map key, and the
//! Docker Hub API host.

use std::fmt;

/// Docker Hub's canonical name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A repository: registry host plus path, without tag or digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageName {
    /// `docker.io`, `ghcr.io`, `localhost:5000`, …
    pub registry: String,
    /// `library/nginx`, `acme/app`, …
    pub repository: String,
}

/// A full reference: `name[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    pub name: ImageName,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` is not a valid image reference: {reason}")]
pub struct ReferenceError {
    pub reference: String,
    pub reason: String,
}

impl ImageName {
    /// Parses a repository name; a tag or digest is an error here.
    pub fn parse(text: &str) -> Result<ImageName, ReferenceError> {
        let reference = Reference::parse(text)?;
        if reference.tag.is_some() || reference.digest.is_some() {
            return Err(ReferenceError {
                reference: text.to_string(),
                reason: "give the repository only, without `:tag` or `@digest`".into(),
            });
        }
        Ok(reference.name)
    }

    /// `registry/repository` with Docker Hub spelled `docker.io`.
    pub fn normalized(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host to send registry API requests to.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

impl Reference {
    /// Parses with `oci-client`'s reference grammar (Docker's), then maps
    /// Docker Hub's other host names to `docker.io`.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let parsed = oci_client::Reference::try_from(text).map_err(|e| ReferenceError {
            reference: text.to_string(),
            reason: e.to_string(),
        })?;
        // oci-spec accepts upper case in the path, which registries refuse.
        if parsed.repository().bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError {
                reference: text.to_string(),
                reason: "repository names are lower case".into(),
            });
        }
        let registry = match parsed.registry() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            other => other.to_string(),
        };
        let repository = if registry == DOCKER_HUB && !parsed.repository().contains('/') {
            format!("library/{}", parsed.repository())
        } else {
            parsed.repository().to_string()
        };
        Ok(Reference {
            name: ImageName {
                registry,
                repository,
            },
            // oci-spec fills in `latest` when no tag is written; only a
            // written tag counts here (a policy's `image:` must have none).
            tag: has_written_tag(text)
                .then(|| parsed.tag().map(str::to_string))
                .flatten(),
            digest: parsed.digest().map(str::to_string),
        })
    }
}

/// True when `text` spells a tag: a `:` in its last path segment, before
/// any `@digest` (a `:` in an earlier segment is a registry port).
fn has_written_tag(text: &str) -> bool {
    text.rsplit('/')
        .next()
        .and_then(|last| last.split('@').next())
        .is_some_and(|name| name.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        ImageName::parse(s).unwrap().normalized()
    }

    #[test]
    fn docker_hub_names_normalise_to_one_form() {
        assert_eq!(norm("nginx"), "docker.io/library/nginx");
        assert_eq!(norm("docker.io/library/nginx"), "docker.io/library/nginx");
        assert_eq!(
            norm("index.docker.io/library/nginx"),
            "docker.io/library/nginx"
        );
        assert_eq!(norm("bitnami/redis"), "docker.io/bitnami/redis");
        assert_eq!(
            ImageName::parse("nginx").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn hosts_with_ports_and_localhost() {
        assert_eq!(norm("localhost:5000/team/app"), "localhost:5000/team/app");
        assert_eq!(norm("localhost/app"), "localhost/app");
        assert_eq!(norm("ghcr.io/acme/app"), "ghcr.io/acme/app");
        assert_eq!(
            ImageName::parse("ghcr.io/acme/app").unwrap().api_host(),
            "ghcr.io"
        );
    }

    #[test]
    fn tags_and_digests() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost:5000/app:1.2.3@{digest}")).unwrap();
        assert_eq!(r.name.normalized(), "localhost:5000/app");
        assert_eq!(r.tag.as_deref(), Some("1.2.3"));
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(r.tag, None);
    }

    #[test]
    fn malformed_references_are_errors() {
        for bad in [
            "",
            "UPPER/app",
            "app:",
            "app:-bad",
            "app@sha256:xyz",
            "a//b",
            "ghcr.io/",
            "app_-x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(ImageName::parse("nginx:1.25").is_err());
    }
}
