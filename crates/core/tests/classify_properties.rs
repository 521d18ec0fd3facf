//! Property tests of classification: a staking tx built from random keys, committees (1 to 20
//! keys, any quorum), times, amounts and output positions classifies back to exactly its
//! fields (valid inside the bounds, invalid outside); arbitrary transactions and bytes never
//! panic the classifier.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
use proptest::prelude::*;
use staking_core::bitcoin::secp256k1::{PublicKey, SecretKey, XOnlyPublicKey};
use staking_core::bitcoin::{
    absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Witness,
};
use staking_core::keys::SECP;
use staking_core::op_return::V0OpReturn;
use staking_core::params::{BlockHeight, ParamsVersion, StakingCap};
use staking_core::script::StakingOutput;
use staking_core::staking_tx::{classify_under, decode_transaction, ParsedStaking, StakingTxClass};

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

fn key_strategy() -> impl Strategy<Value = SecretKey> {
    any::<[u8; 32]>().prop_filter_map("valid secret key", |b| SecretKey::from_slice(&b).ok())
}

prop_compose! {
    fn committee()(keys in proptest::collection::vec(key_strategy(), 1..=20))
        (quorum in 1..=keys.len() as u32, keys in Just(keys)) -> (Vec<PublicKey>, u32) {
        (keys.iter().map(|k| k.public_key(&SECP)).collect(), quorum)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_built_staking_tx_classifies_back_to_its_fields(
        staker in key_strategy(), fp in key_strategy(), (covenants, quorum) in committee(),
        time in 1u16.., sat in 0u64..=21_000_000 * 100_000_000,
        min_sat in 1u64..10_000_000, extra in 0u64..10_000_000, min_time in 1u16.., max_time in 1u16..,
        changes_before in 0usize..3, changes_after in 0usize..3, op_first in any::<bool>(),
    ) {
        let mut v = version_with(covenants, quorum);
        v.min_staking_amount = Amount::from_sat(min_sat);
        v.max_staking_amount = Amount::from_sat(min_sat + extra);
        v.min_staking_time = min_time.min(max_time);
        v.max_staking_time = min_time.max(max_time);
        let (staker, fp) = (staker.x_only_public_key(&SECP).0, fp.x_only_public_key(&SECP).0);
        let Ok(keys) = v.staking_keys(staker, fp) else {
            // Random keys collided: such a tx cannot be built; nothing to check.
            return Ok(());
        };
        let staking = TxOut { value: Amount::from_sat(sat), script_pubkey: StakingOutput::new(keys, time).unwrap().script_pubkey().clone() };
        let op = V0OpReturn { tag: v.tag, staker, finality_provider: fp, staking_time: time }.tx_out();
        let mut outs: Vec<TxOut> = std::iter::repeat_with(change).take(changes_before).collect();
        let (first, second) = if op_first { (op, staking) } else { (staking, op) };
        outs.push(first);
        outs.push(second);
        outs.extend(std::iter::repeat_with(change).take(changes_after));
        let staking_index = (changes_before + usize::from(op_first)) as u32;
        let op_index = (changes_before + usize::from(!op_first)) as u32;
        let expected = ParsedStaking {
            params_version: 3, staking_output_index: staking_index, staking_value: Amount::from_sat(sat),
            staker, finality_provider: fp, staking_time: time, op_return_index: op_index,
        };
        let class = classify_under(&tx(outs), &v);
        let in_bounds = (v.min_staking_amount..=v.max_staking_amount).contains(&Amount::from_sat(sat))
            && (v.min_staking_time..=v.max_staking_time).contains(&time);
        match class {
            StakingTxClass::Valid(s) => { prop_assert!(in_bounds); prop_assert_eq!(s, expected); }
            StakingTxClass::Invalid { staking, .. } => { prop_assert!(!in_bounds); prop_assert_eq!(staking, expected); }
            StakingTxClass::NotStaking(r) => prop_assert!(false, "not staking: {}", r),
        }
    }

    #[test]
    fn classifying_arbitrary_transactions_never_panics(
        outputs in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..80).prop_map(ScriptBuf::from_bytes),
                // Tagged, version 0, random keys and time: exercises the slow path.
                proptest::collection::vec(any::<u8>(), 66).prop_map(|rest| {
                    let mut b = vec![0x6a, 0x47, b't', b'e', b's', b't', 0];
                    b.extend(rest);
                    ScriptBuf::from_bytes(b)
                }),
                any::<[u8; 32]>().prop_map(|x| { let mut b = vec![0x51, 0x20]; b.extend(x); ScriptBuf::from_bytes(b) }),
            ].prop_map(|script_pubkey| TxOut { value: Amount::from_sat(60_000), script_pubkey }),
            0..6),
    ) {
        let v = version();
        let _ = classify_under(&tx(outputs), &v);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(t) = decode_transaction(&bytes) {
            let _ = classify_under(&t, &version());
        }
    }
}
