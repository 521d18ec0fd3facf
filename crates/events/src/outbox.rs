//! The transactional outbox: services write events in the same database transaction as the
//! state change that implies them; the [`Relay`] publishes them in id order and marks them sent.
//!
//! Delivery is at-least-once: a crash between publish and `mark_sent` publishes the row again
//! after restart (consumers are idempotent), and nothing is marked sent before the broker has
//! confirmed it, so nothing is lost. The storage side ([`Outbox`]) is implemented by `store`.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backoff::{sleep_unless_cancelled, Backoff};
use crate::error::EventsError;
use crate::messages::{Event, QueueName};
use crate::metrics::EventsMetrics;
use crate::transport::Publish;

/// One unsent event as stored: `queue` is the reference queue name (no prefix), `payload` the
/// JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Monotonic id; the relay publishes in this order.
    pub id: i64,
    /// e.g. `active_staking_queue`.
    pub queue: String,
    /// The message body.
    pub payload: String,
}

/// What a writer stores for an event: the columns of a new outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxRow {
    /// The reference queue name.
    pub queue: &'static str,
    /// The message body.
    pub payload: String,
}

impl From<&Event> for NewOutboxRow {
    fn from(event: &Event) -> Self {
        NewOutboxRow {
            queue: event.queue().as_str(),
            payload: event.to_json(),
        }
    }
}

/// A storage failure, classified so the relay knows whether to retry.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// e.g. the database is unreachable; retried with backoff.
    #[error("outbox storage temporarily unavailable: {0}")]
    Transient(#[source] Box<dyn StdError + Send + Sync>),
    /// e.g. the outbox table is missing; the relay stops.
    #[error("outbox storage failed: {0}")]
    Permanent(#[source] Box<dyn StdError + Send + Sync>),
}

/// The storage side of the outbox.
pub trait Outbox: Send + Sync {
    /// Up to `limit` unsent rows, lowest id first.
    fn fetch_unsent(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, OutboxError>> + Send;

    /// Marks these rows sent (idempotent: ids already marked are fine).
    fn mark_sent(&self, ids: &[i64]) -> impl Future<Output = Result<(), OutboxError>> + Send;

    /// How many rows are unsent (for the `events_outbox_backlog` gauge); `None` when the storage
    /// cannot tell cheaply.
    fn backlog(&self) -> impl Future<Output = Result<Option<u64>, OutboxError>> + Send {
        async { Ok(None) }
    }
}

impl<O: Outbox> Outbox for Arc<O> {
    fn fetch_unsent(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, OutboxError>> + Send {
        O::fetch_unsent(self, limit)
    }

    fn mark_sent(&self, ids: &[i64]) -> impl Future<Output = Result<(), OutboxError>> + Send {
        O::mark_sent(self, ids)
    }

    fn backlog(&self) -> impl Future<Output = Result<Option<u64>, OutboxError>> + Send {
        O::backlog(self)
    }
}

impl<O: Outbox> Outbox for &O {
    fn fetch_unsent(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, OutboxError>> + Send {
        O::fetch_unsent(self, limit)
    }

    fn mark_sent(&self, ids: &[i64]) -> impl Future<Output = Result<(), OutboxError>> + Send {
        O::mark_sent(self, ids)
    }

    fn backlog(&self) -> impl Future<Output = Result<Option<u64>, OutboxError>> + Send {
        O::backlog(self)
    }
}

/// Why a relay pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Reading or updating the outbox failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// Publishing row `id` failed; it and every later row stay unsent.
    #[error("publishing outbox row {id} failed: {source}")]
    Publish {
        /// The row that could not be published.
        id: i64,
        /// The transport's error.
        #[source]
        source: EventsError,
    },
    /// A row names no known queue: a bug in whatever wrote it. The relay stops rather than skip
    /// it (skipping would lose the event and break the order).
    #[error("outbox row {id} names unknown queue {queue:?}")]
    UnknownQueue {
        /// The row.
        id: i64,
        /// Its queue column.
        queue: String,
    },
}

impl RelayError {
    /// Whether the relay should retry after a backoff.
    pub fn is_transient(&self) -> bool {
        match self {
            RelayError::Outbox(OutboxError::Transient(_)) => true,
            RelayError::Outbox(OutboxError::Permanent(_)) | RelayError::UnknownQueue { .. } => {
                false
            }
            RelayError::Publish { source, .. } => source.is_transient(),
        }
    }
}

/// Relay timing.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows fetched per pass; also the most publishes in flight awaiting their confirms.
    pub batch_size: usize,
    /// Longest wait between passes when nobody wakes the relay.
    pub poll_interval: Duration,
    /// First retry delay after a transient failure; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch_size: 500,
            poll_interval: Duration::from_secs(1),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Lets a writer wake the relay right after committing outbox rows. Wakes are not lost: a wake
/// while the relay is busy makes its next wait return at once.
#[derive(Debug, Clone, Default)]
pub struct RelayWaker(Arc<Notify>);

impl RelayWaker {
    /// A new, unconnected waker; hand it to [`Relay::with_waker`].
    pub fn new() -> Self {
        RelayWaker::default()
    }

    /// Asks the relay to look at the outbox now.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Publishes outbox rows in id order and marks them sent.
#[derive(Debug)]
pub struct Relay<O, P> {
    outbox: O,
    publisher: P,
    config: RelayConfig,
    waker: RelayWaker,
    metrics: Option<(EventsMetrics, &'static str)>,
}

impl<O: Outbox, P: Publish> Relay<O, P> {
    /// A relay with its own waker (see [`Relay::waker`]).
    pub fn new(outbox: O, publisher: P, config: RelayConfig) -> Self {
        Relay {
            outbox,
            publisher,
            config,
            waker: RelayWaker::new(),
            metrics: None,
        }
    }

    /// Reports the outbox's backlog after every pass as `events_outbox_backlog{outbox=name}`.
    pub fn with_metrics(mut self, metrics: EventsMetrics, name: &'static str) -> Self {
        metrics.set_outbox_backlog(name, 0);
        self.metrics = Some((metrics, name));
        self
    }

    async fn report_backlog(&self) {
        if let Some((metrics, name)) = &self.metrics {
            match self.outbox.backlog().await {
                Ok(Some(rows)) => metrics.set_outbox_backlog(name, rows),
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "cannot count the outbox backlog"),
            }
        }
    }

    /// Uses `waker` (e.g. one created before the writer that holds it).
    pub fn with_waker(mut self, waker: RelayWaker) -> Self {
        self.waker = waker;
        self
    }

    /// A handle that wakes this relay.
    pub fn waker(&self) -> RelayWaker {
        self.waker.clone()
    }

    /// One pass: fetch up to `batch_size` unsent rows and publish them in id order with all of
    /// them in flight at once (publisher confirms are collected after the publishes, not one
    /// round trip per message), then mark sent the confirmed prefix. On a failure the rows
    /// before it are still marked sent and the failed row and all after it stay unsent, so
    /// nothing is lost and the next pass resumes in order. Returns how many rows were
    /// published.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let mut rows = self.outbox.fetch_unsent(self.config.batch_size).await?;
        rows.sort_by_key(|row| row.id);
        let mut messages = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in &rows {
            match row.queue.parse::<QueueName>() {
                Ok(queue) => messages.push((queue, row.payload.as_bytes())),
                Err(_) => {
                    failure = Some(RelayError::UnknownQueue {
                        id: row.id,
                        queue: row.queue.clone(),
                    });
                    break;
                }
            }
        }
        let (confirmed, error) = self.publisher.publish_all(&messages).await;
        if let Some(source) = error {
            let id = rows.get(confirmed).map_or(0, |row| row.id);
            failure = Some(RelayError::Publish { id, source });
        }
        let sent: Vec<i64> = rows.iter().take(confirmed).map(|row| row.id).collect();
        if !sent.is_empty() {
            self.outbox.mark_sent(&sent).await?;
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(sent.len()),
        }
    }

    /// Relays until `shutdown`: a pass whenever woken or every `poll_interval`, back to back
    /// while full batches keep coming, with backoff after transient failures. Returns an error
    /// only for a permanent failure.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RelayError> {
        let mut backoff = Backoff::new(self.config.initial_backoff, self.config.max_backoff);
        while !shutdown.is_cancelled() {
            let pass = self.relay_once().await;
            self.report_backlog().await;
            match pass {
                Ok(published) => {
                    backoff.reset();
                    if published >= self.config.batch_size {
                        continue;
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = self.waker.0.notified() => {}
                        () = tokio::time::sleep(self.config.poll_interval) => {}
                    }
                }
                Err(error) if error.is_transient() => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, ?delay, "outbox relay pass failed; retrying");
                    if !sleep_unless_cancelled(delay, &shutdown).await {
                        break;
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "outbox relay stopped");
                    return Err(error);
                }
            }
        }
        Ok(())
    }
}
