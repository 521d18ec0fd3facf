//! Prometheus metrics of the transports and the outbox relay, registered in the registry a
//! service passes in ([`EventsMetrics::register`]).
//!
//! The reference API's names are kept where they mean the same thing:
//! `event_processing_duration_seconds{queuename,status,attempts}` (one observation per consumed
//! message; `status` is the [`ConsumeOutcome`]), `unprocessable_entity_total{entity}` (messages
//! stored as unprocessable; `entity` is the queue) and
//! `queue_operation_failure_total{operation,queuename}` (a failed publish, consume, ack,
//! requeue or connect; the publishing connection, which declares every queue, is `all`). Ours: `events_published_total{queue}`,
//! `events_publish_failed_total{queue}`, `events_consumed_total{queue,outcome}` and
//! `events_outbox_backlog{outbox}` (unsent outbox rows after the relay's latest pass: the
//! producers' consumer lag).

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The reference's buckets (seconds).
const BUCKETS: [f64; 7] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Every transport and relay metric. Cheap to clone; clones share the series.
#[derive(Debug, Clone)]
pub struct EventsMetrics {
    published: IntCounterVec,
    publish_failed: IntCounterVec,
    consumed: IntCounterVec,
    processing: HistogramVec,
    unprocessable: IntCounterVec,
    operation_failures: IntCounterVec,
    outbox_backlog: IntGaugeVec,
}

/// What became of a consumed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// The handler applied it; acked.
    Applied,
    /// The handler had seen it before (at-least-once delivery); acked, nothing changed.
    Duplicate,
    /// The handler failed; re-published to the delay queue.
    Retried,
    /// The handler failed past the retry limit; handed to the unprocessable callback.
    Unprocessable,
}

impl ConsumeOutcome {
    pub const ALL: [ConsumeOutcome; 4] = [
        ConsumeOutcome::Applied,
        ConsumeOutcome::Duplicate,
        ConsumeOutcome::Retried,
        ConsumeOutcome::Unprocessable,
    ];

    /// The `outcome` / `status` label.
    pub fn label(self) -> &'static str {
        match self {
            ConsumeOutcome::Applied => "applied",
            ConsumeOutcome::Duplicate => "duplicate",
            ConsumeOutcome::Retried => "retried",
            ConsumeOutcome::Unprocessable => "unprocessable",
        }
    }

    /// Whether the message is finished (acked for good).
    pub fn is_final(self) -> bool {
        !matches!(self, ConsumeOutcome::Retried)
    }
}

/// A queue operation that can fail, the `operation` label of `queue_operation_failure_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOperation {
    Connect,
    Publish,
    Consume,
    Ack,
    /// Re-publishing a failed message to its delay queue.
    Requeue,
}

impl QueueOperation {
    pub fn label(self) -> &'static str {
        match self {
            QueueOperation::Connect => "connect",
            QueueOperation::Publish => "publish",
            QueueOperation::Consume => "consume",
            QueueOperation::Ack => "ack",
            QueueOperation::Requeue => "requeue",
        }
    }
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    #[allow(
        clippy::expect_used,
        reason = "the names and labels are constant, valid Prometheus identifiers"
    )]
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

impl EventsMetrics {
    /// Metrics not yet in any registry (see [`EventsMetrics::register`]).
    pub fn new() -> Self {
        #[allow(
            clippy::expect_used,
            reason = "the names, labels and buckets are constant and valid"
        )]
        let processing = HistogramVec::new(
            HistogramOpts::new(
                "event_processing_duration_seconds",
                "Time to process one consumed message, by queue, outcome (status) and attempt.",
            )
            .buckets(BUCKETS.to_vec()),
            &["queuename", "status", "attempts"],
        )
        .expect("valid metric definition");
        #[allow(
            clippy::expect_used,
            reason = "the name and label are constant, valid Prometheus identifiers"
        )]
        let outbox_backlog = IntGaugeVec::new(
            Opts::new(
                "events_outbox_backlog",
                "Outbox rows not yet published after the relay's latest pass, per outbox table.",
            ),
            &["outbox"],
        )
        .expect("valid metric definition");
        EventsMetrics {
            published: counter_vec(
                "events_published_total",
                "Messages published and confirmed by the transport, per queue.",
                &["queue"],
            ),
            publish_failed: counter_vec(
                "events_publish_failed_total",
                "Publishes that failed (error, nack, unroutable, timeout), per queue.",
                &["queue"],
            ),
            consumed: counter_vec(
                "events_consumed_total",
                "Consumed messages per queue and outcome (applied, duplicate, retried, unprocessable).",
                &["queue", "outcome"],
            ),
            processing,
            unprocessable: counter_vec(
                "unprocessable_entity_total",
                "Messages stored as unprocessable after the retry limit, by queue (entity).",
                &["entity"],
            ),
            operation_failures: counter_vec(
                "queue_operation_failure_total",
                "Failed queue operations (connect, publish, consume, ack, requeue) by queue.",
                &["operation", "queuename"],
            ),
            outbox_backlog,
        }
    }

    /// Adds the metrics to `registry`; fails if that registry already has them.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.published.clone()))?;
        registry.register(Box::new(self.publish_failed.clone()))?;
        registry.register(Box::new(self.consumed.clone()))?;
        registry.register(Box::new(self.processing.clone()))?;
        registry.register(Box::new(self.unprocessable.clone()))?;
        registry.register(Box::new(self.operation_failures.clone()))?;
        registry.register(Box::new(self.outbox_backlog.clone()))?;
        Ok(())
    }

    /// Creates the series of a consumed queue at zero, so dashboards and `increase()` see the
    /// first event (a counter that appears at 1 has no increase).
    pub fn init_consumer(&self, queue: &str) {
        for outcome in ConsumeOutcome::ALL {
            self.consumed.with_label_values(&[queue, outcome.label()]);
        }
        self.unprocessable.with_label_values(&[queue]);
        for operation in [
            QueueOperation::Consume,
            QueueOperation::Ack,
            QueueOperation::Requeue,
        ] {
            self.operation_failures
                .with_label_values(&[operation.label(), queue]);
        }
    }

    pub(crate) fn published(&self, queue: &str) {
        self.published.with_label_values(&[queue]).inc();
    }

    pub(crate) fn publish_failed(&self, queue: &str) {
        self.publish_failed.with_label_values(&[queue]).inc();
        self.operation_failed(QueueOperation::Publish, queue);
    }

    pub(crate) fn operation_failed(&self, operation: QueueOperation, queue: &str) {
        self.operation_failures
            .with_label_values(&[operation.label(), queue])
            .inc();
    }

    pub(crate) fn consumed(
        &self,
        queue: &str,
        outcome: ConsumeOutcome,
        attempts: i32,
        took: Duration,
    ) {
        self.consumed
            .with_label_values(&[queue, outcome.label()])
            .inc();
        self.processing
            .with_label_values(&[queue, outcome.label(), &attempts.to_string()])
            .observe(took.as_secs_f64());
        if outcome == ConsumeOutcome::Unprocessable {
            self.unprocessable.with_label_values(&[queue]).inc();
        }
    }

    /// Sets the backlog of `outbox` (a table name).
    pub fn set_outbox_backlog(&self, outbox: &str, rows: u64) {
        self.outbox_backlog
            .with_label_values(&[outbox])
            .set(i64::try_from(rows).unwrap_or(i64::MAX));
    }

    /// Published count of `queue` (full name), for tests and health output.
    pub fn published_count(&self, queue: &str) -> u64 {
        self.published.with_label_values(&[queue]).get()
    }

    /// Failed-publish count of `queue` (full name).
    pub fn publish_failed_count(&self, queue: &str) -> u64 {
        self.publish_failed.with_label_values(&[queue]).get()
    }

    /// Consumed count of `queue` (full name) with `outcome`.
    pub fn consumed_count(&self, queue: &str, outcome: ConsumeOutcome) -> u64 {
        self.consumed
            .with_label_values(&[queue, outcome.label()])
            .get()
    }

    /// Messages of `queue` (full name) finished for good: applied, duplicate or unprocessable.
    pub fn finished_count(&self, queue: &str) -> u64 {
        ConsumeOutcome::ALL
            .into_iter()
            .filter(|o| o.is_final())
            .map(|o| self.consumed_count(queue, o))
            .sum()
    }
}

impl Default for EventsMetrics {
    fn default() -> Self {
        EventsMetrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_counters_appear_in_the_registry_output() {
        let registry = Registry::new();
        let metrics = EventsMetrics::new();
        metrics.register(&registry).unwrap();
        metrics.published("btc_info_queue");
        metrics.consumed(
            "btc_info_queue",
            ConsumeOutcome::Retried,
            0,
            Duration::from_millis(3),
        );
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.get_name().to_owned())
            .collect();
        for name in [
            "events_published_total",
            "events_consumed_total",
            "event_processing_duration_seconds",
        ] {
            assert!(names.contains(&name.to_owned()), "{name}: {names:?}");
        }
        assert_eq!(metrics.published_count("btc_info_queue"), 1);
        assert_eq!(
            metrics.consumed_count("btc_info_queue", ConsumeOutcome::Retried),
            1
        );
        assert_eq!(metrics.finished_count("btc_info_queue"), 0);
    }

    #[test]
    fn an_unprocessable_message_counts_in_the_reference_counter_and_failures_by_operation() {
        let registry = Registry::new();
        let metrics = EventsMetrics::new();
        metrics.register(&registry).unwrap();
        metrics.consumed("q", ConsumeOutcome::Unprocessable, 4, Duration::ZERO);
        metrics.publish_failed("q");
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        assert!(
            text.contains("unprocessable_entity_total{entity=\"q\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("queue_operation_failure_total{operation=\"publish\",queuename=\"q\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "event_processing_duration_seconds_count{attempts=\"4\",queuename=\"q\",status=\"unprocessable\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn registering_twice_in_one_registry_fails() {
        let registry = Registry::new();
        let metrics = EventsMetrics::new();
        metrics.register(&registry).unwrap();
        assert!(metrics.register(&registry).is_err());
    }
}
