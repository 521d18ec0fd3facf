//! Deterministic chain data: blocks, staking / unbonding / invalid rows built from a height
//! and a fork number, so two runs produce byte-identical writes.

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::key::Secp256k1;
use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, BlockHash, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
    XOnlyPublicKey,
};
use store::{BlockWrite, InvalidTx, InvalidTxKind, OutboxEvent, StakingTx, UnbondingTx};

/// The hash of block `height` on fork `fork` (fork 0 is the main chain).
pub fn block_hash(height: u32, fork: u8) -> BlockHash {
    let mut data = height.to_le_bytes().to_vec();
    data.push(fork);
    BlockHash::from_byte_array(sha256d::Hash::hash(&data).to_byte_array())
}

/// An x-only key from a small seed (seed ≥ 1).
pub fn key(seed: u8) -> XOnlyPublicKey {
    let sk = SecretKey::from_slice(&[seed.max(1); 32]).expect("valid secret key");
    Keypair::from_secret_key(&Secp256k1::new(), &sk)
        .x_only_public_key()
        .0
}

/// A unique transaction: one input from `seed`, `outputs` outputs of 1000 sat.
pub fn tx(seed: u64, spends: Option<OutPoint>, outputs: usize) -> Transaction {
    let prev = spends.unwrap_or_else(|| {
        OutPoint::new(
            Txid::from_byte_array(sha256d::Hash::hash(&seed.to_le_bytes()).to_byte_array()),
            0,
        )
    });
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: prev,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: (0..outputs)
            .map(|i| TxOut {
                value: Amount::from_sat(1000 + i as u64),
                script_pubkey: ScriptBuf::new_op_return([seed as u8; 8]),
            })
            .collect(),
    }
}

/// An empty block `height` on `fork` whose parent is block `height - 1` on `parent_fork`.
pub fn block(height: u32, fork: u8, parent_fork: u8) -> BlockWrite {
    BlockWrite {
        height,
        hash: block_hash(height, fork),
        prev_hash: block_hash(height.wrapping_sub(1), parent_fork),
        stakings: vec![],
        unbondings: vec![],
        invalids: vec![],
        events: vec![],
    }
}

/// A staking tx in `b` at `position`, staking output index 0.
pub fn staking(b: &BlockWrite, position: u32, value: u64, is_overflow: bool) -> StakingTx {
    let tx = tx(
        u64::from(b.height) << 20
            | u64::from(position)
            | u64::from(b.hash.to_byte_array()[0]) << 40,
        None,
        2,
    );
    StakingTx {
        txid: tx.compute_txid(),
        tx,
        staking_output_index: 0,
        inclusion_height: b.height,
        block_hash: b.hash,
        position_in_block: position,
        staker_pk: key(2),
        finality_provider_pk: key(3),
        staking_time: 64_000,
        value: Amount::from_sat(value),
        is_overflow,
        params_version: 1,
    }
}

/// The unbonding tx of `s`, included in `b`.
pub fn unbonding(b: &BlockWrite, s: &StakingTx) -> UnbondingTx {
    let tx = tx(0, Some(s.staking_outpoint()), 1);
    UnbondingTx {
        txid: tx.compute_txid(),
        tx,
        staking_txid: s.txid,
        height: b.height,
        block_hash: b.hash,
    }
}

pub fn invalid(b: &BlockWrite, seed: u64, kind: InvalidTxKind, reason: &str) -> InvalidTx {
    let tx = tx(seed << 8 | u64::from(b.height), None, 1);
    InvalidTx {
        txid: tx.compute_txid(),
        kind,
        height: b.height,
        block_hash: b.hash,
        reason: reason.to_owned(),
        tx: Some(tx),
    }
}

pub fn event(queue: &str, n: u64) -> OutboxEvent {
    OutboxEvent {
        queue: queue.to_owned(),
        payload: format!("{{\"n\":{n},\"queue\":\"{queue}\"}}"),
    }
}

/// The main-chain block `height` of the crash / equivalence tests: one active stake (value
/// depends on the height), every third block one overflow stake, from height `first + 3` on the
/// unbonding of the active stake made 3 blocks earlier, every fifth block an invalid tx, and
/// one event per row.
pub fn busy_block(first: u32, height: u32) -> BlockWrite {
    let mut b = block(height, 0, 0);
    let active = staking(&b, 1, 10_000 + u64::from(height % 97), false);
    b.events
        .push(event("active_staking_queue", u64::from(height) * 10));
    b.stakings.push(active);
    if height.is_multiple_of(3) {
        b.stakings.push(staking(&b, 2, 5_000, true));
        b.events
            .push(event("active_staking_queue", u64::from(height) * 10 + 1));
    }
    if height >= first + 3 {
        let earlier = block(height - 3, 0, 0);
        let s = staking(&earlier, 1, 10_000 + u64::from((height - 3) % 97), false);
        b.unbondings.push(unbonding(&b, &s));
        b.events
            .push(event("unbonding_staking_queue", u64::from(height) * 10 + 2));
    }
    if height.is_multiple_of(5) {
        b.invalids.push(invalid(
            &b,
            7,
            InvalidTxKind::Staking,
            "staking_value_too_low",
        ));
    }
    b
}
