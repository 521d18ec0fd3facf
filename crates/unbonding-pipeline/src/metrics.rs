//! Prometheus metrics, in a registry of their own per pipeline (several pipelines can share a
//! process, e.g. in tests), served on `/metrics` with `/health`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;
use bitcoin::secp256k1::PublicKey;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio_util::sync::CancellationToken;

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
                "Duration of one covenant signer call",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0]),
            &[],
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
        registry.register(Box::new(by_state.clone())).map_err(err)?;
        Ok(Self {
            registry,
            requests,
            signer_requests,
            signer_latency,
            attempt_latency,
            by_state,
        })
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

    pub fn signer_latency(&self, d: Duration) {
        self.signer_latency
            .with_label_values(&[])
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

    /// Binds `addr` (a taken port is reported at start) and serves until `shutdown`.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), PipelineError> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            PipelineError::Metrics(format!(
                "cannot listen on {addr}: {e} (set metrics_addr to a free host:port, or `off`)"
            ))
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| PipelineError::Metrics(e.to_string()))?;
        let metrics = self.clone();
        let app = Router::new()
            .route(
                "/metrics",
                get(move || {
                    let metrics = metrics.clone();
                    async move {
                        match metrics.render() {
                            Ok(text) => (
                                StatusCode::OK,
                                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                                text,
                            ),
                            Err(e) => (
                                StatusCode::INTERNAL_SERVER_ERROR,
                                [(header::CONTENT_TYPE, "text/plain")],
                                e.to_string(),
                            ),
                        }
                    }
                }),
            )
            .route("/health", get(|| async { "ok" }));
        let handle = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "metrics endpoint stopped");
            }
        });
        Ok((local, handle))
    }
}
