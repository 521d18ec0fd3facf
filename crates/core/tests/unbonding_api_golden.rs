//! The staking API's unbonding golden vector (`testdata/api-fixtures/unbonding-golden.json`,
//! accepted by the reference with 202) passes the request checks, and each single-field
//! corruption is refused with the reference's message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use bitcoin::consensus::encode::deserialize;
use bitcoin::secp256k1::{PublicKey, XOnlyPublicKey};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, Txid};
use serde_json::Value;
use staking_core::script::{StakingKeys, StakingOutput};
use staking_core::spend::{recognise_staking_spend, KnownStaking, StakingSpend};
use staking_core::unbonding::{
    canonical_unbonding_tx, verify_unbonding_request, UnbondingRequestError, UnbondingTerms,
};

fn load(path: &str) -> Value {
    let full = format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

struct Golden {
    staking: StakingOutput,
    outpoint: OutPoint,
    value: Amount,
    terms: UnbondingTerms,
    unbonding: Transaction,
    claimed: Txid,
    signature: Vec<u8>,
}

fn golden() -> Golden {
    let g = load("api-fixtures/unbonding-golden.json");
    let params = load("api-fixtures/global-params-test.json");
    let v0 = &params["versions"][g["expected"]["params_version"].as_u64().unwrap() as usize];
    let event = &g["active_staking_event"];
    let covenants: Vec<XOnlyPublicKey> = v0["covenant_pks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| text(k).parse::<PublicKey>().unwrap().x_only_public_key().0)
        .collect();
    let keys = StakingKeys::new(
        text(&event["staker_pk_hex"]).parse().unwrap(),
        vec![text(&event["finality_provider_pk_hex"]).parse().unwrap()],
        covenants,
        v0["covenant_quorum"].as_u64().unwrap() as u32,
    )
    .unwrap();
    let staking =
        StakingOutput::new(keys, event["staking_timelock"].as_u64().unwrap() as u16).unwrap();
    let staking_tx: Transaction =
        deserialize(&hex::decode(text(&event["staking_tx_hex"])).unwrap()).unwrap();
    let index = event["staking_output_index"].as_u64().unwrap() as u32;
    assert_eq!(
        staking_tx.compute_txid().to_string(),
        text(&event["staking_tx_hash_hex"])
    );
    assert_eq!(
        &staking_tx.output[index as usize].script_pubkey,
        staking.script_pubkey()
    );
    let req = &g["unbonding_request"];
    Golden {
        outpoint: OutPoint::new(staking_tx.compute_txid(), index),
        value: staking_tx.output[index as usize].value,
        terms: UnbondingTerms {
            unbonding_time: v0["unbonding_time"].as_u64().unwrap() as u16,
            unbonding_fee: Amount::from_sat(v0["unbonding_fee"].as_u64().unwrap()),
        },
        staking,
        unbonding: deserialize(&hex::decode(text(&req["unbonding_tx_hex"])).unwrap()).unwrap(),
        claimed: text(&req["unbonding_tx_hash_hex"]).parse().unwrap(),
        signature: hex::decode(text(&req["staker_signed_signature_hex"])).unwrap(),
    }
}

impl Golden {
    fn check(
        &self,
        tx: &Transaction,
        claimed: Txid,
        signature: &[u8],
    ) -> Result<(), UnbondingRequestError> {
        verify_unbonding_request(
            tx,
            claimed,
            signature,
            &self.staking,
            self.outpoint,
            self.value,
            &self.terms,
        )
    }

    /// A corrupted copy, with its own txid claimed so the check reaches the field under test.
    fn corrupt(&self, change: impl FnOnce(&mut Transaction)) -> Result<(), UnbondingRequestError> {
        let mut tx = self.unbonding.clone();
        change(&mut tx);
        self.check(&tx, tx.compute_txid(), &self.signature)
    }
}

#[test]
fn the_golden_request_is_accepted_and_is_the_canonical_unbonding_tx() {
    let g = golden();
    g.check(&g.unbonding, g.claimed, &g.signature).unwrap();
    assert_eq!(g.unbonding.output[0].value, Amount::from_sat(90_000));
    let canonical = canonical_unbonding_tx(&g.staking, g.outpoint, g.value, &g.terms).unwrap();
    assert_eq!(canonical.compute_txid(), g.claimed);
    let known = KnownStaking::from_output(&g.staking, g.outpoint, g.value, g.terms).unwrap();
    assert_eq!(
        recognise_staking_spend(&g.unbonding, 0, &known),
        StakingSpend::Unbonding
    );
}

#[test]
fn an_rbf_sequence_is_refused_with_the_reference_text() {
    let err = golden()
        .corrupt(|tx| tx.input[0].sequence = Sequence::ENABLE_RBF_NO_LOCKTIME)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid unbonding tx hex: the unbonding tx is not a valid pre-signed unbonding tx: \
         pre-signed tx must not be replaceable"
    );
}

#[test]
fn version_1_is_refused_with_the_reference_text() {
    let err = golden()
        .corrupt(|tx| tx.version = Version::ONE)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid unbonding tx hex: the unbonding tx is not a valid pre-signed unbonding tx: \
         tx version must be between 2 and 2"
    );
}

#[test]
fn a_wrong_output_value_is_refused() {
    let err = golden()
        .corrupt(|tx| tx.output[0].value = Amount::from_sat(90_001))
        .unwrap_err();
    assert_eq!(err, UnbondingRequestError::OutputMismatch);
    assert_eq!(
        err.to_string(),
        "unbonding output does not match expected output"
    );
}

#[test]
fn a_wrong_output_script_is_refused() {
    let g = golden();
    let err = g
        .corrupt(|tx| tx.output[0].script_pubkey = g.staking.script_pubkey().clone())
        .unwrap_err();
    assert_eq!(err, UnbondingRequestError::OutputMismatch);
    let err = g
        .corrupt(|tx| tx.output[0].script_pubkey = ScriptBuf::new())
        .unwrap_err();
    assert_eq!(err, UnbondingRequestError::OutputMismatch);
}

#[test]
fn a_bad_signature_is_refused() {
    let g = golden();
    let mut flipped = g.signature.clone();
    flipped[10] ^= 0x01;
    let err = g.check(&g.unbonding, g.claimed, &flipped).unwrap_err();
    assert_eq!(err.to_string(), "invalid unbonding signature");
    let mut with_hash_type = g.signature.clone();
    with_hash_type.push(0x01);
    assert_eq!(
        g.check(&g.unbonding, g.claimed, &with_hash_type),
        Err(UnbondingRequestError::BadSignature)
    );
}

#[test]
fn a_claimed_txid_that_is_not_the_txs_is_refused() {
    let g = golden();
    let err = g
        .check(&g.unbonding, g.outpoint.txid, &g.signature)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unbonding_tx_hash_hex must match the hash calculated from the provided unbonding tx"
    );
}

#[test]
fn spending_another_outpoint_is_refused_with_expected_and_got() {
    let g = golden();
    let err = g
        .corrupt(|tx| tx.input[0].previous_output.vout = 0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the unbonding tx input must match the previous staking tx output index, expected: 1, got: 0"
    );
    let other = Txid::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([7; 32]));
    let err = g
        .corrupt(|tx| tx.input[0].previous_output.txid = other)
        .unwrap_err();
    assert_eq!(
        err,
        UnbondingRequestError::OtherStakingTx {
            expected: g.outpoint.txid,
            got: other
        }
    );
}

#[test]
fn a_lock_time_is_refused_before_anything_else_is_looked_at() {
    let err = golden()
        .corrupt(|tx| tx.lock_time = bitcoin::absolute::LockTime::from_consensus(1))
        .unwrap_err();
    assert!(err
        .to_string()
        .ends_with("pre-signed tx must not have locktime"));
}
