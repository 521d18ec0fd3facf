//! The expiry checker's storage (migration `1002_expiry.sql`).
//!
//! [`ExpiryStore::claim_expired`] is one database transaction: it removes up to `limit` timelock
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

use crate::api::{expiry_kind, i64_of, parse_txid, u64_of, ExpiryKind};
use crate::db::Db;
use crate::error::Result;

/// One expiry written to the outbox by a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedExpiry {
    pub staking_tx_hash: Txid,
    pub tx_type: ExpiryKind,
    pub expire_height: u64,
}

/// What one [`ExpiryStore::claim_expired`] pass did.
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
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExpiryOutboxRow {
    pub id: i64,
    pub queue: String,
    pub payload: String,
    /// Unix seconds when a relay confirmed the publish; `None` while unsent.
    pub sent_at: Option<i64>,
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

/// The expiry checker's handle ([`Db::expiry`]): it can take due timelock rows and publish
/// their events, and nothing else. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ExpiryStore {
    db: Db,
}

impl ExpiryStore {
    pub(crate) fn new(db: Db) -> Self {
        ExpiryStore { db }
    }

    /// Moves up to `limit` timelock rows expired at `tip` (`expire_height ≤ tip`) into the
    /// expiry outbox, in one transaction, each (delegation, path) exactly once.
    pub async fn claim_expired(&self, tip: u64, limit: u32) -> Result<ExpiryClaim> {
        let op = "claim expired timelock rows";
        let tip = i64_of("tip height", tip)?;
        let mut tx = self.db.begin().await?;
        let sql = format!(
            "DELETE FROM api_timelock_queue WHERE id IN (SELECT id FROM api_timelock_queue \
             WHERE expire_height <= $1 ORDER BY expire_height, id LIMIT $2{}) \
             RETURNING id, staking_tx_hash, expire_height, tx_type",
            tx.backend().skip_locked()
        );
        let mut rows: Vec<(i64, String, i64, String)> = tx
            .query(&sql)
            .bind(tip)
            .bind(i64::from(limit))
            .fetch_all(op)
            .await?;
        // Oldest row first, so the recorded expire height is the earliest one.
        rows.sort_by_key(|(id, ..)| *id);
        let mut claim = ExpiryClaim {
            rows_taken: rows.len(),
            emitted: Vec::new(),
        };
        let at = now();
        for (_, hash, expire, kind) in rows {
            let (hash, kind) = (parse_txid(&hash)?, expiry_kind(kind)?);
            let expire_height = u64_of("expire_height", expire)?;
            let first = tx
                .query(
                    "INSERT INTO api_expiry_emitted \
                     (staking_tx_hash, tx_type, expire_height, tip_height, emitted_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(hash.to_string())
                .bind(kind.as_str())
                .bind(expire)
                .bind(tip)
                .bind(at)
                .execute("record emitted expiry")
                .await?
                == 1;
            if !first {
                continue;
            }
            let row = outbox_row(hash, kind);
            tx.query(
                "INSERT INTO api_expiry_outbox (queue, payload, created_at) VALUES ($1, $2, $3)",
            )
            .bind(row.queue)
            .bind(&row.payload)
            .bind(at)
            .execute("write expiry outbox row")
            .await?;
            claim.emitted.push(ClaimedExpiry {
                staking_tx_hash: hash,
                tx_type: kind,
                expire_height,
            });
        }
        tx.commit(op).await?;
        Ok(claim)
    }

    /// Every expiry outbox row, sent or not, by id.
    pub async fn expiry_outbox_rows(&self) -> Result<Vec<ExpiryOutboxRow>> {
        self.db
            .query("SELECT id, queue, payload, sent_at FROM api_expiry_outbox ORDER BY id")
            .fetch_all("read expiry outbox")
            .await
    }

    /// `(rows waiting in the timelock queue, of which expired at tip)`.
    pub async fn timelock_counts(&self, tip: u64) -> Result<(u64, u64)> {
        let (total, due): (i64, i64) = self
            .db
            .query(
                "SELECT COUNT(*) AS total, \
                 COALESCE(SUM(CASE WHEN expire_height <= $1 THEN 1 ELSE 0 END), 0) AS due \
                 FROM api_timelock_queue",
            )
            .bind(i64_of("tip height", tip)?)
            .fetch_one("count timelock rows")
            .await?;
        Ok((
            u64_of("timelock count", total)?,
            u64_of("timelock count", due)?,
        ))
    }

    /// Expiry outbox rows not yet sent (claimed or not): the relay's backlog.
    pub async fn unsent_count(&self) -> Result<u64> {
        let n: i64 = self
            .db
            .query("SELECT COUNT(*) FROM api_expiry_outbox WHERE sent_at IS NULL")
            .scalar("count unsent expiry outbox rows")
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Claims up to `limit` unsent expiry outbox rows for `owner` until `lease` from now:
    /// unclaimed ones, ones whose lease ran out, and ones `owner` already holds.
    async fn claim_outbox(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxRow>> {
        let now = now();
        let until = now.saturating_add(i64::try_from(lease.as_secs()).unwrap_or(i64::MAX));
        let sql = format!(
            "UPDATE api_expiry_outbox SET claimed_by = $1, claimed_until = $2 \
             WHERE id IN (SELECT id FROM api_expiry_outbox WHERE sent_at IS NULL \
             AND (claimed_until IS NULL OR claimed_until < $3 OR claimed_by = $1) \
             ORDER BY id LIMIT $4{}) RETURNING id, queue, payload",
            self.db.backend().skip_locked()
        );
        let mut rows: Vec<(i64, String, String)> = self
            .db
            .query(&sql)
            .bind(owner)
            .bind(until)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all("claim expiry outbox rows")
            .await?;
        rows.sort_by_key(|(id, ..)| *id);
        Ok(rows
            .into_iter()
            .map(|(id, queue, payload)| OutboxRow { id, queue, payload })
            .collect())
    }

    async fn mark_outbox_sent(&self, ids: &[i64]) -> Result<()> {
        let op = "mark expiry outbox rows sent";
        let mut tx = self.db.begin().await?;
        let at = now();
        for id in ids {
            tx.query("UPDATE api_expiry_outbox SET sent_at = $1 WHERE id = $2 AND sent_at IS NULL")
                .bind(at)
                .bind(*id)
                .execute(op)
                .await?;
        }
        tx.commit(op).await
    }

    async fn release_outbox(&self, owner: &str) -> Result<u64> {
        self.db
            .query(
                "UPDATE api_expiry_outbox SET claimed_by = NULL, claimed_until = NULL \
                 WHERE claimed_by = $1 AND sent_at IS NULL",
            )
            .bind(owner)
            .execute("release expiry outbox rows")
            .await
    }
}

/// The relay's view of `api_expiry_outbox`: fetching claims rows for this relay for `lease`.
#[derive(Debug, Clone)]
pub struct ExpiryOutbox {
    store: ExpiryStore,
    owner: String,
    lease: Duration,
}

impl ExpiryOutbox {
    /// Default lease: long enough for any batch publish, short enough that a dead checker's
    /// rows are taken over quickly.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

    /// A relay identity unique to this process and instance.
    pub fn new(store: ExpiryStore, lease: Duration) -> Self {
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
        self.store.release_outbox(&self.owner).await
    }

    /// This relay's `claimed_by` value.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

impl Outbox for ExpiryOutbox {
    async fn fetch_unsent(&self, limit: usize) -> Result<Vec<OutboxRow>, OutboxError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        Ok(self
            .store
            .claim_outbox(&self.owner, self.lease, limit)
            .await?)
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), OutboxError> {
        self.store.mark_outbox_sent(ids).await?;
        Ok(())
    }

    async fn backlog(&self) -> Result<Option<u64>, OutboxError> {
        Ok(Some(self.store.unsent_count().await?))
    }
}
