//! The signing request: the reference's JSON fields, parsed strictly into types at the edge.
//!
//! Stricter than the reference on purpose (`docs/decisions.md#covenant-signer`): the unbonding tx
//! must be exactly one serialized transaction (no trailing bytes) and the covenant key exactly 33
//! compressed bytes.

use bitcoin::secp256k1::{schnorr, PublicKey};
use bitcoin::{ScriptBuf, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::Malformed;

/// `POST /v1/sign-unbonding-tx` body as sent on the wire. Missing fields read as empty strings
/// (as Go's decoder does), so they fail with the field's own message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequestJson {
    #[serde(default)]
    pub staking_output_pk_script_hex: String,
    #[serde(default)]
    pub unbonding_tx_hex: String,
    #[serde(default)]
    pub staker_unbonding_sig_hex: String,
    #[serde(default)]
    pub covenant_public_key: String,
}

/// `{"data":{"signature_hex": …}}`, the success body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignResponseJson {
    pub data: SignatureData,
}

/// The inner object of [`SignResponseJson`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureData {
    pub signature_hex: String,
}

impl SignResponseJson {
    /// The success body for `signature`.
    pub fn new(signature: &schnorr::Signature) -> Self {
        Self {
            data: SignatureData {
                signature_hex: hex::encode(signature.serialize()),
            },
        }
    }
}

/// A request whose fields all parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    pub staking_output_pk_script: ScriptBuf,
    pub unbonding_tx: Transaction,
    pub staker_signature: schnorr::Signature,
    pub covenant_key: PublicKey,
}

impl SignRequest {
    /// Parses a JSON body, field by field in the reference's order.
    pub fn from_json_bytes(body: &[u8]) -> Result<Self, Malformed> {
        // A JSON object only: serde would also read a struct from an array.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(Malformed::Payload);
        }
        let raw: SignRequestJson = serde_json::from_slice(body).map_err(|_| Malformed::Payload)?;
        Self::try_from(&raw)
    }

    /// The wire form of this request (used by clients and tests).
    pub fn to_json(&self) -> SignRequestJson {
        SignRequestJson {
            staking_output_pk_script_hex: hex::encode(self.staking_output_pk_script.as_bytes()),
            unbonding_tx_hex: bitcoin::consensus::encode::serialize_hex(&self.unbonding_tx),
            staker_unbonding_sig_hex: hex::encode(self.staker_signature.serialize()),
            covenant_public_key: hex::encode(self.covenant_key.serialize()),
        }
    }
}

impl TryFrom<&SignRequestJson> for SignRequest {
    type Error = Malformed;

    fn try_from(raw: &SignRequestJson) -> Result<Self, Malformed> {
        let staking_output_pk_script = hex::decode(&raw.staking_output_pk_script_hex)
            .map(ScriptBuf::from_bytes)
            .map_err(|_| Malformed::StakingPkScript)?;
        let covenant_key = parse_compressed_key(&raw.covenant_public_key)?;
        let unbonding_tx = parse_exact_tx(&raw.unbonding_tx_hex)?;
        let staker_signature = hex::decode(&raw.staker_unbonding_sig_hex)
            .ok()
            .and_then(|bytes| schnorr::Signature::from_slice(&bytes).ok())
            .ok_or(Malformed::StakerSignature)?;
        Ok(Self {
            staking_output_pk_script,
            unbonding_tx,
            staker_signature,
            covenant_key,
        })
    }
}

/// Only the 33-byte compressed encoding: uncompressed and hybrid forms name the same point but
/// are refused, so a key has exactly one accepted spelling.
fn parse_compressed_key(hex_key: &str) -> Result<PublicKey, Malformed> {
    let bytes = hex::decode(hex_key).map_err(|_| Malformed::CovenantKey)?;
    if bytes.len() != 33 {
        return Err(Malformed::CovenantKey);
    }
    PublicKey::from_slice(&bytes).map_err(|_| Malformed::CovenantKey)
}

/// Exactly one transaction: bytes left over after it are an error (the reference ignores them).
/// The bytes must also be the tx's own serialization: the legacy fallback of
/// `decode_transaction` would otherwise read a broken segwit tx as a different, input-less tx
/// (found by the `signer_request` fuzz target).
fn parse_exact_tx(hex_tx: &str) -> Result<Transaction, Malformed> {
    let bytes = hex::decode(hex_tx).map_err(|_| Malformed::UnbondingTx)?;
    let tx =
        staking_core::staking_tx::decode_transaction(&bytes).map_err(|_| Malformed::UnbondingTx)?;
    if bitcoin::consensus::encode::serialize(&tx) != bytes {
        return Err(Malformed::UnbondingTx);
    }
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::{Keypair, Message, Secp256k1, SecretKey};
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, OutPoint, Sequence, TxIn, TxOut, Witness};
    use proptest::prelude::*;

    fn sample(seed: u8, value: u64) -> SignRequest {
        let secp = Secp256k1::new();
        let mut bytes = [0u8; 32];
        bytes[31] = seed.max(1);
        let secret = SecretKey::from_slice(&bytes).unwrap();
        let keypair = Keypair::from_secret_key(&secp, &secret);
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::new(bitcoin::Txid::from_byte_array([seed; 32]), 1),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(value),
                script_pubkey: ScriptBuf::from_bytes(vec![0x51, 0x20, seed]),
            }],
        };
        SignRequest {
            staking_output_pk_script: ScriptBuf::from_bytes(vec![0x51, 0x20, seed, 7]),
            unbonding_tx: tx,
            staker_signature: secp
                .sign_schnorr_no_aux_rand(&Message::from_digest([seed; 32]), &keypair),
            covenant_key: secret.public_key(&secp),
        }
    }

    fn body(raw: &SignRequestJson) -> Vec<u8> {
        serde_json::to_vec(raw).unwrap()
    }

    proptest! {
        #[test]
        fn a_request_survives_the_wire_round_trip(seed in 1u8..=255, value in 0u64..2_100_000_000_000_000) {
            let request = sample(seed, value);
            let parsed = SignRequest::from_json_bytes(&body(&request.to_json())).unwrap();
            prop_assert_eq!(parsed, request);
        }
    }

    #[test]
    fn hex_is_accepted_in_upper_case() {
        let request = sample(3, 1000);
        let mut raw = request.to_json();
        raw.unbonding_tx_hex = raw.unbonding_tx_hex.to_uppercase();
        raw.covenant_public_key = raw.covenant_public_key.to_uppercase();
        assert_eq!(SignRequest::try_from(&raw), Ok(request));
    }

    #[test]
    fn trailing_bytes_after_the_tx_are_rejected() {
        let mut raw = sample(3, 1000).to_json();
        raw.unbonding_tx_hex.push_str("00");
        assert_eq!(SignRequest::try_from(&raw), Err(Malformed::UnbondingTx));
    }

    #[test]
    fn a_segwit_tx_with_a_broken_witness_is_not_read_as_another_tx() {
        // Segwit marker and flag, one input, one output, then a witness that does not parse:
        // the legacy reading of the same bytes is a tx with no inputs (fuzz crash input).
        let mut raw = sample(3, 1000).to_json();
        let hex = "02000000000101378058b8745137ceb641141ef0609e75477960e5f6986455d3c59c7a7798cb06\
                   0100000000ffffffff01905f010000000000225120ba296d88e83fd2faf5864ddda74021abb5\
                   2a6370382cfc46416f42f28d32704e504f84720d8458b5d51fee69d28cf94940728ab06ac8ab\
                   2f14b4c60cacb0e8932760f1559df93dd9053327e72cec53fc9749d5abaa4a96758b7f3588b3\
                   ad80e4c157233f1e689a37bea3ccaa9e50ba153ece2091fef91f0f00d010d6c918acb9197dbf\
                   4c8bba33b96629a6e942aad0c9815a4e5e7322f63e521e762371b71e3c1300000000";
        assert!(staking_core::staking_tx::decode_transaction(&hex::decode(hex).unwrap()).is_ok());
        raw.unbonding_tx_hex = hex.to_owned();
        assert_eq!(SignRequest::try_from(&raw), Err(Malformed::UnbondingTx));
    }

    #[test]
    fn a_truncated_tx_is_rejected() {
        let mut raw = sample(3, 1000).to_json();
        raw.unbonding_tx_hex
            .truncate(raw.unbonding_tx_hex.len() - 2);
        assert_eq!(SignRequest::try_from(&raw), Err(Malformed::UnbondingTx));
    }

    #[test]
    fn uncompressed_and_x_only_covenant_keys_are_rejected() {
        let request = sample(3, 1000);
        let mut raw = request.to_json();
        raw.covenant_public_key = hex::encode(request.covenant_key.serialize_uncompressed());
        assert_eq!(SignRequest::try_from(&raw), Err(Malformed::CovenantKey));
        raw.covenant_public_key =
            hex::encode(request.covenant_key.x_only_public_key().0.serialize());
        assert_eq!(SignRequest::try_from(&raw), Err(Malformed::CovenantKey));
    }

    #[test]
    fn a_65_byte_signature_with_a_sighash_byte_is_rejected() {
        let mut raw = sample(3, 1000).to_json();
        raw.staker_unbonding_sig_hex.push_str("01");
        assert_eq!(SignRequest::try_from(&raw), Err(Malformed::StakerSignature));
    }

    #[test]
    fn each_malformed_field_names_itself() {
        let good = sample(3, 1000).to_json();
        type Mutation = fn(&mut SignRequestJson);
        let cases: [(Mutation, Malformed); 4] = [
            (
                |r| r.staking_output_pk_script_hex = "zz".into(),
                Malformed::StakingPkScript,
            ),
            (
                |r| r.covenant_public_key = "02".into(),
                Malformed::CovenantKey,
            ),
            (|r| r.unbonding_tx_hex = "0g".into(), Malformed::UnbondingTx),
            (
                |r| r.staker_unbonding_sig_hex = String::new(),
                Malformed::StakerSignature,
            ),
        ];
        for (mutate, expected) in cases {
            let mut raw = good.clone();
            mutate(&mut raw);
            assert_eq!(SignRequest::try_from(&raw), Err(expected));
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_an_invalid_payload() {
        assert_eq!(
            SignRequest::from_json_bytes(b"{not json"),
            Err(Malformed::Payload)
        );
        assert_eq!(SignRequest::from_json_bytes(b"[]"), Err(Malformed::Payload));
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_ones_fail_by_name() {
        // An empty script parses; the missing covenant key is what fails first.
        assert_eq!(
            SignRequest::from_json_bytes(br#"{"extra": 1}"#),
            Err(Malformed::CovenantKey)
        );
    }
}
