//! Classification rules on constructed transactions: every *not staking* and *invalid* reason,
//! bounds (inclusive, checked in the reference's order), no output-position assumption, bad
//! transaction bytes. Property tests are in `classify_properties.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
use staking_core::bitcoin::secp256k1::{PublicKey, SecretKey, XOnlyPublicKey};
use staking_core::bitcoin::{
    absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Witness,
};
use staking_core::keys::SECP;
use staking_core::op_return::V0OpReturn;
use staking_core::params::{BlockHeight, ParamsVersion, StakingCap};
use staking_core::script::{ScriptError, StakingOutput};
use staking_core::staking_tx::{
    classify_under, decode_transaction, decode_transaction_hex, InvalidStakingReason,
    NotStakingReason, ParsedStaking, StakingTxClass, TxDecodeError,
};

fn secret(n: u32) -> SecretKey {
    let mut b = [0u8; 32];
    b[28..].copy_from_slice(&n.to_be_bytes());
    b[0] = 1;
    SecretKey::from_slice(&b).unwrap()
}

fn x_only(n: u32) -> XOnlyPublicKey {
    secret(n).x_only_public_key(&SECP).0
}

fn version_with(covenants: Vec<PublicKey>, quorum: u32) -> ParamsVersion {
    ParamsVersion {
        version: 3,
        activation_height: BlockHeight(100),
        cap: StakingCap::Height(BlockHeight(200)),
        tag: *b"test",
        covenant_pks: covenants,
        covenant_quorum: quorum,
        unbonding_time: 1008,
        unbonding_fee: Amount::from_sat(10_000),
        min_staking_amount: Amount::from_sat(50_000),
        max_staking_amount: Amount::from_sat(5_000_000),
        min_staking_time: 1000,
        max_staking_time: 64000,
        confirmation_depth: 10,
    }
}

fn version() -> ParamsVersion {
    version_with((100..105).map(|n| secret(n).public_key(&SECP)).collect(), 3)
}

const STAKER: u32 = 1;
const FP: u32 = 2;

fn op_return(v: &ParamsVersion, time: u16) -> TxOut {
    V0OpReturn {
        tag: v.tag,
        staker: x_only(STAKER),
        finality_provider: x_only(FP),
        staking_time: time,
    }
    .tx_out()
}

fn staking_out(v: &ParamsVersion, time: u16, sat: u64) -> TxOut {
    let keys = v.staking_keys(x_only(STAKER), x_only(FP)).unwrap();
    TxOut {
        value: Amount::from_sat(sat),
        script_pubkey: StakingOutput::new(keys, time)
            .unwrap()
            .script_pubkey()
            .clone(),
    }
}

fn change() -> TxOut {
    TxOut {
        value: Amount::from_sat(12_345),
        script_pubkey: ScriptBuf::new_p2tr(&SECP, x_only(9), None),
    }
}

fn tx(output: Vec<TxOut>) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::default(),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        }],
        output,
    }
}

fn not_staking(class: StakingTxClass) -> NotStakingReason {
    match class {
        StakingTxClass::NotStaking(r) => r,
        other => panic!("expected not staking, got {other:?}"),
    }
}

#[test]
fn the_staking_output_and_op_return_are_found_at_any_position() {
    let v = version();
    let outs = [
        staking_out(&v, 64000, 100_000),
        op_return(&v, 64000),
        change(),
    ];
    for order in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        let t = tx(order.iter().map(|&i| outs[i].clone()).collect());
        let pos = |want: usize| order.iter().position(|&i| i == want).unwrap() as u32;
        assert_eq!(
            classify_under(&t, &v),
            StakingTxClass::Valid(ParsedStaking {
                params_version: 3,
                staking_output_index: pos(0),
                staking_value: Amount::from_sat(100_000),
                staker: x_only(STAKER),
                finality_provider: x_only(FP),
                staking_time: 64000,
                op_return_index: pos(1),
            })
        );
    }
}

#[test]
fn a_tx_with_one_output_is_not_staking() {
    let v = version();
    assert_eq!(
        not_staking(classify_under(&tx(vec![op_return(&v, 64000)]), &v)),
        NotStakingReason::TooFewOutputs { outputs: 1 }
    );
}

#[test]
fn a_tx_without_the_tagged_op_return_is_not_staking() {
    let v = version();
    let mut other_tag = version();
    other_tag.tag = *b"bbn1";
    let t = tx(vec![
        staking_out(&v, 64000, 100_000),
        op_return(&other_tag, 64000),
    ]);
    assert_eq!(
        not_staking(classify_under(&t, &v)),
        NotStakingReason::NoTaggedOpReturn
    );
    // Version byte 1: not a V0 OP_RETURN at all.
    let mut bytes = op_return(&v, 64000).script_pubkey.into_bytes();
    bytes[6] = 1;
    let t = tx(vec![
        staking_out(&v, 64000, 100_000),
        TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(bytes),
        },
    ]);
    assert_eq!(
        not_staking(classify_under(&t, &v)),
        NotStakingReason::NoTaggedOpReturn
    );
}

#[test]
fn two_tagged_op_returns_are_not_staking() {
    let v = version();
    let t = tx(vec![
        op_return(&v, 64000),
        staking_out(&v, 64000, 100_000),
        op_return(&v, 64000),
    ]);
    assert_eq!(
        not_staking(classify_under(&t, &v)),
        NotStakingReason::MultipleTaggedOpReturns {
            first: 0,
            second: 2
        }
    );
}

#[test]
fn a_second_parseable_op_return_with_another_tag_is_not_staking() {
    let v = version();
    let mut other = version();
    other.tag = *b"bbn1";
    let t = tx(vec![
        staking_out(&v, 64000, 100_000),
        op_return(&other, 64000),
        op_return(&v, 64000),
    ]);
    let reason = not_staking(classify_under(&t, &v));
    assert_eq!(
        reason,
        NotStakingReason::MultipleOpReturns {
            first: 1,
            second: 2
        }
    );
    assert_eq!(
        reason.to_string(),
        "multiple op return outputs found (outputs 1 and 2)"
    );
}

fn off_curve() -> [u8; 32] {
    (0u8..)
        .map(|i| {
            let mut x = [0u8; 32];
            x[31] = i;
            x
        })
        .find(|x| XOnlyPublicKey::from_slice(x).is_err())
        .unwrap()
}

#[test]
fn a_tagged_op_return_with_a_key_off_the_curve_is_not_staking() {
    let v = version();
    let mut bytes = op_return(&v, 64000).script_pubkey.into_bytes();
    bytes[7..39].copy_from_slice(&off_curve());
    let bad = TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(bytes),
    };
    let t = tx(vec![staking_out(&v, 64000, 100_000), bad.clone()]);
    assert!(matches!(
        not_staking(classify_under(&t, &v)),
        NotStakingReason::InvalidOpReturn { index: 1, .. }
    ));
    // With a parseable OP_RETURN of another tag beside it, the tag is what fails.
    let mut other = version();
    other.tag = *b"bbn1";
    let t = tx(vec![
        staking_out(&v, 64000, 100_000),
        bad,
        op_return(&other, 64000),
    ]);
    assert_eq!(
        not_staking(classify_under(&t, &v)),
        NotStakingReason::TagMismatch {
            index: 2,
            found: *b"bbn1"
        }
    );
}

#[test]
fn keys_repeated_between_staker_fp_and_committee_are_not_staking() {
    let staker_in_committee = version_with(
        vec![
            secret(STAKER).public_key(&SECP),
            secret(100).public_key(&SECP),
        ],
        1,
    );
    let v = version();
    let t = tx(vec![
        staking_out(&v, 64000, 100_000),
        op_return(&staker_in_committee, 64000),
    ]);
    assert_eq!(
        not_staking(classify_under(&t, &staker_in_committee)),
        NotStakingReason::InvalidKeys(ScriptError::DuplicateKey(x_only(STAKER)))
    );
}

#[test]
fn no_or_two_matching_staking_outputs_are_not_staking() {
    let v = version();
    let other_committee =
        version_with((200..205).map(|n| secret(n).public_key(&SECP)).collect(), 3);
    let t = tx(vec![
        staking_out(&other_committee, 64000, 100_000),
        op_return(&v, 64000),
    ]);
    assert_eq!(
        not_staking(classify_under(&t, &v)),
        NotStakingReason::NoStakingOutput
    );
    let t = tx(vec![change(), op_return(&v, 64000)]);
    assert_eq!(
        not_staking(classify_under(&t, &v)),
        NotStakingReason::NoStakingOutput
    );
    let t = tx(vec![
        staking_out(&v, 64000, 100_000),
        op_return(&v, 64000),
        staking_out(&v, 64000, 7),
    ]);
    assert_eq!(
        not_staking(classify_under(&t, &v)),
        NotStakingReason::MultipleStakingOutputs {
            first: 0,
            second: 2
        }
    );
}

fn invalid_reason(v: &ParamsVersion, time: u16, sat: u64) -> Option<InvalidStakingReason> {
    match classify_under(&tx(vec![staking_out(v, time, sat), op_return(v, time)]), v) {
        StakingTxClass::Valid(_) => None,
        StakingTxClass::Invalid { reason, .. } => Some(reason),
        StakingTxClass::NotStaking(r) => panic!("{r}"),
    }
}

#[test]
fn amount_and_time_bounds_are_inclusive() {
    let v = version();
    assert_eq!(invalid_reason(&v, 64000, 50_000), None);
    assert_eq!(invalid_reason(&v, 64000, 5_000_000), None);
    assert_eq!(invalid_reason(&v, 1000, 50_000), None);
    let below = invalid_reason(&v, 64000, 49_999).unwrap();
    assert_eq!(
        (below.code(), below.to_string().as_str()),
        (
            "below_min_staking_amount",
            "staking value 49999 sat is below min_staking_amount 50000 sat"
        )
    );
    assert_eq!(
        invalid_reason(&v, 64000, 5_000_001).unwrap().code(),
        "above_max_staking_amount"
    );
    assert_eq!(
        invalid_reason(&v, 999, 50_000).unwrap().code(),
        "below_min_staking_time"
    );
    let mut v2 = version();
    v2.max_staking_time = 63999;
    let above = invalid_reason(&v2, 64000, 50_000).unwrap();
    assert_eq!(
        (above.code(), above.to_string().as_str()),
        (
            "above_max_staking_time",
            "staking time 64000 blocks is above max_staking_time 63999 blocks"
        )
    );
}

#[test]
fn the_first_broken_bound_in_the_reference_order_is_reported() {
    let mut v = version();
    v.max_staking_time = 2000;
    // Too little and too long: the amount is checked first.
    assert_eq!(
        invalid_reason(&v, 64000, 1).unwrap().code(),
        "below_min_staking_amount"
    );
    // Too much and too long: the amount is checked first.
    assert_eq!(
        invalid_reason(&v, 64000, 9_000_000).unwrap().code(),
        "above_max_staking_amount"
    );
}

#[test]
fn a_staking_time_of_zero_is_an_invalid_staking_tx_as_in_the_reference() {
    // The reference builds `<staker> CHECKSIGVERIFY OP_0 CSV`, finds the output, then rejects
    // the time as below the minimum.
    let v = version();
    let keys = v.staking_keys(x_only(STAKER), x_only(FP)).unwrap();
    let timelock = staking_core::bitcoin::script::Builder::new()
        .push_x_only_key(&x_only(STAKER))
        .push_opcode(staking_core::bitcoin::opcodes::all::OP_CHECKSIGVERIFY)
        .push_int(0)
        .push_opcode(staking_core::bitcoin::opcodes::all::OP_CSV)
        .into_script();
    let info = staking_core::bitcoin::taproot::TaprootBuilder::new()
        .add_leaf(2, timelock)
        .unwrap()
        .add_leaf(
            2,
            staking_core::script::unbonding_script(&keys.staker, &keys.covenants, 3).unwrap(),
        )
        .unwrap()
        .add_leaf(
            1,
            staking_core::script::slashing_script(
                &keys.staker,
                &keys.finality_providers,
                &keys.covenants,
                3,
            )
            .unwrap(),
        )
        .unwrap()
        .finalize(&SECP, staking_core::keys::nums_key())
        .unwrap();
    let out = TxOut {
        value: Amount::from_sat(100_000),
        script_pubkey: ScriptBuf::new_p2tr_tweaked(info.output_key()),
    };
    let class = classify_under(&tx(vec![out, op_return(&v, 0)]), &v);
    assert!(
        matches!(
            class,
            StakingTxClass::Invalid {
                reason: InvalidStakingReason::BelowMinStakingTime { time: 0, min: 1000 },
                ..
            }
        ),
        "{class:?}"
    );
}

#[test]
fn a_value_above_int64_max_counts_as_below_the_minimum_as_in_the_reference() {
    let v = version();
    assert_eq!(
        invalid_reason(&v, 64000, u64::MAX).unwrap().code(),
        "below_min_staking_amount"
    );
}

#[test]
fn bad_transaction_bytes_get_clear_errors() {
    let good = staking_core::bitcoin::consensus::encode::serialize(&tx(vec![change(), change()]));
    let hex: String = good.iter().map(|b| format!("{b:02x}")).collect();
    assert!(decode_transaction_hex(&hex).is_ok());
    assert!(decode_transaction_hex(&format!("  {}\n", hex.to_uppercase())).is_ok());
    assert!(matches!(
        decode_transaction_hex(&hex[..hex.len() - 1]),
        Err(TxDecodeError::Hex(_))
    ));
    assert!(matches!(
        decode_transaction_hex("zz"),
        Err(TxDecodeError::Hex(_))
    ));
    let truncated = decode_transaction(&good[..good.len() - 2]).unwrap_err();
    assert!(
        truncated.to_string().starts_with(&format!(
            "cannot decode transaction ({} bytes)",
            good.len() - 2
        )),
        "{truncated}"
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(decode_transaction(&trailing).is_err());
    assert!(decode_transaction(&[]).is_err());
}

#[test]
fn a_tx_without_inputs_is_read_in_the_legacy_serialization() {
    let mut t = tx(vec![change(), change()]);
    t.input.clear();
    // The legacy serialization (as unfunded builders print it): version, 0 inputs, outputs,
    // lock time. To a segwit reader it looks like a marker with flag 2.
    use staking_core::bitcoin::consensus::encode::serialize;
    let mut bytes = serialize(&t.version);
    bytes.extend(serialize(&t.input));
    bytes.extend(serialize(&t.output));
    bytes.extend(serialize(&t.lock_time));
    assert_eq!(bytes[4..6], [0, 2]);
    assert_eq!(decode_transaction(&bytes).unwrap(), t);
}
