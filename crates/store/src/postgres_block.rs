//! The PostgreSQL block transaction: `apply_block` and `rollback_to` as single transactions,
//! plus the small queries they share with the read side.

use bitcoin::{Amount, BlockHash};
use sqlx::{PgConnection, Postgres, Transaction};

use crate::codec::{amount_from_db, amount_to_db, block_hash_from_db, BlockRow};
use crate::error::{Result, StoreError};
use crate::types::{ApplyOutcome, BlockApplied, BlockRef, BlockWrite, OutboxEvent, RollbackReport};
use crate::validation::{relate, tvl_add, tvl_sub, Relation};

/// SQL that recomputes the confirmed TVL from the rows.
const TVL_FROM_ROWS: &str = "SELECT \
     (SELECT COALESCE(SUM(value), 0) FROM staking_txs WHERE NOT is_overflow)::BIGINT - \
     (SELECT COALESCE(SUM(s.value), 0) FROM unbonding_txs u \
        JOIN staking_txs s ON s.txid = u.staking_txid WHERE NOT s.is_overflow)::BIGINT";

pub(crate) type Tx = Transaction<'static, Postgres>;

async fn lock_tvl(tx: &mut Tx) -> Result<Amount> {
    let tvl: i64 =
        sqlx::query_scalar("SELECT confirmed_tvl FROM indexer_state WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut **tx)
            .await
            .map_err(StoreError::db("lock indexer state"))?;
    amount_from_db("confirmed_tvl", tvl)
}

async fn write_tvl(tx: &mut Tx, tvl: Amount) -> Result<()> {
    sqlx::query("UPDATE indexer_state SET confirmed_tvl = $1 WHERE id = 1")
        .bind(amount_to_db("confirmed_tvl", tvl)?)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("write confirmed tvl"))?;
    Ok(())
}

pub(crate) async fn tip_in(conn: &mut PgConnection) -> Result<Option<BlockRef>> {
    let row: Option<BlockRow> =
        sqlx::query_as("SELECT height, hash FROM indexer_blocks ORDER BY height DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::db("read tip"))?;
    row.map(BlockRef::try_from).transpose()
}

pub(crate) async fn hash_at_in(conn: &mut PgConnection, height: u32) -> Result<Option<BlockHash>> {
    let hash: Option<String> =
        sqlx::query_scalar("SELECT hash FROM indexer_blocks WHERE height = $1")
            .bind(i64::from(height))
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::db("read block hash"))?;
    hash.map(|h| block_hash_from_db("block hash", &h))
        .transpose()
}

pub(crate) async fn first_height_in(conn: &mut PgConnection) -> Result<Option<u32>> {
    let h: Option<i64> = sqlx::query_scalar("SELECT MIN(height) FROM indexer_blocks")
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::db("read first height"))?;
    h.map(|h| crate::codec::u32_from_db("block height", h))
        .transpose()
}

pub(crate) async fn tvl_from_rows_in(conn: &mut PgConnection) -> Result<Amount> {
    let v: i64 = sqlx::query_scalar(TVL_FROM_ROWS)
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::db("recompute tvl"))?;
    amount_from_db("tvl from rows", v)
}

pub(crate) async fn apply_in(tx: &mut Tx, b: &BlockWrite) -> Result<ApplyOutcome> {
    let mut tvl = lock_tvl(tx).await?;
    let tip = tip_in(tx).await?;
    let (stored, first) = match tip {
        Some(t) if b.height <= t.height => {
            (hash_at_in(tx, b.height).await?, first_height_in(tx).await?)
        }
        _ => (None, None),
    };
    let relation = relate(b, tip, stored, first)?;
    if relation == Relation::Extends {
        sqlx::query(
            "INSERT INTO indexer_blocks (height, hash, prev_hash, processed_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(i64::from(b.height))
        .bind(b.hash.to_string())
        .bind(b.prev_hash.to_string())
        .bind(chrono::Utc::now())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("insert block"))?;
    }
    let mut out = ApplyOutcome {
        applied: match relation {
            Relation::Extends => BlockApplied::Extended,
            Relation::Replays => BlockApplied::Replayed,
        },
        stakings_inserted: 0,
        stakings_duplicate: 0,
        unbondings_inserted: 0,
        unbondings_duplicate: 0,
        invalids_inserted: 0,
        events_queued: 0,
        confirmed_tvl: Amount::ZERO,
    };
    for s in &b.stakings {
        let inserted = sqlx::query(
            "INSERT INTO staking_txs (txid, raw_tx, staking_output_index, inclusion_height, \
             block_hash, position_in_block, staker_pk, finality_provider_pk, staking_time, value, \
             is_overflow, params_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (txid) DO NOTHING",
        )
        .bind(s.txid.to_string())
        .bind(bitcoin::consensus::serialize(&s.tx))
        .bind(i64::from(s.staking_output_index))
        .bind(i64::from(s.inclusion_height))
        .bind(s.block_hash.to_string())
        .bind(i64::from(s.position_in_block))
        .bind(s.staker_pk.to_string())
        .bind(s.finality_provider_pk.to_string())
        .bind(i64::from(s.staking_time))
        .bind(amount_to_db("staking value", s.value)?)
        .bind(s.is_overflow)
        .bind(i64::from(s.params_version))
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("insert staking tx"))?
        .rows_affected()
            == 1;
        if inserted {
            out.stakings_inserted += 1;
            if !s.is_overflow {
                tvl = tvl_add(tvl, s.value, s.txid)?;
            }
        } else {
            out.stakings_duplicate += 1;
        }
    }
    for u in &b.unbondings {
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT txid FROM unbonding_txs WHERE txid = $1 OR staking_txid = $2",
        )
        .bind(u.txid.to_string())
        .bind(u.staking_txid.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::db("check unbonding tx"))?;
        if let Some(existing) = existing {
            if existing == u.txid.to_string() {
                out.unbondings_duplicate += 1;
                continue;
            }
            return Err(StoreError::AlreadyUnbonded {
                staking: u.staking_txid,
                existing: crate::codec::txid_from_db("unbonding txid", &existing)?,
                unbonding: u.txid,
            });
        }
        let staking: Option<(i64, bool)> =
            sqlx::query_as("SELECT value, is_overflow FROM staking_txs WHERE txid = $1")
                .bind(u.staking_txid.to_string())
                .fetch_optional(&mut **tx)
                .await
                .map_err(StoreError::db("read staking tx of unbonding"))?;
        let Some((value, is_overflow)) = staking else {
            return Err(StoreError::UnknownStakingTx {
                unbonding: u.txid,
                staking: u.staking_txid,
            });
        };
        sqlx::query(
            "INSERT INTO unbonding_txs (txid, raw_tx, staking_txid, height, block_hash) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(u.txid.to_string())
        .bind(bitcoin::consensus::serialize(&u.tx))
        .bind(u.staking_txid.to_string())
        .bind(i64::from(u.height))
        .bind(u.block_hash.to_string())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("insert unbonding tx"))?;
        out.unbondings_inserted += 1;
        if !is_overflow {
            tvl = tvl_sub(tvl, amount_from_db("staking value", value)?, u.txid)?;
        }
    }
    for i in &b.invalids {
        let n = sqlx::query(
            "INSERT INTO invalid_txs (txid, kind, height, block_hash, reason, raw_tx) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (txid, kind) DO NOTHING",
        )
        .bind(i.txid.to_string())
        .bind(i.kind.as_str())
        .bind(i64::from(i.height))
        .bind(i.block_hash.to_string())
        .bind(&i.reason)
        .bind(i.tx.as_ref().map(bitcoin::consensus::serialize))
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("insert invalid tx"))?
        .rows_affected();
        out.invalids_inserted += usize::from(n == 1);
    }
    out.events_queued = enqueue_in(tx, &b.events).await?.len();
    write_tvl(tx, tvl).await?;
    out.confirmed_tvl = tvl;
    Ok(out)
}

pub(crate) async fn enqueue_in(
    conn: &mut PgConnection,
    events: &[OutboxEvent],
) -> Result<Vec<i64>> {
    let now = chrono::Utc::now();
    let mut ids = Vec::with_capacity(events.len());
    for e in events {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (queue, payload, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(&e.queue)
        .bind(&e.payload)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::db("insert outbox event"))?;
        ids.push(id);
    }
    Ok(ids)
}

pub(crate) async fn rollback_in(tx: &mut Tx, height: u32) -> Result<RollbackReport> {
    let tvl = lock_tvl(tx).await?;
    let tip = tip_in(tx).await?;
    let mut report = RollbackReport {
        tip,
        blocks_removed: 0,
        stakings_removed: 0,
        unbondings_removed: 0,
        invalids_removed: 0,
        confirmed_tvl: tvl,
    };
    if tip.is_none_or(|t| t.height <= height) {
        return Ok(report);
    }
    let h = i64::from(height);
    let mut delete = async |sql: &'static str, op: &'static str| -> Result<u64> {
        Ok(sqlx::query(sql)
            .bind(h)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::db(op))?
            .rows_affected())
    };
    report.unbondings_removed = delete(
        "DELETE FROM unbonding_txs WHERE height > $1",
        "delete unbonding txs",
    )
    .await?;
    report.invalids_removed = delete(
        "DELETE FROM invalid_txs WHERE height > $1",
        "delete invalid txs",
    )
    .await?;
    report.stakings_removed = delete(
        "DELETE FROM staking_txs WHERE inclusion_height > $1",
        "delete staking txs",
    )
    .await?;
    report.blocks_removed = delete(
        "DELETE FROM indexer_blocks WHERE height > $1",
        "delete blocks",
    )
    .await?;
    let tvl = tvl_from_rows_in(tx).await?;
    write_tvl(tx, tvl).await?;
    report.confirmed_tvl = tvl;
    report.tip = tip_in(tx).await?;
    Ok(report)
}
