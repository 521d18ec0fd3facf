//! Recognising what a tx spending a known staking or unbonding output is
//! (`docs/rules.md#withdrawal-classification`): unbonding, invalid unbonding, withdrawal through
//! either timelock path, or something else.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, SecretKey, XOnlyPublicKey};
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, Txid, Witness};
use staking_core::builder::withdrawal_tx;
use staking_core::keys::SECP;
use staking_core::script::{StakingKeys, StakingLeaf, StakingOutput, UnbondingLeaf};
use staking_core::spend::{
    recognise_staking_spend, recognise_unbonding_spend, KnownStaking, StakingSpend, UnbondingSpend,
};
use staking_core::unbonding::{
    canonical_unbonding_tx, unbonding_output, InvalidUnbonding, UnbondingTerms,
};

fn xonly(n: u8) -> XOnlyPublicKey {
    let kp = Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&[n; 32]).unwrap());
    kp.x_only_public_key().0
}

const TERMS: UnbondingTerms = UnbondingTerms {
    unbonding_time: 1008,
    unbonding_fee: Amount::from_sat(10_000),
};
const VALUE: Amount = Amount::from_sat(100_000);

fn staking() -> StakingOutput {
    let keys = StakingKeys::new(
        xonly(1),
        vec![xonly(2)],
        vec![xonly(3), xonly(4), xonly(5)],
        2,
    )
    .unwrap();
    StakingOutput::new(keys, 64000).unwrap()
}

fn outpoint() -> OutPoint {
    OutPoint::new(Txid::from_byte_array([9; 32]), 0)
}

fn known() -> KnownStaking {
    KnownStaking::from_output(&staking(), outpoint(), VALUE, TERMS).unwrap()
}

fn reveal(script: &ScriptBuf) -> Witness {
    let mut w = Witness::new();
    w.push([0x11; 64]);
    w.push(script.as_bytes());
    w.push([0xc0; 33]);
    w
}

fn withdrawal_from(prev: OutPoint, script: &ScriptBuf) -> Transaction {
    let mut tx = withdrawal_tx(prev, VALUE, 64000, ScriptBuf::new_op_return([1]), 2).unwrap();
    tx.input[0].witness = reveal(script);
    tx
}

fn other_input(n: u8) -> TxIn {
    TxIn {
        previous_output: OutPoint::new(Txid::from_byte_array([n; 32]), 0),
        ..TxIn::default()
    }
}

#[test]
fn revealing_the_staking_timelock_leaf_is_a_withdrawal() {
    let tx = withdrawal_from(outpoint(), staking().leaf_script(StakingLeaf::Timelock));
    assert_eq!(
        recognise_staking_spend(&tx, 0, &known()),
        StakingSpend::Withdrawal
    );
}

#[test]
fn a_withdrawal_is_recognised_per_input_in_a_multi_input_tx() {
    let mut tx = withdrawal_from(outpoint(), staking().leaf_script(StakingLeaf::Timelock));
    tx.input.insert(0, other_input(7));
    assert_eq!(
        recognise_staking_spend(&tx, 1, &known()),
        StakingSpend::Withdrawal
    );
    assert_eq!(
        recognise_staking_spend(&tx, 0, &known()),
        StakingSpend::Other
    );
}

#[test]
fn the_covenant_path_in_a_multi_input_tx_is_other_not_an_invalid_unbonding() {
    let mut tx = canonical_unbonding_tx(&staking(), outpoint(), VALUE, &TERMS).unwrap();
    tx.input[0].witness = reveal(staking().leaf_script(StakingLeaf::Unbonding));
    assert_eq!(
        recognise_staking_spend(&tx, 0, &known()),
        StakingSpend::Unbonding
    );
    tx.input.push(other_input(7));
    assert_eq!(
        recognise_staking_spend(&tx, 0, &known()),
        StakingSpend::Other
    );
}

#[test]
fn an_unbonding_breaking_a_rule_is_an_invalid_unbonding_with_its_reason() {
    let mut tx = canonical_unbonding_tx(&staking(), outpoint(), VALUE, &TERMS).unwrap();
    tx.input[0].witness = reveal(staking().leaf_script(StakingLeaf::Unbonding));
    tx.input[0].sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;
    assert_eq!(
        recognise_staking_spend(&tx, 0, &known()),
        StakingSpend::InvalidUnbonding(InvalidUnbonding::Replaceable(0xffff_fffd))
    );
}

#[test]
fn the_slashing_path_and_key_path_looking_spends_are_other() {
    let tx = withdrawal_from(outpoint(), staking().leaf_script(StakingLeaf::Slashing));
    assert_eq!(
        recognise_staking_spend(&tx, 0, &known()),
        StakingSpend::Other
    );
    let mut key_path = tx.clone();
    key_path.input[0].witness = Witness::from_slice(&[[0x22; 64]]);
    assert_eq!(
        recognise_staking_spend(&key_path, 0, &known()),
        StakingSpend::Other
    );
    let mut empty = tx;
    empty.input[0].witness = Witness::new();
    assert_eq!(
        recognise_staking_spend(&empty, 0, &known()),
        StakingSpend::Other
    );
}

#[test]
fn an_input_that_does_not_spend_the_staking_output_or_does_not_exist_is_other() {
    let tx = withdrawal_from(
        OutPoint::new(outpoint().txid, 1),
        staking().leaf_script(StakingLeaf::Timelock),
    );
    assert_eq!(
        recognise_staking_spend(&tx, 0, &known()),
        StakingSpend::Other
    );
    assert_eq!(
        recognise_staking_spend(&tx, 5, &known()),
        StakingSpend::Other
    );
    assert_eq!(
        recognise_unbonding_spend(&tx, 5, &known()),
        UnbondingSpend::Other
    );
}

#[test]
fn spends_of_the_unbonding_output_are_withdrawals_only_through_its_timelock_leaf() {
    let unbonding = unbonding_output(staking().keys(), &TERMS).unwrap();
    let unbonding_outpoint = OutPoint::new(Txid::from_byte_array([5; 32]), 0);
    let tx = withdrawal_from(
        unbonding_outpoint,
        unbonding.leaf_script(UnbondingLeaf::Timelock),
    );
    assert_eq!(
        recognise_unbonding_spend(&tx, 0, &known()),
        UnbondingSpend::Withdrawal
    );
    let slashing = withdrawal_from(
        unbonding_outpoint,
        unbonding.leaf_script(UnbondingLeaf::Slashing),
    );
    assert_eq!(
        recognise_unbonding_spend(&slashing, 0, &known()),
        UnbondingSpend::Other
    );
    // The staking output's timelock leaf (another CSV value) is not the unbonding one.
    let staking_leaf = withdrawal_from(
        unbonding_outpoint,
        staking().leaf_script(StakingLeaf::Timelock),
    );
    assert_eq!(
        recognise_unbonding_spend(&staking_leaf, 0, &known()),
        UnbondingSpend::Other
    );
    let mut short = tx;
    short.input[0].witness =
        Witness::from_slice(&[unbonding.leaf_script(UnbondingLeaf::Timelock).as_bytes()]);
    assert_eq!(
        recognise_unbonding_spend(&short, 0, &known()),
        UnbondingSpend::Other
    );
}
