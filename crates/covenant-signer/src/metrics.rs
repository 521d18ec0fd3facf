//! Prometheus metrics: every request counted by outcome, malformed and refused-at-the-door ones
//! included (the reference counts only requests that parsed).
//!
//! The reference's three counter names are kept for dashboards that already use them, with
//! their documented meaning: `signer_failed_signing_requests` counts 400 and 500 answers alike.

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

/// Why a request ended the way it did; the `outcome` label of `signer_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Signed,
    Malformed,
    Refused,
    Internal,
    Unauthorized,
    RateLimited,
    TooLarge,
}

impl Outcome {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Signed => "signed",
            Self::Malformed => "malformed",
            Self::Refused => "refused",
            Self::Internal => "internal_error",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::TooLarge => "too_large",
        }
    }

    const ALL: [Self; 7] = [
        Self::Signed,
        Self::Malformed,
        Self::Refused,
        Self::Internal,
        Self::Unauthorized,
        Self::RateLimited,
        Self::TooLarge,
    ];
}

/// The signer's metrics, on their own registry (one per server, so tests do not share counts).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    received: IntCounter,
    succeeded: IntCounter,
    failed: IntCounter,
    duration: Histogram,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "signer_requests_total",
                "Signing requests by outcome, including malformed, unauthorized, rate-limited and oversized ones",
            ),
            &["outcome"],
        )?;
        let received = IntCounter::new(
            "signer_received_signing_requests",
            "Signing requests whose body parsed (reference metric)",
        )?;
        let succeeded = IntCounter::new(
            "signer_succeeded_signing_requests",
            "Signing requests answered with a signature (reference metric)",
        )?;
        let failed = IntCounter::new(
            "signer_failed_signing_requests",
            "Parsed signing requests refused (400) or failed (500) (reference metric)",
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "signer_request_duration_seconds",
                "Time to answer a signing request that reached the handler",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0,
            ]),
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(received.clone()))?;
        registry.register(Box::new(succeeded.clone()))?;
        registry.register(Box::new(failed.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        for outcome in Outcome::ALL {
            requests.with_label_values(&[outcome.label()]);
        }
        Ok(Self {
            registry,
            requests,
            received,
            succeeded,
            failed,
            duration,
        })
    }

    /// The registry to serve.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one finished request.
    pub fn record(&self, outcome: Outcome) {
        self.requests.with_label_values(&[outcome.label()]).inc();
        match outcome {
            Outcome::Signed => {
                self.received.inc();
                self.succeeded.inc();
            }
            Outcome::Refused | Outcome::Internal => {
                self.received.inc();
                self.failed.inc();
            }
            Outcome::Malformed
            | Outcome::Unauthorized
            | Outcome::RateLimited
            | Outcome::TooLarge => {}
        }
    }

    /// Records how long a handled request took.
    pub fn observe_duration(&self, seconds: f64) {
        self.duration.observe(seconds);
    }

    /// How many requests ended with `outcome` (for tests and health output).
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.requests.with_label_values(&[outcome.label()]).get()
    }

    /// The text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
