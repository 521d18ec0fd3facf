//! Keys as the staking scripts use them: the unspendable internal key, x-only ordering, and the
//! distinct-keys rule.

use std::sync::LazyLock;

use bitcoin::secp256k1::{All, Secp256k1, XOnlyPublicKey};

/// One shared secp256k1 context: creating one costs far more than any single operation on it.
pub static SECP: LazyLock<Secp256k1<All>> = LazyLock::new(Secp256k1::new);

/// The BIP341 "H" point (`lift_x(SHA256(uncompressed G))`), x-only. Nobody knows its discrete
/// log, so using it as the internal key makes the key path of every staking and unbonding
/// output unspendable.
pub const NUMS_X_ONLY: [u8; 32] = [
    0x50, 0x92, 0x9b, 0x74, 0xc1, 0xa0, 0x49, 0x54, 0xb7, 0x8b, 0x4b, 0x60, 0x35, 0xe9, 0x7a, 0x5e,
    0x07, 0x8a, 0x5a, 0x0f, 0x28, 0xec, 0x96, 0xd5, 0x47, 0xbf, 0xee, 0x9a, 0xce, 0x80, 0x3a, 0xc0,
];

/// The unspendable internal key (see [`NUMS_X_ONLY`]).
pub fn nums_key() -> XOnlyPublicKey {
    static KEY: LazyLock<XOnlyPublicKey> = LazyLock::new(|| {
        // The constant is a valid curve x coordinate (it is the BIP341 H point), so this cannot fail.
        #[allow(clippy::expect_used, reason = "constant, checked by a unit test")]
        XOnlyPublicKey::from_slice(&NUMS_X_ONLY).expect("NUMS point is on the curve")
    });
    *KEY
}

/// Sorts keys ascending by their 32-byte x-only serialisation, bytewise, as the reference's
/// `SortKeys` does. Explicit bytes, not the library's `Ord` for key types, decide the order.
/// Each key is serialised once (a serialisation goes through libsecp256k1; the classifier sorts
/// a committee for every tagged transaction).
pub fn sort_x_only(keys: &mut [XOnlyPublicKey]) {
    keys.sort_by_cached_key(|k| k.serialize());
}

/// Returns the first key that appears twice in `keys`, if any.
pub fn first_duplicate(keys: &[XOnlyPublicKey]) -> Option<XOnlyPublicKey> {
    let mut seen: Vec<[u8; 32]> = Vec::with_capacity(keys.len());
    for key in keys {
        let bytes = key.serialize();
        if seen.contains(&bytes) {
            return Some(*key);
        }
        seen.push(bytes);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nums_key_is_on_the_curve() {
        assert_eq!(nums_key().serialize(), NUMS_X_ONLY);
    }

    fn key(byte: u8) -> XOnlyPublicKey {
        let secret = bitcoin::secp256k1::SecretKey::from_slice(&[byte; 32]).unwrap();
        secret.x_only_public_key(&SECP).0
    }

    #[test]
    fn duplicates_are_found_by_x_only_bytes() {
        assert_eq!(first_duplicate(&[key(1), key(2), key(3)]), None);
        assert_eq!(first_duplicate(&[key(1), key(2), key(1)]), Some(key(1)));
    }

    #[test]
    fn sorting_is_bytewise_ascending() {
        let mut keys = vec![key(1), key(2), key(3), key(4)];
        sort_x_only(&mut keys);
        assert!(keys.windows(2).all(|w| w[0].serialize() < w[1].serialize()));
    }
}
