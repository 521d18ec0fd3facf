//! Prometheus metrics, in a registry of their own per pipeline (several pipelines can share a
//! process, e.g. in tests), served by [`net::Ops`] on `/metrics` with the health endpoints.

use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::error::PipelineError;

/// The pipeline's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    signer_requests: IntCounterVec,
    signer_latency: HistogramVec,
    attempt_latency: HistogramVec,
    by_state: IntGaugeVec,
    committee_margin: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, PipelineError> {
        let registry = Registry::new();
        let err = |e: prometheus::Error| PipelineError::Metrics(e.to_string());
        let requests = IntCounterVec::new(
            Opts::new(
                "unbonding_pipeline_requests_total",
                "Attempts at unbonding requests by outcome: sent, already_sent, failed_<kind>, \
                 retry_<kind>, lease_lost",
            ),
            &["outcome"],
        )
        .map_err(err)?;
        let signer_requests = IntCounterVec::new(
            Opts::new(
                "unbonding_pipeline_signer_requests_total",
                "Covenant signer calls by member and result (valid, timeout, unreachable, \
                 http_error, garbage, invalid_signature, no_endpoint)",
            ),
            &["covenant_pk", "result"],
        )
        .map_err(err)?;
        let signer_latency = HistogramVec::new(
            HistogramOpts::new(
                "unbonding_pipeline_signer_seconds",
                "Duration of one covenant signer call, by member",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0]),
            &["covenant_pk"],
        )
        .map_err(err)?;
        let attempt_latency = HistogramVec::new(
            HistogramOpts::new(
                "unbonding_pipeline_attempt_seconds",
                "Duration of one attempt at a request, checks to recorded outcome",
            )
            .buckets(vec![0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0]),
            &[],
        )
        .map_err(err)?;
        let by_state = IntGaugeVec::new(
            Opts::new(
                "unbonding_pipeline_requests",
                "Unbonding requests in the database by state (after the latest pass)",
            ),
            &["state"],
        )
        .map_err(err)?;
        registry.register(Box::new(requests.clone())).map_err(err)?;
        registry
            .register(Box::new(signer_requests.clone()))
            .map_err(err)?;
        registry
            .register(Box::new(signer_latency.clone()))
            .map_err(err)?;
        registry
            .register(Box::new(attempt_latency.clone()))
            .map_err(err)?;
        let committee_margin = IntGauge::new(
            "unbonding_pipeline_committee_margin",
            "Members of the last request's committee not (yet) seen failing, minus its quorum: \
             0 means one more failing signer stops unbondings, below 0 means they stopped",
        )
        .map_err(err)?;
        registry.register(Box::new(by_state.clone())).map_err(err)?;
        registry
            .register(Box::new(committee_margin.clone()))
            .map_err(err)?;
        for outcome in ["sent", "already_sent", "lease_lost"] {
            requests.with_label_values(&[outcome]);
        }
        Ok(Self {
            registry,
            requests,
            signer_requests,
            signer_latency,
            attempt_latency,
            by_state,
            committee_margin,
        })
    }

    /// The registry to serve.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records the margin of the last signature collection (see the metric's help).
    pub fn committee_margin(&self, members: usize, failed: usize, quorum: usize) {
        let margin = i64::try_from(members.saturating_sub(failed)).unwrap_or(i64::MAX)
            - i64::try_from(quorum).unwrap_or(i64::MAX);
        self.committee_margin.set(margin);
    }

    pub fn outcome(&self, label: &str) {
        self.requests.with_label_values(&[label]).inc();
    }

    /// The count for one outcome label (tests, summaries).
    pub fn outcome_count(&self, label: &str) -> u64 {
        self.requests.with_label_values(&[label]).get()
    }

    pub fn signer_result(&self, key: &PublicKey, result: &str) {
        self.signer_requests
            .with_label_values(&[&key.to_string(), result])
            .inc();
    }

    /// The count of one member's results of one kind.
    pub fn signer_count(&self, key: &PublicKey, result: &str) -> u64 {
        self.signer_requests
            .with_label_values(&[&key.to_string(), result])
            .get()
    }

    pub fn signer_latency(&self, key: &PublicKey, d: Duration) {
        self.signer_latency
            .with_label_values(&[&key.to_string()])
            .observe(d.as_secs_f64());
    }

    pub fn attempt_latency(&self, d: Duration) {
        self.attempt_latency
            .with_label_values(&[])
            .observe(d.as_secs_f64());
    }

    pub fn set_state_counts(&self, counts: &[(String, i64)]) {
        for state in ["accepted", "claimed", "sent", "failed"] {
            let n = counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            self.by_state.with_label_values(&[state]).set(n);
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<String, PipelineError> {
        let mut body = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut body)
            .map_err(|e| PipelineError::Metrics(e.to_string()))?;
        String::from_utf8(body).map_err(|e| PipelineError::Metrics(e.to_string()))
    }
}
