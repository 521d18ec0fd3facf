//! Outbox rows marked sent whose message the API never finished: what an all-in-one process
//! with in-process queues (`stakingd devnet`) lost when it was killed between a relay's
//! `mark_sent` and the consumer's commit, or while a message waited in the in-process delay
//! queue for a retry. On a broker (RabbitMQ) the broker keeps such messages; in-process queues
//! die with the process, so the all-in-one re-publishes these rows at start-up.
//!
//! A message is finished when the API recorded it as consumed (`api_consumed_messages`: queue
//! and SHA-256 of the body, the key the consumer writes in the same transaction as the effect)
//! or parked it as unprocessable (`api_unprocessable_messages`; re-publishing those is the
//! operator's `stakingd api replay-unprocessable`, not an automatic retry on every start).
//!
//! This is a scan: every sent row of both outboxes (`outbox`, the indexer's, and
//! `api_expiry_outbox`, the expiry checker's) and every idempotency record is read into memory
//! and compared in Rust, because SQLite has no SHA-256 to join on. That is fine for devnet
//! sizes (thousands of rows, read once per start); it is not meant for a production database,
//! which runs on RabbitMQ and never needs it.

use std::collections::HashSet;

use bitcoin::hashes::{sha256, Hash};

use crate::db::Db;
use crate::error::Result;

/// Which outbox a row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxTable {
    /// `outbox`, written by the indexer.
    Indexer,
    /// `api_expiry_outbox`, written by the expiry checker.
    Expiry,
}

impl OutboxTable {
    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            OutboxTable::Indexer => "outbox",
            OutboxTable::Expiry => "api_expiry_outbox",
        }
    }
}

/// One sent outbox row whose message the API has not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliveredRow {
    pub table: OutboxTable,
    pub id: i64,
    /// The reference queue name (no prefix), as the relay publishes it.
    pub queue: String,
    /// The exact message body.
    pub payload: String,
}

/// The idempotency key the API consumer records for a message.
fn key(queue: &str, body: &[u8]) -> (String, String) {
    (queue.to_owned(), sha256::Hash::hash(body).to_string())
}

impl Db {
    /// Every sent row of the indexer's outbox, then of the expiry checker's, each in id order,
    /// whose message (on one of `queues`, the queues the API consumes) the API has neither
    /// consumed nor parked as unprocessable. A scan; see the module doc.
    pub async fn undelivered_outbox_rows(&self, queues: &[&str]) -> Result<Vec<UndeliveredRow>> {
        let consumed: Vec<(String, String)> = self
            .query("SELECT queue, body_sha256 FROM api_consumed_messages")
            .fetch_all("read consumed message records")
            .await?;
        let parked: Vec<(String, String)> = self
            .query("SELECT queue, message_body FROM api_unprocessable_messages")
            .fetch_all("read unprocessable messages")
            .await?;
        let finished: HashSet<(String, String)> = consumed
            .into_iter()
            .chain(
                parked
                    .iter()
                    .map(|(queue, body)| key(queue, body.as_bytes())),
            )
            .collect();
        let mut undelivered = Vec::new();
        for table in [OutboxTable::Indexer, OutboxTable::Expiry] {
            let sql = format!(
                "SELECT id, queue, payload FROM {} WHERE sent_at IS NOT NULL ORDER BY id",
                table.name()
            );
            let rows: Vec<(i64, String, String)> =
                self.query(&sql).fetch_all("read sent outbox rows").await?;
            undelivered.extend(
                rows.into_iter()
                    .filter(|(_, queue, payload)| {
                        queues.contains(&queue.as_str())
                            && !finished.contains(&key(queue, payload.as_bytes()))
                    })
                    .map(|(id, queue, payload)| UndeliveredRow {
                        table,
                        id,
                        queue,
                        payload,
                    }),
            );
        }
        Ok(undelivered)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    const API_QUEUES: [&str; 6] = [
        "active_staking_queue",
        "unbonding_staking_queue",
        "withdraw_staking_queue",
        "expired_staking_queue",
        "staking_stats_queue",
        "btc_info_queue",
    ];

    async fn exec(store: &Db, sql: &str, a: &str, b: &str) {
        store
            .query(sql)
            .bind(a)
            .bind(b)
            .execute("test insert")
            .await
            .unwrap();
    }

    async fn outbox(store: &Db, table: &str, queue: &str, body: &str, sent: bool) {
        let sent = if sent { "1" } else { "NULL" };
        let sql = format!(
            "INSERT INTO {table} (queue, payload, created_at, sent_at) VALUES ($1, $2, 0, {sent})"
        );
        exec(store, &sql, queue, body).await;
    }

    #[tokio::test]
    async fn only_sent_rows_the_api_neither_consumed_nor_parked_are_undelivered_in_outbox_order() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("db.sqlite").display());
        let store = Db::connect(&crate::DbOptions::new(url)).await.unwrap();
        store.migrate().await.unwrap();
        outbox(&store, "outbox", "active_staking_queue", "{\"a\":1}", true).await;
        outbox(&store, "outbox", "staking_stats_queue", "{\"s\":1}", true).await;
        outbox(&store, "outbox", "btc_info_queue", "{\"b\":1}", false).await;
        outbox(&store, "outbox", "active_staking_queue", "{\"c\":1}", true).await;
        outbox(&store, "outbox", "confirmed_info_queue", "{\"x\":1}", true).await;
        outbox(
            &store,
            "api_expiry_outbox",
            "expired_staking_queue",
            "{\"e\":1}",
            true,
        )
        .await;
        outbox(
            &store,
            "api_expiry_outbox",
            "expired_staking_queue",
            "{\"f\":1}",
            false,
        )
        .await;
        let record = "INSERT INTO api_consumed_messages (queue, body_sha256, consumed_at) \
                      VALUES ($1, $2, 0)";
        let (queue, sha) = key("active_staking_queue", b"{\"a\":1}");
        exec(&store, record, &queue, &sha).await;
        // The same body on another queue is another message.
        let (queue, sha) = key("btc_info_queue", b"{\"c\":1}");
        exec(&store, record, &queue, &sha).await;
        let parked = "INSERT INTO api_unprocessable_messages \
                      (queue, message_body, receipt, reason, created_at) \
                      VALUES ($1, $2, '1', 'test', 0)";
        exec(&store, parked, "staking_stats_queue", "{\"s\":1}").await;

        let rows = store.undelivered_outbox_rows(&API_QUEUES).await.unwrap();
        let got: Vec<(OutboxTable, i64, &str, &str)> = rows
            .iter()
            .map(|r| (r.table, r.id, r.queue.as_str(), r.payload.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (OutboxTable::Indexer, 4, "active_staking_queue", "{\"c\":1}"),
                (OutboxTable::Expiry, 1, "expired_staking_queue", "{\"e\":1}"),
            ]
        );
    }
}
