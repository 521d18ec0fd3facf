//! Helpers of the relay tests: an in-memory stand-in for the store's outbox tables, a
//! publisher that fails on chosen calls, a collecting consumer, broker-side connection closing.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events::{
    EventsError, EventsMetrics, InProcessTransport, Outbox, OutboxError, OutboxRow, Publish,
    QueueName, QueueType, RabbitMqTransport, RelayConfig, Transport,
};
use tokio_util::sync::CancellationToken;

use super::{broker, wait_until, Cleanup, Recorder};

#[derive(Debug)]
pub struct Down;

impl fmt::Display for Down {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("database unreachable")
    }
}

impl std::error::Error for Down {}

/// Rows as the store keeps them, with switchable failures.
#[derive(Default)]
pub struct MemoryOutbox {
    pub rows: Mutex<Vec<(OutboxRow, bool)>>,
    pub failing_fetches: AtomicU32,
    pub failing_marks: AtomicU32,
    pub permanent_failure: std::sync::atomic::AtomicBool,
    pub fetches: AtomicU32,
}

impl MemoryOutbox {
    pub fn insert(&self, queue: &str, payload: &str) -> i64 {
        let mut rows = self.rows.lock().unwrap();
        let id = rows.len() as i64 + 1;
        rows.push((
            OutboxRow {
                id,
                queue: queue.to_owned(),
                payload: payload.to_owned(),
            },
            false,
        ));
        id
    }

    pub fn unsent_ids(&self) -> Vec<i64> {
        self.rows
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, sent)| !sent)
            .map(|(row, _)| row.id)
            .collect()
    }

    pub fn take_failure(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl Outbox for MemoryOutbox {
    async fn fetch_unsent(&self, limit: usize) -> Result<Vec<OutboxRow>, OutboxError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self.permanent_failure.load(Ordering::SeqCst) {
            return Err(OutboxError::Permanent(Box::new(Down)));
        }
        if Self::take_failure(&self.failing_fetches) {
            return Err(OutboxError::Transient(Box::new(Down)));
        }
        let rows = self.rows.lock().unwrap();
        // Deliberately newest first: the relay must not rely on the store's order.
        let mut unsent: Vec<OutboxRow> = rows
            .iter()
            .filter(|(_, sent)| !sent)
            .map(|(r, _)| r.clone())
            .collect();
        unsent.truncate(limit);
        unsent.reverse();
        Ok(unsent)
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), OutboxError> {
        if Self::take_failure(&self.failing_marks) {
            return Err(OutboxError::Transient(Box::new(Down)));
        }
        for (row, sent) in self.rows.lock().unwrap().iter_mut() {
            if ids.contains(&row.id) {
                *sent = true;
            }
        }
        Ok(())
    }
}

/// The real transport, except that the publishes with these call numbers fail.
pub struct FailingOn<P> {
    pub inner: P,
    pub failing_calls: HashSet<usize>,
    pub calls: AtomicUsize,
}

impl<P: Publish> Publish for FailingOn<P> {
    async fn publish(&self, queue: QueueName, payload: &[u8]) -> Result<(), EventsError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing_calls.contains(&call) {
            return Err(EventsError::Nacked {
                queue: queue.as_str().to_owned(),
            });
        }
        self.inner.publish(queue, payload).await
    }
}

pub fn fast() -> RelayConfig {
    RelayConfig {
        batch_size: 100,
        poll_interval: Duration::from_secs(60),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    }
}

/// A consumer on `queue` that accepts everything and records it.
pub struct Collector {
    pub recorder: Arc<Recorder>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), EventsError>>,
}

impl Collector {
    pub fn start(transport: &Transport, queue: QueueName) -> Self {
        let recorder = Arc::new(Recorder::new(|_, _| false));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let (t, r, s) = (transport.clone(), recorder.clone(), shutdown.clone());
            async move { t.consume(queue, r, Default::default(), s).await }
        });
        Collector {
            recorder,
            shutdown,
            task,
        }
    }

    pub async fn wait_for(&self, count: usize) -> Vec<String> {
        let r = self.recorder.clone();
        assert!(
            wait_until(Duration::from_secs(20), || r.calls().len() >= count).await,
            "got {:?}",
            r.bodies()
        );
        // Anything extra would show up now.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.recorder.bodies()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

pub fn in_process() -> Transport {
    Transport::InProcess(InProcessTransport::new(EventsMetrics::new()))
}

pub async fn rabbitmq(test: &str) -> Option<(Transport, RabbitMqTransport, Cleanup)> {
    let config = broker(test, QueueType::Quorum).await?;
    let cleanup = Cleanup(config.naming());
    let rabbit = RabbitMqTransport::connect(config, EventsMetrics::new())
        .await
        .unwrap();
    Some((Transport::RabbitMq(rabbit.clone()), rabbit, cleanup))
}

pub fn numbered(
    outbox: &MemoryOutbox,
    queue: QueueName,
    range: std::ops::RangeInclusive<usize>,
) -> Vec<String> {
    range
        .map(|i| {
            let payload = format!("{{\"n\":{i}}}");
            outbox.insert(queue.as_str(), &payload);
            payload
        })
        .collect()
}

/// Closes, broker side, every connection whose client name contains `fragment` (as a broker
/// restart or a network cut would). `Err` (why) when `rabbitmqctl` cannot be run here.
pub fn close_connections_named(fragment: &str) -> Result<usize, String> {
    let listing = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "client_properties"])
        .output();
    let listing = match listing {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => {
            return Err(format!(
                "rabbitmqctl list_connections: {}, {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
        Err(e) => return Err(format!("rabbitmqctl: {e}")),
    };
    let mut closed = 0;
    for line in listing.lines().filter(|l| l.contains(fragment)) {
        let pid = line.split('\t').next().unwrap_or_default();
        let status = std::process::Command::new("rabbitmqctl")
            .args([
                "-q",
                "close_connection",
                pid,
                "test: simulated connection loss",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "closing {pid}");
        closed += 1;
    }
    Ok(closed)
}
