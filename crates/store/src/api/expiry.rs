//! The expiry checker's storage (migration `1002_expiry.sql`).
//!
//! [`ApiStore::claim_expired`] is one database transaction: it removes up to `limit` timelock
//! rows whose `expire_height ≤ tip`, records each (delegation, path) in `api_expiry_emitted`,
//! and writes one `ExpiredStakingEvent` to `api_expiry_outbox` only for a pair not recorded
//! before. A crash before the commit leaves the rows for the next pass; after it the event is
//! in the outbox. So every expiry is emitted exactly once, even with duplicated timelock rows.
//! On PostgreSQL the rows are taken with `FOR UPDATE SKIP LOCKED`, so several checkers can run
//! at once and never take the same row; SQLite is single-writer (the first statement writes, so
//! the write lock is taken up front).
//!
//! The expiry outbox is a table of its own, relayed only by expiry checkers through
//! [`ExpiryOutbox`]: the indexer's relay (table `outbox`) never sees these rows, so a shared
//! database never double-publishes. Relays claim rows with a lease before publishing, so two
//! checkers never publish the same row at once; a relay that dies holding a lease leaves its
//! rows to the others once the lease runs out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bitcoin::Txid;
use events::outbox::{Outbox, OutboxError, OutboxRow};
use events::{Event, ExpiredStakingEvent, ExpiredTxType, NewOutboxRow};

use super::{ApiStore, ExpiryKind};
use crate::error::{Result, StoreError};

/// One expiry written to the outbox by a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedExpiry {
    pub staking_tx_hash: Txid,
    pub tx_type: ExpiryKind,
    pub expire_height: u64,
}

/// What one [`ApiStore::claim_expired`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiryClaim {
    /// Timelock rows removed from the queue.
    pub rows_taken: usize,
    /// Events written to the expiry outbox, one per (delegation, path) never emitted before.
    pub emitted: Vec<ClaimedExpiry>,
}

impl ExpiryClaim {
    /// Rows removed whose (delegation, path) had already been emitted.
    pub fn duplicates(&self) -> usize {
        self.rows_taken.saturating_sub(self.emitted.len())
    }
}

/// One row of `api_expiry_outbox` (inspection and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryOutboxRow {
    pub id: i64,
    pub queue: String,
    pub payload: String,
    /// Unix seconds when a relay confirmed the publish; `None` while unsent.
    pub sent_at: Option<i64>,
}

fn kind_of(s: String) -> Result<ExpiryKind> {
    match s.as_str() {
        "active" => Ok(ExpiryKind::Active),
        "unbonding" => Ok(ExpiryKind::Unbonding),
        _ => Err(StoreError::Corrupt {
            what: "timelock tx_type",
            value: s,
            reason: "expected active or unbonding".into(),
        }),
    }
}

fn outbox_row(hash: Txid, kind: ExpiryKind) -> NewOutboxRow {
    let tx_type = match kind {
        ExpiryKind::Active => ExpiredTxType::Active,
        ExpiryKind::Unbonding => ExpiredTxType::Unbonding,
    };
    NewOutboxRow::from(&Event::ExpiredStaking(ExpiredStakingEvent {
        staking_tx_hash: hash,
        tx_type,
    }))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

macro_rules! expiry_backend {
    ($module:ident, $db:ty, $pool:ty, $lock:literal) => {
        pub(crate) mod $module {
            use sqlx::Row;

            use super::*;
            use crate::api::codec::{i64_of, parse_txid, u64_of};

            pub(crate) async fn claim_expired(
                pool: &$pool,
                tip: u64,
                limit: u32,
            ) -> Result<ExpiryClaim> {
                let op = "claim expired timelock rows";
                let mut tx = pool.begin().await.map_err(StoreError::db(op))?;
                let rows = sqlx::query(concat!(
                    "DELETE FROM api_timelock_queue WHERE id IN (SELECT id FROM api_timelock_queue \
                     WHERE expire_height <= $1 ORDER BY expire_height, id LIMIT $2",
                    $lock,
                    ") RETURNING id, staking_tx_hash, expire_height, tx_type"
                ))
                .bind(i64_of("tip height", tip)?)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::db(op))?;
                let mut taken = Vec::with_capacity(rows.len());
                for row in &rows {
                    let id: i64 = row.try_get("id").map_err(StoreError::db(op))?;
                    let hash: String = row.try_get("staking_tx_hash").map_err(StoreError::db(op))?;
                    let expire: i64 = row.try_get("expire_height").map_err(StoreError::db(op))?;
                    let kind: String = row.try_get("tx_type").map_err(StoreError::db(op))?;
                    taken.push((id, parse_txid(&hash)?, u64_of("expire_height", expire)?, kind_of(kind)?));
                }
                // Oldest row first, so the recorded expire height is the earliest one.
                taken.sort_by_key(|(id, ..)| *id);
                let mut claim = ExpiryClaim { rows_taken: taken.len(), emitted: Vec::new() };
                let at = now();
                for (_, hash, expire, kind) in taken {
                    let first = sqlx::query(
                        "INSERT INTO api_expiry_emitted \
                         (staking_tx_hash, tx_type, expire_height, tip_height, emitted_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(hash.to_string())
                    .bind(kind.as_str())
                    .bind(i64_of("expire_height", expire)?)
                    .bind(i64_of("tip height", tip)?)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("record emitted expiry"))?
                    .rows_affected()
                        == 1;
                    if !first {
                        continue;
                    }
                    let row = outbox_row(hash, kind);
                    sqlx::query(
                        "INSERT INTO api_expiry_outbox (queue, payload, created_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(row.queue)
                    .bind(&row.payload)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("write expiry outbox row"))?;
                    claim.emitted.push(ClaimedExpiry {
                        staking_tx_hash: hash,
                        tx_type: kind,
                        expire_height: expire,
                    });
                }
                tx.commit().await.map_err(StoreError::db(op))?;
                Ok(claim)
            }

            pub(crate) async fn claim_outbox(
                pool: &$pool,
                owner: &str,
                lease: Duration,
                limit: u32,
            ) -> Result<Vec<OutboxRow>> {
                let op = "claim expiry outbox rows";
                let now = now();
                let until = now.saturating_add(i64::try_from(lease.as_secs()).unwrap_or(i64::MAX));
                let rows = sqlx::query(concat!(
                    "UPDATE api_expiry_outbox SET claimed_by = $1, claimed_until = $2 \
                     WHERE id IN (SELECT id FROM api_expiry_outbox WHERE sent_at IS NULL \
                     AND (claimed_until IS NULL OR claimed_until < $3 OR claimed_by = $1) \
                     ORDER BY id LIMIT $4",
                    $lock,
                    ") RETURNING id, queue, payload"
                ))
                .bind(owner)
                .bind(until)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(StoreError::db(op))?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(OutboxRow {
                        id: row.try_get("id").map_err(StoreError::db(op))?,
                        queue: row.try_get("queue").map_err(StoreError::db(op))?,
                        payload: row.try_get("payload").map_err(StoreError::db(op))?,
                    });
                }
                out.sort_by_key(|r| r.id);
                Ok(out)
            }

            pub(crate) async fn mark_outbox_sent(pool: &$pool, ids: &[i64]) -> Result<()> {
                let op = "mark expiry outbox rows sent";
                let mut tx = pool.begin().await.map_err(StoreError::db(op))?;
                let at = now();
                for id in ids {
                    sqlx::query(
                        "UPDATE api_expiry_outbox SET sent_at = $1 WHERE id = $2 AND sent_at IS NULL",
                    )
                    .bind(at)
                    .bind(*id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(op))?;
                }
                tx.commit().await.map_err(StoreError::db(op))
            }

            pub(crate) async fn release_outbox(pool: &$pool, owner: &str) -> Result<u64> {
                let done = sqlx::query(
                    "UPDATE api_expiry_outbox SET claimed_by = NULL, claimed_until = NULL \
                     WHERE claimed_by = $1 AND sent_at IS NULL",
                )
                .bind(owner)
                .execute(pool)
                .await
                .map_err(StoreError::db("release expiry outbox rows"))?;
                Ok(done.rows_affected())
            }

            pub(crate) async fn outbox_rows(pool: &$pool) -> Result<Vec<ExpiryOutboxRow>> {
                let op = "read expiry outbox";
                let rows = sqlx::query(
                    "SELECT id, queue, payload, sent_at FROM api_expiry_outbox ORDER BY id",
                )
                .fetch_all(pool)
                .await
                .map_err(StoreError::db(op))?;
                rows.iter()
                    .map(|row| {
                        Ok(ExpiryOutboxRow {
                            id: row.try_get("id").map_err(StoreError::db(op))?,
                            queue: row.try_get("queue").map_err(StoreError::db(op))?,
                            payload: row.try_get("payload").map_err(StoreError::db(op))?,
                            sent_at: row.try_get("sent_at").map_err(StoreError::db(op))?,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn timelock_counts(pool: &$pool, tip: u64) -> Result<(u64, u64)> {
                let op = "count timelock rows";
                let row = sqlx::query(
                    "SELECT COUNT(*) AS total, \
                     COALESCE(SUM(CASE WHEN expire_height <= $1 THEN 1 ELSE 0 END), 0) AS due \
                     FROM api_timelock_queue",
                )
                .bind(i64_of("tip height", tip)?)
                .fetch_one(pool)
                .await
                .map_err(StoreError::db(op))?;
                let total: i64 = row.try_get("total").map_err(StoreError::db(op))?;
                let due: i64 = row.try_get("due").map_err(StoreError::db(op))?;
                Ok((u64_of("timelock count", total)?, u64_of("timelock count", due)?))
            }
        }
    };
}

expiry_backend!(pg, sqlx::Postgres, sqlx::PgPool, " FOR UPDATE SKIP LOCKED");
expiry_backend!(lite, sqlx::Sqlite, sqlx::SqlitePool, "");

macro_rules! on_expiry_backend {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match $self {
            ApiStore::Postgres(p) => pg::$f(p, $($arg),*).await,
            ApiStore::Sqlite(s) => lite::$f(s.pool(), $($arg),*).await,
        }
    };
}

impl ApiStore {
    /// Moves up to `limit` timelock rows expired at `tip` (`expire_height ≤ tip`) into the
    /// expiry outbox, in one transaction, each (delegation, path) exactly once.
    pub async fn claim_expired(&self, tip: u64, limit: u32) -> Result<ExpiryClaim> {
        on_expiry_backend!(self, claim_expired(tip, limit))
    }

    /// Every expiry outbox row, sent or not, by id.
    pub async fn expiry_outbox_rows(&self) -> Result<Vec<ExpiryOutboxRow>> {
        on_expiry_backend!(self, outbox_rows())
    }

    /// `(rows waiting in the timelock queue, of which expired at tip)`.
    pub async fn timelock_counts(&self, tip: u64) -> Result<(u64, u64)> {
        on_expiry_backend!(self, timelock_counts(tip))
    }
}

/// The relay's view of `api_expiry_outbox`: fetching claims rows for this relay for `lease`.
#[derive(Debug, Clone)]
pub struct ExpiryOutbox {
    store: ApiStore,
    owner: String,
    lease: Duration,
}

impl ExpiryOutbox {
    /// Default lease: long enough for any batch publish, short enough that a dead checker's
    /// rows are taken over quickly.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

    /// A relay identity unique to this process and instance.
    pub fn new(store: ApiStore, lease: Duration) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let owner = format!(
            "pid{}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ExpiryOutbox {
            store,
            owner,
            lease,
        }
    }

    /// Gives back the unsent rows this relay holds (clean shutdown), so another checker can
    /// publish them at once instead of after the lease. Returns how many.
    pub async fn release(&self) -> Result<u64> {
        let (store, owner) = (&self.store, self.owner.as_str());
        on_expiry_backend!(store, release_outbox(owner))
    }

    /// This relay's `claimed_by` value.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

impl Outbox for ExpiryOutbox {
    async fn fetch_unsent(&self, limit: usize) -> Result<Vec<OutboxRow>, OutboxError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let (owner, lease) = (self.owner.as_str(), self.lease);
        let store = &self.store;
        Ok(on_expiry_backend!(
            store,
            claim_outbox(owner, lease, limit)
        )?)
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), OutboxError> {
        let store = &self.store;
        on_expiry_backend!(store, mark_outbox_sent(ids))?;
        Ok(())
    }
}
