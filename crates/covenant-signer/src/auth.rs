//! Optional request authentication: HMAC-SHA256 of the raw body under a shared key, sent hex in
//! the `X-Covenant-HMAC` header, as the phase-2 covenant signer does. Off by default so
//! reference pipelines keep working; recommended on.
//!
//! A configured key has at least [`MIN_HMAC_KEY_LEN`] bytes ([`HmacKey::configured`], used by
//! the signer's and the pipeline's configs). There is deliberately no timestamp or nonce: the
//! reference's MAC covers the body alone, so a timestamp would either be required (and every
//! reference pipeline refused) or optional (and an attacker replays without it). A replay is
//! harmless anyway: it yields another signature over the same canonical unbonding tx
//! (`docs/decisions.md#covenant-signer`), and the rate limit bounds its cost.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The request header carrying the MAC.
pub const HMAC_HEADER: &str = "X-Covenant-HMAC";

/// The shortest configured key, in bytes: 256 bits, HMAC-SHA256's own strength. Anyone who
/// sees one signed request (the body is public data) can test guesses of the key offline, so a
/// short or human-chosen key is found; 32 random bytes are not.
pub const MIN_HMAC_KEY_LEN: usize = 32;

/// Why a configured HMAC key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HmacKeyError {
    #[error("the HMAC key is empty")]
    Empty,
    #[error(
        "the HMAC key has {0} bytes, fewer than the minimum of {MIN_HMAC_KEY_LEN}: one signed \
         request lets anyone test guesses of a short key offline; use {MIN_HMAC_KEY_LEN} or more \
         random bytes, e.g. the 64 characters of `openssl rand -hex 32`"
    )]
    TooShort(usize),
}

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

    /// A key read from the configuration (file or environment, trailing line breaks removed):
    /// at least [`MIN_HMAC_KEY_LEN`] bytes.
    pub fn configured(key: &[u8]) -> Result<Self, HmacKeyError> {
        let key = Self::new(key);
        match key.0.len() {
            0 => Err(HmacKeyError::Empty),
            n if n < MIN_HMAC_KEY_LEN => Err(HmacKeyError::TooShort(n)),
            _ => Ok(key),
        }
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
    fn a_configured_key_needs_32_bytes_after_line_breaks_are_trimmed() {
        assert_eq!(HmacKey::configured(b"\n").unwrap_err(), HmacKeyError::Empty);
        let short = [b'k'; MIN_HMAC_KEY_LEN - 1];
        let err = HmacKey::configured(&[&short[..], b"\r\n"].concat()).unwrap_err();
        assert_eq!(err, HmacKeyError::TooShort(31));
        assert!(err.to_string().contains("minimum of 32"), "{err}");
        let key = HmacKey::configured(&[b'k'; MIN_HMAC_KEY_LEN]).unwrap();
        assert_eq!(key.sign(b"{}"), HmacKey::new(&[b'k'; 32]).sign(b"{}"));
    }

    #[test]
    fn the_key_is_never_printed() {
        assert_eq!(
            format!("{:?}", HmacKey::new(b"hunter2 secret")),
            "HmacKey(<redacted>)"
        );
    }
}
