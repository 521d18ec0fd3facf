//! Optional request authentication: HMAC-SHA256 of the raw body under a shared key, sent hex in
//! the `X-Covenant-HMAC` header, as the phase-2 covenant signer does. Off by default so
//! reference pipelines keep working; recommended on.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The request header carrying the MAC.
pub const HMAC_HEADER: &str = "X-Covenant-HMAC";

/// A shared HMAC key. Wiped on drop; never printed.
#[derive(Clone)]
pub struct HmacKey(Zeroizing<Vec<u8>>);

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

/// Why a request failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing {HMAC_HEADER} header")]
    Missing,
    #[error("{HMAC_HEADER} header is not hex")]
    NotHex,
    #[error("{HMAC_HEADER} header does not match the request body")]
    Mismatch,
}

impl HmacKey {
    /// Wraps the shared key (its bytes as configured; trailing line breaks removed).
    pub fn new(key: &[u8]) -> Self {
        let mut end = key.len();
        while end > 0 && matches!(key[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        Self(Zeroizing::new(key[..end].to_vec()))
    }

    /// Whether the key is usable (an empty key would authenticate anyone who guesses it).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        #[allow(clippy::expect_used, reason = "HMAC takes keys of any length")]
        Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length")
    }

    /// The hex MAC a client sends for `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks `header` against `body` in constant time.
    pub fn verify(&self, header: Option<&[u8]>, body: &[u8]) -> Result<(), AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let given = hex::decode(header.trim_ascii()).map_err(|_| AuthError::NotHex)?;
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(&given).map_err(|_| AuthError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_made_with_the_key_verifies() {
        let key = HmacKey::new(b"shared secret\n");
        let tag = key.sign(b"{}");
        assert_eq!(key.verify(Some(tag.as_bytes()), b"{}"), Ok(()));
        assert_eq!(
            key.verify(Some(tag.to_uppercase().as_bytes()), b"{}"),
            Ok(())
        );
    }

    #[test]
    fn rfc4231_case_2_matches() {
        let key = HmacKey::new(b"Jefe");
        assert_eq!(
            key.sign(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_missing_malformed_or_wrong_mac_is_refused() {
        let key = HmacKey::new(b"shared secret");
        let other = HmacKey::new(b"other secret");
        assert_eq!(key.verify(None, b"{}"), Err(AuthError::Missing));
        assert_eq!(key.verify(Some(b"xyz"), b"{}"), Err(AuthError::NotHex));
        let wrong_key = other.sign(b"{}");
        assert_eq!(
            key.verify(Some(wrong_key.as_bytes()), b"{}"),
            Err(AuthError::Mismatch)
        );
        let other_body = key.sign(b"{ }");
        assert_eq!(
            key.verify(Some(other_body.as_bytes()), b"{}"),
            Err(AuthError::Mismatch)
        );
        let truncated = &key.sign(b"{}")[..62];
        assert_eq!(
            key.verify(Some(truncated.as_bytes()), b"{}"),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn the_key_is_never_printed() {
        assert_eq!(
            format!("{:?}", HmacKey::new(b"hunter2 secret")),
            "HmacKey(<redacted>)"
        );
    }
}
