//! The unbonding queue, `api_unbonding_requests` (migrations `1000_api.sql`,
//! `1005_pipeline.sql`): the API's handle inserts accepted requests (`insert_request`, with
//! the delegation's move to `unbonding_requested`); the pipeline claims them with a lease,
//! records each outcome and re-queues failed ones ([`UnbondingStore`]).
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

use bitcoin::{Amount, Txid};

use crate::api::{i64_of, parse_pk, parse_txid, u64_of, NewUnbondingRequest};
use crate::backend::Tx;
use crate::db::Db;
use crate::error::{Result, StoreError};
use crate::sanitize::error_text;

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

/// The columns of a request as the API accepted it.
#[derive(sqlx::FromRow)]
pub(crate) struct RequestColumns {
    staking_tx_hash: String,
    unbonding_tx_hash: String,
    unbonding_tx_hex: String,
    staker_pk: String,
    finality_provider_pk: String,
    staker_signature_hex: String,
    staking_tx_hex: String,
    staking_output_index: i64,
    staking_timelock: i64,
    staking_amount: i64,
}

impl RequestColumns {
    pub(crate) fn decode(self) -> Result<NewUnbondingRequest> {
        Ok(NewUnbondingRequest {
            staking_tx_hash: parse_txid(&self.staking_tx_hash)?,
            unbonding_tx_hash: parse_txid(&self.unbonding_tx_hash)?,
            unbonding_tx_hex: self.unbonding_tx_hex,
            staker_pk: parse_pk(&self.staker_pk)?,
            finality_provider_pk: parse_pk(&self.finality_provider_pk)?,
            staker_signature_hex: self.staker_signature_hex,
            staking_tx_hex: self.staking_tx_hex,
            staking_output_index: u64_of("staking_output_index", self.staking_output_index)?,
            staking_timelock: u64_of("staking_timelock", self.staking_timelock)?,
            staking_amount: Amount::from_sat(u64_of("staking_amount", self.staking_amount)?),
        })
    }
}

/// A claimed row as `RETURNING` gives it back.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    attempts: i64,
    lease_until: Option<i64>,
    #[sqlx(flatten)]
    request: RequestColumns,
}

#[derive(sqlx::FromRow)]
struct ProgressRow {
    id: i64,
    unbonding_tx_hash: String,
    state: String,
    attempts: i64,
    lease_until: Option<i64>,
    last_error: Option<String>,
    failure_reason: Option<String>,
    sent_txid: Option<String>,
}

/// Inserts an accepted request; `false` if a request with its unbonding txid exists.
pub(crate) async fn insert_request(tx: &mut Tx, r: &NewUnbondingRequest) -> Result<bool> {
    let inserted = tx
        .query(
            "INSERT INTO api_unbonding_requests (staking_tx_hash, unbonding_tx_hash, \
             unbonding_tx_hex, staker_pk, finality_provider_pk, staker_signature_hex, \
             staking_tx_hex, staking_output_index, staking_timelock, staking_amount, state, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'accepted', $11)",
        )
        .bind(r.staking_tx_hash.to_string())
        .bind(r.unbonding_tx_hash.to_string())
        .bind(&r.unbonding_tx_hex)
        .bind(r.staker_pk.to_string())
        .bind(r.finality_provider_pk.to_string())
        .bind(&r.staker_signature_hex)
        .bind(&r.staking_tx_hex)
        .bind(i64_of("output_index", r.staking_output_index)?)
        .bind(i64_of("timelock", r.staking_timelock)?)
        .bind(i64_of("staking_amount", r.staking_amount.to_sat())?)
        .bind(chrono::Utc::now().timestamp())
        .try_execute()
        .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(source) => Err(StoreError::Database {
            op: "insert unbonding request",
            source,
        }),
    }
}

/// The unbonding pipeline's handle ([`Db::unbonding`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct UnbondingStore {
    db: Db,
}

impl UnbondingStore {
    pub(crate) fn new(db: Db) -> Self {
        UnbondingStore { db }
    }

    /// Claims up to `limit` requests, oldest first, for `lease`: `accepted` ones whose backoff
    /// has passed and `claimed` ones whose lease expired (their pipeline died or stalled).
    /// `token` identifies this claim; pass it to the `record_*` methods.
    pub async fn claim(
        &self,
        token: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedUnbonding>> {
        let now = now_ms();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let until = now.saturating_add(lease_ms);
        let sql = format!(
            "UPDATE api_unbonding_requests SET state = 'claimed', lease_until = $1, \
             claim_token = $2, attempts = attempts + 1, updated_at = $3 \
             WHERE id IN (SELECT id FROM api_unbonding_requests \
               WHERE (state = 'accepted' AND (lease_until IS NULL OR lease_until <= $4)) \
                  OR (state = 'claimed' AND lease_until <= $4) \
               ORDER BY id LIMIT $5{}) \
             RETURNING {CLAIM_COLUMNS}",
            self.db.backend().skip_locked()
        );
        let rows: Vec<ClaimedRow> = self
            .db
            .query(&sql)
            .bind(until)
            .bind(token)
            .bind(now / 1000)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all("claim unbonding requests")
            .await?;
        let mut claimed: Vec<ClaimedUnbonding> = rows
            .into_iter()
            .map(|r| ClaimedUnbonding {
                id: r.id,
                attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
                lease_until_ms: r.lease_until.unwrap_or(until),
                request: r.request.decode().map_err(|e| e.to_string()),
            })
            .collect();
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// `claimed → sent` with the broadcast txid, if the claim is still `token`'s.
    pub async fn record_sent(&self, id: i64, token: &str, txid: &Txid) -> Result<Recorded> {
        let changed = self
            .db
            .query(
                "UPDATE api_unbonding_requests SET state = 'sent', sent_txid = $1, \
                 lease_until = NULL, claim_token = NULL, failure_reason = NULL, \
                 updated_at = $2 WHERE id = $3 AND claim_token = $4 AND state = 'claimed'",
            )
            .bind(txid.to_string())
            .bind(now_ms() / 1000)
            .bind(id)
            .bind(token)
            .execute("record unbonding sent")
            .await?;
        Ok(recorded(changed))
    }

    /// `claimed → failed` (terminal) with the reason, if the claim is still `token`'s. The
    /// reason may quote a signer or a node: it is stored as error text
    /// ([`crate::sanitize::error_text`]).
    pub async fn record_failed(&self, id: i64, token: &str, reason: &str) -> Result<Recorded> {
        let changed = self
            .db
            .query(
                "UPDATE api_unbonding_requests SET state = 'failed', failure_reason = $1, \
                 lease_until = NULL, claim_token = NULL, updated_at = $2 \
                 WHERE id = $3 AND claim_token = $4 AND state = 'claimed'",
            )
            .bind(error_text(reason))
            .bind(now_ms() / 1000)
            .bind(id)
            .bind(token)
            .execute("record unbonding failed")
            .await?;
        Ok(recorded(changed))
    }

    /// `claimed → accepted` after a transient failure: claimable again from `not_before_ms`
    /// (unix ms); `error` is kept as `last_error`, as error text
    /// ([`crate::sanitize::error_text`]: it often quotes a signer's answer). `refund_attempt`
    /// gives the attempt back (the failure was not the request's: e.g. the pipeline's own node
    /// was down).
    pub async fn release_for_retry(
        &self,
        id: i64,
        token: &str,
        not_before_ms: i64,
        error: &str,
        refund_attempt: bool,
    ) -> Result<Recorded> {
        let changed = self
            .db
            .query(
                "UPDATE api_unbonding_requests SET state = 'accepted', lease_until = $1, \
                 last_error = $2, attempts = attempts - $3, claim_token = NULL, \
                 updated_at = $4 WHERE id = $5 AND claim_token = $6 AND state = 'claimed'",
            )
            .bind(not_before_ms)
            .bind(error_text(error))
            .bind(i64::from(refund_attempt))
            .bind(now_ms() / 1000)
            .bind(id)
            .bind(token)
            .execute("release unbonding request for retry")
            .await?;
        Ok(recorded(changed))
    }

    /// `failed → accepted` with a fresh attempt budget (all failed requests, or only `id`);
    /// the old reason moves to `last_error`. Returns how many were re-queued.
    pub async fn requeue_failed(&self, only: Option<i64>) -> Result<u64> {
        let op = "re-queue failed unbonding requests";
        let base = "UPDATE api_unbonding_requests SET state = 'accepted', attempts = 0, \
             last_error = failure_reason, failure_reason = NULL, lease_until = NULL, \
             claim_token = NULL, updated_at = $1 WHERE state = 'failed'";
        let now = now_ms() / 1000;
        match only {
            Some(id) => {
                let sql = format!("{base} AND id = $2");
                self.db.query(&sql).bind(now).bind(id).execute(op).await
            }
            None => self.db.query(base).bind(now).execute(op).await,
        }
    }

    /// Every request's pipeline bookkeeping, in insertion order.
    pub async fn progress(&self) -> Result<Vec<UnbondingProgress>> {
        let sql = format!("SELECT {PROGRESS_COLUMNS} FROM api_unbonding_requests ORDER BY id");
        let rows: Vec<ProgressRow> = self.db.query(&sql).fetch_all("unbonding progress").await?;
        Ok(rows
            .into_iter()
            .map(|r| UnbondingProgress {
                id: r.id,
                unbonding_tx_hash: r.unbonding_tx_hash,
                state: r.state,
                attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
                lease_until_ms: r.lease_until,
                last_error: r.last_error,
                failure_reason: r.failure_reason,
                sent_txid: r.sent_txid,
            })
            .collect())
    }

    /// `(state, count)` for each state present.
    pub async fn state_counts(&self) -> Result<Vec<(String, i64)>> {
        self.db
            .query(
                "SELECT state, COUNT(*) AS n FROM api_unbonding_requests GROUP BY state \
                 ORDER BY state",
            )
            .fetch_all("count unbonding requests by state")
            .await
    }
}
