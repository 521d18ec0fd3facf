//! The block transaction: `apply_block` and `rollback_to` as single transactions, plus the
//! small reads they share with the read side (each takes the statement of its SQL constant,
//! made on the pool or inside a transaction).

use bitcoin::{Amount, BlockHash};

use super::codec::{amount_from_db, amount_to_db, block_hash_from_db, txid_from_db, BlockRow};
use super::types::{ApplyOutcome, BlockApplied, BlockRef, BlockWrite, RollbackReport};
use super::validation::{relate, tvl_add, tvl_sub, Relation};
use crate::backend::{Stmt, Tx};
use crate::error::{Result, StoreError};

pub(super) const TIP: &str = "SELECT height, hash FROM indexer_blocks ORDER BY height DESC LIMIT 1";
pub(super) const HASH_AT: &str = "SELECT hash FROM indexer_blocks WHERE height = $1";
pub(super) const FIRST_HEIGHT: &str = "SELECT MIN(height) FROM indexer_blocks";

/// Recomputes the confirmed TVL from the rows.
pub(super) const TVL_FROM_ROWS: &str = "SELECT CAST(\
     (SELECT COALESCE(SUM(value), 0) FROM staking_txs WHERE NOT is_overflow) - \
     (SELECT COALESCE(SUM(s.value), 0) FROM unbonding_txs u \
        JOIN staking_txs s ON s.txid = u.staking_txid WHERE NOT s.is_overflow) AS BIGINT)";

pub(super) async fn tip(stmt: Stmt<'_, '_>) -> Result<Option<BlockRef>> {
    let row: Option<BlockRow> = stmt.fetch_optional("read tip").await?;
    row.map(BlockRef::try_from).transpose()
}

pub(super) async fn hash_at(stmt: Stmt<'_, '_>, height: u32) -> Result<Option<BlockHash>> {
    let hash: Option<String> = stmt
        .bind(i64::from(height))
        .scalar_optional("read block hash")
        .await?;
    hash.map(|h| block_hash_from_db("block hash", &h))
        .transpose()
}

pub(super) async fn first_height(stmt: Stmt<'_, '_>) -> Result<Option<u32>> {
    let h: Option<i64> = stmt.scalar("read first height").await?;
    h.map(|h| super::codec::u32_from_db("block height", h))
        .transpose()
}

pub(super) async fn tvl_from_rows(stmt: Stmt<'_, '_>) -> Result<Amount> {
    let v: i64 = stmt.scalar("recompute tvl").await?;
    amount_from_db("tvl from rows", v)
}

/// Reads the confirmed TVL, locking the state row on PostgreSQL so concurrent block writers
/// serialise here (and the loser of a race sees the winner's block).
async fn lock_tvl(tx: &mut Tx) -> Result<Amount> {
    let sql = format!(
        "SELECT confirmed_tvl FROM indexer_state WHERE id = 1{}",
        tx.backend().for_update()
    );
    let tvl: i64 = tx.query(&sql).scalar("lock indexer state").await?;
    amount_from_db("confirmed_tvl", tvl)
}

async fn write_tvl(tx: &mut Tx, tvl: Amount) -> Result<()> {
    tx.query("UPDATE indexer_state SET confirmed_tvl = $1 WHERE id = 1")
        .bind(amount_to_db("confirmed_tvl", tvl)?)
        .execute("write confirmed tvl")
        .await?;
    Ok(())
}

pub(super) async fn apply(tx: &mut Tx, b: &BlockWrite) -> Result<ApplyOutcome> {
    let mut tvl = lock_tvl(tx).await?;
    let tip = tip(tx.query(TIP)).await?;
    let (stored, first) = match tip {
        Some(t) if b.height <= t.height => (
            hash_at(tx.query(HASH_AT), b.height).await?,
            first_height(tx.query(FIRST_HEIGHT)).await?,
        ),
        _ => (None, None),
    };
    let relation = relate(b, tip, stored, first)?;
    if relation == Relation::Extends {
        tx.query(
            "INSERT INTO indexer_blocks (height, hash, prev_hash, processed_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(i64::from(b.height))
        .bind(b.hash.to_string())
        .bind(b.prev_hash.to_string())
        .bind(chrono::Utc::now())
        .execute("insert block")
        .await?;
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
        let inserted = tx
            .query(
                "INSERT INTO staking_txs (txid, raw_tx, staking_output_index, inclusion_height, \
                 block_hash, position_in_block, staker_pk, finality_provider_pk, staking_time, \
                 value, is_overflow, params_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
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
            .execute("insert staking tx")
            .await?
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
        let existing: Option<String> = tx
            .query("SELECT txid FROM unbonding_txs WHERE txid = $1 OR staking_txid = $2")
            .bind(u.txid.to_string())
            .bind(u.staking_txid.to_string())
            .scalar_optional("check unbonding tx")
            .await?;
        if let Some(existing) = existing {
            if existing == u.txid.to_string() {
                out.unbondings_duplicate += 1;
                continue;
            }
            return Err(StoreError::AlreadyUnbonded {
                staking: u.staking_txid,
                existing: txid_from_db("unbonding txid", &existing)?,
                unbonding: u.txid,
            });
        }
        let staking: Option<(i64, bool)> = tx
            .query("SELECT value, is_overflow FROM staking_txs WHERE txid = $1")
            .bind(u.staking_txid.to_string())
            .fetch_optional("read staking tx of unbonding")
            .await?;
        let Some((value, is_overflow)) = staking else {
            return Err(StoreError::UnknownStakingTx {
                unbonding: u.txid,
                staking: u.staking_txid,
            });
        };
        tx.query(
            "INSERT INTO unbonding_txs (txid, raw_tx, staking_txid, height, block_hash) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(u.txid.to_string())
        .bind(bitcoin::consensus::serialize(&u.tx))
        .bind(u.staking_txid.to_string())
        .bind(i64::from(u.height))
        .bind(u.block_hash.to_string())
        .execute("insert unbonding tx")
        .await?;
        out.unbondings_inserted += 1;
        if !is_overflow {
            tvl = tvl_sub(tvl, amount_from_db("staking value", value)?, u.txid)?;
        }
    }
    for i in &b.invalids {
        let n = tx
            .query(
                "INSERT INTO invalid_txs (txid, kind, height, block_hash, reason, raw_tx) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (txid, kind) DO NOTHING",
            )
            .bind(i.txid.to_string())
            .bind(i.kind.as_str())
            .bind(i64::from(i.height))
            .bind(i.block_hash.to_string())
            .bind(&i.reason)
            .bind(i.tx.as_ref().map(bitcoin::consensus::serialize))
            .execute("insert invalid tx")
            .await?;
        out.invalids_inserted += usize::from(n == 1);
    }
    out.events_queued = crate::outbox::insert(tx, &b.events).await?.len();
    write_tvl(tx, tvl).await?;
    out.confirmed_tvl = tvl;
    Ok(out)
}

pub(super) async fn rollback(tx: &mut Tx, height: u32) -> Result<RollbackReport> {
    let tvl = lock_tvl(tx).await?;
    let tip_before = tip(tx.query(TIP)).await?;
    let mut report = RollbackReport {
        tip: tip_before,
        blocks_removed: 0,
        stakings_removed: 0,
        unbondings_removed: 0,
        invalids_removed: 0,
        confirmed_tvl: tvl,
    };
    if tip_before.is_none_or(|t| t.height <= height) {
        return Ok(report);
    }
    let h = i64::from(height);
    let mut delete = async |sql: &'static str, op: &'static str| -> Result<u64> {
        tx.query(sql).bind(h).execute(op).await
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
    let tvl = tvl_from_rows(tx.query(TVL_FROM_ROWS)).await?;
    write_tvl(tx, tvl).await?;
    report.confirmed_tvl = tvl;
    report.tip = tip(tx.query(TIP)).await?;
    Ok(report)
}
