//! The transactional outbox (migration `0002_outbox.sql`): the indexer writes a block's events
//! in the block's own transaction, and the relay publishes unsent rows in id order and marks
//! them sent. Rows are kept as history.
//!
//! The `events` relay reads the outbox through its own trait, [`events::outbox::Outbox`]:
//! [`OutboxStore`] implements it, mapping transient errors to `OutboxError::Transient` (the
//! relay retries) and the rest to `Permanent` (it stops).

use chrono::{DateTime, Utc};
use events::outbox::{NewOutboxRow, Outbox, OutboxError, OutboxRow as RelayRow};

use crate::backend::Tx;
use crate::db::Db;
use crate::error::{Result, StoreError};

/// One message for the transactional outbox: written with the state change that implies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub queue: String,
    /// The exact JSON body to publish (kept as text so key order and formatting are preserved).
    pub payload: String,
}

/// An outbox row as the relay sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    /// Increasing in insertion order; publish in this order.
    pub id: i64,
    pub queue: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

/// The outbox's handle ([`Db::outbox`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct OutboxStore {
    db: Db,
}

/// Writes events inside a transaction (a block write's or [`OutboxStore::enqueue`]'s).
pub(crate) async fn insert(tx: &mut Tx, events: &[OutboxEvent]) -> Result<Vec<i64>> {
    let now = Utc::now();
    let mut ids = Vec::with_capacity(events.len());
    for e in events {
        let id: i64 = tx
            .query(
                "INSERT INTO outbox (queue, payload, created_at) VALUES ($1, $2, $3) \
                 RETURNING id",
            )
            .bind(&e.queue)
            .bind(&e.payload)
            .bind(now)
            .scalar("insert outbox event")
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

impl OutboxStore {
    pub(crate) fn new(db: Db) -> Self {
        OutboxStore { db }
    }

    /// Queues events outside a block write (the indexer's `btc_info` events).
    pub async fn enqueue(&self, events: &[OutboxEvent]) -> Result<Vec<i64>> {
        let mut tx = self.db.begin().await?;
        let ids = insert(&mut tx, events).await?;
        tx.commit("commit outbox events").await?;
        Ok(ids)
    }

    /// Up to `limit` unsent rows, oldest first (publish in this order).
    pub async fn fetch_unsent(&self, limit: u32) -> Result<Vec<OutboxRow>> {
        self.db
            .query(
                "SELECT id, queue, payload, created_at FROM outbox WHERE sent_at IS NULL \
                 ORDER BY id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all("fetch unsent outbox rows")
            .await
    }

    /// Marks rows as sent; returns how many were unsent before (already-sent ids are ignored).
    pub async fn mark_sent(&self, ids: &[i64]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "UPDATE outbox SET sent_at = $2 WHERE {} AND sent_at IS NULL",
            self.db.backend().in_list("id", "$1")
        );
        self.db
            .query(&sql)
            .bind_list(ids)
            .bind(Utc::now())
            .execute("mark outbox rows sent")
            .await
    }

    /// Number of rows not yet sent (for a metric).
    pub async fn unsent_count(&self) -> Result<u64> {
        let n: i64 = self
            .db
            .query("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .scalar("count unsent outbox rows")
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl Outbox for OutboxStore {
    async fn fetch_unsent(&self, limit: usize) -> Result<Vec<RelayRow>, OutboxError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let rows = OutboxStore::fetch_unsent(self, limit).await?;
        Ok(rows.into_iter().map(RelayRow::from).collect())
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), OutboxError> {
        OutboxStore::mark_sent(self, ids).await?;
        Ok(())
    }

    async fn backlog(&self) -> Result<Option<u64>, OutboxError> {
        Ok(Some(self.unsent_count().await?))
    }
}

impl From<NewOutboxRow> for OutboxEvent {
    fn from(row: NewOutboxRow) -> Self {
        OutboxEvent {
            queue: row.queue.to_owned(),
            payload: row.payload,
        }
    }
}

impl From<&events::Event> for OutboxEvent {
    fn from(event: &events::Event) -> Self {
        NewOutboxRow::from(event).into()
    }
}

impl From<OutboxRow> for RelayRow {
    fn from(row: OutboxRow) -> Self {
        RelayRow {
            id: row.id,
            queue: row.queue,
            payload: row.payload,
        }
    }
}

impl From<StoreError> for OutboxError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            OutboxError::Transient(Box::new(e))
        } else {
            OutboxError::Permanent(Box::new(e))
        }
    }
}
