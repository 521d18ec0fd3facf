//! The `events` relay reads the outbox through its own trait, [`events::outbox::Outbox`];
//! every store implements it on top of [`OutboxStore`], mapping transient errors to
//! `OutboxError::Transient` (the relay retries) and the rest to `Permanent` (it stops).

use events::outbox::{NewOutboxRow, Outbox, OutboxError, OutboxRow as RelayRow};

use crate::error::StoreError;
use crate::interface::OutboxStore;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::store::Store;
use crate::types::{OutboxEvent, OutboxRow};

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

/// Implements the relay's trait for one store type.
macro_rules! relay_outbox {
    ($store:ty) => {
        impl Outbox for $store {
            async fn fetch_unsent(&self, limit: usize) -> Result<Vec<RelayRow>, OutboxError> {
                let limit = u32::try_from(limit).unwrap_or(u32::MAX);
                let rows = OutboxStore::fetch_unsent(self, limit).await?;
                Ok(rows.into_iter().map(RelayRow::from).collect())
            }

            async fn mark_sent(&self, ids: &[i64]) -> Result<(), OutboxError> {
                OutboxStore::mark_sent(self, ids).await?;
                Ok(())
            }
        }
    };
}

relay_outbox!(PgStore);
relay_outbox!(SqliteStore);
relay_outbox!(Store);
