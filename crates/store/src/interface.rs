//! The storage interface: what the indexer and the outbox relay need, implemented by
//! [`crate::PgStore`], [`crate::SqliteStore`] and the dispatching [`crate::Store`].
//!
//! Methods return `Send` futures so services can spawn them on a multi-threaded runtime.

use std::future::Future;

use bitcoin::{Amount, BlockHash, OutPoint, Txid};

use crate::error::Result;
use crate::types::{
    ApplyOutcome, BlockRef, BlockWrite, InvalidTx, InvalidTxQuery, OutboxEvent, OutboxRow,
    RollbackReport, SpentLookup, StakingTx, UnbondingTx,
};

/// Indexer state: staking / unbonding / invalid txs, confirmed TVL, tip and processed hashes.
pub trait IndexerStore: Send + Sync {
    /// Writes everything one confirmed block implies — rows, TVL, tip, outbox events — in one
    /// database transaction. The block must extend the tip (`prev_hash` = tip hash, height =
    /// tip + 1), be the first block of an empty store, or be an already-processed block with
    /// the same hash (a replay: duplicate rows are ignored, TVL is not counted twice). On any
    /// error nothing is written.
    fn apply_block(&self, block: &BlockWrite) -> impl Future<Output = Result<ApplyOutcome>> + Send;

    /// [`IndexerStore::apply_block`] for consecutive blocks in one database transaction (one
    /// commit, one fsync, instead of one per block): each block is checked against the state the
    /// ones before it left, and on any error nothing of any of them is written.
    fn apply_blocks(
        &self,
        blocks: &[BlockWrite],
    ) -> impl Future<Output = Result<Vec<ApplyOutcome>>> + Send;

    /// Last processed block, `None` when nothing was processed.
    fn tip(&self) -> impl Future<Output = Result<Option<BlockRef>>> + Send;

    /// Hash of the processed block at `height` (for reorg detection), `None` if not processed.
    fn block_hash_at(&self, height: u32) -> impl Future<Output = Result<Option<BlockHash>>> + Send;

    /// Lowest processed height still stored, `None` when nothing was processed.
    fn first_processed_height(&self) -> impl Future<Output = Result<Option<u32>>> + Send;

    fn staking_tx(&self, txid: Txid) -> impl Future<Output = Result<Option<StakingTx>>> + Send;

    fn unbonding_tx(&self, txid: Txid) -> impl Future<Output = Result<Option<UnbondingTx>>> + Send;

    /// The stored unbonding tx of a staking tx, if it was unbonded.
    fn unbonding_of(
        &self,
        staking_txid: Txid,
    ) -> impl Future<Output = Result<Option<UnbondingTx>>> + Send;

    /// True iff `outpoint` is the staking output of a stored staking tx.
    fn is_staking_outpoint(&self, outpoint: OutPoint) -> impl Future<Output = Result<bool>> + Send;

    fn unbonding_tx_exists(&self, txid: Txid) -> impl Future<Output = Result<bool>> + Send;

    /// One query per block instead of two per input: which prevouts are staking outputs of
    /// stored staking txs, and which prevout txids are stored unbonding txs.
    fn lookup_spent(
        &self,
        prevouts: &[OutPoint],
    ) -> impl Future<Output = Result<SpentLookup>> + Send;

    /// Txids of every stored staking and unbonding tx: the only txs whose outputs the indexer
    /// must look up when a later block spends them (it keeps them in memory as a prefilter, so
    /// a block spending none of them costs no query).
    fn spendable_txids(&self) -> impl Future<Output = Result<Vec<Txid>>> + Send;

    /// Stored staking txs with `from <= inclusion_height < to`, in chain order (for export).
    fn staking_txs_in_range(
        &self,
        from: u32,
        to: u32,
    ) -> impl Future<Output = Result<Vec<StakingTx>>> + Send;

    /// The stored confirmed TVL (0 when nothing was stored).
    fn confirmed_tvl(&self) -> impl Future<Output = Result<Amount>> + Send;

    /// Σ non-overflow staking − Σ of those unbonded, computed from the rows (an audit of
    /// [`IndexerStore::confirmed_tvl`]; they must always be equal).
    fn tvl_from_rows(&self) -> impl Future<Output = Result<Amount>> + Send;

    /// Removes every block, staking, unbonding and invalid row above `height`, recomputes the
    /// TVL from the remaining rows and moves the tip, in one transaction. The outbox keeps its
    /// history. Rolling back to or above the tip changes nothing.
    fn rollback_to(&self, height: u32) -> impl Future<Output = Result<RollbackReport>> + Send;

    fn invalid_txs(
        &self,
        query: &InvalidTxQuery,
    ) -> impl Future<Output = Result<Vec<InvalidTx>>> + Send;
}

/// The transactional outbox, read by the relay that publishes to the queues.
pub trait OutboxStore: Send + Sync {
    /// Queues events outside a block write (for services other than the indexer).
    fn enqueue(&self, events: &[OutboxEvent]) -> impl Future<Output = Result<Vec<i64>>> + Send;

    /// Up to `limit` unsent rows, oldest first (publish in this order).
    fn fetch_unsent(&self, limit: u32) -> impl Future<Output = Result<Vec<OutboxRow>>> + Send;

    /// Marks rows as sent; returns how many were unsent before (already-sent ids are ignored).
    fn mark_sent(&self, ids: &[i64]) -> impl Future<Output = Result<u64>> + Send;

    /// Number of rows not yet sent (for a metric).
    fn unsent_count(&self) -> impl Future<Output = Result<u64>> + Send;
}
