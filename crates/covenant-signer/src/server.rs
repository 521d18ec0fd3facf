//! The HTTP surface: `POST /v1/sign-unbonding-tx` (the reference's route and bodies) and `GET
//! /health`; `/metrics` and the health probes are on the metrics listener ([`net::Ops`]).
//!
//! A request passes, in order: the per-client rate limit (429; a client is an IPv4 address or
//! an IPv6 /64, [`net::ClientKey`]: one subscriber holds a whole /64, 2^64 addresses), the body
//! limit (413, by `Content-Length` and while reading), HMAC authentication when configured
//! (401), parsing (400 with the field's message), then the signing checks. Every ending is
//! counted. `/health` asks the node at most once per [`HEALTH_TTL`](crate::health::HEALTH_TTL).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use net::ClientKey;

use crate::auth::{HmacKey, HMAC_HEADER};
use crate::error::{ErrorBody, ErrorClass, SignError};
use crate::health::HealthCache;
use crate::metrics::{Metrics, Outcome};
use crate::request::{SignRequest, SignResponseJson};
use crate::signer::Signer;

/// Per-client request budget: a steady rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

/// What the HTTP layer needs besides the signer.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Largest accepted body in bytes (the reference's `max-content-length`, default 8192).
    pub max_body_bytes: usize,
    /// Shared HMAC key; `None` accepts unauthenticated requests (reference behaviour).
    pub hmac: Option<HmacKey>,
    /// Per-client limit (IPv4 address, IPv6 /64); `None` disables it.
    pub rate_limit: Option<RateLimit>,
    /// Whole-request timeout.
    pub request_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 8192,
            hmac: None,
            rate_limit: None,
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// Shared state of the handlers.
#[derive(Debug)]
pub struct AppState {
    signer: Signer,
    metrics: Metrics,
    options: HttpOptions,
    limiter: Option<DefaultKeyedRateLimiter<ClientKey>>,
    health: HealthCache,
}

impl AppState {
    /// Builds the state; the limiter is created from `options.rate_limit`.
    pub fn new(signer: Signer, metrics: Metrics, options: HttpOptions) -> Self {
        let limiter = options.rate_limit.map(|limit| {
            RateLimiter::keyed(Quota::per_second(limit.per_second).allow_burst(limit.burst))
        });
        Self {
            signer,
            metrics,
            options,
            limiter,
            health: HealthCache::default(),
        }
    }

    /// The metrics this state records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The signer behind the route.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Forgets idle clients of the rate limiter (called periodically so memory stays bounded).
    pub fn prune_rate_limiter(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The signing API router. Serve it with `net::serve` (which gives handlers the client's
/// address and the connection protections); plain axum needs
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(state: Arc<AppState>) -> Router {
    let timeout = state.options.request_timeout;
    Router::new()
        .route("/v1/sign-unbonding-tx", post(sign_unbonding_tx))
        .route("/health", get(health))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(state)
}

fn json_error(status: StatusCode, body: ErrorBody) -> Response {
    (status, Json(body)).into_response()
}

async fn sign_unbonding_tx(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let (outcome, response) = handle(&state, peer, &headers, body).await;
    state.metrics.record(outcome);
    state
        .metrics
        .observe_duration(started.elapsed().as_secs_f64());
    response
}

async fn handle(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> (Outcome, Response) {
    if let Some(limiter) = &state.limiter {
        if limiter.check_key(&ClientKey::of(peer.ip())).is_err() {
            tracing::debug!(client = %peer.ip(), "rate limited");
            let body = ErrorBody::new("TOO_MANY_REQUESTS", "too many requests");
            return (
                Outcome::RateLimited,
                json_error(StatusCode::TOO_MANY_REQUESTS, body),
            );
        }
    }
    let too_large = || {
        (
            Outcome::TooLarge,
            (StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large").into_response(),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > state.options.max_body_bytes as u64) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, state.options.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(e) => {
            if is_length_limit(&e) {
                return too_large();
            }
            let body = ErrorBody::new("BAD_REQUEST", "invalid request payload");
            return (
                Outcome::Malformed,
                json_error(StatusCode::BAD_REQUEST, body),
            );
        }
    };
    if let Some(key) = &state.options.hmac {
        let given = headers.get(HMAC_HEADER).map(|v| v.as_bytes());
        if let Err(e) = key.verify(given, &bytes) {
            tracing::info!(client = %peer.ip(), reason = %e, "request refused: authentication");
            let body = ErrorBody::new("UNAUTHORIZED", e.to_string());
            return (
                Outcome::Unauthorized,
                json_error(StatusCode::UNAUTHORIZED, body),
            );
        }
    }
    let result = match SignRequest::from_json_bytes(&bytes) {
        Ok(request) => state.signer.sign(&request).await,
        Err(malformed) => Err(SignError::from(malformed)),
    };
    match result {
        Ok(signature) => (
            Outcome::Signed,
            (StatusCode::OK, Json(SignResponseJson::new(&signature))).into_response(),
        ),
        Err(error) => {
            let outcome = match error.class() {
                ErrorClass::Malformed => Outcome::Malformed,
                ErrorClass::Refused => Outcome::Refused,
                ErrorClass::Internal => Outcome::Internal,
            };
            if outcome == Outcome::Internal {
                tracing::error!(client = %peer.ip(), error = %error, "signing request failed");
            } else {
                tracing::info!(client = %peer.ip(), reason = %error, "signing request refused");
            }
            (outcome, json_error(error.status(), error.body()))
        }
    }
}

/// Whether reading the body failed because it exceeded the limit (rather than a broken
/// connection), also when no `Content-Length` announced it.
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.health.tip(&state.signer).await {
        Some(tip) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ok", "tip_height": tip })),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "bitcoin node unreachable" })),
        )
            .into_response(),
    }
}
