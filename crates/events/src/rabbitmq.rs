//! The RabbitMQ transport (lapin): the reference topology, persistent confirmed publishes, and
//! the reference consumer's retry protocol, with reconnection on transient failures.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::backoff::{sleep_unless_cancelled, Backoff};
use crate::config::{ConsumerConfig, QueueNaming, RabbitMqConfig};
use crate::consumer::{process, Disposition, Message, MessageHandler};
use crate::error::EventsError;
use crate::messages::QueueName;
use crate::metrics::{EventsMetrics, QueueOperation};
pub use crate::topology::declare_queue_topology;

/// Header carrying the attempt count; an AMQP signed 32-bit int, as Go's `int32` (the reference
/// consumer type-asserts `int32` and would panic on anything else).
pub const ATTEMPTS_HEADER: &str = "x-processing-attempts";

/// An open connection with one channel in publisher-confirm mode.
struct Session {
    connection: Connection,
    channel: Channel,
}

impl Session {
    fn is_usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

struct Inner {
    config: RabbitMqConfig,
    naming: QueueNaming,
    metrics: EventsMetrics,
    publisher: Mutex<Option<Session>>,
}

/// Cheap to clone; clones share the publishing connection. Consumers open their own.
#[derive(Clone)]
pub struct RabbitMqTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RabbitMqTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqTransport")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl RabbitMqTransport {
    /// Connects and declares the topology of all seven queues, so a wrong URI or a queue-type
    /// mismatch with the broker shows at start.
    pub async fn connect(
        config: RabbitMqConfig,
        metrics: EventsMetrics,
    ) -> Result<Self, EventsError> {
        let transport = RabbitMqTransport::lazy(config, metrics);
        transport.publish_channel().await?;
        Ok(transport)
    }

    /// Does not connect until the first publish (e.g. for a relay that must start while the
    /// broker is down and simply retry).
    pub fn lazy(config: RabbitMqConfig, metrics: EventsMetrics) -> Self {
        let naming = config.naming();
        RabbitMqTransport {
            inner: Arc::new(Inner {
                config,
                naming,
                metrics,
                publisher: Mutex::new(None),
            }),
        }
    }

    /// The metrics this transport records into.
    pub fn metrics(&self) -> &EventsMetrics {
        &self.inner.metrics
    }

    /// The names in use (reference names under the configured prefix).
    pub fn naming(&self) -> &QueueNaming {
        &self.inner.naming
    }

    async fn open_session(&self, queues: &[QueueName]) -> Result<Session, EventsError> {
        let config = &self.inner.config;
        let connect_error = |error| EventsError::Connect {
            uri: config.redacted_uri(),
            error,
        };
        // Named so operators (and tests) can tell our connections apart in `rabbitmqctl`.
        let name = format!("stakingd-events {}", config.queue_prefix);
        let properties =
            ConnectionProperties::default().with_connection_name(name.trim_end().into());
        // Bounded, so a black-holed broker address cannot stall a publisher forever.
        let connecting = Connection::connect(&config.uri, properties);
        let connection = match tokio::time::timeout(config.publish_timeout, connecting).await {
            Ok(connected) => connected.map_err(connect_error)?,
            Err(_) => {
                let timed_out = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", config.publish_timeout),
                );
                return Err(connect_error(lapin::Error::IOError(Arc::new(timed_out))));
            }
        };
        let channel = connection.create_channel().await.map_err(connect_error)?;
        for &queue in queues {
            declare_queue_topology(&channel, &self.inner.naming, config.queue_type, queue).await?;
        }
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|source| EventsError::Declare {
                what: "publisher confirms".to_owned(),
                source,
            })?;
        Ok(Session {
            connection,
            channel,
        })
    }

    /// The publishing channel, reconnecting (and re-declaring everything) if it was lost.
    async fn publish_channel(&self) -> Result<Channel, EventsError> {
        let mut session = self.inner.publisher.lock().await;
        if let Some(open) = session.as_ref().filter(|s| s.is_usable()) {
            return Ok(open.channel.clone());
        }
        let fresh = match self.open_session(&QueueName::ALL).await {
            Ok(fresh) => fresh,
            Err(e) => {
                self.inner
                    .metrics
                    .operation_failed(QueueOperation::Connect, "all");
                return Err(e);
            }
        };
        let channel = fresh.channel.clone();
        if let Some(old) = session.replace(fresh) {
            close_quietly(old).await;
        }
        Ok(channel)
    }

    /// Forgets the publishing session after a failure so the next publish reconnects.
    async fn drop_publish_session(&self) {
        if let Some(old) = self.inner.publisher.lock().await.take() {
            close_quietly(old).await;
        }
    }

    /// Publishes `payload` to `queue` as the reference does (`docs/reference.md#publishing`) and
    /// waits for the broker's confirm. Any failure drops the connection so the next call starts
    /// afresh; the caller (the outbox relay) retries.
    pub async fn publish(&self, queue: QueueName, payload: &[u8]) -> Result<(), EventsError> {
        let name = self.inner.naming.queue(queue);
        let result = match self.publish_channel().await {
            Ok(channel) => {
                publish_confirmed(
                    &channel,
                    &name,
                    payload,
                    0,
                    None,
                    self.inner.config.publish_timeout,
                )
                .await
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(()) => self.inner.metrics.published(&name),
            Err(error) => {
                self.inner.metrics.publish_failed(&name);
                tracing::warn!(queue = %name, %error, "publish failed");
                self.drop_publish_session().await;
            }
        }
        result
    }

    /// Publishes `messages` in order as [`RabbitMqTransport::publish`] does, but with all of
    /// them in flight at once: every publish is sent before any confirm is awaited, then the
    /// confirms are collected in order. Returns how many messages from the first are confirmed
    /// and the error that stopped the rest (the connection is then dropped, as after a failed
    /// single publish). Messages after a failed one may still have reached the queue; the outbox
    /// relay publishes them again, so delivery stays at-least-once.
    pub async fn publish_all(
        &self,
        messages: &[(QueueName, &[u8])],
    ) -> (usize, Option<EventsError>) {
        if messages.is_empty() {
            return (0, None);
        }
        let channel = match self.publish_channel().await {
            Ok(channel) => channel,
            Err(error) => {
                self.drop_publish_session().await;
                return (0, Some(error));
            }
        };
        let timeout = self.inner.config.publish_timeout;
        let mut in_flight = Vec::with_capacity(messages.len());
        let mut failure = None;
        for &(queue, payload) in messages {
            let name = self.inner.naming.queue(queue);
            match publish_unconfirmed(&channel, &name, payload, 0, None).await {
                Ok(confirm) => in_flight.push((name, confirm)),
                Err(error) => {
                    failure = Some((name, error));
                    break;
                }
            }
        }
        let mut confirmed = 0;
        for (name, confirm) in in_flight {
            let outcome = match tokio::time::timeout(timeout, confirm).await {
                Err(_) => Err(EventsError::ConfirmTimeout {
                    queue: name.clone(),
                    timeout,
                }),
                Ok(Err(source)) => Err(EventsError::Publish {
                    queue: name.clone(),
                    source,
                }),
                Ok(Ok(confirmation)) => confirmation_outcome(&name, confirmation),
            };
            match outcome {
                Ok(()) => {
                    self.inner.metrics.published(&name);
                    confirmed += 1;
                }
                Err(error) => {
                    failure = Some((name, error));
                    break;
                }
            }
        }
        match failure {
            None => (confirmed, None),
            Some((name, error)) => {
                self.inner.metrics.publish_failed(&name);
                tracing::warn!(queue = %name, %error, confirmed, "pipelined publish failed");
                self.drop_publish_session().await;
                (confirmed, Some(error))
            }
        }
    }

    /// Declares the full reference topology (all seven queues, their delay queues, the
    /// dead-letter exchange and bindings) now, through the publishing connection: what a
    /// publisher does at start-up so consumers that only bind find the queues
    /// (`docs/reference.md#queue-topology`).
    pub async fn declare_topology(&self) -> Result<(), EventsError> {
        self.publish_channel().await.map(drop)
    }

    /// Health check: succeeds when the publishing connection is open or can be reopened (the
    /// reference API exits when a queue client is closed; we reconnect instead and report).
    pub async fn ping(&self) -> Result<(), EventsError> {
        self.publish_channel().await.map(drop)
    }

    /// Closes the publishing connection, if open.
    pub async fn close(&self) {
        self.drop_publish_session().await;
    }

    /// Consumes `queue` as the reference API does (`docs/reference.md#consuming-and-retries`) until
    /// `shutdown`: manual ack, one message at a time; a failed message is re-published to
    /// `<queue>_delay` with `x-processing-attempts + 1` and an `expiration` of the requeue delay,
    /// then acked; past `max_retry_attempts` it goes to `handler.unprocessable`, then is acked.
    /// Connection losses are retried with backoff; an unacked message is redelivered by the broker.
    pub async fn consume<H: MessageHandler>(
        &self,
        queue: QueueName,
        handler: Arc<H>,
        config: ConsumerConfig,
        shutdown: CancellationToken,
    ) -> Result<(), EventsError> {
        let mut backoff = Backoff::new(
            Duration::from_millis(100),
            self.inner.config.max_reconnect_backoff,
        );
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            match self
                .consume_session(queue, handler.as_ref(), &config, &shutdown, &mut backoff)
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) if error.is_transient() => {
                    let delay = backoff.next_delay();
                    tracing::warn!(queue = %queue, %error, ?delay, "consumer lost its connection; reconnecting");
                    if !sleep_unless_cancelled(delay, &shutdown).await {
                        return Ok(());
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn consume_session<H: MessageHandler>(
        &self,
        queue: QueueName,
        handler: &H,
        config: &ConsumerConfig,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Result<(), EventsError> {
        let name = self.inner.naming.queue(queue);
        self.inner.metrics.init_consumer(&name);
        let session = match self.open_session(&[queue]).await {
            Ok(session) => session,
            Err(e) => {
                self.inner
                    .metrics
                    .operation_failed(QueueOperation::Connect, &name);
                return Err(e);
            }
        };
        let result = self
            .consume_on(&session, queue, handler, config, shutdown, backoff)
            .await;
        // Closing (also after an error) makes the broker redeliver an unacked message at once.
        close_quietly(session).await;
        result
    }

    async fn consume_on<H: MessageHandler>(
        &self,
        session: &Session,
        queue: QueueName,
        handler: &H,
        config: &ConsumerConfig,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Result<(), EventsError> {
        let name = self.inner.naming.queue(queue);
        let delay_name = self.inner.naming.delay_queue(queue);
        let metrics = &self.inner.metrics;
        let consume_error = |source| {
            metrics.operation_failed(QueueOperation::Consume, &name);
            EventsError::Consume {
                queue: name.clone(),
                source,
            }
        };
        let mut consumer = session
            .channel
            .basic_consume(
                &name,
                "",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(consume_error)?;
        backoff.reset();
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                next = consumer.next() => next,
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(source)) => return Err(consume_error(source)),
                None => {
                    let state = session.channel.status().state();
                    return Err(consume_error(lapin::Error::InvalidChannelState(state)));
                }
            };
            let message = Message {
                queue,
                attempts: attempts_of(&delivery.properties),
                receipt: delivery.delivery_tag.to_string(),
                body: delivery.data,
            };
            let disposition = process(handler, &message, config, &self.inner.metrics, &name).await;
            if let Disposition::Retry { attempts } = disposition {
                publish_confirmed(
                    &session.channel,
                    &delay_name,
                    &message.body,
                    attempts,
                    Some(config.requeue_delay),
                    self.inner.config.publish_timeout,
                )
                .await
                .inspect_err(|_| metrics.operation_failed(QueueOperation::Requeue, &name))?;
            }
            delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(|source| {
                    metrics.operation_failed(QueueOperation::Ack, &name);
                    EventsError::Ack {
                        queue: name.clone(),
                        delivery_tag: delivery.delivery_tag,
                        source,
                    }
                })?;
        }
    }
}

/// The properties of `docs/reference.md#publishing`: persistent, `text/plain`, the attempts header,
/// and for a requeue a per-message TTL in milliseconds.
pub(crate) fn message_properties(attempts: i32, expiration: Option<Duration>) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongInt(attempts));
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("text/plain"))
        .with_headers(headers);
    match expiration {
        Some(ttl) if !ttl.is_zero() => {
            properties.with_expiration(ShortString::from(ttl.as_millis().to_string()))
        }
        _ => properties,
    }
}

/// `x-processing-attempts` of a delivery; absent (or not an integer) reads as 0, as in the
/// reference.
fn attempts_of(properties: &BasicProperties) -> i32 {
    let value = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPTS_HEADER));
    let wide = match value {
        Some(AMQPValue::LongInt(v)) => i64::from(*v),
        Some(AMQPValue::ShortShortInt(v)) => i64::from(*v),
        Some(AMQPValue::ShortShortUInt(v)) => i64::from(*v),
        Some(AMQPValue::ShortInt(v)) => i64::from(*v),
        Some(AMQPValue::ShortUInt(v)) => i64::from(*v),
        Some(AMQPValue::LongUInt(v)) => i64::from(*v),
        Some(AMQPValue::LongLongInt(v)) => *v,
        _ => 0,
    };
    i32::try_from(wide).unwrap_or(i32::MAX)
}

/// Publishes to the default exchange with routing key `queue`, mandatory, and waits for the
/// confirm. A returned (unroutable) message is an error, not a success.
async fn publish_confirmed(
    channel: &Channel,
    queue: &str,
    payload: &[u8],
    attempts: i32,
    expiration: Option<Duration>,
    timeout: Duration,
) -> Result<(), EventsError> {
    let publish_error = |source| EventsError::Publish {
        queue: queue.to_owned(),
        source,
    };
    let confirm = async {
        let pending = publish_unconfirmed(channel, queue, payload, attempts, expiration).await?;
        pending.await.map_err(publish_error)
    };
    let confirmation = tokio::time::timeout(timeout, confirm).await.map_err(|_| {
        EventsError::ConfirmTimeout {
            queue: queue.to_owned(),
            timeout,
        }
    })??;
    confirmation_outcome(queue, confirmation)
}

/// Sends one publish (default exchange, routing key `queue`, mandatory) and returns the
/// broker's confirm, still to be awaited.
async fn publish_unconfirmed(
    channel: &Channel,
    queue: &str,
    payload: &[u8],
    attempts: i32,
    expiration: Option<Duration>,
) -> Result<lapin::publisher_confirm::PublisherConfirm, EventsError> {
    channel
        .basic_publish(
            "",
            queue,
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            payload,
            message_properties(attempts, expiration),
        )
        .await
        .map_err(|source| EventsError::Publish {
            queue: queue.to_owned(),
            source,
        })
}

/// A confirm as a result: only a plain ack is success (a returned message is unroutable).
fn confirmation_outcome(queue: &str, confirmation: Confirmation) -> Result<(), EventsError> {
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(EventsError::Unroutable {
            queue: queue.to_owned(),
        }),
        Confirmation::Nack(_) | Confirmation::NotRequested => Err(EventsError::Nacked {
            queue: queue.to_owned(),
        }),
    }
}

async fn close_quietly(session: Session) {
    if session.connection.status().connected() {
        if let Err(error) = session.connection.close(200, "closing").await {
            tracing::debug!(%error, "closing a RabbitMQ connection failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_properties_are_those_of_the_reference() {
        let p = message_properties(0, None);
        assert_eq!(p.delivery_mode(), &Some(2));
        assert_eq!(
            p.content_type().as_ref().map(ShortString::as_str),
            Some("text/plain")
        );
        assert_eq!(p.expiration(), &None);
        assert_eq!(attempts_of(&p), 0);
        let header = p
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get(ATTEMPTS_HEADER))
            .cloned();
        assert_eq!(header, Some(AMQPValue::LongInt(0)));
    }

    #[test]
    fn a_requeue_carries_the_next_attempt_and_a_ttl_in_milliseconds() {
        let p = message_properties(3, Some(Duration::from_secs(5)));
        assert_eq!(attempts_of(&p), 3);
        assert_eq!(
            p.expiration().as_ref().map(ShortString::as_str),
            Some("5000")
        );
    }

    #[test]
    fn a_message_without_the_attempts_header_counts_as_attempt_zero() {
        assert_eq!(attempts_of(&BasicProperties::default()), 0);
    }
}
