//! Prometheus counters of the transports, registered in the registry a service passes in.

use prometheus::{IntCounterVec, Opts, Registry};

/// Published / failed publishes per queue, consumed messages per queue and outcome.
#[derive(Debug, Clone)]
pub struct EventsMetrics {
    published: IntCounterVec,
    publish_failed: IntCounterVec,
    consumed: IntCounterVec,
}

/// What became of a consumed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// The handler succeeded; acked.
    Processed,
    /// The handler failed; re-published to the delay queue.
    Retried,
    /// The handler failed past the retry limit; handed to the unprocessable callback.
    Unprocessable,
}

impl ConsumeOutcome {
    fn label(self) -> &'static str {
        match self {
            ConsumeOutcome::Processed => "processed",
            ConsumeOutcome::Retried => "retried",
            ConsumeOutcome::Unprocessable => "unprocessable",
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
    /// Counters not yet in any registry (see [`EventsMetrics::register`]).
    pub fn new() -> Self {
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
                "Consumed messages per queue and outcome (processed, retried, unprocessable).",
                &["queue", "outcome"],
            ),
        }
    }

    /// Adds the counters to `registry`; fails if that registry already has them.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.published.clone()))?;
        registry.register(Box::new(self.publish_failed.clone()))?;
        registry.register(Box::new(self.consumed.clone()))?;
        Ok(())
    }

    pub(crate) fn published(&self, queue: &str) {
        self.published.with_label_values(&[queue]).inc();
    }

    pub(crate) fn publish_failed(&self, queue: &str) {
        self.publish_failed.with_label_values(&[queue]).inc();
    }

    pub(crate) fn consumed(&self, queue: &str, outcome: ConsumeOutcome) {
        self.consumed
            .with_label_values(&[queue, outcome.label()])
            .inc();
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
        metrics.consumed("btc_info_queue", ConsumeOutcome::Retried);
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.get_name().to_owned())
            .collect();
        assert!(
            names.contains(&"events_published_total".to_owned()),
            "{names:?}"
        );
        assert!(
            names.contains(&"events_consumed_total".to_owned()),
            "{names:?}"
        );
        assert_eq!(metrics.published_count("btc_info_queue"), 1);
        assert_eq!(
            metrics.consumed_count("btc_info_queue", ConsumeOutcome::Retried),
            1
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
