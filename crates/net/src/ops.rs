//! The operations endpoint every service serves, written once: `/metrics` (Prometheus text),
//! `/health` (the process answers: `ok`, as before), `/health/live` (liveness: the process
//! runs) and `/health/ready` (readiness: every dependency answers, else `503` with a JSON
//! reason), on its own listener through this crate's hardened [`crate::Server`].
//!
//! A service builds an [`Ops`] from its Prometheus registries and named readiness checks
//! ([`OpsBuilder::check`]: the node, the database, the broker, the indexer's lag…) and serves it with
//! [`Ops::spawn`]. Readiness results are cached for a short time ([`DEFAULT_READY_CACHE`]) so a
//! probe every second costs the dependencies one query per cache period, and each check is
//! bounded by [`DEFAULT_CHECK_TIMEOUT`] so a black-holed dependency makes the probe fail, not
//! hang. Several registries can be merged into one `/metrics` (the all-in-one `stakingd devnet`),
//! each with its own constant labels so equal metric names from two instances stay apart.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::proto::{LabelPair, MetricFamily};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::server::Server;

/// How long a readiness result is reused.
pub const DEFAULT_READY_CACHE: Duration = Duration::from_secs(2);
/// How long one readiness check may take before it counts as failed.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the ops endpoint could not start or render.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("cannot listen on {addr}: {source} (set metrics_addr to a free host:port, or `off`)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the metrics: {0}")]
    Encode(String),
}

/// The future of one readiness check: `Err` carries the sentence shown in the `503` body.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

struct Source {
    labels: Vec<(String, String)>,
    registry: Registry,
}

struct Inner {
    sources: Vec<Source>,
    checks: Vec<(&'static str, CheckFn)>,
    cache_for: Duration,
    check_timeout: Duration,
    cached: Mutex<Option<(Instant, Readiness)>>,
}

/// Registries and readiness checks of one service (or of several, merged). Cheap to clone.
#[derive(Clone)]
pub struct Ops {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("sources", &self.inner.sources.len())
            .field(
                "checks",
                &self.inner.checks.iter().map(|c| c.0).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// One check's result in the readiness body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The readiness body: `status` is `ready` or `not_ready`; `reason` names the first failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub checks: BTreeMap<&'static str, CheckResult>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

/// Builds an [`Ops`]; see the module doc.
#[derive(Default)]
pub struct OpsBuilder {
    sources: Vec<Source>,
    checks: Vec<(&'static str, CheckFn)>,
    cache_for: Option<Duration>,
    check_timeout: Option<Duration>,
}

impl std::fmt::Debug for OpsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsBuilder").finish_non_exhaustive()
    }
}

impl OpsBuilder {
    /// Serves `registry` as it is.
    pub fn registry(self, registry: &Registry) -> Self {
        self.labelled_registry(&[], registry)
    }

    /// Serves `registry` with `labels` added to every sample (e.g. `service="signer-1"`), so
    /// two instances of one service can share a `/metrics`.
    pub fn labelled_registry(mut self, labels: &[(&str, &str)], registry: &Registry) -> Self {
        self.sources.push(Source {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            registry: registry.clone(),
        });
        self
    }

    /// Adds a readiness check called `name` (`node`, `database`, `broker`, …).
    pub fn check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(check()) as CheckFuture)));
        self
    }

    /// How long a readiness result is reused [default: [`DEFAULT_READY_CACHE`]].
    pub fn cache_for(mut self, period: Duration) -> Self {
        self.cache_for = Some(period);
        self
    }

    /// How long one check may take [default: [`DEFAULT_CHECK_TIMEOUT`]].
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = Some(timeout);
        self
    }

    pub fn build(self) -> Ops {
        Ops {
            inner: Arc::new(Inner {
                sources: self.sources,
                checks: self.checks,
                cache_for: self.cache_for.unwrap_or(DEFAULT_READY_CACHE),
                check_timeout: self.check_timeout.unwrap_or(DEFAULT_CHECK_TIMEOUT),
                cached: Mutex::new(None),
            }),
        }
    }
}

impl Ops {
    pub fn builder() -> OpsBuilder {
        OpsBuilder::default()
    }

    /// Every family of every registry, with each source's labels added; families of the same
    /// name from several sources are merged into one.
    pub fn gather(&self) -> Vec<MetricFamily> {
        let mut merged: BTreeMap<String, MetricFamily> = BTreeMap::new();
        for source in &self.inner.sources {
            for mut family in source.registry.gather() {
                if !source.labels.is_empty() {
                    for metric in family.mut_metric().iter_mut() {
                        let mut labels = metric.take_label();
                        for (name, value) in &source.labels {
                            let mut pair = LabelPair::default();
                            pair.set_name(name.clone());
                            pair.set_value(value.clone());
                            labels.push(pair);
                        }
                        labels.sort_by(|a, b| a.get_name().cmp(b.get_name()));
                        metric.set_label(labels);
                    }
                }
                match merged.get_mut(family.get_name()) {
                    Some(existing) => {
                        for metric in family.take_metric() {
                            existing.mut_metric().push(metric);
                        }
                    }
                    None => {
                        merged.insert(family.get_name().to_owned(), family);
                    }
                }
            }
        }
        merged.into_values().collect()
    }

    /// The Prometheus text exposition of [`Ops::gather`].
    pub fn render(&self) -> Result<String, OpsError> {
        let mut body = Vec::new();
        TextEncoder::new()
            .encode(&self.gather(), &mut body)
            .map_err(|e| OpsError::Encode(e.to_string()))?;
        String::from_utf8(body).map_err(|e| OpsError::Encode(e.to_string()))
    }

    /// Runs every check (all at once, each under the timeout), or returns the cached result
    /// if it is younger than the cache period. One caller runs the checks; concurrent probes
    /// wait for its result instead of running them again.
    pub async fn readiness(&self) -> Readiness {
        let mut cached = self.inner.cached.lock().await;
        if let Some((at, result)) = cached.as_ref() {
            if at.elapsed() < self.inner.cache_for {
                return result.clone();
            }
        }
        let timeout = self.inner.check_timeout;
        let runs = self.inner.checks.iter().map(|(name, check)| {
            let fut = check();
            async move {
                let result = match tokio::time::timeout(timeout, fut).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("no answer within {timeout:?}")),
                };
                (*name, result)
            }
        });
        let results = futures::future::join_all(runs).await;
        let mut reason = None;
        let mut checks = BTreeMap::new();
        for (name, result) in results {
            let entry = match result {
                Ok(()) => CheckResult {
                    ok: true,
                    error: None,
                },
                Err(error) => {
                    if reason.is_none() {
                        reason = Some(format!("{name}: {error}"));
                    }
                    CheckResult {
                        ok: false,
                        error: Some(error),
                    }
                }
            };
            checks.insert(name, entry);
        }
        let readiness = Readiness {
            status: if reason.is_none() {
                "ready"
            } else {
                "not_ready"
            },
            reason,
            checks,
        };
        *cached = Some((Instant::now(), readiness.clone()));
        readiness
    }

    /// `/metrics`, `/health`, `/health/live` and `/health/ready`.
    pub fn router(&self) -> Router {
        let metrics = self.clone();
        let ready = self.clone();
        Router::new()
            .route("/metrics", get(move || render_response(metrics.clone())))
            .route("/health", get(|| async { "ok" }))
            .route(
                "/health/live",
                get(|| async { axum::Json(serde_json::json!({ "status": "live" })) }),
            )
            .route("/health/ready", get(move || ready_response(ready.clone())))
    }

    /// Binds `addr` (a taken port is reported at start, not later) and serves [`Ops::router`]
    /// with the default [`ServerLimits`](crate::ServerLimits) until `shutdown`.
    pub async fn spawn(
        &self,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), OpsError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| OpsError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| OpsError::Bind { addr, source })?;
        let server = Server::new(listener, self.router());
        let handle = tokio::spawn(server.serve(shutdown));
        Ok((local, handle))
    }
}

async fn render_response(ops: Ops) -> Response {
    match ops.render() {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

async fn ready_response(ops: Ops) -> Response {
    let readiness = ops.readiness().await;
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(readiness)).into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use prometheus::{IntCounter, IntCounterVec, Opts};

    use super::*;

    #[tokio::test]
    async fn readiness_names_the_failing_check_and_recovers_with_it() {
        let up = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&up);
        let ops = Ops::builder()
            .cache_for(Duration::ZERO)
            .check("database", || async { Ok(()) })
            .check("node", move || {
                let up = flag.load(Ordering::SeqCst);
                async move {
                    if up {
                        Ok(())
                    } else {
                        Err("connection refused".to_owned())
                    }
                }
            })
            .build();
        let down = ops.readiness().await;
        assert!(!down.is_ready());
        assert_eq!(down.reason.as_deref(), Some("node: connection refused"));
        assert!(down.checks["database"].ok);
        up.store(true, Ordering::SeqCst);
        let back = ops.readiness().await;
        assert!(back.is_ready(), "{back:?}");
        assert_eq!(back.reason, None);
    }

    #[tokio::test]
    async fn a_check_that_hangs_fails_after_the_timeout() {
        let ops = Ops::builder()
            .check_timeout(Duration::from_millis(50))
            .check("broker", std::future::pending::<Result<(), String>>)
            .build();
        let started = Instant::now();
        let r = ops.readiness().await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(r
            .reason
            .as_deref()
            .unwrap_or("")
            .starts_with("broker: no answer"));
    }

    #[tokio::test]
    async fn readiness_is_cached_for_the_cache_period() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let ops = Ops::builder()
            .cache_for(Duration::from_secs(60))
            .check("node", move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            })
            .build();
        for _ in 0..5 {
            assert!(ops.readiness().await.is_ready());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn equal_metric_names_of_two_labelled_registries_merge_into_one_family() {
        let (a, b) = (Registry::new(), Registry::new());
        for (registry, n) in [(&a, 1), (&b, 2)] {
            let c =
                IntCounterVec::new(Opts::new("signer_requests_total", "h"), &["outcome"]).unwrap();
            registry.register(Box::new(c.clone())).unwrap();
            c.with_label_values(&["signed"]).inc_by(n);
        }
        let solo = IntCounter::new("only_here_total", "h").unwrap();
        a.register(Box::new(solo)).unwrap();
        let ops = Ops::builder()
            .labelled_registry(&[("service", "signer-0")], &a)
            .labelled_registry(&[("service", "signer-1")], &b)
            .build();
        let text = ops.render().unwrap();
        assert_eq!(
            text.matches("# TYPE signer_requests_total").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("signer_requests_total{outcome=\"signed\",service=\"signer-0\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("signer_requests_total{outcome=\"signed\",service=\"signer-1\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("only_here_total{service=\"signer-0\"} 0"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_endpoint_answers_503_with_a_reason_then_200() {
        let up = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&up);
        let registry = Registry::new();
        let c = IntCounter::new("probe_total", "h").unwrap();
        registry.register(Box::new(c.clone())).unwrap();
        let ops = Ops::builder()
            .registry(&registry)
            .cache_for(Duration::ZERO)
            .check("database", move || {
                let up = flag.load(Ordering::SeqCst);
                async move {
                    if up {
                        Ok(())
                    } else {
                        Err("closed".to_owned())
                    }
                }
            })
            .build();
        let shutdown = CancellationToken::new();
        let (addr, task) = ops
            .spawn("127.0.0.1:0".parse().unwrap(), shutdown.clone())
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(format!("http://{addr}{path}")).send();
        let r = get("/health/ready").await.unwrap();
        assert_eq!(r.status(), 503);
        let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(body["reason"], "database: closed");
        assert_eq!(body["checks"]["database"]["error"], "closed");
        up.store(true, Ordering::SeqCst);
        let r = get("/health/ready").await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(get("/health/live").await.unwrap().status(), 200);
        assert_eq!(get("/health").await.unwrap().text().await.unwrap(), "ok");
        c.inc();
        let text = get("/metrics").await.unwrap().text().await.unwrap();
        assert!(text.contains("probe_total 1"), "{text}");
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_taken_port_is_reported_with_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let e = Ops::builder()
            .build()
            .spawn(addr, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
    }
}
