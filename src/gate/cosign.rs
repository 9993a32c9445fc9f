//! Verifying cosign signatures of one image digest against trusted keys,
//! from the material the registry holds (see `registry::signatures`).
//!
//! Two layouts, both written by cosign:
//! * **the `.sig` tag** (`sha256-<hex>.sig`): each simple-signing layer is
//!   a JSON payload whose `critical.image.docker-manifest-digest` names the
//!   signed image; the layer annotation `dev.cosignproject.cosign/signature`
//!   holds the base64 ECDSA signature over the payload's exact bytes;
//! * **a sigstore bundle referrer**: a v0.3 bundle whose DSSE envelope
//!   carries an in-toto statement with predicate type
//!   `https://sigstore.dev/cosign/sign/v1` and the image digest as subject;
//!   the signature is over DSSE's pre-authentication encoding (PAE).
//!
//! The signature is always checked over the bytes exactly as downloaded,
//! before the payload is parsed; nothing is re-serialised.

use base64::Engine as _;
use serde::Deserialize;

use super::keys::Keys;
use crate::registry::{SignatureMaterial, SimpleSignature};

/// The simple-signing payload type cosign writes.
const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";
/// DSSE payload type of an in-toto statement.
const IN_TOTO: &str = "application/vnd.in-toto+json";
/// The predicate type of `cosign sign` in the bundle format.
const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
const STATEMENT_TYPES: [&str; 2] = [
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];

/// Where a signature was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// The classic `sha256-<hex>.sig` tag.
    SigTag,
    /// A sigstore bundle stored as an OCI referrer of the image.
    Referrer,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::SigTag => "the .sig tag",
            Layout::Referrer => "a sigstore bundle referrer",
        })
    }
}

/// What signature verification concluded for one digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureVerdict {
    /// A configured key signed a payload naming this digest.
    Verified { layout: Layout, key: String },
    /// A configured key signed, but over another digest.
    OtherDigest { layout: Layout, digest: String },
    /// Signatures exist, but none verifies with a configured key.
    OtherKey { layout: Layout },
    /// Signature material exists but cannot be read.
    Malformed { layout: Layout, detail: String },
    /// Neither layout holds a signature.
    Unsigned,
}

impl SignatureVerdict {
    pub fn is_verified(&self) -> bool {
        matches!(self, SignatureVerdict::Verified { .. })
    }

    /// How telling a verdict is: the most telling of several is reported.
    fn weight(&self) -> u8 {
        match self {
            SignatureVerdict::Verified { .. } => 4,
            SignatureVerdict::OtherDigest { .. } => 3,
            SignatureVerdict::OtherKey { .. } => 2,
            SignatureVerdict::Malformed { .. } => 1,
            SignatureVerdict::Unsigned => 0,
        }
    }

    /// The more telling of two verdicts.
    pub fn or(self, other: SignatureVerdict) -> SignatureVerdict {
        if other.weight() > self.weight() {
            other
        } else {
            self
        }
    }
}

impl std::fmt::Display for SignatureVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureVerdict::Verified { layout, key } => {
                write!(f, "signed by {key} ({layout})")
            }
            SignatureVerdict::OtherDigest { layout, digest } => write!(
                f,
                "signed by a configured key, but over another digest ({digest}) in {layout}"
            ),
            SignatureVerdict::OtherKey { layout } => {
                write!(f, "signed, but by no configured key ({layout})")
            }
            SignatureVerdict::Malformed { layout, detail } => {
                write!(f, "its signature in {layout} cannot be read: {detail}")
            }
            SignatureVerdict::Unsigned => {
                f.write_str("not signed: no .sig tag and no sigstore bundle among its referrers")
            }
        }
    }
}

/// The verdict of everything in `material` for image `digest`.
pub fn verify(material: &SignatureMaterial, digest: &str, keys: &Keys) -> SignatureVerdict {
    let mut verdict = SignatureVerdict::Unsigned;
    for simple in &material.simple {
        verdict = verdict.or(verify_simple(simple, digest, keys));
        if verdict.is_verified() {
            return verdict;
        }
    }
    for bundle in &material.bundles {
        verdict = verdict.or(verify_bundle(bundle, digest, keys));
        if verdict.is_verified() {
            return verdict;
        }
    }
    verdict
}

#[derive(Deserialize)]
struct SimplePayload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: CriticalImage,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct CriticalImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

fn verify_simple(simple: &SimpleSignature, digest: &str, keys: &Keys) -> SignatureVerdict {
    let layout = Layout::SigTag;
    let Some(signature) = decode_base64(&simple.signature) else {
        return SignatureVerdict::Malformed {
            layout,
            detail: "the signature annotation is not base64".into(),
        };
    };
    let Some(key) = keys.verifies(&simple.payload, &signature) else {
        return SignatureVerdict::OtherKey { layout };
    };
    let payload: SimplePayload = match serde_json::from_slice(&simple.payload) {
        Ok(p) => p,
        Err(e) => {
            return SignatureVerdict::Malformed {
                layout,
                detail: format!("the signed payload is not a simple-signing payload ({e})"),
            }
        }
    };
    if payload.critical.kind != SIMPLE_SIGNING_TYPE {
        return SignatureVerdict::Malformed {
            layout,
            detail: format!(
                "the signed payload's type is `{}`, not `{SIMPLE_SIGNING_TYPE}`",
                payload.critical.kind
            ),
        };
    }
    if payload.critical.image.digest != digest {
        return SignatureVerdict::OtherDigest {
            layout,
            digest: payload.critical.image.digest,
        };
    }
    SignatureVerdict::Verified {
        layout,
        key: key.to_string(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    dsse_envelope: Option<Envelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    #[serde(default)]
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    #[serde(default)]
    subject: Vec<Subject>,
    #[serde(default)]
    predicate_type: String,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

/// DSSE's pre-authentication encoding: what the signature covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn verify_bundle(bytes: &[u8], digest: &str, keys: &Keys) -> SignatureVerdict {
    let layout = Layout::Referrer;
    let malformed = |detail: String| SignatureVerdict::Malformed { layout, detail };
    let bundle: Bundle = match serde_json::from_slice(bytes) {
        Ok(b) => b,
        Err(e) => return malformed(format!("the bundle is not JSON ({e})")),
    };
    if !bundle
        .media_type
        .starts_with("application/vnd.dev.sigstore.bundle")
    {
        return malformed(format!(
            "`{}` is not a sigstore bundle media type",
            bundle.media_type
        ));
    }
    let Some(envelope) = bundle.dsse_envelope else {
        return malformed(
            "the bundle holds no DSSE envelope (cosign signs images with one)".into(),
        );
    };
    if envelope.payload_type != IN_TOTO {
        return malformed(format!(
            "the envelope's payload type is `{}`, not `{IN_TOTO}`",
            envelope.payload_type
        ));
    }
    let Some(payload) = decode_base64(&envelope.payload) else {
        return malformed("the envelope's payload is not base64".into());
    };
    let signed = pae(&envelope.payload_type, &payload);
    let key = envelope
        .signatures
        .iter()
        .filter_map(|s| decode_base64(&s.sig))
        .find_map(|sig| keys.verifies(&signed, &sig));
    let Some(key) = key else {
        return SignatureVerdict::OtherKey { layout };
    };
    let statement: Statement = match serde_json::from_slice(&payload) {
        Ok(s) => s,
        Err(e) => return malformed(format!("the signed statement is not JSON ({e})")),
    };
    if !STATEMENT_TYPES.contains(&statement.kind.as_str()) {
        return malformed(format!("`{}` is not an in-toto statement", statement.kind));
    }
    if statement.predicate_type != COSIGN_SIGN_PREDICATE {
        // An attestation (SBOM, provenance…) by the same key: not a signature.
        return SignatureVerdict::Unsigned;
    }
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    if statement
        .subject
        .iter()
        .any(|s| s.digest.get("sha256").is_some_and(|d| d == hex))
    {
        return SignatureVerdict::Verified {
            layout,
            key: key.to_string(),
        };
    }
    let other = statement
        .subject
        .iter()
        .find_map(|s| s.digest.get("sha256"))
        .map_or_else(|| "none".to_string(), |d| format!("sha256:{d}"));
    SignatureVerdict::OtherDigest {
        layout,
        digest: other,
    }
}

/// Standard or URL-safe base64, padded or not (DSSE allows either; cosign
/// writes standard with padding).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}
