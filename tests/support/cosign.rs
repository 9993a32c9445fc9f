//! Signing images as cosign does, with a freshly generated P-256 key, and
//! pushing the signatures to a real registry in both of cosign's layouts:
//!
//! * the `sha256-<hex>.sig` tag: an OCI manifest whose simple-signing
//!   layer is the payload, with the base64 DER signature in the layer
//!   annotation `dev.cosignproject.cosign/signature`;
//! * a sigstore v0.3 bundle (DSSE envelope over an in-toto statement with
//!   predicate `https://sigstore.dev/cosign/sign/v1`) as an OCI referrer of
//!   the image: pushed by digest with `subject`, and listed in the
//!   `sha256-<hex>` index of the referrers tag schema, because CNCF
//!   distribution has no referrers API (the client maintains the index).

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::json;

use super::registry::{TestRegistry, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A P-256 key pair made from the OS's randomness.
pub struct CosignKey {
    key: SigningKey,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl CosignKey {
    pub fn generate() -> CosignKey {
        use std::io::Read;
        let mut random = std::fs::File::open("/dev/urandom").expect("open /dev/urandom");
        loop {
            let mut bytes = [0u8; 32];
            random.read_exact(&mut bytes).expect("read /dev/urandom");
            // A scalar outside the group order (chance ~2^-32) is redrawn.
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return CosignKey { key };
            }
        }
    }

    /// The public key as `cosign.pub` holds it (PEM `PUBLIC KEY`).
    pub fn public_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("encode the public key")
    }

    fn sign(&self, message: &[u8]) -> String {
        let signature: Signature = self.key.sign(message);
        b64(signature.to_der().as_bytes())
    }

    /// Pushes a `.sig` tag for image `image` whose payload names `names`
    /// (the image's own digest for a good signature).
    pub async fn sign_sig_tag(
        &self,
        registry: &TestRegistry,
        repo: &str,
        image: &str,
        names: &str,
    ) {
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"{}/{repo}"}},"image":{{"docker-manifest-digest":"{names}"}},"type":"cosign container image signature"}},"optional":null}}"#,
            registry.host
        )
        .into_bytes();
        let signature = self.sign(&payload);
        let size = payload.len();
        let layer = registry.push_blob(repo, payload).await;
        let config = b"{}".to_vec();
        let config_digest = registry.push_blob(repo, config.clone()).await;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [{
                "mediaType": SIMPLE_SIGNING,
                "digest": layer,
                "size": size,
                "annotations": {"dev.cosignproject.cosign/signature": signature},
            }],
        }))
        .unwrap();
        let tag = format!("{}.sig", image.replacen(':', "-", 1));
        registry
            .push_manifest(repo, &tag, OCI_MANIFEST, manifest)
            .await;
    }

    /// Pushes a sigstore bundle referrer of image `image` whose statement
    /// names `names`, and lists it in the referrers tag schema's index.
    pub async fn sign_referrer(
        &self,
        registry: &TestRegistry,
        repo: &str,
        image: &str,
        names: &str,
    ) {
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{}"}}}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{{}}}}"#,
            names.trim_start_matches("sha256:")
        );
        let payload_type = "application/vnd.in-toto+json";
        let pae = format!(
            "DSSEv1 {} {payload_type} {} {statement}",
            payload_type.len(),
            statement.len()
        );
        let bundle = serde_json::to_vec(&json!({
            "mediaType": BUNDLE,
            "verificationMaterial": {"publicKey": {"hint": "test"}},
            "dsseEnvelope": {
                "payload": b64(statement.as_bytes()),
                "payloadType": payload_type,
                "signatures": [{"sig": self.sign(pae.as_bytes())}],
            },
        }))
        .unwrap();
        let bundle_size = bundle.len();
        let bundle_digest = registry.push_blob(repo, bundle).await;
        let empty = registry.push_blob(repo, b"{}".to_vec()).await;
        let subject = registry
            .manifest(repo, image)
            .await
            .expect("the signed image exists");
        let referrer = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE,
            "config": {"mediaType": EMPTY, "digest": empty, "size": 2},
            "layers": [{"mediaType": BUNDLE, "digest": bundle_digest, "size": bundle_size}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": image, "size": subject.len()},
            "annotations": {
                "dev.sigstore.bundle.content": "dsse-envelope",
                "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
            },
        }))
        .unwrap();
        let referrer_size = referrer.len();
        let referrer_digest = super::sha256_digest(&referrer);
        registry
            .push_manifest(repo, &referrer_digest, OCI_MANIFEST, referrer)
            .await;
        // The tag schema's index: read, add, write back.
        let tag = image.replacen(':', "-", 1);
        let mut index = match registry.manifest(repo, &tag).await {
            Some(bytes) => serde_json::from_slice(&bytes).unwrap(),
            None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
        };
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": referrer_digest,
            "size": referrer_size,
            "artifactType": BUNDLE,
        }));
        registry
            .push_manifest(repo, &tag, OCI_INDEX, serde_json::to_vec(&index).unwrap())
            .await;
    }
}
