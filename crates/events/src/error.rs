//! Errors of this crate, each classified transient (retry) or permanent (stop and say why).

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use lapin::protocol::{AMQPErrorKind, AMQPSoftError};

/// A message body that is not the expected queue message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body is not the JSON shape of the queue's message.
    #[error("message on {queue} is not valid: {source}")]
    Json {
        /// The queue the body was read from.
        queue: &'static str,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// `event_type` names no known event.
    #[error("unknown event_type {0}")]
    UnknownEventType(u8),
    /// A queue name that is not one of the seven reference queues.
    #[error("unknown queue name {0:?}")]
    UnknownQueue(String),
}

/// A failure of a transport: connecting, declaring, publishing, consuming, acknowledging.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The broker could not be reached or refused the connection (or the login).
    #[error("cannot connect to RabbitMQ at {uri}: {}", connect_reason(.error))]
    Connect {
        /// The URI with the password redacted.
        uri: String,
        /// What lapin said; the message says it in its own words, once.
        error: lapin::Error,
    },
    /// Declaring an exchange, a queue or a binding failed (PRECONDITION_FAILED means an existing
    /// queue has other arguments, e.g. another `queue_type`).
    #[error("declaring {what} failed: {source}")]
    Declare {
        /// Which object, e.g. `queue "active_staking_queue_delay"`.
        what: String,
        /// What lapin said.
        #[source]
        source: lapin::Error,
    },
    /// The publish itself failed (channel or connection closed, I/O).
    #[error("publishing to queue {queue} failed: {source}")]
    Publish {
        /// The full queue name.
        queue: String,
        /// What lapin said.
        #[source]
        source: lapin::Error,
    },
    /// The broker answered the publish with a nack.
    #[error("broker refused (nack) the message for queue {queue}")]
    Nacked {
        /// The full queue name.
        queue: String,
    },
    /// The broker returned the mandatory message: no queue of that name is bound.
    #[error("message for queue {queue} was returned as unroutable (the queue does not exist)")]
    Unroutable {
        /// The full queue name.
        queue: String,
    },
    /// No confirm arrived in time.
    #[error("no broker confirm for the message to queue {queue} within {timeout:?}")]
    ConfirmTimeout {
        /// The full queue name.
        queue: String,
        /// The configured publish timeout.
        timeout: Duration,
    },
    /// Starting a consumer or receiving from it failed.
    #[error("consuming queue {queue} failed: {source}")]
    Consume {
        /// The full queue name.
        queue: String,
        /// What lapin said.
        #[source]
        source: lapin::Error,
    },
    /// Acknowledging a delivery failed; the broker will redeliver it.
    #[error("acknowledging delivery {delivery_tag} on queue {queue} failed: {source}")]
    Ack {
        /// The full queue name.
        queue: String,
        /// The delivery tag.
        delivery_tag: u64,
        /// What lapin said.
        #[source]
        source: lapin::Error,
    },
    /// The in-process queue is gone (its consumer panicked while holding it).
    #[error("in-process queue {queue} is closed")]
    Closed {
        /// The queue name.
        queue: String,
    },
    /// A second consumer for one queue of an in-process transport.
    #[error("queue {queue} already has a consumer in this process")]
    AlreadyConsumed {
        /// The queue name.
        queue: String,
    },
}

impl EventsError {
    /// Whether retrying later can succeed. Permanent errors are configuration mismatches (e.g.
    /// PRECONDITION_FAILED on a declare, wrong credentials) and programming errors.
    pub fn is_transient(&self) -> bool {
        match self {
            EventsError::Connect { error, .. } => lapin_error_is_transient(error),
            EventsError::Declare { source, .. }
            | EventsError::Publish { source, .. }
            | EventsError::Consume { source, .. }
            | EventsError::Ack { source, .. } => lapin_error_is_transient(source),
            EventsError::Nacked { .. }
            | EventsError::Unroutable { .. }
            | EventsError::ConfirmTimeout { .. } => true,
            EventsError::AlreadyConsumed { .. } | EventsError::Closed { .. } => false,
        }
    }
}

/// Why a connection failed, in one clause without lapin's Debug dumps or repeated causes: the
/// OS's words for I/O, "login refused" for a wrong user or password, the broker's reply text for
/// anything else it closed the connection with.
fn connect_reason(error: &lapin::Error) -> String {
    match error {
        lapin::Error::IOError(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is RabbitMQ running and listening on that host and port?)"
                .to_owned()
        }
        lapin::Error::IOError(io) => io.to_string(),
        lapin::Error::ProtocolError(amqp)
            if matches!(
                amqp.kind(),
                AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)
            ) =>
        {
            format!(
                "the broker refused the login: wrong user or password, or no access to the \
                 vhost ({})",
                amqp.get_message()
            )
        }
        lapin::Error::ProtocolError(amqp) => format!("the broker said {}", amqp.get_message()),
        lapin::Error::InvalidConnectionState(_) => {
            "the broker closed the connection during the handshake".to_owned()
        }
        other => other.to_string(),
    }
}

/// I/O, closed channels and connections and most broker errors pass; a refused login, a
/// mismatching declaration or a malformed frame do not.
pub(crate) fn lapin_error_is_transient(error: &lapin::Error) -> bool {
    match error {
        lapin::Error::ProtocolError(amqp) => !matches!(
            amqp.kind(),
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED | AMQPSoftError::ACCESSREFUSED)
        ),
        lapin::Error::InvalidProtocolVersion(_)
        | lapin::Error::ParsingError(_)
        | lapin::Error::SerialisationError(_) => false,
        _ => true,
    }
}

/// Why a consumer's handler could not process a message. Every handler error is retried through
/// the delay queue, as in the reference consumer (`docs/reference.md#consuming-and-retries`).
pub struct HandlerError(Box<dyn StdError + Send + Sync>);

impl HandlerError {
    /// Wraps a message or an error: `HandlerError::new("state not found")`,
    /// `HandlerError::new(db_error)`.
    pub fn new(reason: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        HandlerError(reason.into())
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for HandlerError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

impl From<DecodeError> for HandlerError {
    fn from(e: DecodeError) -> Self {
        HandlerError::new(e)
    }
}
