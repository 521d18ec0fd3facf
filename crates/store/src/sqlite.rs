//! SQLite implementation (the embedded default). WAL journal with `synchronous = FULL`: a
//! committed block survives a crash or power loss, readers never block the writer. Every write
//! transaction starts with `BEGIN IMMEDIATE`, taking the database write lock up front, so two
//! writers (even in two processes) serialise instead of failing on a lock upgrade. The
//! hot-standby lock is a file lock; see [`crate::lock`].

use std::collections::HashSet;
use std::time::Duration;

use bitcoin::{Amount, BlockHash, OutPoint, Txid};
use std::path::{Path, PathBuf};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::codec::{
    amount_from_db, convert_all, InvalidRow, OutboxDbRow, StakingRow, UnbondingRow,
    INVALID_COLUMNS, STAKING_COLUMNS, UNBONDING_COLUMNS,
};
use crate::error::{Result, StoreError};
use crate::interface::{IndexerStore, OutboxStore};
use crate::sqlite_block::{
    apply_in, enqueue_in, first_height_in, hash_at_in, rollback_in, tip_in, tvl_from_rows_in,
};
use crate::types::{
    ApplyOutcome, BlockRef, BlockWrite, InvalidTx, InvalidTxQuery, OutboxEvent, OutboxRow,
    RollbackReport, SpentLookup, StakingTx, UnbondingTx,
};
use crate::validation::check_block_write;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` with the crash-safe settings.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(StoreError::db("open SQLite database"))?;
        Ok(SqliteStore { pool, path })
    }

    /// Opens `sqlite:PATH` / `sqlite://PATH` (query parameters are not supported).
    pub async fn connect(url: &str) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .filter(|p| !p.is_empty() && !p.contains('?') && *p != ":memory:")
            .ok_or_else(|| StoreError::UnsupportedUrl {
                url: url.to_owned(),
            })?;
        Self::open(path).await
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies the embedded migrations (`migrations/sqlite/`); safe to run repeatedly.
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
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')")
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

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::db("begin transaction"))
    }
}

/// A JSON array bound as one parameter and expanded with `json_each` (no variable limit).
fn json_array<T: Clone>(items: &[T]) -> String
where
    serde_json::Value: From<Vec<T>>,
{
    serde_json::Value::from(items.to_vec()).to_string()
}

impl IndexerStore for SqliteStore {
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
            "SELECT {STAKING_COLUMNS} FROM staking_txs WHERE txid IN (SELECT value FROM json_each($1))"
        ))
        .bind(json_array(&txids))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("batch lookup staking txs"))?;
        let unbonding: Vec<UnbondingRow> = sqlx::query_as(&format!(
            "SELECT {UNBONDING_COLUMNS} FROM unbonding_txs WHERE txid IN (SELECT value FROM json_each($1))"
        ))
        .bind(json_array(&txids))
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
             WHERE ($1 IS NULL OR txid = $1) AND ($2 IS NULL OR kind = $2) \
             AND ($3 IS NULL OR height >= $3) AND ($4 IS NULL OR height <= $4) \
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

impl OutboxStore for SqliteStore {
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
        Ok(sqlx::query("UPDATE outbox SET sent_at = $2 WHERE id IN (SELECT value FROM json_each($1)) AND sent_at IS NULL")
            .bind(json_array(ids))
            .bind(chrono::Utc::now())
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("mark outbox rows sent"))?
            .rows_affected())
    }

    async fn unsent_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("count unsent outbox rows"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
