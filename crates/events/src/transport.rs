//! One interface over both transports.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backoff::{sleep_unless_cancelled, Backoff};
use crate::config::ConsumerConfig;
use crate::consumer::MessageHandler;
use crate::error::EventsError;
use crate::in_process::InProcessTransport;
use crate::messages::{Event, QueueName};
use crate::metrics::EventsMetrics;
use crate::rabbitmq::RabbitMqTransport;

/// Something that publishes a message body to a queue and returns once it is safely accepted
/// (for RabbitMQ: after the broker's publisher confirm).
pub trait Publish: Send + Sync {
    /// Publishes `payload` to `queue`.
    fn publish(
        &self,
        queue: QueueName,
        payload: &[u8],
    ) -> impl Future<Output = Result<(), EventsError>> + Send;

    /// Publishes `messages` in order and returns how many of them, counted from the first, are
    /// safely accepted, with the error that stopped the rest. Transports that can keep many
    /// publishes in flight (RabbitMQ) override this; the default publishes one at a time.
    fn publish_all(
        &self,
        messages: &[(QueueName, &[u8])],
    ) -> impl Future<Output = (usize, Option<EventsError>)> + Send {
        async move {
            for (done, (queue, payload)) in messages.iter().enumerate() {
                if let Err(e) = self.publish(*queue, payload).await {
                    return (done, Some(e));
                }
            }
            (messages.len(), None)
        }
    }
}

/// RabbitMQ in production, in-process for `stakingd devnet` and tests. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Transport {
    /// The reference topology on a RabbitMQ broker.
    RabbitMq(RabbitMqTransport),
    /// Queues inside this process.
    InProcess(InProcessTransport),
}

impl Transport {
    /// Publishes `payload` to `queue`, waiting for the confirm.
    pub async fn publish(&self, queue: QueueName, payload: &[u8]) -> Result<(), EventsError> {
        match self {
            Transport::RabbitMq(t) => t.publish(queue, payload).await,
            Transport::InProcess(t) => t.publish(queue, payload).await,
        }
    }

    /// Publishes an event to its queue (direct publishing; services that change state use the
    /// outbox instead).
    pub async fn publish_event(&self, event: &Event) -> Result<(), EventsError> {
        self.publish(event.queue(), event.to_json().as_bytes())
            .await
    }

    /// The metrics this transport records into.
    pub fn metrics(&self) -> &EventsMetrics {
        match self {
            Transport::RabbitMq(t) => t.metrics(),
            Transport::InProcess(t) => t.metrics(),
        }
    }

    /// Declares the full reference topology now (RabbitMQ; nothing to do in-process): what every
    /// publisher does at start-up, before it waits for anything.
    pub async fn declare_topology(&self) -> Result<(), EventsError> {
        match self {
            Transport::RabbitMq(t) => t.declare_topology().await,
            Transport::InProcess(_) => Ok(()),
        }
    }

    /// [`Transport::declare_topology`], retried with backoff (up to 10 s apart) until it
    /// succeeds or `shutdown` fires, so a publisher can start while the broker is still away
    /// and its queues appear as soon as the broker does, not at its first event.
    pub async fn declare_topology_until_done(&self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match self.declare_topology().await {
                Ok(()) => {
                    tracing::info!("queue topology declared");
                    return;
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, ?delay, "cannot declare the queue topology yet; retrying");
                    if !sleep_unless_cancelled(delay, &shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// Health check for `/health` endpoints: the broker is reachable (always true in-process).
    pub async fn ping(&self) -> Result<(), EventsError> {
        match self {
            Transport::RabbitMq(t) => t.ping().await,
            Transport::InProcess(_) => Ok(()),
        }
    }

    /// Consumes `queue` with `handler` until `shutdown` (the semantics of
    /// `docs/reference.md#consuming-and-retries` on both transports).
    pub async fn consume<H: MessageHandler>(
        &self,
        queue: QueueName,
        handler: Arc<H>,
        config: ConsumerConfig,
        shutdown: CancellationToken,
    ) -> Result<(), EventsError> {
        match self {
            Transport::RabbitMq(t) => t.consume(queue, handler, config, shutdown).await,
            Transport::InProcess(t) => t.consume(queue, handler, config, shutdown).await,
        }
    }
}

impl Publish for Transport {
    fn publish(
        &self,
        queue: QueueName,
        payload: &[u8],
    ) -> impl Future<Output = Result<(), EventsError>> + Send {
        Transport::publish(self, queue, payload)
    }

    async fn publish_all(&self, messages: &[(QueueName, &[u8])]) -> (usize, Option<EventsError>) {
        match self {
            Transport::RabbitMq(t) => t.publish_all(messages).await,
            Transport::InProcess(t) => Publish::publish_all(t, messages).await,
        }
    }
}

impl Publish for RabbitMqTransport {
    fn publish(
        &self,
        queue: QueueName,
        payload: &[u8],
    ) -> impl Future<Output = Result<(), EventsError>> + Send {
        RabbitMqTransport::publish(self, queue, payload)
    }

    fn publish_all(
        &self,
        messages: &[(QueueName, &[u8])],
    ) -> impl Future<Output = (usize, Option<EventsError>)> + Send {
        RabbitMqTransport::publish_all(self, messages)
    }
}

impl Publish for InProcessTransport {
    fn publish(
        &self,
        queue: QueueName,
        payload: &[u8],
    ) -> impl Future<Output = Result<(), EventsError>> + Send {
        InProcessTransport::publish(self, queue, payload)
    }
}

impl<P: Publish> Publish for Arc<P> {
    fn publish(
        &self,
        queue: QueueName,
        payload: &[u8],
    ) -> impl Future<Output = Result<(), EventsError>> + Send {
        P::publish(self, queue, payload)
    }

    fn publish_all(
        &self,
        messages: &[(QueueName, &[u8])],
    ) -> impl Future<Output = (usize, Option<EventsError>)> + Send {
        P::publish_all(self, messages)
    }
}
