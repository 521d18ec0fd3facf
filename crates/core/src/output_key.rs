//! The Taproot output key `Q = H + t·G` of an output whose internal key is the NUMS point `H`,
//! computed with a precomputed fixed-base table.
//!
//! The classifier needs `x(Q)` for every tagged transaction, and the generic tweak
//! (`XOnlyPublicKey::add_tweak`, libsecp256k1's `ecmult`) spends about 130 point doublings on
//! it. Because `G` is fixed, `t·G = Σ_i b_i·256^i·G` over the 32 bytes `b_i` of `t`, and a table
//! of every `d·256^i·G` (`d` in 1..=255, `i` in 0..32) turns the multiplication into at most 32
//! point additions. Every addition and every table entry is computed by libsecp256k1 itself
//! (`PublicKey::combine_keys`, `PublicKey::combine`, `PublicKey::from_secret_key`): this module
//! only chooses which multiples to add, so there is no field arithmetic of ours to get wrong.
//! The unit tests check every table entry against a direct multiplication and the sum against
//! `add_tweak` on random and edge-case tweaks.
//!
//! The table holds 8,160 points (522 KB) and is built on first use (a few tens of ms).

use std::sync::LazyLock;

use bitcoin::secp256k1::{Parity, PublicKey, SecretKey};
use bitcoin::taproot::{TapNodeHash, TapTweakHash};

use crate::keys::{nums_key, SECP};

/// One window per byte of the tweak.
const WINDOWS: usize = 32;
/// Non-zero digits of a window (a zero byte adds nothing).
const DIGITS: usize = 255;

/// `TABLE[i * DIGITS + d - 1] = d·256^i·G`.
static TABLE: LazyLock<Vec<PublicKey>> = LazyLock::new(build_table);

/// The NUMS point with even y: the point the x-only internal key stands for (BIP340 `lift_x`).
static NUMS_POINT: LazyLock<PublicKey> =
    LazyLock::new(|| PublicKey::from_x_only_public_key(nums_key(), Parity::Even));

#[allow(
    clippy::expect_used,
    reason = "fixed scalars, each a non-zero multiple below the group order"
)]
fn build_table() -> Vec<PublicKey> {
    let mut table = Vec::with_capacity(WINDOWS * DIGITS);
    for window in 0..WINDOWS {
        // 256^window: non-zero and below the group order, so a valid secret key.
        let mut scalar = [0u8; 32];
        scalar[31 - window] = 1;
        let base = PublicKey::from_secret_key(
            &SECP,
            &SecretKey::from_slice(&scalar).expect("256^i is a valid scalar"),
        );
        let mut point = base;
        table.push(point);
        for _ in 1..DIGITS {
            // (d+1)·256^window with d+1 <= 255 is at most 255·2^248, non-zero and below the
            // group order, so the sum is never the point at infinity.
            point = point.combine(&base).expect("non-zero multiple of G");
            table.push(point);
        }
    }
    table
}

/// `x(H + t·G)` with `t = TaggedHash("TapTweak", H.x ‖ merkle_root)`: the x-only output key of
/// a Taproot output with the NUMS internal key and this script tree (what
/// `nums_key().add_tweak(&SECP, &t)` returns, serialised). `None` when the sum is the point at
/// infinity (probability negligible; `add_tweak` fails there too).
pub fn nums_output_key(merkle_root: TapNodeHash) -> Option<[u8; 32]> {
    // `to_scalar` panics on a hash at or above the group order (probability about 2^-128),
    // exactly as the library's Taproot builder and the former `add_tweak` path did.
    let tweak = TapTweakHash::from_key_and_tweak(nums_key(), Some(merkle_root))
        .to_scalar()
        .to_be_bytes();
    nums_plus_multiple_of_g(&tweak)
}

/// `x(H + t·G)` for a big-endian scalar `t` below the group order.
fn nums_plus_multiple_of_g(t: &[u8; 32]) -> Option<[u8; 32]> {
    let table = &*TABLE;
    let nums: &PublicKey = &NUMS_POINT;
    let mut points = [nums; 1 + WINDOWS];
    let mut used = 1;
    // t = Σ_i t[31 - i]·256^i.
    for (window, digit) in t.iter().rev().enumerate() {
        if *digit != 0 {
            points[used] = &table[window * DIGITS + usize::from(*digit) - 1];
            used += 1;
        }
    }
    let sum = PublicKey::combine_keys(&points[..used]).ok()?;
    let compressed = sum.serialize();
    let mut x = [0u8; 32];
    x.copy_from_slice(&compressed[1..]);
    Some(x)
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::Scalar;

    use super::*;

    /// The reference: libsecp256k1's generic x-only tweak.
    fn by_add_tweak(t: &[u8; 32]) -> Option<[u8; 32]> {
        let scalar = Scalar::from_be_bytes(*t).ok()?;
        nums_key()
            .add_tweak(&SECP, &scalar)
            .ok()
            .map(|(key, _)| key.serialize())
    }

    #[test]
    fn every_table_entry_is_its_multiple_of_g() {
        for window in 0..WINDOWS {
            for digit in 1..=DIGITS {
                let mut scalar = [0u8; 32];
                scalar[31 - window] = digit as u8;
                let direct =
                    PublicKey::from_secret_key(&SECP, &SecretKey::from_slice(&scalar).unwrap());
                assert_eq!(
                    TABLE[window * DIGITS + digit - 1],
                    direct,
                    "window {window}, digit {digit}"
                );
            }
        }
    }

    #[test]
    fn edge_case_tweaks_give_the_add_tweak_key() {
        let order_minus_one = Scalar::MAX.to_be_bytes();
        let mut cases = vec![[0u8; 32], order_minus_one];
        for byte in [1u8, 0x7f, 0x80, 0xff] {
            for position in [0usize, 1, 15, 16, 30, 31] {
                let mut t = [0u8; 32];
                t[position] = byte;
                cases.push(t);
            }
        }
        let mut all_ff_but_first = [0xffu8; 32];
        all_ff_but_first[0] = 0x7f;
        cases.push(all_ff_but_first);
        for t in cases {
            assert_eq!(
                nums_plus_multiple_of_g(&t),
                by_add_tweak(&t),
                "tweak {t:02x?}"
            );
            assert!(nums_plus_multiple_of_g(&t).is_some());
        }
    }

    #[test]
    fn random_tweaks_give_the_add_tweak_key() {
        // Deterministic pseudo-random tweaks (SHA256 chain), many with zero bytes mixed in.
        let mut seed = bitcoin::hashes::sha256::Hash::hash(b"output key comb");
        for i in 0..2000u32 {
            seed = bitcoin::hashes::sha256::Hash::hash(&seed.to_byte_array());
            let mut t = seed.to_byte_array();
            if i % 3 == 0 {
                for (j, b) in t.iter_mut().enumerate() {
                    if (j as u32 + i) % 4 == 0 {
                        *b = 0;
                    }
                }
            }
            let expected = by_add_tweak(&t);
            assert!(expected.is_some(), "a SHA256 output below the order");
            assert_eq!(nums_plus_multiple_of_g(&t), expected, "tweak {t:02x?}");
        }
    }

    #[test]
    fn the_output_key_is_the_taproot_builders() {
        let leaf = bitcoin::taproot::TapLeafHash::from_script(
            bitcoin::Script::from_bytes(&[0x51]),
            bitcoin::taproot::LeafVersion::TapScript,
        );
        let root = TapNodeHash::from(leaf);
        let info = bitcoin::taproot::TaprootBuilder::new()
            .add_leaf(0, bitcoin::ScriptBuf::from_bytes(vec![0x51]))
            .unwrap()
            .finalize(&SECP, nums_key())
            .unwrap();
        assert_eq!(
            nums_output_key(root),
            Some(info.output_key().to_x_only_public_key().serialize())
        );
    }
}
