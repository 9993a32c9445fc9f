//! Listing every tag of a repository, across pages.
//!
//! Registries page `tags/list` differently: GHCR and Quay send a `Link:
//! <…>; rel="next"` header, some honour `?last=` without sending a link, and
//! CNCF distribution 2.8 ignores `?n=` and returns everything at once. So:
//! follow `Link` when present; without one, ask for the next page with
//! `last=` only when the page came back exactly full (a registry that
//! ignored `n` sent more, and has nothing left); stop when a page adds no new
//! tag or a link repeats, so a buggy registry cannot make us loop; and give
//! up with an error past the page budget rather than act on a partial list.

use std::collections::HashSet;

use reqwest::header::LINK;
use reqwest::{Method, Response};
use serde::Deserialize;

use super::error::RegistryError;
use super::transport::{Call, Host};

/// Largest body read from a registry (a tag list of ~1M tags fits).
const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Deserialize)]
struct TagPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// A repository's tags, and how many the registry sent that are not valid
/// OCI tags (skipped: a tag with a newline must never reach a commit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagList {
    pub tags: Vec<String>,
    pub invalid: usize,
}

/// The OCI distribution spec's tag grammar:
/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

pub async fn list_tags(host: &Host, repository: &str) -> Result<TagList, RegistryError> {
    let n = host.settings.page_size.max(1);
    let mut path = format!("/v2/{repository}/tags/list?n={n}");
    let mut requested: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut tags: Vec<String> = Vec::new();
    let mut invalid = 0;
    let mut pages = 0;
    // A registry that has sent a `Link` once paginates by links: a page
    // without one is its last, and `last=` is not tried.
    let mut links_seen = false;
    loop {
        if !requested.insert(path.clone()) {
            tracing::warn!(host = %host.name, repository, "registry repeated a tags page link; stopping");
            break;
        }
        pages += 1;
        if pages > host.settings.page_budget {
            return Err(RegistryError::PageBudget {
                host: host.name.clone(),
                repository: repository.to_string(),
                pages: host.settings.page_budget,
            });
        }
        let what = format!("the tag list of {repository}");
        let response = host
            .send(&Call {
                method: Method::GET,
                path: path.clone(),
                repository,
                accept: Some("application/json"),
                kind: "tags",
                what: what.clone(),
            })
            .await?;
        let link = response
            .headers()
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(next_link);
        let body = read_body(host, response, &what).await?;
        let page: TagPage =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                host: host.name.clone(),
                what: what.clone(),
                detail: e.to_string(),
            })?;
        let page_tags = page.tags.unwrap_or_default();
        let page_len = page_tags.len();
        let last = page_tags.last().cloned();
        let mut added = 0;
        for tag in page_tags {
            if !is_valid_tag(&tag) {
                invalid += 1;
                continue;
            }
            if seen.insert(tag.clone()) {
                tags.push(tag);
                added += 1;
            }
        }
        if added == 0 && pages > 1 {
            tracing::warn!(host = %host.name, repository, "registry returned a page with no new tags; stopping");
            break;
        }
        links_seen |= link.is_some();
        path = match (link, last) {
            (Some(link), _) => same_host_path(&link, host, repository)?,
            (None, Some(last)) if page_len == n && !links_seen => {
                format!("/v2/{repository}/tags/list?n={n}&last={}", encode(&last))
            }
            _ => break,
        };
    }
    if invalid > 0 {
        tracing::warn!(host = %host.name, repository, invalid, "the registry listed tags that are not valid OCI tags; skipped");
    }
    Ok(TagList { tags, invalid })
}

/// Reads a body up to [`MAX_BODY`].
pub async fn read_body(
    host: &Host,
    mut response: Response,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(RegistryError::Malformed {
                        host: host.name.clone(),
                        what: what.to_string(),
                        detail: format!("the response is larger than {} MiB", MAX_BODY >> 20),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(RegistryError::Unreachable {
                    host: host.name.clone(),
                    detail: format!("the connection broke while reading {what}: {e}"),
                })
            }
        }
    }
}

/// The target of a `rel="next"` link in a `Link` header value.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            p.trim().trim_start_matches("rel=").trim_matches('"') == "next" && p.contains("rel")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

/// A link is followed only to the same registry: credentials must not go
/// elsewhere, and stopping there would act on a partial tag list, so a link
/// to another host is an error. Relative links resolve against the registry.
fn same_host_path(link: &str, host: &Host, repository: &str) -> Result<String, RegistryError> {
    let base = host.base_url();
    let target = base.join(link).map_err(|e| RegistryError::Malformed {
        host: host.name.clone(),
        what: format!("the tag list of {repository}"),
        detail: format!("its next-page link {link:?} is not a URL ({e})"),
    })?;
    if target.origin() != base.origin() {
        return Err(RegistryError::Malformed {
            host: host.name.clone(),
            what: format!("the tag list of {repository}"),
            detail: format!(
                "its next-page link points at another host ({}); the rest of the list cannot be read safely, so the listing is refused rather than used partially",
                target.origin().ascii_serialization()
            ),
        });
    }
    let mut path = target.path().to_string();
    if let Some(query) = target.query() {
        path.push('?');
        path.push_str(query);
    }
    Ok(path)
}

/// What a query value keeps unescaped: RFC 3986's unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes what is not unreserved in a query value.
fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=x&n=100>; rel="next""#),
            Some("/v2/a/tags/list?last=x&n=100".into())
        );
        assert_eq!(
            next_link(
                r#"<https://r.io/v2/a/tags/list?last=x>; rel="prev", <https://r.io/v2/a/tags/list?last=y>; rel=next"#
            ),
            Some("https://r.io/v2/a/tags/list?last=y".into())
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }

    #[test]
    fn tag_grammar() {
        for good in ["1.2.3", "v1", "_x", "latest", "a-b_c.d", &"a".repeat(128)] {
            assert!(is_valid_tag(good), "{good}");
        }
        for bad in [
            "",
            "-x",
            ".x",
            "1.0\nrm",
            "a b",
            "a/b",
            "é",
            &"a".repeat(129),
        ] {
            assert!(!is_valid_tag(bad), "{bad:?}");
        }
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("v1.2_3-x"), "v1.2_3-x");
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }
}
