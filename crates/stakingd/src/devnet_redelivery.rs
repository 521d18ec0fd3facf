//! Nothing lost on `kill -9` with in-process queues: at start-up, before any service runs, the
//! all-in-one re-publishes every outbox row that a relay marked sent but whose message the API
//! never finished (see `store::UndeliveredRow`). Such a message was in the in-process queue, or
//! in its delay queue waiting for a retry, when the process died, and those queues died with it.
//!
//! Why re-publish at start-up rather than have the in-process relay mark a row sent only after
//! the consumer committed it: the relays, the outbox tables and the consumers are shared with
//! the RabbitMQ deployment, where "sent" must mean "the broker confirmed it"; tying `mark_sent`
//! to the API's commit would need a second, in-process-only acknowledgement path through the
//! transport, the consumers and the delay queue. The API's idempotency record already tells
//! which messages took effect, so one scan at start-up covers the queue, the delay queue and
//! any other in-memory loss alike, and a message both published and consumed before the kill is
//! never published again (and if it were, the consumer would ignore it).

use anyhow::Context;
use events::{QueueName, Transport};
use store::{Db, DbOptions, OutboxTable};

/// Re-publishes, in outbox order (the indexer's rows, then the expiry checker's, each by id),
/// every sent row the API has not consumed. Returns how many. Only for the in-process
/// transport: a broker keeps unconsumed messages itself.
pub async fn republish(database_url: &str, transport: &Transport) -> anyhow::Result<usize> {
    let store = Db::connect(&DbOptions::new(database_url).max_connections(1))
        .await
        .context("connecting to the database to look for unconsumed events")?;
    let queues: Vec<&str> = api::consumer::CONSUMED.iter().map(|q| q.as_str()).collect();
    let rows = store
        .undelivered_outbox_rows(&queues)
        .await
        .context("listing sent outbox rows the API has not consumed")?;
    for row in &rows {
        let table = match row.table {
            OutboxTable::Indexer => "outbox",
            OutboxTable::Expiry => "api_expiry_outbox",
        };
        let queue: QueueName = row.queue.parse().map_err(|_| {
            anyhow::anyhow!("{table} row {} names unknown queue {:?}", row.id, row.queue)
        })?;
        transport
            .publish(queue, row.payload.as_bytes())
            .await
            .with_context(|| format!("re-publishing {table} row {}", row.id))?;
    }
    Ok(rows.len())
}
