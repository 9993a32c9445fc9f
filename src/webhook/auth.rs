//! Checking a webhook request's signature or token against the shared
//! secret, in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Authentication, Request, Source, WebhookError};
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// GitHub's signature header.
const GITHUB_SIGNATURE: &str = "x-hub-signature-256";
/// tidewatch's signature header for `generic` and `distribution`.
const TIDEWATCH_SIGNATURE: &str = "x-tidewatch-signature-256";

/// Checks the request's credentials for `source` (see the module docs for
/// which credentials each source accepts). Does not look at the payload.
pub fn authenticate(
    source: Source,
    auth: &Authentication,
    request: &Request,
) -> Result<(), WebhookError> {
    let secret = match auth {
        Authentication::Disabled => return Ok(()),
        Authentication::Secret(secret) => secret,
    };
    if secret.expose().is_empty() {
        return Err(WebhookError::EmptySecret { sender: source });
    }
    match source {
        Source::GitHub => match request.header(GITHUB_SIGNATURE) {
            Some(value) => check_signature(source, secret, GITHUB_SIGNATURE, value, request.body),
            None => Err(WebhookError::MissingCredentials {
                sender: source,
                expected: "set the GitHub webhook's secret to tidewatch's webhook secret so that GitHub sends `X-Hub-Signature-256`",
            }),
        },
        Source::Generic | Source::Distribution => {
            let signature = request.header(TIDEWATCH_SIGNATURE);
            let bearer = bearer(request);
            if signature.is_none() && bearer.is_none() {
                return Err(WebhookError::MissingCredentials {
                    sender: source,
                    expected: "send `X-Tidewatch-Signature-256: sha256=<hex HMAC-SHA256 of the body>` or `Authorization: Bearer <secret>`",
                });
            }
            if let Some(value) = signature {
                // With a timestamp, the signature covers `timestamp.body`,
                // so the timestamp cannot be changed to make a replay fresh.
                match request.header(super::replay::TIMESTAMP_HEADER) {
                    Some(timestamp) => {
                        let mut signed = Vec::with_capacity(timestamp.len() + 1 + request.body.len());
                        signed.extend_from_slice(timestamp.trim().as_bytes());
                        signed.push(b'.');
                        signed.extend_from_slice(request.body);
                        check_signature(source, secret, TIDEWATCH_SIGNATURE, value, &signed)?;
                    }
                    None => {
                        check_signature(source, secret, TIDEWATCH_SIGNATURE, value, request.body)?
                    }
                }
            }
            if let Some(token) = bearer {
                check_token(source, secret, "bearer token", token)?;
            }
            Ok(())
        }
        Source::DockerHub | Source::Harbor | Source::Quay => {
            let bearer = bearer(request);
            let query = query_token(request.query);
            if bearer.is_none() && query.is_none() {
                return Err(WebhookError::MissingCredentials {
                    sender: source,
                    expected: "add `?token=<secret>` to the webhook URL or send `Authorization: Bearer <secret>`",
                });
            }
            if let Some(token) = bearer {
                check_token(source, secret, "bearer token", token)?;
            }
            match query {
                None => Ok(()),
                // A `token` that is not valid percent-encoding cannot match.
                Some(None) => Err(WebhookError::WrongToken {
                    sender: source,
                    location: "`token` query parameter",
                }),
                Some(Some(token)) => {
                    check_token(source, secret, "`token` query parameter", &token)
                }
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header; other schemes
/// are not credentials for tidewatch and are ignored.
fn bearer<'a>(request: &'a Request) -> Option<&'a str> {
    let value = request.header("authorization")?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// The first `token` query parameter: `None` if absent, `Some(None)` if its
/// percent-encoding is invalid.
fn query_token(query: Option<&str>) -> Option<Option<String>> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "token")
        .map(|(_, value)| percent_decode(value))
}

/// Decodes `%XX` escapes (`+` stays `+`); `None` unless the result is UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

/// An HMAC-SHA256 keyed with the secret. HMAC takes keys of any length, so
/// this cannot fail in practice; if it did, the request is refused.
fn keyed(secret: &Secret) -> Option<HmacSha256> {
    <HmacSha256 as KeyInit>::new_from_slice(secret.expose().as_bytes()).ok()
}

/// Checks `sha256=<hex>` against HMAC-SHA256(secret, body).
fn check_signature(
    source: Source,
    secret: &Secret,
    header: &'static str,
    value: &str,
    body: &[u8],
) -> Result<(), WebhookError> {
    let malformed = |reason| WebhookError::MalformedSignature {
        sender: source,
        header,
        reason,
    };
    let hex = value
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| malformed("it does not start with `sha256=`"))?;
    let signature = hex_decode(hex).ok_or_else(|| malformed("the digest is not hexadecimal"))?;
    let mut mac = keyed(secret).ok_or_else(|| bad_signature(source, header))?;
    mac.update(body);
    // `verify_slice` compares in constant time and refuses wrong lengths.
    mac.verify_slice(&signature)
        .map_err(|_| bad_signature(source, header))
}

fn bad_signature(source: Source, header: &'static str) -> WebhookError {
    WebhookError::BadSignature {
        sender: source,
        header,
    }
}

/// Compares a token with the secret in constant time: both are run through
/// HMAC keyed with the secret, so the comparison is between equal-length
/// tags and leaks neither the secret's length nor a matching prefix.
fn check_token(
    source: Source,
    secret: &Secret,
    location: &'static str,
    token: &str,
) -> Result<(), WebhookError> {
    let wrong = || WebhookError::WrongToken {
        sender: source,
        location,
    };
    let mut expected = keyed(secret).ok_or_else(wrong)?;
    expected.update(secret.expose().as_bytes());
    let expected = expected.finalize().into_bytes();
    let mut given = keyed(secret).ok_or_else(wrong)?;
    given.update(token.as_bytes());
    given.verify_slice(&expected).map_err(|_| wrong())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%3d+c").as_deref(), Some("a/b=+c"));
        // Invalid escapes are kept as written (they can never match a secret
        // that is itself valid text); invalid UTF-8 is refused.
        assert_eq!(percent_decode("%zz").as_deref(), Some("%zz"));
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(
            query_token(Some("x=1&token=s%20t")),
            Some(Some("s t".into()))
        );
        assert_eq!(query_token(Some("tokens=1")), None);
        assert_eq!(query_token(None), None);
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(hex_decode("00fFa1"), Some(vec![0, 255, 161]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
    }
}
