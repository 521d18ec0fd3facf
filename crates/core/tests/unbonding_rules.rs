//! The two rule sets for unbonding txs: the pre-signed rules of the API and the covenant signer
//! (`docs/rules.md#pre-signed-unbonding-rules`, reference texts and order) and the indexer's
//! on-chain rules (`docs/rules.md#unbonding-classification`, outcome order: not an unbonding vs
//! invalid unbonding with its reason).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use staking_core::keys::SECP;
use staking_core::script::{StakingKeys, StakingLeaf, StakingOutput};
use staking_core::spend::KnownStaking;
use staking_core::unbonding::{
    canonical_unbonding_tx, check_pre_signed, check_unbonding_on_chain, InvalidUnbonding,
    NotUnbonding, PreSignedError, SanityError, UnbondingCheck, UnbondingTerms,
};

fn xonly(n: u8) -> bitcoin::secp256k1::XOnlyPublicKey {
    let kp = Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&[n; 32]).unwrap());
    kp.x_only_public_key().0
}

const TERMS: UnbondingTerms = UnbondingTerms {
    unbonding_time: 1008,
    unbonding_fee: Amount::from_sat(10_000),
};

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
    OutPoint::new(Txid::from_byte_array([9; 32]), 1)
}

const VALUE: Amount = Amount::from_sat(100_000);

fn canonical() -> Transaction {
    canonical_unbonding_tx(&staking(), outpoint(), VALUE, &TERMS).unwrap()
}

/// A witness revealing `script` (the signatures do not matter to these rules).
fn reveal(script: &ScriptBuf) -> Witness {
    let mut w = Witness::new();
    w.push([0x11; 64]);
    w.push(script.as_bytes());
    w.push([0xc0; 33]);
    w
}

fn revealing_unbonding_leaf() -> Transaction {
    let mut tx = canonical();
    tx.input[0].witness = reveal(staking().leaf_script(StakingLeaf::Unbonding));
    tx
}

/// One corruption applied to a copy of the canonical tx.
type Change = Box<dyn FnOnce(&mut Transaction)>;

fn pre_signed_text(change: impl FnOnce(&mut Transaction)) -> String {
    let mut tx = canonical();
    change(&mut tx);
    check_pre_signed(&tx).unwrap_err().to_string()
}

#[test]
fn the_canonical_unbonding_tx_passes_the_pre_signed_rules_with_or_without_witness() {
    check_pre_signed(&canonical()).unwrap();
    check_pre_signed(&revealing_unbonding_leaf()).unwrap();
}

#[test]
fn pre_signed_shape_violations_carry_the_reference_texts() {
    let extra_input = TxIn {
        previous_output: OutPoint::new(Txid::from_byte_array([8; 32]), 0),
        ..TxIn::default()
    };
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|tx| tx.input.push(extra_input)),
            "tx must have exactly 1 inputs",
        ),
        (
            Box::new(|tx| tx.output.push(tx.output[0].clone())),
            "tx must have exactly 1 outputs",
        ),
        (
            Box::new(|tx| tx.lock_time = LockTime::from_consensus(1)),
            "pre-signed tx must not have locktime",
        ),
        (
            Box::new(|tx| tx.version = Version::ONE),
            "tx version must be between 2 and 2",
        ),
        (
            Box::new(|tx| tx.version = Version(3)),
            "tx version must be between 2 and 2",
        ),
        (
            Box::new(|tx| tx.input[0].witness.push(vec![0u8; 400_001])),
            "tx weight must not exceed 400000",
        ),
        (
            Box::new(|tx| tx.input[0].sequence = Sequence::ENABLE_LOCKTIME_NO_RBF),
            "pre-signed tx must not be replaceable",
        ),
        (
            Box::new(|tx| tx.input[0].script_sig = ScriptBuf::from_bytes(vec![0x51])),
            "pre-signed tx must not have signature script",
        ),
    ];
    for (change, text) in cases {
        assert_eq!(pre_signed_text(change), text);
    }
}

#[test]
fn pre_signed_rules_apply_in_the_reference_order() {
    // Version and lock time both wrong: lock time is reported.
    assert_eq!(
        pre_signed_text(|tx| {
            tx.version = Version::ONE;
            tx.lock_time = LockTime::from_consensus(5);
        }),
        "pre-signed tx must not have locktime"
    );
    // Sequence and scriptSig both wrong: the sequence is reported.
    assert_eq!(
        pre_signed_text(|tx| {
            tx.input[0].sequence = Sequence::ZERO;
            tx.input[0].script_sig = ScriptBuf::from_bytes(vec![0x51]);
        }),
        "pre-signed tx must not be replaceable"
    );
    // btcd sanity comes first of all.
    assert_eq!(
        pre_signed_text(|tx| {
            tx.version = Version::ONE;
            tx.output.clear();
        }),
        "btc transaction do not obey BTC rules: transaction has no outputs"
    );
}

#[test]
fn btcd_sanity_failures_are_reported_with_btcd_texts() {
    let prefix = "btc transaction do not obey BTC rules: ";
    assert_eq!(
        pre_signed_text(|tx| tx.input.clear()),
        format!("{prefix}transaction has no inputs")
    );
    assert_eq!(
        pre_signed_text(|tx| tx.output[0].value = Amount::from_sat(2_100_000_000_000_001)),
        format!("{prefix}transaction output value is higher than max allowed value: 2100000000000001 > 2.1e+15 ")
    );
    assert_eq!(
        pre_signed_text(|tx| tx.output[0].value = Amount::from_sat(u64::MAX)),
        format!("{prefix}transaction output has negative value of -1")
    );
    assert_eq!(
        pre_signed_text(|tx| {
            let dup = tx.input[0].clone();
            tx.input.push(dup);
        }),
        format!("{prefix}transaction contains duplicate inputs")
    );
    assert_eq!(
        pre_signed_text(|tx| tx.input[0].previous_output = OutPoint::null()),
        format!(
            "{prefix}coinbase transaction script length of 0 is out of range (min: 2, max: 100)"
        )
    );
    let mut tx = canonical();
    tx.input.push(TxIn {
        previous_output: OutPoint::null(),
        ..TxIn::default()
    });
    assert_eq!(
        check_pre_signed(&tx),
        Err(PreSignedError::Sanity(SanityError::NullPrevout))
    );
    let mut tx = canonical();
    tx.output = vec![
        TxOut {
            value: Amount::from_sat(2_000_000_000_000_000),
            script_pubkey: ScriptBuf::new()
        };
        2
    ];
    assert_eq!(
        check_pre_signed(&tx).unwrap_err().to_string(),
        format!("{prefix}total value of all transaction outputs is 4000000000000000 which is higher than max allowed value of 2.1e+15")
    );
}

fn known() -> KnownStaking {
    KnownStaking::from_output(&staking(), outpoint(), VALUE, TERMS).unwrap()
}

fn on_chain(change: impl FnOnce(&mut Transaction)) -> UnbondingCheck {
    let mut tx = revealing_unbonding_leaf();
    change(&mut tx);
    check_unbonding_on_chain(&tx, &known())
}

#[test]
fn the_canonical_unbonding_tx_is_valid_on_chain_whatever_its_version() {
    assert_eq!(on_chain(|_| {}), UnbondingCheck::Valid);
    assert_eq!(
        on_chain(|tx| tx.version = Version::ONE),
        UnbondingCheck::Valid
    );
    assert_eq!(
        on_chain(|tx| tx.version = Version(7)),
        UnbondingCheck::Valid
    );
}

#[test]
fn txs_that_are_not_unbondings_are_told_apart_by_rules_1_to_3() {
    let extra = TxIn {
        previous_output: OutPoint::new(Txid::from_byte_array([8; 32]), 0),
        ..TxIn::default()
    };
    assert_eq!(
        on_chain(|tx| tx.input.push(extra)),
        UnbondingCheck::NotUnbonding(NotUnbonding::NotOneInOneOut {
            inputs: 2,
            outputs: 1
        })
    );
    assert!(matches!(
        on_chain(|tx| tx.output.push(tx.output[0].clone())),
        UnbondingCheck::NotUnbonding(NotUnbonding::NotOneInOneOut { .. })
    ));
    assert!(matches!(
        on_chain(|tx| tx.input[0].previous_output.vout = 0),
        UnbondingCheck::NotUnbonding(NotUnbonding::OtherOutpoint { .. })
    ));
    for items in 0..2 {
        assert_eq!(
            on_chain(|tx| {
                let mut w = Witness::new();
                for _ in 0..items {
                    w.push(staking().leaf_script(StakingLeaf::Unbonding).as_bytes());
                }
                tx.input[0].witness = w;
            }),
            UnbondingCheck::NotUnbonding(NotUnbonding::ShortWitness(items))
        );
    }
    for leaf in [StakingLeaf::Timelock, StakingLeaf::Slashing] {
        assert_eq!(
            on_chain(|tx| tx.input[0].witness = reveal(staking().leaf_script(leaf))),
            UnbondingCheck::NotUnbonding(NotUnbonding::OtherLeaf)
        );
    }
}

#[test]
fn a_shape_violation_is_not_an_unbonding_even_with_a_bad_output() {
    // Rule 1 is checked before rule 6: a 2-output tx is "not an unbonding", not "invalid".
    assert!(matches!(
        on_chain(|tx| {
            tx.output[0].value = Amount::ONE_SAT;
            tx.output.push(tx.output[0].clone());
        }),
        UnbondingCheck::NotUnbonding(_)
    ));
}

#[test]
fn unbondings_breaking_rules_4_to_6_are_invalid_with_their_reason_in_order() {
    assert_eq!(
        on_chain(|tx| tx.input[0].sequence = Sequence::ENABLE_RBF_NO_LOCKTIME),
        UnbondingCheck::Invalid(InvalidUnbonding::Replaceable(0xffff_fffd))
    );
    assert_eq!(
        on_chain(|tx| {
            tx.input[0].sequence = Sequence::ZERO;
            tx.lock_time = LockTime::from_consensus(3);
        }),
        UnbondingCheck::Invalid(InvalidUnbonding::Replaceable(0))
    );
    assert_eq!(
        on_chain(|tx| tx.lock_time = LockTime::from_consensus(3)),
        UnbondingCheck::Invalid(InvalidUnbonding::LockTime(3))
    );
    assert_eq!(
        on_chain(|tx| tx.output[0].value = Amount::from_sat(90_001)),
        UnbondingCheck::Invalid(InvalidUnbonding::OutputValue {
            expected: Amount::from_sat(90_000),
            got: Amount::from_sat(90_001)
        })
    );
    let wrong = staking().script_pubkey().clone();
    assert_eq!(
        on_chain(|tx| {
            tx.output[0].script_pubkey = wrong.clone();
            tx.output[0].value = Amount::ONE_SAT;
        }),
        UnbondingCheck::Invalid(InvalidUnbonding::OutputScript(wrong))
    );
}

#[test]
fn a_staking_value_not_above_the_fee_makes_any_unbonding_invalid() {
    let tiny =
        KnownStaking::from_output(&staking(), outpoint(), Amount::from_sat(10_000), TERMS).unwrap();
    let check = check_unbonding_on_chain(&revealing_unbonding_leaf(), &tiny);
    assert_eq!(
        check,
        UnbondingCheck::Invalid(InvalidUnbonding::ValueTooLow {
            staking_value: Amount::from_sat(10_000),
            fee: Amount::from_sat(10_000)
        })
    );
    let UnbondingCheck::Invalid(reason) = check else {
        unreachable!()
    };
    assert_eq!(
        reason.to_string(),
        "staking output value is too low, got 0.0001 BTC, unbonding fee: 0.0001 BTC"
    );
    assert!(
        canonical_unbonding_tx(&staking(), outpoint(), Amount::from_sat(10_000), &TERMS).is_err()
    );
}
