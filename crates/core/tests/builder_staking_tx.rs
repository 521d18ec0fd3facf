//! The staking-tx builder follows btc-staking-ts 0.2.x
//! (`docs/formats.md#staking-and-withdrawal-builders`): coin selection largest first, RBF
//! sequences, `[staking, OP_RETURN, change?]`, the library's fee formula and its dust rule.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, SecretKey, XOnlyPublicKey};
use bitcoin::{Amount, OutPoint, ScriptBuf, Txid, WPubkeyHash};
use proptest::prelude::*;
use staking_core::builder::{
    staking_tx, BuildError, StakingTxRequest, Utxo, DUST, STAKING_INPUT_SEQUENCE,
};
use staking_core::keys::SECP;
use staking_core::script::{StakingKeys, StakingOutput};

fn xonly(n: u8) -> XOnlyPublicKey {
    let kp = Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&[n; 32]).unwrap());
    kp.x_only_public_key().0
}

fn staking() -> StakingOutput {
    let keys = StakingKeys::new(xonly(1), vec![xonly(2)], vec![xonly(3)], 1).unwrap();
    StakingOutput::new(keys, 64000).unwrap()
}

/// A 73-byte V0 OP_RETURN stand-in (only its length matters to the builder).
fn op_return() -> ScriptBuf {
    let mut bytes = vec![0x6a, 0x47];
    bytes.extend_from_slice(&[0u8; 71]);
    ScriptBuf::from_bytes(bytes)
}

fn p2tr() -> ScriptBuf {
    ScriptBuf::new_p2tr(&SECP, xonly(1), None)
}

fn p2wpkh() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([4; 20]))
}

fn utxo(n: u8, value: u64, script: ScriptBuf) -> Utxo {
    Utxo {
        outpoint: OutPoint::new(Txid::from_byte_array([n; 32]), u32::from(n)),
        value: Amount::from_sat(value),
        script_pubkey: script,
    }
}

fn build(
    utxos: &[Utxo],
    amount: u64,
    fee_rate: u64,
) -> Result<staking_core::builder::BuiltStakingTx, BuildError> {
    let staking = staking();
    staking_tx(&StakingTxRequest {
        staking: &staking,
        amount: Amount::from_sat(amount),
        op_return: op_return(),
        utxos,
        change_script: p2tr(),
        fee_rate,
        lock_time: LockTime::from_height(200_664).unwrap(),
    })
}

#[test]
fn utxos_are_taken_largest_first_until_amount_and_fee_are_covered() {
    let utxos = [
        utxo(1, 30_000, p2tr()),
        utxo(2, 90_000, p2tr()),
        utxo(3, 50_000, p2tr()),
    ];
    let built = build(&utxos, 120_000, 5).unwrap();
    let spent: Vec<u8> = built
        .tx
        .input
        .iter()
        .map(|i| i.previous_output.txid.to_byte_array()[0])
        .collect();
    assert_eq!(spent, vec![2, 3]);
    assert_eq!(built.inputs.len(), 2);
    assert!(built
        .tx
        .input
        .iter()
        .all(|i| i.sequence == STAKING_INPUT_SEQUENCE));
    assert_eq!(built.tx.lock_time, LockTime::from_height(200_664).unwrap());
    // 2 P2TR inputs (58 each), staking output 43, OP_RETURN 73 + 9, overhead 11, change 43.
    assert_eq!(built.fee.to_sat(), 5 * (2 * 58 + 43 + 82 + 11) + 5 * 43);
    let change = built.tx.output[2].value.to_sat();
    assert_eq!(change, 140_000 - 120_000 - built.fee.to_sat());
}

#[test]
fn outputs_are_staking_then_op_return_then_change() {
    let built = build(&[utxo(1, 500_000, p2tr())], 100_000, 3).unwrap();
    assert_eq!(built.staking_output_index, 0);
    assert_eq!(&built.tx.output[0].script_pubkey, staking().script_pubkey());
    assert_eq!(built.tx.output[0].value, Amount::from_sat(100_000));
    assert_eq!(built.tx.output[1].script_pubkey, op_return());
    assert_eq!(built.tx.output[1].value, Amount::ZERO);
    assert_eq!(built.tx.output[2].script_pubkey, p2tr());
}

#[test]
fn change_at_or_below_dust_is_left_to_the_fee() {
    // fee without change at rate 1: 58 + 43 + 82 + 11 = 194, plus the 30 sat low-rate buffer.
    let fee = 194 + 30;
    let built = build(&[utxo(1, 100_000 + fee + 546, p2tr())], 100_000, 1).unwrap();
    assert_eq!(built.tx.output.len(), 2);
    assert_eq!(built.fee.to_sat(), fee);
    assert_eq!(DUST.to_sat(), 546);
    let built = build(&[utxo(1, 100_000 + fee + 547 + 43, p2tr())], 100_000, 1).unwrap();
    assert_eq!(built.tx.output.len(), 3);
    assert_eq!(built.tx.output[2].value.to_sat(), 547);
}

#[test]
fn input_sizes_depend_on_the_script_type() {
    let rate = 10;
    let p2tr_fee = build(&[utxo(1, 1_000_000, p2tr())], 100_000, rate)
        .unwrap()
        .fee;
    let wpkh_fee = build(&[utxo(1, 1_000_000, p2wpkh())], 100_000, rate)
        .unwrap()
        .fee;
    let other_fee = build(
        &[utxo(1, 1_000_000, ScriptBuf::from_bytes(vec![0x51]))],
        100_000,
        rate,
    )
    .unwrap()
    .fee;
    assert_eq!(wpkh_fee - p2tr_fee, Amount::from_sat(rate * (68 - 58)));
    assert_eq!(other_fee - p2tr_fee, Amount::from_sat(rate * (180 - 58)));
}

#[test]
fn insufficient_funds_and_bad_requests_are_refused() {
    assert!(matches!(
        build(&[utxo(1, 100_000, p2tr())], 100_000, 1),
        Err(BuildError::InsufficientFunds { .. })
    ));
    assert_eq!(build(&[], 100_000, 1).unwrap_err(), BuildError::NoUtxos);
    assert_eq!(
        build(&[utxo(1, 1_000_000, p2tr())], 100_000, 0).unwrap_err(),
        BuildError::ZeroFeeRate
    );
    assert_eq!(
        build(&[utxo(1, 1_000_000, p2tr())], 0, 1).unwrap_err(),
        BuildError::ZeroAmount
    );
    let err = build(&[utxo(1, 1_000, p2tr()), utxo(2, 2_000, p2tr())], 5_000, 2).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("insufficient funds: 3000 sat available"));
}

proptest! {
    #[test]
    fn a_built_staking_tx_always_balances(
        values in prop::collection::vec(1_000u64..10_000_000, 1..8),
        amount in 1_000u64..5_000_000,
        rate in 1u64..200,
    ) {
        let utxos: Vec<Utxo> = values.iter().enumerate().map(|(i, v)| utxo(i as u8 + 1, *v, p2tr())).collect();
        match build(&utxos, amount, rate) {
            Ok(built) => {
                let inputs: u64 = built.inputs.iter().map(|u| u.value.to_sat()).sum();
                let outputs: u64 = built.tx.output.iter().map(|o| o.value.to_sat()).sum();
                prop_assert!(inputs >= outputs + built.fee.to_sat());
                prop_assert!(inputs - outputs - built.fee.to_sat() <= DUST.to_sat());
                if built.tx.output.len() == 3 {
                    prop_assert!(built.tx.output[2].value > DUST);
                    prop_assert_eq!(inputs - outputs, built.fee.to_sat());
                }
                let mut sorted = built.inputs.iter().map(|u| u.value).collect::<Vec<_>>();
                sorted.sort_by_key(|v| std::cmp::Reverse(*v));
                prop_assert_eq!(sorted, built.inputs.iter().map(|u| u.value).collect::<Vec<_>>());
            }
            Err(BuildError::InsufficientFunds { available, needed }) => {
                prop_assert!(available < needed);
                prop_assert_eq!(available.to_sat(), values.iter().sum::<u64>());
            }
            Err(other) => prop_assert!(false, "unexpected {other}"),
        }
    }
}
