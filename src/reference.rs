//! Image references: parsing and the normal form used to compare names.
//!
//! `nginx`, `docker.io/library/nginx` and `index.docker.io/library/nginx` are
//! the same repository. Policies, manifests and webhooks each spell images
//! their own way, so every comparison goes through [`ImageName::normalized`].
//! The rules are Docker's: the first path component is a registry host only
//! if it contains `.` or `:` or is `localhost`; otherwise the image is on
//! Docker Hub, and a single-component name lives under `library/`.

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
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let fail = |reason: &str| ReferenceError {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(fail("it is empty"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let (algorithm, hex) = digest
                    .split_once(':')
                    .ok_or_else(|| fail("a digest looks like `sha256:<hex>`"))?;
                if algorithm.is_empty()
                    || hex.len() < 32
                    || !hex
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                {
                    return Err(fail(
                        "a digest looks like `sha256:<64 lowercase hex digits>`",
                    ));
                }
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // A tag is after the last `:` that follows the last `/`, so the port
        // in `localhost:5000/app` is not mistaken for one.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !valid_tag(tag) {
                    return Err(fail(
                        "a tag is 1-128 of [A-Za-z0-9_.-] and does not start with `.` or `-`",
                    ));
                }
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if repository.is_empty() || !repository.split('/').all(valid_component) {
            return Err(fail(
                "path components are lowercase letters and digits, joined by `.`, `_`, `__` or `-`",
            ));
        }
        Ok(Reference {
            name: ImageName {
                registry,
                repository,
            },
            tag,
            digest,
        })
    }
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty()
        || !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
    {
        return false;
    }
    if bytes.iter().any(|b| b.is_ascii_uppercase()) {
        return false;
    }
    // Separators: `.`, `_`, `__`, or any run of `-`, always between
    // alphanumerics.
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
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
