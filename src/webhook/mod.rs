//! Registry webhooks: turn a registry's "something was pushed" request into
//! "scan this image now" events.
//!
//! Why this module is small and distrustful: a webhook only asks for an
//! *early* scan. It never carries trust beyond naming an image — the tag or
//! digest in a payload is not used to pick an update; the normal scan then
//! asks the registry itself and applies the policy as on any schedule. A
//! forged or replayed webhook can therefore at worst cause an extra scan, and
//! the authentication below exists to keep even that to the registries the
//! operator set up.
//!
//! Flow, in [`handle`]: body size cap ([`MAX_BODY`], 413) → [`authenticate`]
//! (401) → [`parse`] (400). The HTTP layer must cap how much it reads too
//! (e.g. read at most `MAX_BODY + 1` bytes); [`handle`] only sees the bytes it
//! is given.
//!
//! Authentication per [`Source`] (unless [`Authentication::Disabled`], which
//! must be chosen explicitly):
//!
//! | source | accepted credentials |
//! |---|---|
//! | `github` | `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>` |
//! | `generic`, `distribution` | `X-Tidewatch-Signature-256: sha256=<hex HMAC>` or `Authorization: Bearer <secret>` |
//! | `dockerhub`, `harbor`, `quay` | `?token=<secret>` in the query or `Authorization: Bearer <secret>` |
//!
//! Every credential that is sent must be valid (a correct token next to a
//! wrong signature is refused), and at least one must be sent. All
//! comparisons are constant time. The `token` query value is percent-decoded;
//! `+` stays a literal `+`, so prefer URL-safe secrets.
//!
//! Payload decisions (see [`parse`]): events that are not pushes yield no
//! events (so GitHub's `ping` or a Harbor scan report succeed with nothing to
//! do); events are de-duplicated in order; a push whose tag is unknown yields
//! an event with `tag: None` (scan the whole image), except distribution
//! notifications, whose tag-less pushes (blob uploads and manifests pushed by
//! digest) are skipped because they cannot have moved a tag.

mod auth;
mod payload;
pub mod replay;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use crate::reference::{ImageName, ReferenceError};
use crate::secret::Secret;

pub use auth::authenticate;
pub use payload::parse;
pub use replay::ReplayGuard;

/// Largest accepted request body: 1 MiB. Registry notifications are a few KiB.
pub const MAX_BODY: usize = 1024 * 1024;

/// The kind of registry sending a webhook; chosen by the URL path segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    DockerHub,
    GitHub,
    Harbor,
    Quay,
    /// CNCF distribution (`registry:2`) notifications.
    Distribution,
    /// tidewatch's own format: `{"image": "...", "tag": "..."}`.
    Generic,
}

impl Source {
    /// All sources, in URL-segment order.
    pub const ALL: [Source; 6] = [
        Source::DockerHub,
        Source::GitHub,
        Source::Harbor,
        Source::Quay,
        Source::Distribution,
        Source::Generic,
    ];

    /// The URL path segment naming this source.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::DockerHub => "dockerhub",
            Source::GitHub => "github",
            Source::Harbor => "harbor",
            Source::Quay => "quay",
            Source::Distribution => "distribution",
            Source::Generic => "generic",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = WebhookError;

    /// Parses a URL path segment; ASCII case is ignored.
    fn from_str(text: &str) -> Result<Source, WebhookError> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| WebhookError::UnknownSource {
                given: text.chars().take(64).collect(),
            })
    }
}

/// "Scan this image now": the repository and, when the payload names one,
/// the pushed tag (a hint only; the scan lists tags itself).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageEvent {
    pub image: ImageName,
    pub tag: Option<String>,
}

/// The parts of an HTTP request a webhook needs.
pub struct Request<'a> {
    /// Header names in lower case (matched ASCII-case-insensitively anyway).
    pub headers: &'a [(String, String)],
    /// The raw query string, without the leading `?`.
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The first header called `name` (ASCII case ignored).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Header values and the query can hold credentials, so `Debug` shows header
/// names, whether there is a query, and the body's length only.
impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Request")
            .field("headers", &names)
            .field("query", &self.query.map(|_| "***"))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// How webhook requests are authenticated.
#[derive(Clone, Debug)]
pub enum Authentication {
    /// The shared secret: HMAC key or token, depending on the [`Source`].
    Secret(Secret),
    /// No authentication at all; must be configured explicitly.
    Disabled,
}

/// Why a webhook request was refused. Messages never contain the secret or
/// credentials from the request.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(
        "unknown webhook source `{given}`; use one of dockerhub, github, harbor, quay, distribution, generic in the URL path"
    )]
    UnknownSource { given: String },

    #[error(
        "{sender} webhook body is {size} bytes, over the {limit}-byte limit; registry notifications are small, so check what is posting here"
    )]
    BodyTooLarge {
        sender: Source,
        size: usize,
        limit: usize,
    },

    #[error("{sender} webhook request carries no credentials; {expected}")]
    MissingCredentials {
        sender: Source,
        expected: &'static str,
    },

    #[error(
        "{sender} webhook header `{header}` is malformed ({reason}); send `sha256=<hex HMAC-SHA256 of the body>`"
    )]
    MalformedSignature {
        sender: Source,
        header: &'static str,
        reason: &'static str,
    },

    #[error(
        "{sender} webhook signature in `{header}` does not match the body; make the webhook's secret the same as tidewatch's webhook secret"
    )]
    BadSignature {
        sender: Source,
        header: &'static str,
    },

    #[error(
        "{sender} webhook {location} does not match the configured secret; update the webhook's token to tidewatch's webhook secret"
    )]
    WrongToken {
        sender: Source,
        location: &'static str,
    },

    #[error(
        "the webhook secret for {sender} is empty, which anyone could match; configure a non-empty secret (or disable authentication explicitly)"
    )]
    EmptySecret { sender: Source },

    #[error("{sender} webhook refused as a replay: {reason}")]
    Replay { sender: Source, reason: String },

    #[error("{sender} webhook payload is malformed: {reason}")]
    Malformed { sender: Source, reason: String },

    #[error("{sender} webhook payload names an invalid image: {error}")]
    InvalidImage {
        sender: Source,
        #[source]
        error: ReferenceError,
    },
}

impl WebhookError {
    /// The HTTP status to answer with.
    ///
    /// 404 for an unknown source (an unknown URL), 413 for a body over
    /// [`MAX_BODY`], 401 for authentication failures, 500 for an empty
    /// configured secret (the server is misconfigured, not the sender), 400
    /// for payloads that cannot be understood.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::UnknownSource { .. } => 404,
            WebhookError::BodyTooLarge { .. } => 413,
            WebhookError::MissingCredentials { .. }
            | WebhookError::MalformedSignature { .. }
            | WebhookError::BadSignature { .. }
            | WebhookError::WrongToken { .. } => 401,
            WebhookError::EmptySecret { .. } => 500,
            WebhookError::Replay { .. } => 409,
            WebhookError::Malformed { .. } | WebhookError::InvalidImage { .. } => 400,
        }
    }
}

/// Refuses a body over [`MAX_BODY`] before anything else looks at it.
fn check_size(source: Source, request: &Request) -> Result<(), WebhookError> {
    if request.body.len() > MAX_BODY {
        return Err(WebhookError::BodyTooLarge {
            sender: source,
            size: request.body.len(),
            limit: MAX_BODY,
        });
    }
    Ok(())
}

/// The whole pipeline: size cap, then authentication, then parsing. Nothing
/// in the body is looked at before the request is authenticated.
pub fn handle(
    source: Source,
    auth: &Authentication,
    request: &Request,
) -> Result<Vec<ImageEvent>, WebhookError> {
    check_size(source, request)?;
    authenticate(source, auth, request)?;
    parse(source, request.body)
}

/// [`handle`], then (for requests authenticated with the secret) the
/// replay checks of [`ReplayGuard`], before the payload is parsed.
pub fn handle_guarded(
    source: Source,
    auth: &Authentication,
    request: &Request,
    guard: &ReplayGuard,
) -> Result<Vec<ImageEvent>, WebhookError> {
    check_size(source, request)?;
    authenticate(source, auth, request)?;
    if matches!(auth, Authentication::Secret(_)) {
        guard.check(
            source,
            request,
            std::time::Instant::now(),
            jiff::Timestamp::now().as_second(),
        )?;
    }
    parse(source, request.body)
}
