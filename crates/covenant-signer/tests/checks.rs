//! The signing checks of `docs/rules.md#signer-checks` against an in-memory chain: for each
//! rule, the valid request with one thing changed is refused with the right status and body,
//! and only the unchanged valid request is signed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::sync::Arc;

use axum::http::StatusCode;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::{
    Amount, OutPoint, ScriptBuf, Sequence, TapSighashType, Transaction, TxIn, TxOut, Txid, Witness,
};
use covenant_signer::chain::{ChainError, MemoryChain};
use covenant_signer::error::SignError;
use covenant_signer::fixture::{Fixture, FixtureShape};
use covenant_signer::keystore::KeyBackend;
use covenant_signer::request::SignRequest;
use covenant_signer::signer::Signer;
use staking_core::keys::SECP;
use staking_core::params::{BlockHeight, GlobalParams};
use staking_core::script::StakingLeaf;

const TIME: u16 = 1000;
const AMOUNT: Amount = Amount::from_sat(100_000);
const HEIGHT: u32 = 200;
/// Exactly `confirmation_depth` (10) confirmations.
const TIP: u32 = HEIGHT + 9;

struct Harness {
    fx: Fixture,
    chain: Arc<MemoryChain>,
    staking_tx: Transaction,
}

fn funding(n: u8) -> OutPoint {
    OutPoint::new(Txid::from_byte_array([n; 32]), 0)
}

fn harness_with(shape: FixtureShape, amount: Amount, time: u16) -> Harness {
    let fx = Fixture::new(shape, 7).unwrap();
    let staking_tx = fx.staking_tx(funding(1), amount, time, None).unwrap();
    let chain = Arc::new(MemoryChain::new(TIP));
    chain.confirm(staking_tx.clone(), HEIGHT);
    Harness {
        fx,
        chain,
        staking_tx,
    }
}

fn harness() -> Harness {
    harness_with(FixtureShape::default(), AMOUNT, TIME)
}

impl Harness {
    fn signer_with(&self, params: GlobalParams, backend: KeyBackend, max_height: u32) -> Signer {
        Signer::new(params, self.chain.clone(), backend, max_height)
    }

    fn signer(&self) -> Signer {
        let backend = KeyBackend::File(self.fx.member_covenant_key(0).unwrap());
        self.signer_with(self.fx.params.clone(), backend, u32::MAX)
    }

    fn valid(&self) -> SignRequest {
        self.fx.request(&self.staking_tx, TIME, 0).unwrap()
    }

    /// The request with its unbonding tx changed by `mutate` and re-signed by the staker, so
    /// only the mutation can be the reason for a refusal.
    fn mutated_tx(&self, mutate: impl FnOnce(&mut Transaction)) -> SignRequest {
        let mut request = self.valid();
        mutate(&mut request.unbonding_tx);
        let staking = self.fx.staking_output(TIME).unwrap();
        let prevout = TxOut {
            value: AMOUNT,
            script_pubkey: staking.script_pubkey().clone(),
        };
        let prevouts = vec![prevout; request.unbonding_tx.input.len()];
        if let Ok(sighash) = SighashCache::new(&request.unbonding_tx)
            .taproot_script_spend_signature_hash(
                0,
                &Prevouts::All(&prevouts),
                staking.leaf_hash(StakingLeaf::Unbonding),
                TapSighashType::Default,
            )
        {
            request.staker_signature = staking_core::signing::sign(&sighash, &self.fx.staker);
        }
        request
    }
}

async fn refused(signer: &Signer, request: &SignRequest) -> (StatusCode, String) {
    let error = signer.sign(request).await.expect_err("must be refused");
    (error.status(), error.body().message)
}

async fn assert_refused(signer: &Signer, request: &SignRequest, message: &str) {
    let (status, body) = refused(signer, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, format!("{message}: invalid signing request"));
}

#[tokio::test]
async fn the_valid_request_is_signed_with_a_signature_that_verifies() {
    let h = harness();
    let request = h.valid();
    let signature = h.signer().sign(&request).await.unwrap();
    let staking = h.fx.staking_output(TIME).unwrap();
    let sighash =
        staking_core::unbonding::unbonding_sighash(&request.unbonding_tx, &staking, AMOUNT)
            .unwrap();
    let member = h.fx.member_key(0).unwrap().x_only_public_key().0;
    staking_core::signing::verify_parsed(&sighash, &signature, &member).unwrap();
}

#[tokio::test]
async fn an_unbonding_tx_with_version_1_is_refused() {
    let h = harness();
    let request = h.mutated_tx(|tx| tx.version = bitcoin::transaction::Version::ONE);
    assert_refused(&h.signer(), &request, "tx version must be between 2 and 2").await;
}

#[tokio::test]
async fn an_unbonding_tx_with_a_lock_time_is_refused() {
    let h = harness();
    let request = h.mutated_tx(|tx| tx.lock_time = bitcoin::absolute::LockTime::from_consensus(1));
    assert_refused(
        &h.signer(),
        &request,
        "pre-signed tx must not have locktime",
    )
    .await;
}

#[tokio::test]
async fn a_replaceable_sequence_is_refused() {
    let h = harness();
    let request = h.mutated_tx(|tx| tx.input[0].sequence = Sequence::ENABLE_RBF_NO_LOCKTIME);
    assert_refused(
        &h.signer(),
        &request,
        "pre-signed tx must not be replaceable",
    )
    .await;
}

#[tokio::test]
async fn an_output_value_off_by_one_either_way_is_refused() {
    let h = harness();
    for delta in [1i64, -1] {
        let request = h.mutated_tx(|tx| {
            let value = tx.output[0].value.to_sat() as i64 + delta;
            tx.output[0].value = Amount::from_sat(value as u64);
        });
        assert_refused(
            &h.signer(),
            &request,
            "unbonding output does not match expected output",
        )
        .await;
    }
}

#[tokio::test]
async fn an_output_paying_another_script_is_refused() {
    let h = harness();
    let request = h.mutated_tx(|tx| {
        tx.output[0].script_pubkey = h.staking_tx.output[0].script_pubkey.clone();
    });
    assert_refused(
        &h.signer(),
        &request,
        "unbonding output does not match expected output",
    )
    .await;
}

#[tokio::test]
async fn an_unbonding_output_with_another_unbonding_time_is_refused() {
    let h = harness();
    let shape = FixtureShape {
        unbonding_time: FixtureShape::default().unbonding_time + 1,
        ..FixtureShape::default()
    };
    let other = Fixture::new(shape, 7).unwrap();
    let wrong = other.unbonding_tx(&h.staking_tx, TIME).unwrap();
    let request =
        h.mutated_tx(|tx| tx.output[0].script_pubkey = wrong.output[0].script_pubkey.clone());
    assert_refused(
        &h.signer(),
        &request,
        "unbonding output does not match expected output",
    )
    .await;
}

#[tokio::test]
async fn an_extra_input_is_refused() {
    let h = harness();
    let request = h.mutated_tx(|tx| {
        tx.input.push(TxIn {
            previous_output: funding(9),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        });
    });
    assert_refused(&h.signer(), &request, "tx must have exactly 1 inputs").await;
}

#[tokio::test]
async fn an_extra_output_is_refused() {
    let h = harness();
    let request = h.mutated_tx(|tx| {
        tx.output.push(TxOut {
            value: Amount::from_sat(1),
            script_pubkey: ScriptBuf::new_op_return([1u8; 4]),
        });
    });
    assert_refused(&h.signer(), &request, "tx must have exactly 1 outputs").await;
}

#[tokio::test]
async fn spending_another_output_of_the_staking_tx_is_refused() {
    let h = harness();
    let request = h.mutated_tx(|tx| tx.input[0].previous_output.vout = 1);
    assert_refused(
        &h.signer(),
        &request,
        "unbonding transaction spends output 1 of the staking transaction, but the staking output is 0",
    )
    .await;
}

#[tokio::test]
async fn a_staking_tx_only_in_the_mempool_is_a_client_error() {
    let h = harness();
    let pending = h.fx.staking_tx(funding(2), AMOUNT, TIME, None).unwrap();
    h.chain.add_to_mempool(pending.clone());
    let request = h.fx.request(&pending, TIME, 0).unwrap();
    let message = format!(
        "staking transaction {} is not included in a block",
        pending.compute_txid()
    );
    assert_refused(&h.signer(), &request, &message).await;
}

#[tokio::test]
async fn an_unknown_staking_tx_is_a_client_error() {
    let h = harness();
    let unknown = h.fx.staking_tx(funding(3), AMOUNT, TIME, None).unwrap();
    let request = h.fx.request(&unknown, TIME, 0).unwrap();
    let message = format!("staking transaction {} not found", unknown.compute_txid());
    assert_refused(&h.signer(), &request, &message).await;
}

#[tokio::test]
async fn a_staking_tx_one_block_too_shallow_is_refused() {
    let h = harness();
    h.chain.set_tip(TIP - 1);
    let message = format!(
        "staking transaction {} has 9 confirmations, but 10 are required",
        h.staking_tx.compute_txid()
    );
    assert_refused(&h.signer(), &h.valid(), &message).await;
}

#[tokio::test]
async fn a_staking_tx_above_the_cut_off_height_is_refused_with_the_reference_text() {
    let h = harness();
    let backend = KeyBackend::File(h.fx.member_covenant_key(0).unwrap());
    let signer = h.signer_with(h.fx.params.clone(), backend, 100);
    let message = "staking transaction is inlcluded to late in btc. Max allowed height is 100, but staking tx height is 200";
    assert_refused(&signer, &h.valid(), message).await;
}

#[tokio::test]
async fn a_staking_tx_below_the_first_activation_height_is_a_client_error() {
    let h = harness();
    let early = h.fx.staking_tx(funding(4), AMOUNT, TIME, None).unwrap();
    h.chain.confirm(early.clone(), 50);
    let request = h.fx.request(&early, TIME, 0).unwrap();
    assert_refused(
        &h.signer(),
        &request,
        "no global params for staking transaction height 50",
    )
    .await;
}

#[tokio::test]
async fn a_key_outside_the_committee_is_refused() {
    let h = harness();
    let mut request = h.valid();
    let outsider = Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&[0x77; 32]).unwrap());
    request.covenant_key = outsider.public_key();
    let message = format!(
        "received covenant public key {} is not committee member at height 200",
        hex::encode(outsider.public_key().serialize())
    );
    assert_refused(&h.signer(), &request, &message).await;
}

#[tokio::test]
async fn a_member_key_with_the_wrong_parity_is_refused() {
    let h = harness();
    let mut request = h.valid();
    let mut bytes = request.covenant_key.serialize();
    bytes[0] ^= 0x01; // 02 <-> 03: same x, other point
    request.covenant_key = bitcoin::secp256k1::PublicKey::from_slice(&bytes).unwrap();
    let (status, body) = refused(&h.signer(), &request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("is not committee member at height 200"),
        "{body}"
    );
}

#[tokio::test]
async fn a_key_of_another_params_version_is_refused() {
    let h = harness();
    let next = Fixture::new(FixtureShape::default(), 8).unwrap();
    let mut v0 = h.fx.version().unwrap().clone();
    let mut v1 = next.version().unwrap().clone();
    v0.activation_height = BlockHeight(100);
    v1.version = 1;
    v1.activation_height = BlockHeight(300);
    let (params, _) = GlobalParams::from_versions(vec![v0, v1]).unwrap();
    let backend = KeyBackend::File(next.member_covenant_key(0).unwrap());
    let signer = h.signer_with(params, backend, u32::MAX);
    let mut request = h.valid();
    request.covenant_key = next.member_key(0).unwrap();
    let message = format!(
        "received covenant public key {} is not committee member at height 200",
        hex::encode(request.covenant_key.serialize())
    );
    assert_refused(&signer, &request, &message).await;
}

#[tokio::test]
async fn a_member_key_this_signer_does_not_hold_is_refused_before_signing() {
    let h = harness();
    let request = h.fx.request(&h.staking_tx, TIME, 1).unwrap();
    let message = format!(
        "covenant public key {} is not held by this signer",
        hex::encode(h.fx.member_key(1).unwrap().serialize())
    );
    assert_refused(&h.signer(), &request, &message).await;
}

#[tokio::test]
async fn a_staker_signature_over_another_tx_is_refused_with_the_reference_body() {
    let h = harness();
    let other = h.mutated_tx(|tx| tx.output[0].value -= Amount::from_sat(1));
    let mut request = h.valid();
    request.staker_signature = other.staker_signature;
    let error = h.signer().sign(&request).await.unwrap_err();
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        serde_json::to_string(&error.body()).unwrap(),
        r#"{"errorCode":"BAD_REQUEST","message":"staker unbonding signature verification failed: signature is not valid: invalid signing request"}"#
    );
}

#[tokio::test]
async fn a_staker_signature_with_sighash_all_is_refused() {
    let h = harness();
    let mut request = h.valid();
    let staking = h.fx.staking_output(TIME).unwrap();
    let prevout = TxOut {
        value: AMOUNT,
        script_pubkey: staking.script_pubkey().clone(),
    };
    let sighash_all = SighashCache::new(&request.unbonding_tx)
        .taproot_script_spend_signature_hash(
            0,
            &Prevouts::All(&[prevout]),
            staking.leaf_hash(StakingLeaf::Unbonding),
            TapSighashType::All,
        )
        .unwrap();
    request.staker_signature = staking_core::signing::sign(&sighash_all, &h.fx.staker);
    assert_refused(
        &h.signer(),
        &request,
        "staker unbonding signature verification failed: signature is not valid",
    )
    .await;
}

#[tokio::test]
async fn a_signature_by_another_key_is_refused() {
    let h = harness();
    let mut request = h.valid();
    let staking = h.fx.staking_output(TIME).unwrap();
    let sighash =
        staking_core::unbonding::unbonding_sighash(&request.unbonding_tx, &staking, AMOUNT)
            .unwrap();
    request.staker_signature = staking_core::signing::sign(&sighash, &h.fx.members[0]);
    assert_refused(
        &h.signer(),
        &request,
        "staker unbonding signature verification failed: signature is not valid",
    )
    .await;
}

#[tokio::test]
async fn an_already_spent_staking_output_is_refused() {
    let h = harness();
    let outpoint = OutPoint::new(h.staking_tx.compute_txid(), 0);
    h.chain.spend(outpoint);
    assert_refused(
        &h.signer(),
        &h.valid(),
        &format!("staking output {outpoint} is already spent"),
    )
    .await;
}

#[tokio::test]
async fn a_staking_script_that_is_not_taproot_is_refused() {
    let h = harness();
    let mut request = h.valid();
    request.staking_output_pk_script = ScriptBuf::from_bytes(vec![0x00, 0x14, 1, 2, 3]);
    assert_refused(
        &h.signer(),
        &request,
        "staking output pk script 0014010203 is not a taproot output script",
    )
    .await;
}

#[tokio::test]
async fn a_staking_script_absent_from_the_staking_tx_is_refused() {
    let h = harness();
    let mut request = h.valid();
    let mut script = request.staking_output_pk_script.to_bytes();
    script[33] ^= 1;
    request.staking_output_pk_script = ScriptBuf::from_bytes(script);
    let (status, body) = refused(&h.signer(), &request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("has no output with pk script"), "{body}");
}

#[tokio::test]
async fn a_tx_without_the_params_tag_is_not_a_staking_tx() {
    let shape = FixtureShape {
        tag: *b"xxxx",
        ..FixtureShape::default()
    };
    let other = Fixture::new(shape, 7).unwrap();
    let h = harness();
    let foreign = other.staking_tx(funding(5), AMOUNT, TIME, None).unwrap();
    h.chain.confirm(foreign.clone(), HEIGHT);
    let request = other.request(&foreign, TIME, 0).unwrap();
    let (status, body) = refused(&h.signer(), &request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("is not a valid staking transaction"),
        "{body}"
    );
}

#[tokio::test]
async fn staking_amount_and_time_outside_the_bounds_are_refused() {
    let h = harness_with(FixtureShape::default(), Amount::from_sat(9_999), TIME);
    assert_refused(
        &h.signer(),
        &h.fx.request(&h.staking_tx, TIME, 0).unwrap(),
        "staking amount 9999 sat is not between 10000 and 10000000 sat",
    )
    .await;
    let h = harness_with(FixtureShape::default(), AMOUNT, 10_001);
    assert_refused(
        &h.signer(),
        &h.fx.request(&h.staking_tx, 10_001, 0).unwrap(),
        "staking time 10001 is not between 100 and 10000",
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_node_is_our_failure_and_reveals_nothing() {
    let h = harness();
    h.chain.fail_with(Some(ChainError::Transient(
        "connection refused to 10.0.0.1".into(),
    )));
    let error = h.signer().sign(&h.valid()).await.unwrap_err();
    assert!(matches!(error, SignError::Chain(_)));
    assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        serde_json::to_string(&error.body()).unwrap(),
        r#"{"errorCode":"INTERNAL_SERVICE_ERROR","message":"Internal service error"}"#
    );
}

#[tokio::test]
async fn repeated_requests_for_one_staking_tx_reuse_the_parsed_context() {
    let h = harness();
    let signer = h.signer();
    for _ in 0..5 {
        signer.sign(&h.valid()).await.unwrap();
    }
    // Spentness is still asked every time: a later spend is refused at once.
    h.chain.spend(OutPoint::new(h.staking_tx.compute_txid(), 0));
    assert!(matches!(
        signer.sign(&h.valid()).await,
        Err(SignError::AlreadySpent(_))
    ));
}
