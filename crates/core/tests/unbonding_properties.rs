//! Properties over random keys, committees (1–20 keys, any quorum), times and amounts: the
//! canonical unbonding tx passes both rule sets and, fully signed, Bitcoin Core's interpreter;
//! recognition round-trips for unbondings and both withdrawals; and arbitrary txs never make
//! the checks panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use bitcoin::consensus::encode::deserialize;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute::LockTime, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};
use proptest::prelude::*;
use staking_core::builder::withdrawal_tx;
use staking_core::keys::SECP;
use staking_core::script::{StakingKeys, StakingLeaf, StakingOutput, UnbondingLeaf};
use staking_core::signing::{leaf_sighash, sign_with_aux_rand};
use staking_core::spend::{
    recognise_staking_spend, recognise_unbonding_spend, KnownStaking, StakingSpend, UnbondingSpend,
};
use staking_core::unbonding::{
    canonical_unbonding_tx, check_pre_signed, check_unbonding_on_chain, unbonding_output,
    unbonding_sighash, UnbondingCheck, UnbondingTerms,
};
use staking_core::witness::{
    staking_timelock_witness, unbonding_timelock_witness, unbonding_witness,
};

fn keypair(seed: &[u8; 32], index: u32) -> Keypair {
    let mut data = seed.to_vec();
    data.extend_from_slice(&index.to_be_bytes());
    let digest = sha256::Hash::hash(&data).to_byte_array();
    Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&digest).unwrap())
}

fn consensus_verifies(tx: &Transaction, prevout: &TxOut) -> bool {
    let bytes = bitcoin::consensus::serialize(tx);
    let utxos = [bitcoinconsensus::Utxo {
        script_pubkey: prevout.script_pubkey.as_bytes().as_ptr(),
        script_pubkey_len: prevout.script_pubkey.len() as u32,
        value: prevout.value.to_sat() as i64,
    }];
    bitcoinconsensus::verify_with_flags(
        prevout.script_pubkey.as_bytes(),
        prevout.value.to_sat(),
        &bytes,
        Some(&utxos),
        0,
        bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT,
    )
    .is_ok()
}

#[derive(Debug, Clone)]
struct Scenario {
    seed: [u8; 32],
    committee: u32,
    quorum: u32,
    staking_time: u16,
    unbonding_time: u16,
    fee: u64,
    value: u64,
    txid: [u8; 32],
    vout: u32,
    /// Which covenant members sign (a rotation of the committee).
    rotation: usize,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1u32..=20)
        .prop_flat_map(|n| (Just(n), 1..=n))
        .prop_flat_map(|(n, q)| {
            (
                any::<[u8; 32]>(),
                Just(n),
                Just(q),
                1u16..=u16::MAX,
                1u16..=u16::MAX,
                1u64..1_000_000,
                1u64..2_100_000_000_000_000,
                any::<[u8; 32]>(),
                0u32..10,
                0usize..20,
            )
        })
        .prop_filter("value must exceed fee plus dust", |t| t.6 > t.5 + 1_000)
        .prop_map(
            |(seed, committee, quorum, st, ut, fee, value, txid, vout, rotation)| Scenario {
                seed,
                committee,
                quorum,
                staking_time: st,
                unbonding_time: ut,
                fee,
                value,
                txid,
                vout,
                rotation,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn canonical_unbonding_passes_both_rule_sets_and_the_interpreter(s in scenario()) {
        let staker = keypair(&s.seed, 0);
        let fp = keypair(&s.seed, 1);
        let covenants: Vec<Keypair> = (0..s.committee).map(|i| keypair(&s.seed, 2 + i)).collect();
        let keys = StakingKeys::new(
            staker.x_only_public_key().0,
            vec![fp.x_only_public_key().0],
            covenants.iter().map(|k| k.x_only_public_key().0).collect(),
            s.quorum,
        ).unwrap();
        let staking = StakingOutput::new(keys, s.staking_time).unwrap();
        let terms = UnbondingTerms { unbonding_time: s.unbonding_time, unbonding_fee: Amount::from_sat(s.fee) };
        let outpoint = OutPoint::new(Txid::from_byte_array(s.txid), s.vout);
        let value = Amount::from_sat(s.value);
        let prevout = TxOut { value, script_pubkey: staking.script_pubkey().clone() };

        let unsigned = canonical_unbonding_tx(&staking, outpoint, value, &terms).unwrap();
        prop_assert_eq!(unsigned.output[0].value, value - terms.unbonding_fee);
        prop_assert!(check_pre_signed(&unsigned).is_ok());

        let sighash = unbonding_sighash(&unsigned, &staking, value).unwrap();
        let staker_sig = sign_with_aux_rand(&sighash, &staker, &[0; 32]);
        let mut members = covenants.clone();
        let shift = s.rotation % members.len();
        members.rotate_left(shift);
        let cov_sigs: Vec<_> = members
            .iter()
            .map(|k| (k.x_only_public_key().0, sign_with_aux_rand(&sighash, k, &[0; 32])))
            .collect();
        let mut signed = unsigned.clone();
        signed.input[0].witness = unbonding_witness(&staking, &staker_sig, &cov_sigs).unwrap();
        prop_assert!(check_pre_signed(&signed).is_ok());
        prop_assert!(consensus_verifies(&signed, &prevout));

        let known = KnownStaking::from_output(&staking, outpoint, value, terms).unwrap();
        prop_assert_eq!(check_unbonding_on_chain(&signed, &known), UnbondingCheck::Valid);
        prop_assert_eq!(recognise_staking_spend(&signed, 0, &known), StakingSpend::Unbonding);

        // Withdrawal through the staking timelock leaf.
        let dest = ScriptBuf::new_p2tr(&SECP, staker.x_only_public_key().0, None);
        let w = withdrawal_tx(outpoint, value, s.staking_time, dest.clone(), 1).unwrap();
        let sh = leaf_sighash(&w, 0, std::slice::from_ref(&prevout), staking.leaf_hash(StakingLeaf::Timelock)).unwrap();
        let mut w_signed = w.clone();
        w_signed.input[0].witness = staking_timelock_witness(&staking, &sign_with_aux_rand(&sh, &staker, &[0; 32]));
        prop_assert_eq!(recognise_staking_spend(&w_signed, 0, &known), StakingSpend::Withdrawal);
        prop_assert!(consensus_verifies(&w_signed, &prevout));

        // Withdrawal through the unbonding output's timelock leaf.
        let unbonding = unbonding_output(staking.keys(), &terms).unwrap();
        let u_prevout = signed.output[0].clone();
        if let Ok(w) = withdrawal_tx(OutPoint::new(signed.compute_txid(), 0), u_prevout.value, s.unbonding_time, dest, 1) {
            let sh = leaf_sighash(&w, 0, std::slice::from_ref(&u_prevout), unbonding.leaf_hash(UnbondingLeaf::Timelock)).unwrap();
            let mut w_signed = w.clone();
            w_signed.input[0].witness = unbonding_timelock_witness(&unbonding, &sign_with_aux_rand(&sh, &staker, &[0; 32]));
            prop_assert_eq!(recognise_unbonding_spend(&w_signed, 0, &known), UnbondingSpend::Withdrawal);
            prop_assert!(consensus_verifies(&w_signed, &u_prevout));
        }
    }
}

/// The staking output every arbitrary tx below is measured against.
fn fixed_known() -> (KnownStaking, StakingOutput) {
    let seed = [3u8; 32];
    let keys = StakingKeys::new(
        keypair(&seed, 0).x_only_public_key().0,
        vec![keypair(&seed, 1).x_only_public_key().0],
        (2..5)
            .map(|i| keypair(&seed, i).x_only_public_key().0)
            .collect(),
        2,
    )
    .unwrap();
    let staking = StakingOutput::new(keys, 1000).unwrap();
    let terms = UnbondingTerms {
        unbonding_time: 100,
        unbonding_fee: Amount::from_sat(1000),
    };
    let outpoint = OutPoint::new(Txid::from_byte_array([1; 32]), 0);
    let known =
        KnownStaking::from_output(&staking, outpoint, Amount::from_sat(50_000), terms).unwrap();
    (known, staking)
}

fn arbitrary_tx() -> impl Strategy<Value = Transaction> {
    let (known, staking) = fixed_known();
    let canonical_output =
        canonical_unbonding_tx(&staking, known.outpoint(), known.value(), known.terms())
            .unwrap()
            .output[0]
            .clone();
    let leaves = vec![
        known.unbonding_leaf().to_bytes(),
        known.timelock_leaf().to_bytes(),
        known.unbonding_timelock_leaf().to_bytes(),
    ];
    let item = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        prop::sample::select(leaves),
    ];
    let input = (
        prop_oneof![
            Just(known.outpoint()),
            (any::<[u8; 32]>(), any::<u32>())
                .prop_map(|(t, v)| OutPoint::new(Txid::from_byte_array(t), v)),
        ],
        prop_oneof![Just(u32::MAX), any::<u32>()],
        prop::collection::vec(item, 0..5),
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(|(previous_output, seq, items, sig)| TxIn {
            previous_output,
            script_sig: ScriptBuf::from_bytes(sig),
            sequence: Sequence(seq),
            witness: Witness::from_slice(&items),
        });
    let output = prop_oneof![
        Just(canonical_output),
        (any::<u64>(), prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(v, s)| TxOut {
            value: Amount::from_sat(v),
            script_pubkey: ScriptBuf::from_bytes(s),
        }),
    ];
    (
        any::<i32>(),
        prop_oneof![Just(0u32), any::<u32>()],
        prop::collection::vec(input, 0..4),
        prop::collection::vec(output, 0..3),
    )
        .prop_map(|(version, lock, input, output)| Transaction {
            version: Version(version),
            lock_time: LockTime::from_consensus(lock),
            input,
            output,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_txs_never_panic_and_unbondings_are_always_canonical(tx in arbitrary_tx()) {
        let (known, staking) = fixed_known();
        let _ = check_pre_signed(&tx);
        let check = check_unbonding_on_chain(&tx, &known);
        for i in 0..tx.input.len() + 2 {
            let spend = recognise_staking_spend(&tx, i, &known);
            let _ = recognise_unbonding_spend(&tx, i, &known);
            if spend == StakingSpend::Unbonding {
                prop_assert_eq!(&check, &UnbondingCheck::Valid);
            }
        }
        if check == UnbondingCheck::Valid {
            let canonical = canonical_unbonding_tx(&staking, known.outpoint(), known.value(), known.terms()).unwrap();
            prop_assert_eq!(&tx.input[0].previous_output, &canonical.input[0].previous_output);
            prop_assert_eq!(&tx.output, &canonical.output);
            prop_assert_eq!(tx.input[0].sequence, Sequence::MAX);
            prop_assert_eq!(tx.lock_time, LockTime::ZERO);
        }
    }

    #[test]
    fn arbitrary_bytes_that_decode_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let (known, _) = fixed_known();
        if let Ok(tx) = deserialize::<Transaction>(&bytes) {
            let _ = check_pre_signed(&tx);
            let _ = check_unbonding_on_chain(&tx, &known);
            for i in 0..tx.input.len() + 1 {
                let _ = recognise_staking_spend(&tx, i, &known);
                let _ = recognise_unbonding_spend(&tx, i, &known);
            }
        }
    }
}

/// Single-field mutations of a valid unbonding tx, and the outcome class
/// `docs/rules.md#unbonding-classification` assigns.
#[derive(Debug, Clone, Copy)]
struct Mutation {
    extra_input: bool,
    extra_output: bool,
    other_vout: bool,
    short_witness: bool,
    sequence: Option<u32>,
    lock_time: Option<u32>,
    value_delta: Option<i64>,
    other_script: bool,
    version: i32,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::option::weighted(0.2, 0u32..u32::MAX),
        prop::option::weighted(0.2, 1u32..=u32::MAX),
        prop::option::weighted(0.2, prop_oneof![-1000i64..0, 1i64..1000]),
        prop::bool::weighted(0.2),
        any::<i32>(),
    )
        .prop_map(|t| Mutation {
            extra_input: t.0,
            extra_output: t.1,
            other_vout: t.2,
            short_witness: t.3,
            sequence: t.4,
            lock_time: t.5,
            value_delta: t.6,
            other_script: t.7,
            version: t.8,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn each_mutation_of_an_unbonding_lands_in_the_class_of_the_rule_it_breaks(m in mutation()) {
        let (known, staking) = fixed_known();
        let mut tx = canonical_unbonding_tx(&staking, known.outpoint(), known.value(), known.terms()).unwrap();
        let mut w = Witness::new();
        w.push([0x55; 64]);
        w.push(known.unbonding_leaf().as_bytes());
        w.push([0xc0; 33]);
        tx.input[0].witness = w;
        tx.version = Version(m.version);
        if m.extra_input {
            tx.input.push(TxIn { previous_output: OutPoint::new(Txid::from_byte_array([2; 32]), 0), ..TxIn::default() });
        }
        if m.extra_output {
            tx.output.push(tx.output[0].clone());
        }
        if m.other_vout {
            tx.input[0].previous_output.vout += 1;
        }
        if m.short_witness {
            tx.input[0].witness = Witness::from_slice(&[known.unbonding_leaf().as_bytes()]);
        }
        if let Some(seq) = m.sequence {
            tx.input[0].sequence = Sequence(seq);
        }
        if let Some(lock) = m.lock_time {
            tx.lock_time = LockTime::from_consensus(lock);
        }
        if let Some(delta) = m.value_delta {
            tx.output[0].value = Amount::from_sat(tx.output[0].value.to_sat().checked_add_signed(delta).unwrap());
        }
        if m.other_script {
            tx.output[0].script_pubkey = staking.script_pubkey().clone();
        }
        let not_unbonding = m.extra_input || m.extra_output || m.other_vout || m.short_witness;
        let invalid = m.sequence.is_some() || m.lock_time.is_some() || m.value_delta.is_some() || m.other_script;
        let check = check_unbonding_on_chain(&tx, &known);
        let spend = recognise_staking_spend(&tx, 0, &known);
        if not_unbonding {
            prop_assert!(matches!(check, UnbondingCheck::NotUnbonding(_)), "{:?}", check);
            prop_assert!(matches!(spend, StakingSpend::Other), "{:?}", spend);
        } else if invalid {
            prop_assert!(matches!(check, UnbondingCheck::Invalid(_)), "{:?}", check);
            prop_assert!(matches!(spend, StakingSpend::InvalidUnbonding(_)), "{:?}", spend);
        } else {
            prop_assert_eq!(check, UnbondingCheck::Valid);
            prop_assert_eq!(spend, StakingSpend::Unbonding);
        }
        // The pre-signed rules look at shape, sequence, lock time and version only.
        let pre_signed_ok = !(m.extra_input
            || m.extra_output
            || m.sequence.is_some()
            || m.lock_time.is_some()
            || m.version != 2);
        prop_assert_eq!(check_pre_signed(&tx).is_ok(), pre_signed_ok);
    }
}
