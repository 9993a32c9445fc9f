//! The public keys an image policy trusts: PEM `PUBLIC KEY` blocks (PKIX
//! SubjectPublicKeyInfo) holding ECDSA P-256 keys, the format of the
//! `cosign.pub` that `cosign generate-key-pair` writes.

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;
use sha2::Digest as _;

/// One trusted key and where it came from (for messages).
#[derive(Clone)]
pub struct Key {
    /// `cosign.pub`, `$COSIGN_PUB`: where the key was read from.
    pub origin: String,
    pub(super) verifying: VerifyingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("origin", &self.origin).finish()
    }
}

impl Key {
    /// Parses a PEM public key. Only ECDSA P-256 is accepted: it is the key
    /// type cosign generates, and the only one tidewatch verifies.
    pub fn from_pem(pem: &str, origin: &str) -> Result<Key, String> {
        let verifying = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
            format!(
                "{origin} is not a PEM `PUBLIC KEY` of an ECDSA P-256 key ({e}); tidewatch verifies cosign's default key type, made by `cosign generate-key-pair` or `openssl ecparam -name prime256v1`"
            )
        })?;
        Ok(Key {
            origin: origin.to_string(),
            verifying,
        })
    }
}

/// Every key a policy trusts; a signature by any one of them counts.
#[derive(Clone, Debug)]
pub struct Keys {
    keys: Vec<Key>,
    /// SHA-256 over the sorted SEC1 points: verdicts are cached under it, so
    /// a changed key set never reuses a verdict made with other keys.
    fingerprint: [u8; 32],
}

impl Keys {
    pub fn new(keys: Vec<Key>) -> Keys {
        let mut points: Vec<Box<[u8]>> = keys.iter().map(|k| k.verifying.to_sec1_bytes()).collect();
        points.sort();
        let mut hash = sha2::Sha256::new();
        for point in &points {
            hash.update(point);
        }
        Keys {
            keys,
            fingerprint: hash.finalize().into(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The origin of the first key whose signature `signature` (ASN.1 DER)
    /// over `message` verifies. High-S signatures are accepted, as Go's
    /// `ecdsa.VerifyASN1` (and so cosign) accepts them.
    pub(super) fn verifies(&self, message: &[u8], signature: &[u8]) -> Option<&str> {
        use p256::ecdsa::signature::Verifier;
        let signature = p256::ecdsa::Signature::from_der(signature).ok()?;
        self.keys
            .iter()
            .find(|k| k.verifying.verify(message, &signature).is_ok())
            .map(|k| k.origin.as_str())
    }
}
