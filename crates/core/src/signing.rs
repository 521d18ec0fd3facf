//! BIP341 script-path sighashes and BIP340 signatures (`docs/formats.md#signatures-and-sighash`).
//!
//! Every phase-1 signature is a 64-byte Schnorr signature over the script-path sighash of the
//! revealed leaf with `SIGHASH_DEFAULT`; no hash-type byte is appended. A 65-byte signature (an
//! explicit hash type, e.g. `SIGHASH_ALL`) is rejected, as the reference's
//! `schnorr.ParseSignature` does.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{schnorr, Keypair, Message, XOnlyPublicKey};
use bitcoin::sighash::{Prevouts, SighashCache, TaprootError};
use bitcoin::taproot::TapLeafHash;
use bitcoin::{TapSighash, TapSighashType, Transaction, TxOut};

use crate::keys::SECP;

/// Length of a BIP340 signature with `SIGHASH_DEFAULT` (no hash-type byte).
pub const SIGNATURE_LEN: usize = 64;

/// Why a sighash cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum SighashError {
    /// The number of prevouts differs from the number of inputs, or the index is out of range.
    #[error(
        "cannot compute the sighash of input {input_index} with {prevouts} prevouts: {source}"
    )]
    Taproot {
        input_index: usize,
        prevouts: usize,
        source: TaprootError,
    },
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not exactly 64 bytes (a 65-byte signature carries an explicit hash type, which phase 1
    /// never uses).
    #[error("signature must be exactly 64 bytes, got {0}")]
    Length(usize),
    /// 64 bytes, but not a valid BIP340 encoding (r ≥ p or s ≥ n).
    #[error("signature {0} is not a valid BIP340 signature")]
    Malformed(String),
    /// Well formed, but not made by `key` over this sighash.
    #[error("signature does not verify against key {key} and sighash {sighash}")]
    Invalid {
        key: XOnlyPublicKey,
        sighash: TapSighash,
    },
}

/// BIP341 script-path sighash (`SIGHASH_DEFAULT`, key version 0, no code separator) of input
/// `input_index`, revealing the leaf `leaf_hash`. `prevouts` are the outputs spent by every
/// input of `tx`, in input order (one for an unbonding or withdrawal tx).
pub fn leaf_sighash(
    tx: &Transaction,
    input_index: usize,
    prevouts: &[TxOut],
    leaf_hash: TapLeafHash,
) -> Result<TapSighash, SighashError> {
    SighashCache::new(tx)
        .taproot_script_spend_signature_hash(
            input_index,
            &Prevouts::All(prevouts),
            leaf_hash,
            TapSighashType::Default,
        )
        .map_err(|source| SighashError::Taproot {
            input_index,
            prevouts: prevouts.len(),
            source,
        })
}

fn message(sighash: &TapSighash) -> Message {
    Message::from_digest(sighash.to_byte_array())
}

/// Signs `sighash` with fresh auxiliary randomness (BIP340's recommendation for wallets and
/// signers).
pub fn sign(sighash: &TapSighash, keypair: &Keypair) -> schnorr::Signature {
    SECP.sign_schnorr(&message(sighash), keypair)
}

/// Signs `sighash` with the given auxiliary randomness. With 32 zero bytes this reproduces the
/// deterministic signatures of the btc-staking-ts vectors; use [`sign`] for real funds.
pub fn sign_with_aux_rand(
    sighash: &TapSighash,
    keypair: &Keypair,
    aux_rand: &[u8; 32],
) -> schnorr::Signature {
    SECP.sign_schnorr_with_aux_rand(&message(sighash), keypair, aux_rand)
}

/// The secp256k1 field size p, big-endian: a BIP340 `r` must be below it.
const FIELD_SIZE: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xfc, 0x2f,
];

/// The secp256k1 group order n, big-endian: a BIP340 `s` must be below it.
const GROUP_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// Parses a phase-1 signature: exactly 64 bytes with `r < p` and `s < n`, as btcec's
/// `schnorr.ParseSignature` requires (the API answers 400 otherwise, before any lookup).
pub fn parse_signature(bytes: &[u8]) -> Result<schnorr::Signature, SignatureError> {
    if bytes.len() != SIGNATURE_LEN {
        return Err(SignatureError::Length(bytes.len()));
    }
    let malformed = || {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        SignatureError::Malformed(hex)
    };
    // Big-endian byte arrays of equal length compare like the numbers they encode.
    if bytes[..32] >= FIELD_SIZE[..] || bytes[32..] >= GROUP_ORDER[..] {
        return Err(malformed());
    }
    schnorr::Signature::from_slice(bytes).map_err(|_| malformed())
}

/// Verifies a signature given as raw bytes (64 only) by `key` over `sighash`.
pub fn verify(
    sighash: &TapSighash,
    signature: &[u8],
    key: &XOnlyPublicKey,
) -> Result<schnorr::Signature, SignatureError> {
    let signature = parse_signature(signature)?;
    verify_parsed(sighash, &signature, key)?;
    Ok(signature)
}

/// Verifies an already parsed signature by `key` over `sighash`.
pub fn verify_parsed(
    sighash: &TapSighash,
    signature: &schnorr::Signature,
    key: &XOnlyPublicKey,
) -> Result<(), SignatureError> {
    SECP.verify_schnorr(signature, &message(sighash), key)
        .map_err(|_| SignatureError::Invalid {
            key: *key,
            sighash: *sighash,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::SecretKey;

    fn keypair(byte: u8) -> Keypair {
        Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&[byte; 32]).unwrap())
    }

    #[test]
    fn a_signature_verifies_only_for_its_key_and_sighash() {
        let sighash = TapSighash::from_byte_array([7; 32]);
        let other = TapSighash::from_byte_array([8; 32]);
        let signer = keypair(1);
        let sig = sign(&sighash, &signer);
        let key = signer.x_only_public_key().0;
        assert!(verify(&sighash, sig.as_ref(), &key).is_ok());
        assert!(matches!(
            verify(&other, sig.as_ref(), &key),
            Err(SignatureError::Invalid { .. })
        ));
        let stranger = keypair(2).x_only_public_key().0;
        assert!(matches!(
            verify(&sighash, sig.as_ref(), &stranger),
            Err(SignatureError::Invalid { .. })
        ));
    }

    #[test]
    fn a_65_byte_signature_with_a_hash_type_is_rejected() {
        let sighash = TapSighash::from_byte_array([7; 32]);
        let signer = keypair(1);
        let mut bytes = sign(&sighash, &signer).as_ref().to_vec();
        bytes.push(0x01);
        let key = signer.x_only_public_key().0;
        assert_eq!(
            verify(&sighash, &bytes, &key),
            Err(SignatureError::Length(65))
        );
    }

    #[test]
    fn r_at_or_above_p_and_s_at_or_above_n_are_malformed() {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&FIELD_SIZE);
        assert!(matches!(
            parse_signature(&bytes),
            Err(SignatureError::Malformed(_))
        ));
        bytes[31] -= 1;
        assert!(parse_signature(&bytes).is_ok());
        bytes[32..].copy_from_slice(&GROUP_ORDER);
        assert!(matches!(
            parse_signature(&bytes),
            Err(SignatureError::Malformed(_))
        ));
        bytes[63] -= 1;
        assert!(parse_signature(&bytes).is_ok());
    }

    #[test]
    fn zero_aux_randomness_is_deterministic() {
        let sighash = TapSighash::from_byte_array([9; 32]);
        let signer = keypair(3);
        assert_eq!(
            sign_with_aux_rand(&sighash, &signer, &[0; 32]),
            sign_with_aux_rand(&sighash, &signer, &[0; 32])
        );
    }
}
