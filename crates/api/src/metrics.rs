//! Prometheus metrics of the API (`/metrics` on a separate listener, as the reference).

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, Registry};

/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    http: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let http = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request duration by endpoint and status",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["endpoint", "status"],
        );
        let http = match http {
            Ok(h) => {
                if let Err(e) = registry.register(Box::new(h.clone())) {
                    tracing::warn!(error = %e, "cannot register http metric");
                }
                h
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot create http metric");
                #[allow(clippy::expect_used, reason = "a constant, valid metric definition")]
                HistogramVec::new(
                    HistogramOpts::new("http_fallback", "fallback"),
                    &["endpoint", "status"],
                )
                .expect("valid metric")
            }
        };
        Metrics { registry, http }
    }

    pub fn observe_http(&self, endpoint: &str, status: axum::http::StatusCode, elapsed: Duration) {
        self.http
            .with_label_values(&[endpoint, status.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
