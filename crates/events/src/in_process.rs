//! The in-process transport: one unbounded queue per reference queue, with the same consumer
//! semantics as RabbitMQ (manual "ack", delay-queue retries on tokio timers, unprocessable
//! hand-off). For `stakingd devnet` and tests; nothing survives the process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use crate::config::ConsumerConfig;
use crate::consumer::{process, Disposition, Message, MessageHandler};
use crate::error::EventsError;
use crate::messages::QueueName;
use crate::metrics::EventsMetrics;

#[derive(Debug)]
struct Slot {
    sender: UnboundedSender<Message>,
    /// `None` while a consumer holds the receiver.
    receiver: Mutex<Option<UnboundedReceiver<Message>>>,
}

#[derive(Debug)]
struct Inner {
    slots: HashMap<QueueName, Slot>,
    next_receipt: AtomicU64,
    metrics: EventsMetrics,
}

/// Cheap to clone; clones share the queues.
#[derive(Debug, Clone)]
pub struct InProcessTransport {
    inner: Arc<Inner>,
}

impl InProcessTransport {
    /// All seven queues, empty.
    pub fn new(metrics: EventsMetrics) -> Self {
        let slots = QueueName::ALL
            .into_iter()
            .map(|queue| {
                let (sender, receiver) = mpsc::unbounded_channel();
                (
                    queue,
                    Slot {
                        sender,
                        receiver: Mutex::new(Some(receiver)),
                    },
                )
            })
            .collect();
        InProcessTransport {
            inner: Arc::new(Inner {
                slots,
                next_receipt: AtomicU64::new(1),
                metrics,
            }),
        }
    }

    fn slot(&self, queue: QueueName) -> &Slot {
        #[allow(
            clippy::expect_used,
            reason = "`new` creates a slot for every QueueName"
        )]
        self.inner
            .slots
            .get(&queue)
            .expect("every queue has a slot")
    }

    fn enqueue(&self, queue: QueueName, body: Vec<u8>, attempts: i32) -> Result<(), EventsError> {
        let receipt = self
            .inner
            .next_receipt
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        self.slot(queue)
            .sender
            .send(Message {
                queue,
                body,
                attempts,
                receipt,
            })
            .map_err(|_| EventsError::Closed {
                queue: queue.as_str().to_owned(),
            })
    }

    /// The metrics this transport records into.
    pub fn metrics(&self) -> &EventsMetrics {
        &self.inner.metrics
    }

    /// Appends a message with `x-processing-attempts` 0. Never waits: the "confirm" is the
    /// message being in the queue.
    pub async fn publish(&self, queue: QueueName, payload: &[u8]) -> Result<(), EventsError> {
        let result = self.enqueue(queue, payload.to_vec(), 0);
        match &result {
            Ok(()) => self.inner.metrics.published(queue.as_str()),
            Err(_) => self.inner.metrics.publish_failed(queue.as_str()),
        }
        result
    }

    /// Processes `queue` one message at a time until `shutdown`. A failed message comes back
    /// after `config.requeue_delay` with one more attempt; past `max_retry_attempts` it goes to
    /// `handler.unprocessable`. Only one consumer per queue at a time; after it returns the
    /// queue (and anything still in it) can be consumed again.
    pub async fn consume<H: MessageHandler>(
        &self,
        queue: QueueName,
        handler: Arc<H>,
        config: ConsumerConfig,
        shutdown: CancellationToken,
    ) -> Result<(), EventsError> {
        let slot = self.slot(queue);
        let taken = slot
            .receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(receiver) = taken else {
            return Err(EventsError::AlreadyConsumed {
                queue: queue.as_str().to_owned(),
            });
        };
        // Gives the receiver back however this future ends (returned, dropped, panicked), so
        // queued messages are never lost with it.
        let mut guard = ReceiverGuard {
            slot,
            receiver: Some(receiver),
        };
        let Some(receiver) = guard.receiver.as_mut() else {
            return Ok(());
        };
        self.inner.metrics.init_consumer(queue.as_str());
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => break,
                message = receiver.recv() => message,
            };
            // The transport holds a sender, so the channel never closes while we run.
            let Some(message) = message else { break };
            let disposition = process(
                handler.as_ref(),
                &message,
                &config,
                &self.inner.metrics,
                queue.as_str(),
            )
            .await;
            if let Disposition::Retry { attempts } = disposition {
                let transport = self.clone();
                let delay = config.requeue_delay;
                let body = message.body;
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(error) = transport.enqueue(queue, body, attempts) {
                        transport
                            .inner
                            .metrics
                            .operation_failed(crate::QueueOperation::Requeue, queue.as_str());
                        tracing::error!(%error, "in-process requeue failed");
                    }
                });
            }
        }
        Ok(())
    }
}

struct ReceiverGuard<'a> {
    slot: &'a Slot,
    receiver: Option<UnboundedReceiver<Message>>,
}

impl Drop for ReceiverGuard<'_> {
    fn drop(&mut self) {
        *self
            .slot
            .receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.receiver.take();
    }
}
