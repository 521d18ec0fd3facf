//! Confirmed blocks processed but not yet written, committed together while the indexer is far
//! behind the tip: one database transaction (one fsync, one writer-lock check) for up to
//! [`MAX_BLOCKS`] blocks or [`MAX_AGE`], instead of one per block. State, tip and outbox rows of
//! the group still commit atomically, so a crash loses the whole group or nothing, and the next
//! start processes it again from the stored tip.
//!
//! The stored view of a block is read from the database, so a block that spends an output of a
//! tx in the group is never processed against a stale view: the group is written first
//! ([`Group::spends_from`]).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bitcoin::{OutPoint, Txid};
use store::BlockWrite;

use crate::outcome::BlockCounts;

/// At most this many blocks per transaction.
pub const MAX_BLOCKS: usize = 32;
/// A group is written at the latest this long after its first block was processed.
pub const MAX_AGE: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Group {
    /// The processed blocks, in order, and their counts (recorded once written).
    writes: Vec<BlockWrite>,
    counts: Vec<BlockCounts>,
    /// Staking and unbonding txids of the group's rows.
    txids: HashSet<Txid>,
    since: Option<Instant>,
}

impl Group {
    pub fn push(&mut self, write: BlockWrite, counts: BlockCounts, now: Instant) {
        self.txids.extend(write.stored_txids());
        self.since.get_or_insert(now);
        self.writes.push(write);
        self.counts.push(counts);
    }

    /// True if one of `prevouts` spends an output of a tx of the group.
    pub fn spends_from(&self, prevouts: &[OutPoint]) -> bool {
        !self.txids.is_empty() && prevouts.iter().any(|o| self.txids.contains(&o.txid))
    }

    /// Full or old enough to be written.
    pub fn due(&self, now: Instant) -> bool {
        self.writes.len() >= MAX_BLOCKS
            || self
                .since
                .is_some_and(|since| now.saturating_duration_since(since) >= MAX_AGE)
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    pub fn writes(&self) -> &[BlockWrite] {
        &self.writes
    }

    /// Empties the group (after it was written), returning its blocks and counts in order.
    pub fn take(&mut self) -> (Vec<BlockWrite>, Vec<BlockCounts>) {
        self.txids.clear();
        self.since = None;
        (
            std::mem::take(&mut self.writes),
            std::mem::take(&mut self.counts),
        )
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash;
    use bitcoin::BlockHash;

    use super::*;

    fn write(height: u32) -> BlockWrite {
        BlockWrite {
            height,
            hash: BlockHash::from_byte_array([height as u8; 32]),
            prev_hash: BlockHash::from_byte_array([height as u8 - 1; 32]),
            stakings: Vec::new(),
            unbondings: Vec::new(),
            invalids: Vec::new(),
            events: Vec::new(),
        }
    }

    fn push(group: &mut Group, height: u32, now: Instant) {
        group.push(write(height), BlockCounts::default(), now);
    }

    #[test]
    fn a_group_is_due_when_full_or_old_and_empties_in_order() {
        let t0 = Instant::now();
        let mut group = Group::default();
        assert!(!group.due(t0 + MAX_AGE), "an empty group is never due");
        push(&mut group, 10, t0);
        push(&mut group, 11, t0 + MAX_AGE / 2);
        assert!(!group.due(t0 + MAX_AGE / 2));
        assert!(group.due(t0 + MAX_AGE), "old enough");
        let heights: Vec<u32> = group.take().0.iter().map(|w| w.height).collect();
        assert_eq!(heights, vec![10, 11]);
        assert!(group.is_empty());
        for h in 0..MAX_BLOCKS as u32 {
            assert!(!group.due(t0));
            push(&mut group, 20 + h, t0);
        }
        assert!(group.due(t0), "full");
    }

    #[test]
    fn a_block_spending_an_output_of_a_tx_in_the_group_is_seen() {
        let mut group = Group::default();
        let mut w = write(10);
        let tx = bitcoin::Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: Vec::new(),
            output: Vec::new(),
        };
        let txid = tx.compute_txid();
        w.unbondings.push(store::UnbondingTx {
            txid,
            tx,
            staking_txid: Txid::from_byte_array([1; 32]),
            height: 10,
            block_hash: w.hash,
        });
        group.push(w, BlockCounts::default(), Instant::now());
        let other = OutPoint::new(Txid::from_byte_array([2; 32]), 0);
        assert!(!group.spends_from(&[other]));
        assert!(group.spends_from(&[other, OutPoint::new(txid, 0)]));
        group.take();
        assert!(!group.spends_from(&[OutPoint::new(txid, 0)]));
    }
}
