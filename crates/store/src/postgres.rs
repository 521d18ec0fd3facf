//! PostgreSQL implementation (production). Block writes serialise on the `indexer_state` row
//! (`SELECT … FOR UPDATE`), so two writers can never interleave; the hot-standby lock is a
//! session-level advisory lock on a dedicated connection.

use std::collections::HashSet;
use std::time::Duration;

use bitcoin::{Amount, BlockHash, OutPoint, Txid};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use crate::codec::{
    amount_from_db, convert_all, InvalidRow, OutboxDbRow, StakingRow, UnbondingRow,
    INVALID_COLUMNS, STAKING_COLUMNS, UNBONDING_COLUMNS,
};
use crate::error::{Result, StoreError};
use crate::interface::{IndexerStore, OutboxStore};
use crate::postgres_block::{
    apply_in, enqueue_in, first_height_in, hash_at_in, rollback_in, tip_in, tvl_from_rows_in,
};
use crate::types::{
    ApplyOutcome, BlockRef, BlockWrite, InvalidTx, InvalidTxQuery, OutboxEvent, OutboxRow,
    RollbackReport, SpentLookup, StakingTx, UnbondingTx,
};
use crate::validation::check_block_write;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects a pool (does not migrate; call [`PgStore::migrate`]).
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(StoreError::db("connect to PostgreSQL"))?;
        Ok(PgStore { pool })
    }

    /// Wraps an existing pool (the API shares one pool between its modules).
    pub fn from_pool(pool: PgPool) -> Self {
        PgStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations (`migrations/postgres/`); safe to run repeatedly.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Applies the embedded migrations and returns those this call applied (none when the
    /// database was up to date), for `stakingd migrate`.
    pub async fn migrate_reporting(&self) -> Result<Vec<crate::store::MigrationInfo>> {
        let before = self.applied_versions().await?;
        self.migrate().await?;
        Ok(MIGRATOR
            .iter()
            .filter(|m| !before.contains(&m.version))
            .map(|m| crate::store::MigrationInfo {
                version: m.version,
                description: m.description.to_string(),
            })
            .collect())
    }

    /// Versions recorded as applied (empty on a fresh database).
    async fn applied_versions(&self) -> Result<Vec<i64>> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("look for the migrations table"))?;
        if !exists {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("read applied migrations"))
    }

    pub(crate) fn connect_options(&self) -> PgConnectOptions {
        (*self.pool.connect_options()).clone()
    }

    /// Opens a connection outside the pool (the advisory lock must die with its connection).
    pub(crate) async fn dedicated_connection(&self) -> Result<PgConnection> {
        PgConnection::connect_with(&self.connect_options())
            .await
            .map_err(StoreError::db("open lock connection"))
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool
            .begin()
            .await
            .map_err(StoreError::db("begin transaction"))
    }
}

impl IndexerStore for PgStore {
    async fn apply_block(&self, block: &BlockWrite) -> Result<ApplyOutcome> {
        check_block_write(block)?;
        let mut tx = self.begin().await?;
        let out = apply_in(&mut tx, block).await?;
        tx.commit().await.map_err(StoreError::db("commit block"))?;
        Ok(out)
    }

    async fn apply_blocks(&self, blocks: &[BlockWrite]) -> Result<Vec<ApplyOutcome>> {
        for block in blocks {
            check_block_write(block)?;
        }
        let mut tx = self.begin().await?;
        let mut outs = Vec::with_capacity(blocks.len());
        for block in blocks {
            outs.push(apply_in(&mut tx, block).await?);
        }
        tx.commit().await.map_err(StoreError::db("commit blocks"))?;
        Ok(outs)
    }

    async fn tip(&self) -> Result<Option<BlockRef>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db("acquire"))?;
        tip_in(&mut conn).await
    }

    async fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db("acquire"))?;
        hash_at_in(&mut conn, height).await
    }

    async fn first_processed_height(&self) -> Result<Option<u32>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db("acquire"))?;
        first_height_in(&mut conn).await
    }

    async fn staking_tx(&self, txid: Txid) -> Result<Option<StakingTx>> {
        let row: Option<StakingRow> = sqlx::query_as(&format!(
            "SELECT {STAKING_COLUMNS} FROM staking_txs WHERE txid = $1"
        ))
        .bind(txid.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("read staking tx"))?;
        row.map(StakingTx::try_from).transpose()
    }

    async fn unbonding_tx(&self, txid: Txid) -> Result<Option<UnbondingTx>> {
        let row: Option<UnbondingRow> = sqlx::query_as(&format!(
            "SELECT {UNBONDING_COLUMNS} FROM unbonding_txs WHERE txid = $1"
        ))
        .bind(txid.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("read unbonding tx"))?;
        row.map(UnbondingTx::try_from).transpose()
    }

    async fn unbonding_of(&self, staking_txid: Txid) -> Result<Option<UnbondingTx>> {
        let row: Option<UnbondingRow> = sqlx::query_as(&format!(
            "SELECT {UNBONDING_COLUMNS} FROM unbonding_txs WHERE staking_txid = $1"
        ))
        .bind(staking_txid.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("read unbonding of staking tx"))?;
        row.map(UnbondingTx::try_from).transpose()
    }

    async fn is_staking_outpoint(&self, outpoint: OutPoint) -> Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM staking_txs WHERE txid = $1 AND staking_output_index = $2)",
        )
        .bind(outpoint.txid.to_string())
        .bind(i64::from(outpoint.vout))
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db("check staking outpoint"))
    }

    async fn unbonding_tx_exists(&self, txid: Txid) -> Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM unbonding_txs WHERE txid = $1)")
            .bind(txid.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("check unbonding tx"))
    }

    async fn lookup_spent(&self, prevouts: &[OutPoint]) -> Result<SpentLookup> {
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
        let staking: Vec<StakingRow> = sqlx::query_as(&format!(
            "SELECT {STAKING_COLUMNS} FROM staking_txs WHERE txid = ANY($1)"
        ))
        .bind(&txids)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("batch lookup staking txs"))?;
        let unbonding: Vec<UnbondingRow> = sqlx::query_as(&format!(
            "SELECT {UNBONDING_COLUMNS} FROM unbonding_txs WHERE txid = ANY($1)"
        ))
        .bind(&txids)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("batch lookup unbonding txs"))?;
        let mut stakings: Vec<StakingTx> = convert_all(staking)?;
        stakings.retain(|s| wanted.contains(&s.staking_outpoint()));
        Ok(SpentLookup {
            stakings,
            unbondings: convert_all(unbonding)?,
        })
    }

    async fn spendable_txids(&self) -> Result<Vec<Txid>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT txid FROM staking_txs UNION ALL SELECT txid FROM unbonding_txs",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("list spendable txids"))?;
        rows.iter()
            .map(|t| crate::codec::txid_from_db("spendable txid", t))
            .collect()
    }

    async fn staking_txs_in_range(&self, from: u32, to: u32) -> Result<Vec<StakingTx>> {
        let rows: Vec<StakingRow> = sqlx::query_as(&format!(
            "SELECT {STAKING_COLUMNS} FROM staking_txs WHERE inclusion_height >= $1 \
             AND inclusion_height < $2 ORDER BY inclusion_height, position_in_block"
        ))
        .bind(i64::from(from))
        .bind(i64::from(to))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("list staking txs"))?;
        convert_all(rows)
    }

    async fn confirmed_tvl(&self) -> Result<Amount> {
        let tvl: i64 = sqlx::query_scalar("SELECT confirmed_tvl FROM indexer_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("read confirmed tvl"))?;
        amount_from_db("confirmed_tvl", tvl)
    }

    async fn tvl_from_rows(&self) -> Result<Amount> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db("acquire"))?;
        tvl_from_rows_in(&mut conn).await
    }

    async fn rollback_to(&self, height: u32) -> Result<RollbackReport> {
        let mut tx = self.begin().await?;
        let report = rollback_in(&mut tx, height).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit rollback"))?;
        Ok(report)
    }

    async fn invalid_txs(&self, q: &InvalidTxQuery) -> Result<Vec<InvalidTx>> {
        let rows: Vec<InvalidRow> = sqlx::query_as(&format!(
            "SELECT {INVALID_COLUMNS} FROM invalid_txs \
             WHERE ($1::TEXT IS NULL OR txid = $1) AND ($2::TEXT IS NULL OR kind = $2) \
             AND ($3::BIGINT IS NULL OR height >= $3) AND ($4::BIGINT IS NULL OR height <= $4) \
             ORDER BY height, txid, kind LIMIT $5"
        ))
        .bind(q.txid.map(|t| t.to_string()))
        .bind(q.kind.map(|k| k.as_str()))
        .bind(q.from_height.map(i64::from))
        .bind(q.to_height.map(i64::from))
        .bind(q.effective_limit())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("list invalid txs"))?;
        convert_all(rows)
    }
}

impl OutboxStore for PgStore {
    async fn enqueue(&self, events: &[OutboxEvent]) -> Result<Vec<i64>> {
        let mut tx = self.begin().await?;
        let ids = enqueue_in(&mut tx, events).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit outbox events"))?;
        Ok(ids)
    }

    async fn fetch_unsent(&self, limit: u32) -> Result<Vec<OutboxRow>> {
        let rows: Vec<OutboxDbRow> = sqlx::query_as(
            "SELECT id, queue, payload, created_at FROM outbox WHERE sent_at IS NULL \
             ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("fetch unsent outbox rows"))?;
        Ok(rows.into_iter().map(OutboxRow::from).collect())
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        Ok(
            sqlx::query("UPDATE outbox SET sent_at = $2 WHERE id = ANY($1) AND sent_at IS NULL")
                .bind(ids)
                .bind(chrono::Utc::now())
                .execute(&self.pool)
                .await
                .map_err(StoreError::db("mark outbox rows sent"))?
                .rows_affected(),
        )
    }

    async fn unsent_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("count unsent outbox rows"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
