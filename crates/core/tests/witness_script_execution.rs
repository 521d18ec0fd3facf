//! Witnesses checked by executing the scripts with Bitcoin Core's interpreter
//! (libbitcoinconsensus, taproot flags): the unbonding path needs exactly `quorum` covenant
//! signatures in descending key slots, and the timelock paths need the CSV to be met.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{schnorr, Keypair, SecretKey, XOnlyPublicKey};
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxOut, Txid, Witness};
use staking_core::builder::withdrawal_tx;
use staking_core::keys::SECP;
use staking_core::script::{StakingKeys, StakingLeaf, StakingOutput, UnbondingLeaf};
use staking_core::signing::{leaf_sighash, sign};
use staking_core::unbonding::{
    canonical_unbonding_tx, unbonding_output, unbonding_sighash, UnbondingTerms,
};
use staking_core::witness::{
    staking_timelock_witness, unbonding_timelock_witness, unbonding_witness,
};

fn keypair(n: u32) -> Keypair {
    let mut bytes = [0u8; 32];
    bytes[28..].copy_from_slice(&n.to_be_bytes());
    Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&bytes).unwrap())
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

/// A committee of `n` keys with quorum `q`, the canonical unbonding tx, and every party's
/// signature over it.
struct Setup {
    staker: Keypair,
    covenants: Vec<Keypair>,
    staking: StakingOutput,
    prevout: TxOut,
    terms: UnbondingTerms,
    outpoint: OutPoint,
    unbonding: Transaction,
    staker_sig: schnorr::Signature,
    /// Covenant signatures by key, in ascending x-only order (script order).
    cov_sigs_asc: Vec<(XOnlyPublicKey, schnorr::Signature)>,
}

fn setup(n: u32, q: u32) -> Setup {
    let staker = keypair(1);
    let fp = keypair(2);
    let covenants: Vec<Keypair> = (0..n).map(|i| keypair(100 + i)).collect();
    let keys = StakingKeys::new(
        staker.x_only_public_key().0,
        vec![fp.x_only_public_key().0],
        covenants.iter().map(|k| k.x_only_public_key().0).collect(),
        q,
    )
    .unwrap();
    let staking = StakingOutput::new(keys, 1000).unwrap();
    let value = Amount::from_sat(1_000_000);
    let prevout = TxOut {
        value,
        script_pubkey: staking.script_pubkey().clone(),
    };
    let terms = UnbondingTerms {
        unbonding_time: 101,
        unbonding_fee: Amount::from_sat(5_000),
    };
    let outpoint = OutPoint::new(Txid::from_byte_array([0x42; 32]), 0);
    let unbonding = canonical_unbonding_tx(&staking, outpoint, value, &terms).unwrap();
    let sighash = unbonding_sighash(&unbonding, &staking, value).unwrap();
    let staker_sig = sign(&sighash, &staker);
    let mut cov_sigs_asc: Vec<_> = covenants
        .iter()
        .map(|k| (k.x_only_public_key().0, sign(&sighash, k)))
        .collect();
    cov_sigs_asc.sort_by_key(|(k, _)| k.serialize());
    Setup {
        staker,
        covenants,
        staking,
        prevout,
        terms,
        outpoint,
        unbonding,
        staker_sig,
        cov_sigs_asc,
    }
}

impl Setup {
    /// A hand-made unbonding witness whose covenant items are `items`, first item first.
    fn manual(&self, items: &[Vec<u8>]) -> Witness {
        let mut w = Witness::new();
        for item in items {
            w.push(item);
        }
        w.push(self.staker_sig.as_ref());
        w.push(self.staking.leaf_script(StakingLeaf::Unbonding).as_bytes());
        w.push(
            self.staking
                .control_block(StakingLeaf::Unbonding)
                .serialize(),
        );
        w
    }

    /// Descending slots, with the signature present for the ascending indices in `signers`.
    fn slots(&self, signers: &[usize]) -> Vec<Vec<u8>> {
        (0..self.cov_sigs_asc.len())
            .rev()
            .map(|i| {
                if signers.contains(&i) {
                    self.cov_sigs_asc[i].1.as_ref().to_vec()
                } else {
                    Vec::new()
                }
            })
            .collect()
    }

    fn spends(&self, witness: Witness) -> bool {
        let mut tx = self.unbonding.clone();
        tx.input[0].witness = witness;
        consensus_verifies(&tx, &self.prevout)
    }
}

#[test]
fn exactly_quorum_covenant_signatures_with_empty_placeholders_pass() {
    for (n, q) in [(1, 1), (3, 2), (5, 3), (9, 6), (20, 18)] {
        let s = setup(n, q);
        let witness = unbonding_witness(&s.staking, &s.staker_sig, &s.cov_sigs_asc).unwrap();
        assert_eq!(witness.len(), n as usize + 3);
        assert!(s.spends(witness), "{q}-of-{n}");
    }
}

#[test]
fn any_quorum_subset_passes_whatever_order_the_signatures_arrive_in() {
    let s = setup(5, 3);
    let mut arrival: Vec<_> = s.cov_sigs_asc.clone();
    arrival.reverse();
    arrival.rotate_left(2);
    let witness = unbonding_witness(&s.staking, &s.staker_sig, &arrival).unwrap();
    assert!(s.spends(witness));
    assert!(s.spends(s.manual(&s.slots(&[0, 2, 4]))));
    assert!(s.spends(s.manual(&s.slots(&[1, 3, 4]))));
}

#[test]
fn quorum_plus_one_signatures_fail() {
    let s = setup(5, 3);
    assert!(!s.spends(s.manual(&s.slots(&[0, 1, 2, 3]))));
    assert!(!s.spends(s.manual(&s.slots(&[0, 1, 2, 3, 4]))));
}

#[test]
fn quorum_minus_one_signatures_fail() {
    let s = setup(5, 3);
    assert!(!s.spends(s.manual(&s.slots(&[0, 1]))));
}

#[test]
fn slots_in_ascending_instead_of_descending_order_fail() {
    let s = setup(5, 3);
    let mut ascending = s.slots(&[0, 1, 2]);
    ascending.reverse();
    assert!(!s.spends(s.manual(&ascending)));
}

#[test]
fn a_garbage_signature_in_an_unused_slot_fails() {
    let s = setup(5, 3);
    let mut slots = s.slots(&[0, 1, 2]);
    // slot 0 is the highest key, which did not sign: put a wrong but well-formed signature.
    slots[0] = s.cov_sigs_asc[0].1.as_ref().to_vec();
    assert!(!s.spends(s.manual(&slots)));
}

#[test]
fn a_missing_staker_signature_fails() {
    let s = setup(3, 2);
    let mut witness = Witness::new();
    for item in s.slots(&[0, 1]) {
        witness.push(item);
    }
    witness.push([]);
    witness.push(s.staking.leaf_script(StakingLeaf::Unbonding).as_bytes());
    witness.push(s.staking.control_block(StakingLeaf::Unbonding).serialize());
    assert!(!s.spends(witness));
}

#[test]
fn withdrawal_witnesses_pass_once_the_timelock_is_met() {
    let s = setup(9, 6);
    let dest = ScriptBuf::new_p2tr(&SECP, s.staker.x_only_public_key().0, None);

    // Timelock path of the staking output.
    let tx = withdrawal_tx(
        s.outpoint,
        s.prevout.value,
        s.staking.staking_time(),
        dest.clone(),
        2,
    )
    .unwrap();
    let sighash = leaf_sighash(
        &tx,
        0,
        std::slice::from_ref(&s.prevout),
        s.staking.leaf_hash(StakingLeaf::Timelock),
    )
    .unwrap();
    let mut signed = tx.clone();
    signed.input[0].witness = staking_timelock_witness(&s.staking, &sign(&sighash, &s.staker));
    assert!(consensus_verifies(&signed, &s.prevout));

    // Timelock path of the unbonding output.
    let unbonding = unbonding_output(s.staking.keys(), &s.terms).unwrap();
    let unbonding_prevout = s.unbonding.output[0].clone();
    let outpoint = OutPoint::new(s.unbonding.compute_txid(), 0);
    let tx = withdrawal_tx(
        outpoint,
        unbonding_prevout.value,
        s.terms.unbonding_time,
        dest,
        2,
    )
    .unwrap();
    let leaf = unbonding.leaf_hash(UnbondingLeaf::Timelock);
    let sighash = leaf_sighash(&tx, 0, std::slice::from_ref(&unbonding_prevout), leaf).unwrap();
    let mut signed = tx.clone();
    signed.input[0].witness = unbonding_timelock_witness(&unbonding, &sign(&sighash, &s.staker));
    assert!(consensus_verifies(&signed, &unbonding_prevout));

    // One block short: the CSV check fails.
    let mut early = tx;
    early.input[0].sequence = Sequence::from_height(s.terms.unbonding_time - 1);
    let sighash = leaf_sighash(&early, 0, std::slice::from_ref(&unbonding_prevout), leaf).unwrap();
    early.input[0].witness = unbonding_timelock_witness(&unbonding, &sign(&sighash, &s.staker));
    assert!(!consensus_verifies(&early, &unbonding_prevout));
}

#[test]
fn a_covenant_signing_with_the_wrong_key_is_not_accepted_by_the_script() {
    let s = setup(3, 2);
    let sighash = unbonding_sighash(&s.unbonding, &s.staking, s.prevout.value).unwrap();
    let impostor = sign(&sighash, &keypair(999));
    let mut sigs = s.cov_sigs_asc.clone();
    sigs[0].1 = impostor;
    let witness = unbonding_witness(&s.staking, &s.staker_sig, &sigs[..2]).unwrap();
    assert!(!s.spends(witness));
    assert_eq!(s.covenants.len(), 3);
}
