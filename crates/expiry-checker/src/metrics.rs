//! Prometheus metrics: the reference checker's (`poll_duration_seconds{status}`,
//! `btcclient_duration_seconds{function,status}`, `queue_send_error_count`) plus ours: tip,
//! timelock backlog, emitted events by path, duplicate rows. Registered in a registry owned by
//! the caller (no globals), served at `/metrics`.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Buckets of the reference (seconds).
const BUCKETS: [f64; 7] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Every expiry-checker metric.
#[derive(Debug, Clone)]
pub struct ExpiryMetrics {
    /// One poll (tip + all claims), by `status` (`success` / `failure`).
    pub poll_duration: HistogramVec,
    /// Node calls, by `function` and `status`.
    pub btcclient_duration: HistogramVec,
    /// Relay passes that failed to publish.
    pub queue_send_errors: IntCounter,
    /// The tip used by the last poll.
    pub tip_height: IntGauge,
    /// Timelock rows waiting (not yet expired, or expired and not yet claimed).
    pub timelock_rows: IntGauge,
    /// Expired events written to the outbox, by `tx_type`.
    pub emitted: IntCounterVec,
    /// Timelock rows removed whose expiry had been emitted before.
    pub duplicate_rows: IntCounter,
}

impl ExpiryMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = ExpiryMetrics {
            poll_duration: HistogramVec::new(
                HistogramOpts::new("poll_duration_seconds", "duration of one expiry poll")
                    .buckets(BUCKETS.to_vec()),
                &["status"],
            )?,
            btcclient_duration: HistogramVec::new(
                HistogramOpts::new("btcclient_duration_seconds", "duration of bitcoind calls")
                    .buckets(BUCKETS.to_vec()),
                &["function", "status"],
            )?,
            queue_send_errors: IntCounter::new(
                "queue_send_error_count",
                "expiry outbox relay passes that failed to publish",
            )?,
            tip_height: IntGauge::new("expiry_btc_tip_height", "tip used by the last poll")?,
            timelock_rows: IntGauge::new(
                "expiry_timelock_rows",
                "timelock rows waiting in the queue after the last poll",
            )?,
            emitted: IntCounterVec::new(
                Opts::new(
                    "expiry_events_emitted_total",
                    "expired events written to the outbox, by tx_type",
                ),
                &["tx_type"],
            )?,
            duplicate_rows: IntCounter::new(
                "expiry_duplicate_rows_total",
                "timelock rows removed whose expiry had already been emitted",
            )?,
        };
        registry.register(Box::new(m.poll_duration.clone()))?;
        registry.register(Box::new(m.btcclient_duration.clone()))?;
        registry.register(Box::new(m.queue_send_errors.clone()))?;
        registry.register(Box::new(m.tip_height.clone()))?;
        registry.register(Box::new(m.timelock_rows.clone()))?;
        registry.register(Box::new(m.emitted.clone()))?;
        registry.register(Box::new(m.duplicate_rows.clone()))?;
        Ok(m)
    }
}
