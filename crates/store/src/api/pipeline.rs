//! The unbonding pipeline's side of `api_unbonding_requests` (migration `1005_pipeline.sql`):
//! claiming accepted requests with a lease, recording each outcome, re-queueing.
//!
//! Several pipelines may run at once. A claim is one statement: on PostgreSQL the candidate
//! rows are locked with `FOR UPDATE SKIP LOCKED`, on SQLite the single writer serialises the
//! `UPDATE … RETURNING`. Every outcome is written only by the holder of the claim (its
//! `claim_token`), so a pipeline that lost its lease (it stalled past `lease_until` and another
//! one took the request over) cannot overwrite what the new owner records.
//!
//! Times in `lease_until` are unix **milliseconds**; for an `accepted` row it is the earliest
//! time of the next attempt (the backoff after a transient failure).

use std::time::Duration;

use crate::api::{ApiStore, NewUnbondingRequest};
use crate::error::Result;

/// A request this pipeline now holds. `request` is `Err` with the reason when the stored row
/// does not decode (it is reported per row, so one corrupt row never blocks the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedUnbonding {
    pub id: i64,
    /// Claims so far, this one included.
    pub attempts: u32,
    /// When this claim ends (unix ms).
    pub lease_until_ms: i64,
    pub request: std::result::Result<NewUnbondingRequest, String>,
}

/// The pipeline's view of one request (for operators, metrics and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbondingProgress {
    pub id: i64,
    pub unbonding_tx_hash: String,
    /// `accepted`, `claimed`, `sent` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub lease_until_ms: Option<i64>,
    pub last_error: Option<String>,
    pub failure_reason: Option<String>,
    pub sent_txid: Option<String>,
}

/// Whether an outcome was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Yes,
    /// The claim is no longer ours (lease expired and another pipeline took over, or the row
    /// changed state): nothing was written.
    LeaseLost,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn recorded(rows: u64) -> Recorded {
    if rows == 1 {
        Recorded::Yes
    } else {
        Recorded::LeaseLost
    }
}

const CLAIM_COLUMNS: &str = "id, attempts, lease_until, staking_tx_hash, unbonding_tx_hash, \
     unbonding_tx_hex, staker_pk, finality_provider_pk, staker_signature_hex, staking_tx_hex, \
     staking_output_index, staking_timelock, staking_amount";

const PROGRESS_COLUMNS: &str = "id, unbonding_tx_hash, state, attempts, lease_until, last_error, \
     failure_reason, sent_txid";

macro_rules! pipeline_backend {
    ($module:ident, $pool:ty, $row:ty, $lock:expr) => {
        mod $module {
            use bitcoin::Amount;
            use sqlx::Row;

            use super::*;
            use crate::api::codec::{parse_pk, parse_txid, u64_of};
            use crate::error::StoreError;

            fn decode_request(row: &$row) -> std::result::Result<NewUnbondingRequest, String> {
                let op = "decode unbonding request";
                let s = |c: &str| -> Result<String> { row.try_get(c).map_err(StoreError::db(op)) };
                let n = |c: &str| -> Result<i64> { row.try_get(c).map_err(StoreError::db(op)) };
                let decoded = (|| -> Result<NewUnbondingRequest> {
                    Ok(NewUnbondingRequest {
                        staking_tx_hash: parse_txid(&s("staking_tx_hash")?)?,
                        unbonding_tx_hash: parse_txid(&s("unbonding_tx_hash")?)?,
                        unbonding_tx_hex: s("unbonding_tx_hex")?,
                        staker_pk: parse_pk(&s("staker_pk")?)?,
                        finality_provider_pk: parse_pk(&s("finality_provider_pk")?)?,
                        staker_signature_hex: s("staker_signature_hex")?,
                        staking_tx_hex: s("staking_tx_hex")?,
                        staking_output_index: u64_of(
                            "staking_output_index",
                            n("staking_output_index")?,
                        )?,
                        staking_timelock: u64_of("staking_timelock", n("staking_timelock")?)?,
                        staking_amount: Amount::from_sat(u64_of(
                            "staking_amount",
                            n("staking_amount")?,
                        )?),
                    })
                })();
                decoded.map_err(|e| e.to_string())
            }

            pub(super) async fn claim(
                pool: &$pool,
                token: &str,
                lease: Duration,
                limit: u32,
            ) -> Result<Vec<ClaimedUnbonding>> {
                let op = "claim unbonding requests";
                let now = now_ms();
                let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
                let until = now.saturating_add(lease_ms);
                let sql = format!(
                    "UPDATE api_unbonding_requests SET state = 'claimed', lease_until = $1, \
                     claim_token = $2, attempts = attempts + 1, updated_at = $3 \
                     WHERE id IN (SELECT id FROM api_unbonding_requests \
                       WHERE (state = 'accepted' AND (lease_until IS NULL OR lease_until <= $4)) \
                          OR (state = 'claimed' AND lease_until <= $4) \
                       ORDER BY id LIMIT $5 {}) \
                     RETURNING {CLAIM_COLUMNS}",
                    $lock
                );
                let rows = sqlx::query(&sql)
                    .bind(until)
                    .bind(token)
                    .bind(now / 1000)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
                    .map_err(StoreError::db(op))?;
                let mut claimed = rows
                    .iter()
                    .map(|row| {
                        let id: i64 = row.try_get("id").map_err(StoreError::db(op))?;
                        let attempts: i64 = row.try_get("attempts").map_err(StoreError::db(op))?;
                        let lease_until: Option<i64> =
                            row.try_get("lease_until").map_err(StoreError::db(op))?;
                        Ok(ClaimedUnbonding {
                            id,
                            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                            lease_until_ms: lease_until.unwrap_or(until),
                            request: decode_request(row),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                claimed.sort_by_key(|c| c.id);
                Ok(claimed)
            }

            pub(super) async fn record_sent(
                pool: &$pool,
                id: i64,
                token: &str,
                txid: &str,
            ) -> Result<Recorded> {
                let done = sqlx::query(
                    "UPDATE api_unbonding_requests SET state = 'sent', sent_txid = $1, \
                     lease_until = NULL, claim_token = NULL, failure_reason = NULL, \
                     updated_at = $2 WHERE id = $3 AND claim_token = $4 AND state = 'claimed'",
                )
                .bind(txid)
                .bind(now_ms() / 1000)
                .bind(id)
                .bind(token)
                .execute(pool)
                .await
                .map_err(StoreError::db("record unbonding sent"))?;
                Ok(recorded(done.rows_affected()))
            }

            pub(super) async fn record_failed(
                pool: &$pool,
                id: i64,
                token: &str,
                reason: &str,
            ) -> Result<Recorded> {
                let done = sqlx::query(
                    "UPDATE api_unbonding_requests SET state = 'failed', failure_reason = $1, \
                     lease_until = NULL, claim_token = NULL, updated_at = $2 \
                     WHERE id = $3 AND claim_token = $4 AND state = 'claimed'",
                )
                .bind(reason)
                .bind(now_ms() / 1000)
                .bind(id)
                .bind(token)
                .execute(pool)
                .await
                .map_err(StoreError::db("record unbonding failed"))?;
                Ok(recorded(done.rows_affected()))
            }

            pub(super) async fn release(
                pool: &$pool,
                id: i64,
                token: &str,
                not_before_ms: i64,
                error: &str,
                refund_attempt: bool,
            ) -> Result<Recorded> {
                let done = sqlx::query(
                    "UPDATE api_unbonding_requests SET state = 'accepted', lease_until = $1, \
                     last_error = $2, attempts = attempts - $3, claim_token = NULL, \
                     updated_at = $4 WHERE id = $5 AND claim_token = $6 AND state = 'claimed'",
                )
                .bind(not_before_ms)
                .bind(error)
                .bind(i64::from(refund_attempt))
                .bind(now_ms() / 1000)
                .bind(id)
                .bind(token)
                .execute(pool)
                .await
                .map_err(StoreError::db("release unbonding request for retry"))?;
                Ok(recorded(done.rows_affected()))
            }

            pub(super) async fn requeue_failed(pool: &$pool, only: Option<i64>) -> Result<u64> {
                let base = "UPDATE api_unbonding_requests SET state = 'accepted', attempts = 0, \
                     last_error = failure_reason, failure_reason = NULL, lease_until = NULL, \
                     claim_token = NULL, updated_at = $1 WHERE state = 'failed'";
                let now = now_ms() / 1000;
                let done = match only {
                    Some(id) => {
                        sqlx::query(&format!("{base} AND id = $2"))
                            .bind(now)
                            .bind(id)
                            .execute(pool)
                            .await
                    }
                    None => sqlx::query(base).bind(now).execute(pool).await,
                }
                .map_err(StoreError::db("re-queue failed unbonding requests"))?;
                Ok(done.rows_affected())
            }

            pub(super) async fn progress(pool: &$pool) -> Result<Vec<UnbondingProgress>> {
                let op = "unbonding progress";
                let rows = sqlx::query(&format!(
                    "SELECT {PROGRESS_COLUMNS} FROM api_unbonding_requests ORDER BY id"
                ))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db(op))?;
                rows.iter()
                    .map(|row| {
                        let attempts: i64 = row.try_get("attempts").map_err(StoreError::db(op))?;
                        Ok(UnbondingProgress {
                            id: row.try_get("id").map_err(StoreError::db(op))?,
                            unbonding_tx_hash: row
                                .try_get("unbonding_tx_hash")
                                .map_err(StoreError::db(op))?,
                            state: row.try_get("state").map_err(StoreError::db(op))?,
                            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                            lease_until_ms: row.try_get("lease_until").map_err(StoreError::db(op))?,
                            last_error: row.try_get("last_error").map_err(StoreError::db(op))?,
                            failure_reason: row
                                .try_get("failure_reason")
                                .map_err(StoreError::db(op))?,
                            sent_txid: row.try_get("sent_txid").map_err(StoreError::db(op))?,
                        })
                    })
                    .collect()
            }

            pub(super) async fn state_counts(pool: &$pool) -> Result<Vec<(String, i64)>> {
                let op = "count unbonding requests by state";
                let rows = sqlx::query(
                    "SELECT state, COUNT(*) AS n FROM api_unbonding_requests GROUP BY state \
                     ORDER BY state",
                )
                .fetch_all(pool)
                .await
                .map_err(StoreError::db(op))?;
                rows.iter()
                    .map(|row| {
                        Ok((
                            row.try_get("state").map_err(StoreError::db(op))?,
                            row.try_get("n").map_err(StoreError::db(op))?,
                        ))
                    })
                    .collect()
            }
        }
    };
}

pipeline_backend!(
    pg,
    sqlx::PgPool,
    sqlx::postgres::PgRow,
    "FOR UPDATE SKIP LOCKED"
);
pipeline_backend!(lite, sqlx::SqlitePool, sqlx::sqlite::SqliteRow, "");

macro_rules! on_pipeline_backend {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match $self {
            ApiStore::Postgres(p) => pg::$f(p, $($arg),*).await,
            ApiStore::Sqlite(s) => lite::$f(s.pool(), $($arg),*).await,
        }
    };
}

impl ApiStore {
    /// Claims up to `limit` requests, oldest first, for `lease`: `accepted` ones whose backoff
    /// has passed and `claimed` ones whose lease expired (their pipeline died or stalled).
    /// `token` identifies this claim; pass it to the `record_*` methods.
    pub async fn claim_unbonding_requests(
        &self,
        token: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedUnbonding>> {
        on_pipeline_backend!(self, claim(token, lease, limit))
    }

    /// `claimed → sent` with the broadcast txid, if the claim is still `token`'s.
    pub async fn record_unbonding_sent(
        &self,
        id: i64,
        token: &str,
        txid: &bitcoin::Txid,
    ) -> Result<Recorded> {
        let txid = txid.to_string();
        on_pipeline_backend!(self, record_sent(id, token, &txid))
    }

    /// `claimed → failed` (terminal) with the reason, if the claim is still `token`'s.
    pub async fn record_unbonding_failed(
        &self,
        id: i64,
        token: &str,
        reason: &str,
    ) -> Result<Recorded> {
        on_pipeline_backend!(self, record_failed(id, token, reason))
    }

    /// `claimed → accepted` after a transient failure: claimable again from `not_before_ms`
    /// (unix ms); `error` is kept as `last_error`. `refund_attempt` gives the attempt back
    /// (the failure was not the request's: e.g. the pipeline's own node was down).
    pub async fn release_unbonding_for_retry(
        &self,
        id: i64,
        token: &str,
        not_before_ms: i64,
        error: &str,
        refund_attempt: bool,
    ) -> Result<Recorded> {
        on_pipeline_backend!(
            self,
            release(id, token, not_before_ms, error, refund_attempt)
        )
    }

    /// `failed → accepted` with a fresh attempt budget (all failed requests, or only `id`);
    /// the old reason moves to `last_error`. Returns how many were re-queued.
    pub async fn requeue_failed_unbonding(&self, only: Option<i64>) -> Result<u64> {
        on_pipeline_backend!(self, requeue_failed(only))
    }

    /// Every request's pipeline bookkeeping, in insertion order.
    pub async fn unbonding_progress(&self) -> Result<Vec<UnbondingProgress>> {
        on_pipeline_backend!(self, progress())
    }

    /// `(state, count)` for each state present.
    pub async fn unbonding_state_counts(&self) -> Result<Vec<(String, i64)>> {
        on_pipeline_backend!(self, state_counts())
    }
}
