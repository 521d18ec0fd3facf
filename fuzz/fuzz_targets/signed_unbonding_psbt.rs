//! Raw bytes → a "signed unbonding PSBT" as `staker unbond --psbt-in` reads it from an external
//! signer: rust-bitcoin's PSBT parser, then `UnbondingToSign::signature_from_psbt` against a
//! fixed delegation, and the same bytes as a bare `--signature`. Must never panic; a signature
//! accepted from a PSBT must also be accepted bare (both paths check the same thing).
#![no_main]

use std::sync::LazyLock;

use bitcoin::hashes::Hash;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin::{Amount, OutPoint, Txid};
use libfuzzer_sys::fuzz_target;
use staking_core::keys::SECP;
use staking_core::script::{StakingKeys, StakingOutput};
use staking_core::signed_unbonding::UnbondingToSign;
use staking_core::unbonding::UnbondingTerms;

fn key(byte: u8) -> bitcoin::secp256k1::XOnlyPublicKey {
    let secret = SecretKey::from_slice(&[byte; 32]).expect("1..=255 repeated is a valid secret");
    Keypair::from_secret_key(&SECP, &secret).x_only_public_key().0
}

static TO_SIGN: LazyLock<UnbondingToSign> = LazyLock::new(|| {
    let keys = StakingKeys::new(key(1), vec![key(2)], vec![key(3), key(4), key(5)], 2)
        .expect("distinct keys");
    let staking = StakingOutput::new(keys, 150).expect("valid staking output");
    let terms = UnbondingTerms {
        unbonding_time: 20,
        unbonding_fee: Amount::from_sat(1_000),
    };
    let outpoint = OutPoint::new(Txid::from_byte_array([2; 32]), 1);
    UnbondingToSign::new(staking, outpoint, Amount::from_sat(100_000), &terms)
        .expect("value above the fee")
});

fuzz_target!(|data: &[u8]| {
    let to_sign = &*TO_SIGN;
    if let Ok(psbt) = Psbt::deserialize(data) {
        if let Ok(signature) = to_sign.signature_from_psbt(&psbt) {
            assert!(to_sign.check_signature(signature.as_ref()).is_ok());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(psbt) = text.trim().parse::<Psbt>() {
            let _ = to_sign.signature_from_psbt(&psbt);
        }
    }
    let _ = to_sign.check_signature(data);
});
