//! Content digests: their grammar, and checking bytes against them.
//!
//! A registry is trusted for nothing it says about content: a digest it
//! sends must be well-formed (OCI image spec: `algorithm:encoded`, and for
//! `sha256` 64 lowercase hex digits), and bytes fetched by digest must hash
//! to it, or they are refused and never cached.

use sha2::Digest as _;

use super::error::RegistryError;

/// Whether `digest` is `sha256:<64 lowercase hex>` or `sha512:<128 lowercase
/// hex>`, the registered algorithms of the OCI image spec.
pub fn is_valid(digest: &str) -> bool {
    match digest.split_once(':') {
        Some(("sha256", hex)) => is_lower_hex(hex, 64),
        Some(("sha512", hex)) => is_lower_hex(hex, 128),
        _ => false,
    }
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks that `bytes` hash to `expected`.
pub fn verify(host: &str, what: &str, expected: &str, bytes: &[u8]) -> Result<(), RegistryError> {
    let malformed = |detail: String| RegistryError::Malformed {
        host: host.to_string(),
        what: what.to_string(),
        detail,
    };
    let actual = match expected.split_once(':') {
        Some(("sha256", _)) if is_valid(expected) => {
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
        }
        Some(("sha512", _)) if is_valid(expected) => {
            format!("sha512:{}", hex::encode(sha2::Sha512::digest(bytes)))
        }
        _ => return Err(malformed(format!("`{expected}` is not a valid digest"))),
    };
    if actual != expected {
        return Err(RegistryError::DigestMismatch {
            host: host.to_string(),
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let good = format!("sha256:{}", "a1".repeat(32));
        assert!(is_valid(&good));
        assert!(!is_valid(&good.to_uppercase()));
        assert!(!is_valid("sha256:abc"));
        assert!(!is_valid(&format!("md5:{}", "a".repeat(32))));
        assert!(!is_valid(&format!("sha256:{}\n", "a".repeat(64))));
        assert!(is_valid(&format!("sha512:{}", "0".repeat(128))));
    }

    #[test]
    fn bytes_must_match_their_digest() {
        // sha256("abc")
        let abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        verify("r", "x", abc, b"abc").unwrap();
        let err = verify("r", "the manifest a@b", abc, b"abd")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("registry r sent") && err.contains(abc),
            "{err}"
        );
        assert!(verify("r", "x", "sha256:zz", b"abc").is_err());
    }
}
