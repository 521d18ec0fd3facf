//! BIP340 signing and verification over script-path sighashes: a signature verifies for its key
//! and sighash only, any bit flip breaks it, and only the 64-byte form is accepted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin::TapSighash;
use proptest::prelude::*;
use staking_core::keys::SECP;
use staking_core::signing::{parse_signature, sign, sign_with_aux_rand, verify, SignatureError};

fn keypair(seed: [u8; 32]) -> Option<Keypair> {
    SecretKey::from_slice(&seed)
        .ok()
        .map(|sk| Keypair::from_secret_key(&SECP, &sk))
}

proptest! {
    #[test]
    fn a_signature_verifies_for_its_key_and_sighash_only(
        seed in any::<[u8; 32]>(),
        other_seed in any::<[u8; 32]>(),
        digest in any::<[u8; 32]>(),
        flip_byte in 0usize..64,
        flip_bit in 0u8..8,
    ) {
        let (Some(signer), Some(other)) = (keypair(seed), keypair(other_seed)) else {
            return Ok(());
        };
        prop_assume!(signer.x_only_public_key() != other.x_only_public_key());
        let sighash = TapSighash::from_byte_array(digest);
        let key = signer.x_only_public_key().0;
        let sig = sign(&sighash, &signer);
        prop_assert!(verify(&sighash, sig.as_ref(), &key).is_ok());
        prop_assert!(verify(&sighash, sig.as_ref(), &other.x_only_public_key().0).is_err());

        let mut other_digest = digest;
        other_digest[flip_byte % 32] ^= 1 << flip_bit;
        prop_assert!(verify(&TapSighash::from_byte_array(other_digest), sig.as_ref(), &key).is_err());

        let mut flipped = sig.as_ref().to_vec();
        flipped[flip_byte] ^= 1 << flip_bit;
        prop_assert!(verify(&sighash, &flipped, &key).is_err());

        let deterministic = sign_with_aux_rand(&sighash, &signer, &[0; 32]);
        prop_assert!(verify(&sighash, deterministic.as_ref(), &key).is_ok());
        prop_assert_eq!(deterministic, sign_with_aux_rand(&sighash, &signer, &[0; 32]));
    }

    #[test]
    fn only_64_byte_signatures_are_parsed(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
        match parse_signature(&bytes) {
            Err(SignatureError::Length(n)) => prop_assert!(n != 64 && n == bytes.len()),
            Err(SignatureError::Malformed(_)) => {
                prop_assert_eq!(bytes.len(), 64);
                prop_assert!(bytes[..32] >= [0xffu8; 27][..] || bytes[32..] >= [0xffu8; 15][..]);
            }
            Ok(sig) => prop_assert_eq!(sig.as_ref().as_slice(), bytes.as_slice()),
            Err(other) => prop_assert!(false, "unexpected {other}"),
        }
    }
}

#[test]
fn a_signature_with_a_sighash_all_byte_is_refused_with_its_length() {
    let signer = keypair([5; 32]).unwrap();
    let sighash = TapSighash::from_byte_array([1; 32]);
    let mut bytes = sign(&sighash, &signer).as_ref().to_vec();
    bytes.push(0x01);
    let err = verify(&sighash, &bytes, &signer.x_only_public_key().0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "signature must be exactly 64 bytes, got 65"
    );
}
