//! The indexer's tables (migration `0001_indexer.sql`): processed blocks, staking, unbonding
//! and invalid transactions, and the confirmed TVL.
//!
//! A block write is one database transaction (`block.rs`): rows, confirmed TVL, tip and the
//! block's outbox events commit together, so a crash at any moment leaves the state after some
//! whole block. Block writes serialise on the `indexer_state` row (PostgreSQL: `SELECT … FOR
//! UPDATE`; SQLite: `BEGIN IMMEDIATE`), so two writers never interleave.

mod block;
pub(crate) mod codec;
pub(crate) mod types;
mod validation;

use std::collections::HashSet;

use bitcoin::{Amount, BlockHash, OutPoint, Txid};

use crate::db::Db;
use crate::error::Result;
use codec::{
    amount_from_db, convert_all, txid_from_db, InvalidRow, StakingRow, UnbondingRow,
    INVALID_COLUMNS, STAKING_COLUMNS, UNBONDING_COLUMNS,
};
use types::{
    ApplyOutcome, BlockRef, BlockWrite, InvalidTx, InvalidTxQuery, RollbackReport, SpentLookup,
    StakingTx, UnbondingTx,
};
use validation::check_block_write;

/// The indexer's handle ([`Db::indexer`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct IndexerStore {
    db: Db,
}

impl IndexerStore {
    pub(crate) fn new(db: Db) -> Self {
        IndexerStore { db }
    }

    /// Writes everything one confirmed block implies — rows, TVL, tip, outbox events — in one
    /// database transaction. The block must extend the tip (`prev_hash` = tip hash, height =
    /// tip + 1), be the first block of an empty store, or be an already-processed block with
    /// the same hash (a replay: duplicate rows are ignored, TVL is not counted twice). On any
    /// error nothing is written.
    pub async fn apply_block(&self, block: &BlockWrite) -> Result<ApplyOutcome> {
        let mut outs = self.apply_blocks(std::slice::from_ref(block)).await?;
        Ok(outs.remove(0))
    }

    /// [`IndexerStore::apply_block`] for consecutive blocks in one database transaction (one
    /// commit, one fsync, instead of one per block): each block is checked against the state
    /// the ones before it left, and on any error nothing of any of them is written.
    pub async fn apply_blocks(&self, blocks: &[BlockWrite]) -> Result<Vec<ApplyOutcome>> {
        for block in blocks {
            check_block_write(block)?;
        }
        let mut tx = self.db.begin().await?;
        let mut outs = Vec::with_capacity(blocks.len());
        for block in blocks {
            outs.push(block::apply(&mut tx, block).await?);
        }
        tx.commit("commit blocks").await?;
        Ok(outs)
    }

    /// Last processed block, `None` when nothing was processed.
    pub async fn tip(&self) -> Result<Option<BlockRef>> {
        block::tip(self.db.query(block::TIP)).await
    }

    /// Hash of the processed block at `height` (for reorg detection), `None` if not processed.
    pub async fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>> {
        block::hash_at(self.db.query(block::HASH_AT), height).await
    }

    /// Lowest processed height still stored, `None` when nothing was processed.
    pub async fn first_processed_height(&self) -> Result<Option<u32>> {
        block::first_height(self.db.query(block::FIRST_HEIGHT)).await
    }

    pub async fn staking_tx(&self, txid: Txid) -> Result<Option<StakingTx>> {
        let sql = format!("SELECT {STAKING_COLUMNS} FROM staking_txs WHERE txid = $1");
        let row: Option<StakingRow> = self
            .db
            .query(&sql)
            .bind(txid.to_string())
            .fetch_optional("read staking tx")
            .await?;
        row.map(StakingTx::try_from).transpose()
    }

    pub async fn unbonding_tx(&self, txid: Txid) -> Result<Option<UnbondingTx>> {
        self.unbonding_where("txid", txid, "read unbonding tx")
            .await
    }

    /// The stored unbonding tx of a staking tx, if it was unbonded.
    pub async fn unbonding_of(&self, staking_txid: Txid) -> Result<Option<UnbondingTx>> {
        self.unbonding_where("staking_txid", staking_txid, "read unbonding of staking tx")
            .await
    }

    async fn unbonding_where(
        &self,
        column: &'static str,
        txid: Txid,
        op: &'static str,
    ) -> Result<Option<UnbondingTx>> {
        let sql = format!("SELECT {UNBONDING_COLUMNS} FROM unbonding_txs WHERE {column} = $1");
        let row: Option<UnbondingRow> = self
            .db
            .query(&sql)
            .bind(txid.to_string())
            .fetch_optional(op)
            .await?;
        row.map(UnbondingTx::try_from).transpose()
    }

    /// True iff `outpoint` is the staking output of a stored staking tx.
    pub async fn is_staking_outpoint(&self, outpoint: OutPoint) -> Result<bool> {
        self.db
            .query(
                "SELECT EXISTS (SELECT 1 FROM staking_txs WHERE txid = $1 \
                 AND staking_output_index = $2)",
            )
            .bind(outpoint.txid.to_string())
            .bind(i64::from(outpoint.vout))
            .scalar("check staking outpoint")
            .await
    }

    pub async fn unbonding_tx_exists(&self, txid: Txid) -> Result<bool> {
        self.db
            .query("SELECT EXISTS (SELECT 1 FROM unbonding_txs WHERE txid = $1)")
            .bind(txid.to_string())
            .scalar("check unbonding tx")
            .await
    }

    /// One query per block instead of two per input: which prevouts are staking outputs of
    /// stored staking txs, and which prevout txids are stored unbonding txs.
    pub async fn lookup_spent(&self, prevouts: &[OutPoint]) -> Result<SpentLookup> {
        if prevouts.is_empty() {
            return Ok(SpentLookup::default());
        }
        let wanted: HashSet<OutPoint> = prevouts.iter().copied().collect();
        let txids: Vec<String> = wanted
            .iter()
            .map(|o| o.txid)
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|t| t.to_string())
            .collect();
        let backend = self.db.backend();
        let sql = format!(
            "SELECT {STAKING_COLUMNS} FROM staking_txs WHERE {}",
            backend.in_list("txid", "$1")
        );
        let staking: Vec<StakingRow> = self
            .db
            .query(&sql)
            .bind_list(&txids)
            .fetch_all("batch lookup staking txs")
            .await?;
        let sql = format!(
            "SELECT {UNBONDING_COLUMNS} FROM unbonding_txs WHERE {}",
            backend.in_list("txid", "$1")
        );
        let unbonding: Vec<UnbondingRow> = self
            .db
            .query(&sql)
            .bind_list(&txids)
            .fetch_all("batch lookup unbonding txs")
            .await?;
        let mut stakings: Vec<StakingTx> = convert_all(staking)?;
        stakings.retain(|s| wanted.contains(&s.staking_outpoint()));
        Ok(SpentLookup {
            stakings,
            unbondings: convert_all(unbonding)?,
        })
    }

    /// Txids of every stored staking and unbonding tx: the only txs whose outputs the indexer
    /// must look up when a later block spends them (it keeps them in memory as a prefilter, so
    /// a block spending none of them costs no query).
    pub async fn spendable_txids(&self) -> Result<Vec<Txid>> {
        let rows: Vec<(String,)> = self
            .db
            .query("SELECT txid FROM staking_txs UNION ALL SELECT txid FROM unbonding_txs")
            .fetch_all("list spendable txids")
            .await?;
        rows.iter()
            .map(|(t,)| txid_from_db("spendable txid", t))
            .collect()
    }

    /// Stored staking txs with `from <= inclusion_height < to`, in chain order (for export).
    pub async fn staking_txs_in_range(&self, from: u32, to: u32) -> Result<Vec<StakingTx>> {
        let sql = format!(
            "SELECT {STAKING_COLUMNS} FROM staking_txs WHERE inclusion_height >= $1 \
             AND inclusion_height < $2 ORDER BY inclusion_height, position_in_block"
        );
        let rows: Vec<StakingRow> = self
            .db
            .query(&sql)
            .bind(i64::from(from))
            .bind(i64::from(to))
            .fetch_all("list staking txs")
            .await?;
        convert_all(rows)
    }

    /// The stored confirmed TVL (0 when nothing was stored).
    pub async fn confirmed_tvl(&self) -> Result<Amount> {
        let tvl: i64 = self
            .db
            .query("SELECT confirmed_tvl FROM indexer_state WHERE id = 1")
            .scalar("read confirmed tvl")
            .await?;
        amount_from_db("confirmed_tvl", tvl)
    }

    /// Σ non-overflow staking − Σ of those unbonded, computed from the rows (an audit of
    /// [`IndexerStore::confirmed_tvl`]; they must always be equal).
    pub async fn tvl_from_rows(&self) -> Result<Amount> {
        block::tvl_from_rows(self.db.query(block::TVL_FROM_ROWS)).await
    }

    /// Removes every block, staking, unbonding and invalid row above `height`, recomputes the
    /// TVL from the remaining rows and moves the tip, in one transaction. The outbox keeps its
    /// history. Rolling back to or above the tip changes nothing.
    pub async fn rollback_to(&self, height: u32) -> Result<RollbackReport> {
        let mut tx = self.db.begin().await?;
        let report = block::rollback(&mut tx, height).await?;
        tx.commit("commit rollback").await?;
        Ok(report)
    }

    /// Invalid transactions matching `query`, by height, then txid and kind.
    pub async fn invalid_txs(&self, query: &InvalidTxQuery) -> Result<Vec<InvalidTx>> {
        // Only the given filters are written, so each query has one plan that uses its index.
        let mut filters = Vec::new();
        let mut n = 0;
        let mut param = |condition: &str| {
            n += 1;
            filters.push(condition.replace('?', &format!("${n}")));
        };
        if query.txid.is_some() {
            param("txid = ?");
        }
        if query.kind.is_some() {
            param("kind = ?");
        }
        if query.from_height.is_some() {
            param("height >= ?");
        }
        if query.to_height.is_some() {
            param("height <= ?");
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        let sql = format!(
            "SELECT {INVALID_COLUMNS} FROM invalid_txs {filter} ORDER BY height, txid, kind \
             LIMIT ${}",
            filters.len() + 1
        );
        let mut stmt = self.db.query(&sql);
        if let Some(txid) = query.txid {
            stmt = stmt.bind(txid.to_string());
        }
        if let Some(kind) = query.kind {
            stmt = stmt.bind(kind.as_str());
        }
        if let Some(h) = query.from_height {
            stmt = stmt.bind(i64::from(h));
        }
        if let Some(h) = query.to_height {
            stmt = stmt.bind(i64::from(h));
        }
        let rows: Vec<InvalidRow> = stmt
            .bind(query.effective_limit())
            .fetch_all("list invalid txs")
            .await?;
        convert_all(rows)
    }
}
