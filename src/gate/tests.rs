//! Verification against signatures made here (p256) and by openssl, in
//! both layouts, and the minimum-age rule.

use std::time::Duration;

use base64::Engine as _;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};

use super::cosign::{pae, verify, Layout, SignatureVerdict};
use super::*;
use crate::registry::{SignatureMaterial, SimpleSignature};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

fn keys_of(signers: &[&SigningKey]) -> Keys {
    Keys::new(
        signers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let pem = s.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
                Key::from_pem(&pem, &format!("key{i}.pub")).unwrap()
            })
            .collect(),
    )
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn simple_payload(digest: &str) -> Vec<u8> {
    format!(r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1/acme/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#).into_bytes()
}

fn simple(key: &SigningKey, digest: &str) -> SimpleSignature {
    let payload = simple_payload(digest);
    let signature: Signature = key.sign(&payload);
    SimpleSignature {
        signature: b64(signature.to_der().as_bytes()),
        payload,
    }
}

fn bundle(key: &SigningKey, digest: &str, predicate: &str) -> Vec<u8> {
    let hex = digest.trim_start_matches("sha256:");
    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{hex}"}}}}],"predicateType":"{predicate}","predicate":{{}}}}"#
    );
    let signature: Signature = key.sign(&pae("application/vnd.in-toto+json", statement.as_bytes()));
    serde_json::to_vec(&serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "x"}},
        "dsseEnvelope": {
            "payload": b64(statement.as_bytes()),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": b64(signature.to_der().as_bytes())}],
        }
    }))
    .unwrap()
}

const SIGN: &str = "https://sigstore.dev/cosign/sign/v1";

#[test]
fn the_sig_tag_layout_verifies_only_the_right_key_and_digest() {
    let ours = signing_key(7);
    let theirs = signing_key(9);
    let keys = keys_of(&[&ours]);
    let material = |s: SimpleSignature| SignatureMaterial {
        simple: vec![s],
        bundles: vec![],
    };
    assert_eq!(
        verify(&material(simple(&ours, DIGEST)), DIGEST, &keys),
        SignatureVerdict::Verified {
            layout: Layout::SigTag,
            key: "key0.pub".into()
        }
    );
    assert_eq!(
        verify(&material(simple(&theirs, DIGEST)), DIGEST, &keys),
        SignatureVerdict::OtherKey {
            layout: Layout::SigTag
        }
    );
    assert_eq!(
        verify(&material(simple(&ours, OTHER)), DIGEST, &keys),
        SignatureVerdict::OtherDigest {
            layout: Layout::SigTag,
            digest: OTHER.into()
        }
    );
    // A payload changed after signing no longer verifies.
    let mut tampered = simple(&ours, DIGEST);
    tampered.payload.push(b' ');
    assert!(!verify(&material(tampered), DIGEST, &keys).is_verified());
    assert_eq!(
        verify(&SignatureMaterial::default(), DIGEST, &keys),
        SignatureVerdict::Unsigned
    );
}

#[test]
fn any_listed_key_suffices() {
    let (a, b) = (signing_key(3), signing_key(4));
    let keys = keys_of(&[&a, &b]);
    let verdict = verify(
        &SignatureMaterial {
            simple: vec![simple(&b, DIGEST)],
            bundles: vec![],
        },
        DIGEST,
        &keys,
    );
    assert_eq!(
        verdict,
        SignatureVerdict::Verified {
            layout: Layout::SigTag,
            key: "key1.pub".into()
        }
    );
}

#[test]
fn the_bundle_layout_verifies_dsse_over_pae() {
    let ours = signing_key(7);
    let keys = keys_of(&[&ours]);
    let material = |b: Vec<u8>| SignatureMaterial {
        simple: vec![],
        bundles: vec![b],
    };
    assert!(verify(&material(bundle(&ours, DIGEST, SIGN)), DIGEST, &keys).is_verified());
    assert_eq!(
        verify(&material(bundle(&ours, OTHER, SIGN)), DIGEST, &keys),
        SignatureVerdict::OtherDigest {
            layout: Layout::Referrer,
            digest: OTHER.into()
        }
    );
    assert_eq!(
        verify(
            &material(bundle(&signing_key(8), DIGEST, SIGN)),
            DIGEST,
            &keys
        ),
        SignatureVerdict::OtherKey {
            layout: Layout::Referrer
        }
    );
    // An attestation by the same key is not a signature.
    let attestation = bundle(&ours, DIGEST, "https://slsa.dev/provenance/v1");
    assert_eq!(
        verify(&material(attestation), DIGEST, &keys),
        SignatureVerdict::Unsigned
    );
    assert!(matches!(
        verify(&material(b"{}".to_vec()), DIGEST, &keys),
        SignatureVerdict::Malformed { .. }
    ));
}

#[test]
fn pae_is_the_dsse_encoding() {
    assert_eq!(
        pae("application/vnd.in-toto+json", b"{}"),
        b"DSSEv1 28 application/vnd.in-toto+json 2 {}".to_vec()
    );
}

#[test]
fn the_most_telling_verdict_wins() {
    let ours = signing_key(7);
    let keys = keys_of(&[&ours]);
    let material = SignatureMaterial {
        simple: vec![simple(&signing_key(1), DIGEST), simple(&ours, OTHER)],
        bundles: vec![],
    };
    assert!(matches!(
        verify(&material, DIGEST, &keys),
        SignatureVerdict::OtherDigest { .. }
    ));
}

/// A key and a signature made by openssl (as cosign users sign without
/// cosign) verify: the formats are the published ones, not our own.
#[test]
fn openssl_made_keys_and_signatures_verify() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ec.key",
    ]);
    run(&["pkey", "-in", "ec.key", "-pubout", "-out", "cosign.pub"]);
    std::fs::write(dir.path().join("payload.json"), simple_payload(DIGEST)).unwrap();
    run(&[
        "dgst",
        "-sha256",
        "-sign",
        "ec.key",
        "-out",
        "sig.der",
        "payload.json",
    ]);
    let pem = std::fs::read_to_string(dir.path().join("cosign.pub")).unwrap();
    let keys = Keys::new(vec![Key::from_pem(&pem, "cosign.pub").unwrap()]);
    let signature = std::fs::read(dir.path().join("sig.der")).unwrap();
    let material = SignatureMaterial {
        simple: vec![SimpleSignature {
            payload: simple_payload(DIGEST),
            signature: b64(&signature),
        }],
        bundles: vec![],
    };
    assert!(verify(&material, DIGEST, &keys).is_verified());
}

#[test]
fn keys_other_than_p256_are_refused_with_a_reason() {
    let error = Key::from_pem(
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "x.pub",
    )
    .unwrap_err();
    assert!(
        error.contains("x.pub") && error.contains("P-256"),
        "{error}"
    );
    assert!(Key::from_pem("not pem at all", "y.pub").is_err());
}

#[test]
fn minimum_age_waits_until_created_plus_the_age() {
    let now: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
    let three_days = Duration::from_secs(3 * 86_400);
    let hour_ago: jiff::Timestamp = "2026-12-01T11:00:00Z".parse().unwrap();
    assert_eq!(
        age(Some(hour_ago), three_days, now),
        AgeVerdict::WaitsUntil {
            until: "2026-12-04T11:00:00Z".parse().unwrap(),
            created: hour_ago
        }
    );
    let old: jiff::Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
    assert!(age(Some(old), three_days, now).passes());
    assert_eq!(age(None, three_days, now), AgeVerdict::NoCreatedTime);
    // Reproducible builds' epoch is "no time", not "very old".
    assert_eq!(
        age(Some(jiff::Timestamp::UNIX_EPOCH), three_days, now),
        AgeVerdict::NoCreatedTime
    );
    assert_eq!(show_time(hour_ago), "2026-12-01T11:00:00Z");
}
