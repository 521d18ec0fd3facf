//! Rows the indexer writes and reads, as typed values (parsed at the edge of the database).
//!
//! Hashes are stored as lower-case display hex (the form every queue message and API response
//! uses), public keys as 32-byte x-only hex, raw transactions as consensus bytes.

use bitcoin::{Amount, BlockHash, OutPoint, Transaction, Txid, XOnlyPublicKey};

use crate::outbox::OutboxEvent;

/// A processed block: the indexer tip or an entry of the processed-hash history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    pub height: u32,
    pub hash: BlockHash,
}

/// A valid staking transaction (active or overflow) as stored by the indexer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakingTx {
    /// Must equal `tx.compute_txid()`; `apply_block` checks it.
    pub txid: Txid,
    pub tx: Transaction,
    pub staking_output_index: u32,
    pub inclusion_height: u32,
    pub block_hash: BlockHash,
    /// Index of the transaction inside its block (coinbase = 0): first come, first served.
    pub position_in_block: u32,
    pub staker_pk: XOnlyPublicKey,
    pub finality_provider_pk: XOnlyPublicKey,
    pub staking_time: u16,
    pub value: Amount,
    pub is_overflow: bool,
    pub params_version: u32,
}

impl StakingTx {
    /// The staking output this transaction locks.
    pub fn staking_outpoint(&self) -> OutPoint {
        OutPoint::new(self.txid, self.staking_output_index)
    }
}

/// A valid unbonding transaction (spends a stored staking output through the unbonding path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbondingTx {
    /// Must equal `tx.compute_txid()`; `apply_block` checks it.
    pub txid: Txid,
    pub tx: Transaction,
    pub staking_txid: Txid,
    pub height: u32,
    pub block_hash: BlockHash,
}

/// Which check a transaction failed. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidTxKind {
    Staking,
    Unbonding,
    WithdrawStaking,
    WithdrawUnbonding,
}

impl InvalidTxKind {
    pub const ALL: [InvalidTxKind; 4] = [
        InvalidTxKind::Staking,
        InvalidTxKind::Unbonding,
        InvalidTxKind::WithdrawStaking,
        InvalidTxKind::WithdrawUnbonding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvalidTxKind::Staking => "staking",
            InvalidTxKind::Unbonding => "unbonding",
            InvalidTxKind::WithdrawStaking => "withdraw_staking",
            InvalidTxKind::WithdrawUnbonding => "withdraw_unbonding",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for InvalidTxKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transaction that looked like staking / unbonding / withdrawal but broke a rule. Recorded so
/// tools can explain why it does not count; never emitted as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTx {
    pub txid: Txid,
    pub kind: InvalidTxKind,
    pub height: u32,
    pub block_hash: BlockHash,
    /// snake_case reason, e.g. `staking_value_too_low` (checked by `apply_block`).
    pub reason: String,
    pub tx: Option<Transaction>,
}

/// Everything one confirmed block changes, written in one database transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockWrite {
    pub height: u32,
    pub hash: BlockHash,
    pub prev_hash: BlockHash,
    /// In block order; each `inclusion_height` / `block_hash` must be this block's.
    pub stakings: Vec<StakingTx>,
    /// In block order; each `height` / `block_hash` must be this block's.
    pub unbondings: Vec<UnbondingTx>,
    pub invalids: Vec<InvalidTx>,
    pub events: Vec<OutboxEvent>,
}

impl BlockWrite {
    /// The txids of the staking and unbonding txs this block stores: the outputs a later block
    /// may spend (as a withdrawal or an unbonding).
    pub fn stored_txids(&self) -> impl Iterator<Item = Txid> + '_ {
        self.stakings
            .iter()
            .map(|s| s.txid)
            .chain(self.unbondings.iter().map(|u| u.txid))
    }
}

/// How `apply_block` related the block to the stored history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockApplied {
    /// The block extended the tip (or was the first block): the tip moved to it.
    Extended,
    /// The block was already processed with this same hash: rows were deduplicated, the events
    /// were queued again (as the reference republishes on replay), the tip did not move.
    Replayed,
}

/// What one `apply_block` call changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub applied: BlockApplied,
    pub stakings_inserted: usize,
    pub stakings_duplicate: usize,
    pub unbondings_inserted: usize,
    pub unbondings_duplicate: usize,
    pub invalids_inserted: usize,
    pub events_queued: usize,
    /// Confirmed TVL after the block.
    pub confirmed_tvl: Amount,
}

/// What `rollback_to` removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollbackReport {
    /// Tip after the rollback (`None` if no processed block is left).
    pub tip: Option<BlockRef>,
    pub blocks_removed: u64,
    pub stakings_removed: u64,
    pub unbondings_removed: u64,
    pub invalids_removed: u64,
    /// Confirmed TVL recomputed from the remaining rows.
    pub confirmed_tvl: Amount,
}

/// Result of the per-block batch lookup of spent outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpentLookup {
    /// Stored staking txs whose staking output is one of the queried outpoints.
    pub stakings: Vec<StakingTx>,
    /// Queried prevout txids that are stored unbonding txs.
    pub unbondings: Vec<UnbondingTx>,
}

/// Filter for listing invalid transactions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvalidTxQuery {
    pub txid: Option<Txid>,
    pub kind: Option<InvalidTxKind>,
    /// Inclusive height range.
    pub from_height: Option<u32>,
    pub to_height: Option<u32>,
    /// At most this many rows (ordered by height, then txid); `None` = 1000.
    pub limit: Option<u32>,
}

impl InvalidTxQuery {
    pub const DEFAULT_LIMIT: u32 = 1000;

    pub fn by_txid(txid: Txid) -> Self {
        InvalidTxQuery {
            txid: Some(txid),
            ..Self::default()
        }
    }

    pub(crate) fn effective_limit(&self) -> i64 {
        i64::from(self.limit.unwrap_or(Self::DEFAULT_LIMIT))
    }
}

/// Reasons are snake_case identifiers so they can be matched by tools and shown by the API.
pub(crate) fn is_snake_case(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.starts_with('_')
        && !s.ends_with('_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_tx_kinds_round_trip_through_their_names() {
        for kind in InvalidTxKind::ALL {
            assert_eq!(InvalidTxKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(InvalidTxKind::parse("withdraw"), None);
    }

    #[test]
    fn reasons_must_be_snake_case() {
        assert!(is_snake_case("staking_value_too_low"));
        assert!(is_snake_case("v0"));
        assert!(!is_snake_case(""));
        assert!(!is_snake_case("Too low"));
        assert!(!is_snake_case("too-low"));
        assert!(!is_snake_case("_leading"));
    }
}
