//! What a consumer does with one message: the reference API's retry rules
//! (`docs/reference.md#consuming-and-retries`), shared by both transports so they cannot drift
//! apart.

use std::future::Future;
use std::time::Instant;

use tokio::time::timeout;

use crate::config::ConsumerConfig;
use crate::error::HandlerError;
use crate::messages::QueueName;
use crate::metrics::{ConsumeOutcome, EventsMetrics};

/// One delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The queue it was read from.
    pub queue: QueueName,
    /// The body as published (JSON, see [`crate::Event::decode`]).
    pub body: Vec<u8>,
    /// `x-processing-attempts`: 0 on first delivery, +1 per retry.
    pub attempts: i32,
    /// The delivery's receipt (the delivery tag, as the reference stores it).
    pub receipt: String,
}

/// What the handler did with a message it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Its effect was applied (or it was recognised as already outdated).
    Applied,
    /// This exact message had been applied before (a redelivery); nothing changed.
    Duplicate,
}

/// The service's side of a consumer: process a message, or keep one that keeps failing.
///
/// Both methods may be called again for the same message (at-least-once delivery): they must be
/// idempotent.
pub trait MessageHandler: Send + Sync + 'static {
    /// Processes one message. Any error sends it to the delay queue for another attempt.
    fn handle(
        &self,
        message: &Message,
    ) -> impl Future<Output = Result<Handled, HandlerError>> + Send;

    /// Stores a message that failed more than `max_retry_attempts` times (the reference keeps
    /// `{message_body, receipt}` for a later `--replay`). If this fails too, the message goes
    /// back to the delay queue with its attempt count unchanged.
    fn unprocessable(
        &self,
        message: &Message,
        last_error: &HandlerError,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// What the transport must do with a message after the handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Acknowledge it: processed, or kept as unprocessable.
    Ack,
    /// Re-publish it to the delay queue with this attempt count, then acknowledge the original.
    Retry {
        /// The new `x-processing-attempts`.
        attempts: i32,
    },
}

/// Runs the handler under the processing deadline and applies the retry rules.
pub(crate) async fn process<H: MessageHandler>(
    handler: &H,
    message: &Message,
    config: &ConsumerConfig,
    metrics: &EventsMetrics,
    queue_label: &str,
) -> Disposition {
    let started = Instant::now();
    let consumed =
        |outcome| metrics.consumed(queue_label, outcome, message.attempts, started.elapsed());
    let result = match timeout(config.processing_timeout, handler.handle(message)).await {
        Ok(result) => result,
        Err(_) => Err(HandlerError::new(format!(
            "processing took longer than {:?}",
            config.processing_timeout
        ))),
    };
    let error = match result {
        Ok(Handled::Applied) => {
            consumed(ConsumeOutcome::Applied);
            return Disposition::Ack;
        }
        Ok(Handled::Duplicate) => {
            consumed(ConsumeOutcome::Duplicate);
            return Disposition::Ack;
        }
        Err(error) => error,
    };
    if message.attempts > config.max_retry_attempts {
        match handler.unprocessable(message, &error).await {
            Ok(()) => {
                tracing::error!(
                    queue = queue_label,
                    attempts = message.attempts,
                    error = %error,
                    "message failed past the retry limit; stored as unprocessable"
                );
                consumed(ConsumeOutcome::Unprocessable);
                Disposition::Ack
            }
            Err(store_error) => {
                tracing::error!(
                    queue = queue_label,
                    error = %store_error,
                    "storing an unprocessable message failed; it goes back to the delay queue"
                );
                consumed(ConsumeOutcome::Retried);
                Disposition::Retry {
                    attempts: message.attempts,
                }
            }
        }
    } else {
        tracing::warn!(
            queue = queue_label,
            attempts = message.attempts,
            error = %error,
            "message processing failed; it will be retried after the requeue delay"
        );
        consumed(ConsumeOutcome::Retried);
        Disposition::Retry {
            attempts: message.attempts.saturating_add(1),
        }
    }
}
