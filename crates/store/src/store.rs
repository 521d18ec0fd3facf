//! [`Store`]: the backend chosen from a URL at start, behind the same interface.

use std::time::Duration;

use bitcoin::{Amount, BlockHash, OutPoint, Txid};
use tokio_util::sync::CancellationToken;

use crate::error::{Result, StoreError};
use crate::interface::{IndexerStore, OutboxStore};
use crate::lock::{Contender, WriterLock};
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::types::{
    ApplyOutcome, BlockRef, BlockWrite, InvalidTx, InvalidTxQuery, OutboxEvent, OutboxRow,
    RollbackReport, SpentLookup, StakingTx, UnbondingTx,
};

/// One embedded migration (file `VERSION_DESCRIPTION.sql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    pub version: i64,
    pub description: String,
}

/// PostgreSQL or SQLite; services hold this and never care which.
#[derive(Debug, Clone)]
pub enum Store {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

impl Store {
    /// `postgres://…` / `postgresql://…` or `sqlite:PATH` / `sqlite://PATH`. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PgStore::connect(url).await?))
        } else if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(SqliteStore::connect(url).await?))
        } else {
            Err(StoreError::UnsupportedUrl {
                url: url.to_owned(),
            })
        }
    }

    /// Applies the embedded migrations of the backend (what `stakingd migrate` runs).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Store::Postgres(s) => s.migrate().await,
            Store::Sqlite(s) => s.migrate().await,
        }
    }

    /// [`Store::migrate`], returning the migrations this call applied (empty when the database
    /// was already up to date): what `stakingd migrate` prints.
    pub async fn migrate_reporting(&self) -> Result<Vec<MigrationInfo>> {
        match self {
            Store::Postgres(s) => s.migrate_reporting().await,
            Store::Sqlite(s) => s.migrate_reporting().await,
        }
    }

    /// `"postgres"` or `"sqlite"`, for logs and metrics labels.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    async fn contender(&self, name: &str) -> Result<Contender> {
        match self {
            Store::Postgres(s) => Contender::postgres(s).await,
            Store::Sqlite(s) => Contender::sqlite(s, name).await,
        }
    }

    /// Takes the writer lock `name` if it is free, `None` if another instance holds it.
    pub async fn try_writer_lock(&self, name: &str) -> Result<Option<WriterLock>> {
        Ok(self.contender(name).await?.try_lock(name).await?.ok())
    }

    /// Waits (polling every `poll`) until the writer lock `name` is ours; `None` on shutdown.
    pub async fn wait_for_writer_lock(
        &self,
        name: &str,
        poll: Duration,
        shutdown: &CancellationToken,
    ) -> Result<Option<WriterLock>> {
        self.contender(name).await?.wait(name, poll, shutdown).await
    }
}

/// Forwards one interface method to the backend.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Postgres(s) => s.$method($($arg),*).await,
            Store::Sqlite(s) => s.$method($($arg),*).await,
        }
    };
}

impl IndexerStore for Store {
    async fn apply_block(&self, block: &BlockWrite) -> Result<ApplyOutcome> {
        dispatch!(self.apply_block(block))
    }
    async fn apply_blocks(&self, blocks: &[BlockWrite]) -> Result<Vec<ApplyOutcome>> {
        dispatch!(self.apply_blocks(blocks))
    }
    async fn tip(&self) -> Result<Option<BlockRef>> {
        dispatch!(self.tip())
    }
    async fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>> {
        dispatch!(self.block_hash_at(height))
    }
    async fn first_processed_height(&self) -> Result<Option<u32>> {
        dispatch!(self.first_processed_height())
    }
    async fn staking_tx(&self, txid: Txid) -> Result<Option<StakingTx>> {
        dispatch!(self.staking_tx(txid))
    }
    async fn unbonding_tx(&self, txid: Txid) -> Result<Option<UnbondingTx>> {
        dispatch!(self.unbonding_tx(txid))
    }
    async fn unbonding_of(&self, staking_txid: Txid) -> Result<Option<UnbondingTx>> {
        dispatch!(self.unbonding_of(staking_txid))
    }
    async fn is_staking_outpoint(&self, outpoint: OutPoint) -> Result<bool> {
        dispatch!(self.is_staking_outpoint(outpoint))
    }
    async fn unbonding_tx_exists(&self, txid: Txid) -> Result<bool> {
        dispatch!(self.unbonding_tx_exists(txid))
    }
    async fn lookup_spent(&self, prevouts: &[OutPoint]) -> Result<SpentLookup> {
        dispatch!(self.lookup_spent(prevouts))
    }
    async fn spendable_txids(&self) -> Result<Vec<Txid>> {
        dispatch!(self.spendable_txids())
    }
    async fn staking_txs_in_range(&self, from: u32, to: u32) -> Result<Vec<StakingTx>> {
        dispatch!(self.staking_txs_in_range(from, to))
    }
    async fn confirmed_tvl(&self) -> Result<Amount> {
        dispatch!(self.confirmed_tvl())
    }
    async fn tvl_from_rows(&self) -> Result<Amount> {
        dispatch!(self.tvl_from_rows())
    }
    async fn rollback_to(&self, height: u32) -> Result<RollbackReport> {
        dispatch!(self.rollback_to(height))
    }
    async fn invalid_txs(&self, query: &InvalidTxQuery) -> Result<Vec<InvalidTx>> {
        dispatch!(self.invalid_txs(query))
    }
}

impl OutboxStore for Store {
    async fn enqueue(&self, events: &[OutboxEvent]) -> Result<Vec<i64>> {
        dispatch!(self.enqueue(events))
    }
    async fn fetch_unsent(&self, limit: u32) -> Result<Vec<OutboxRow>> {
        dispatch!(self.fetch_unsent(limit))
    }
    async fn mark_sent(&self, ids: &[i64]) -> Result<u64> {
        dispatch!(self.mark_sent(ids))
    }
    async fn unsent_count(&self) -> Result<u64> {
        dispatch!(self.unsent_count())
    }
}
