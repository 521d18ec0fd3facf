//! The API's own middleware, as two tower services with named futures.
//!
//! Why not `axum::middleware::from_fn`: each `from_fn` layer boxes the inner service and the
//! future on every request, and each `Router::layer` call adds a boxed level that axum clones
//! per request. With four such layers the middleware cost more CPU than the handlers of the
//! cheap endpoints (`/v1/global-params`, `/v1/stats`). These two services allocate nothing per
//! request and are applied in one `Router::layer` call (see [`crate::server::router`]).
//!
//! * [`Edge`] (outermost): Prometheus timing by matched route and status, and the Galxe
//!   exception to CORS on `/v1/staker/delegation/check`.
//! * [`Guard`] (inside CORS): the reference's security headers on every answer and the early
//!   `413` for a declared `Content-Length` above the limit on POST/PUT.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::metrics::Metrics;

/// The only origin admitted by `/v1/staker/delegation/check`.
pub const GALXE: &str = "https://dashboard.galxe.com";
const GALXE_ORIGIN: HeaderValue = HeaderValue::from_static(GALXE);
const GALXE_METHODS: HeaderValue = HeaderValue::from_static("GET, OPTIONS, POST");
const CHECK_PATH: &str = "/v1/staker/delegation/check";

const CSP: HeaderValue = HeaderValue::from_static("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'self'; form-action 'self'; block-all-mixed-content; base-uri 'self';");
const CSP_SWAGGER: HeaderValue = HeaderValue::from_static("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdnjs.cloudflare.com https://stackpath.bootstrap.com; style-src 'self' 'unsafe-inline' https://cdnjs.cloudflare.com https://stackpath.bootstrap.com; img-src 'self' data: https://cdnjs.cloudflare.com https://stackpath.bootstrap.com; font-src 'self' https://cdnjs.cloudflare.com https://stackpath.bootstrap.com; object-src 'none'; frame-ancestors 'self'; form-action 'self'; block-all-mixed-content; base-uri 'self';");

/// Adds [`Edge`].
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    metrics: Arc<Metrics>,
}

impl EdgeLayer {
    pub fn new(metrics: Metrics) -> Self {
        EdgeLayer {
            metrics: Arc::new(metrics),
        }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;
    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// Times every request by its matched route and answers the Galxe preflight itself.
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// What `/v1/staker/delegation/check` does with the response's CORS headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Galxe {
    /// Any other route: CORS as configured.
    NotThisRoute,
    /// The Galxe dashboard asked: it is the one allowed origin.
    Admit,
    /// Anyone else asked: no `Access-Control-Allow-Origin` at all.
    Refuse,
}

impl Galxe {
    fn of(req: &Request) -> Galxe {
        if req.uri().path() != CHECK_PATH {
            return Galxe::NotThisRoute;
        }
        let from_galxe = req
            .headers()
            .get(header::ORIGIN)
            .is_some_and(|o| o.as_bytes() == GALXE.as_bytes());
        if from_galxe {
            Galxe::Admit
        } else {
            Galxe::Refuse
        }
    }

    fn apply(self, resp: &mut Response) {
        let h = resp.headers_mut();
        match self {
            Galxe::NotThisRoute => {}
            Galxe::Refuse => {
                h.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
            }
            Galxe::Admit => {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, GALXE_ORIGIN);
                h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, GALXE_METHODS);
            }
        }
    }
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Finishing<S::Future, Done>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let done = Done {
            // `MatchedPath` holds an `Arc<str>`: the clone allocates nothing.
            endpoint: req.extensions().get::<MatchedPath>().cloned(),
            started: Instant::now(),
            galxe: Galxe::of(&req),
            metrics: Arc::clone(&self.metrics),
        };
        if done.galxe != Galxe::NotThisRoute && req.method() == Method::OPTIONS {
            // The route's preflight never reaches the configured CORS layer.
            return Finishing::answered(StatusCode::NO_CONTENT.into_response(), done);
        }
        Finishing::inner(self.inner.call(req), done)
    }
}

/// What [`Edge`] does once the response is there.
#[derive(Debug)]
pub struct Done {
    endpoint: Option<MatchedPath>,
    started: Instant,
    galxe: Galxe,
    metrics: Arc<Metrics>,
}

impl Finish for Done {
    fn finish(&self, mut resp: Response) -> Response {
        self.galxe.apply(&mut resp);
        self.metrics.observe_http(
            self.endpoint
                .as_ref()
                .map_or("unmatched", MatchedPath::as_str),
            resp.status(),
            self.started.elapsed(),
        );
        resp
    }
}

/// What a layer does to the response on its way out.
pub trait Finish {
    fn finish(&self, resp: Response) -> Response;
}

pin_project! {
    /// A layer's response: answered by the layer itself or by the inner service, then finished.
    #[project = FinishingProj]
    pub enum Finishing<F, D> {
        Answered { response: Option<Response>, done: D },
        Inner { #[pin] future: F, done: D },
    }
}

impl<F, D> Finishing<F, D> {
    fn answered(response: Response, done: D) -> Self {
        Finishing::Answered {
            response: Some(response),
            done,
        }
    }

    fn inner(future: F, done: D) -> Self {
        Finishing::Inner { future, done }
    }
}

impl<F, D> Future for Finishing<F, D>
where
    F: Future<Output = Result<Response, Infallible>>,
    D: Finish,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FinishingProj::Answered { response, done } => {
                // `None` only if polled again after completion, which futures must not be.
                let resp = response.take().unwrap_or_default();
                Poll::Ready(Ok(done.finish(resp)))
            }
            FinishingProj::Inner { future, done } => {
                let Ok(resp) = ready!(future.poll(cx));
                Poll::Ready(Ok(done.finish(resp)))
            }
        }
    }
}

/// Adds [`Guard`].
#[derive(Debug, Clone, Copy)]
pub struct GuardLayer {
    max_content_length: u64,
}

impl GuardLayer {
    pub fn new(max_content_length: usize) -> Self {
        GuardLayer {
            max_content_length: u64::try_from(max_content_length).unwrap_or(u64::MAX),
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;
    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            max_content_length: self.max_content_length,
        }
    }
}

/// Security headers on every answer; a declared oversized POST/PUT body refused before it is
/// read.
#[derive(Debug, Clone)]
pub struct Guard<S> {
    inner: S,
    max_content_length: u64,
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Finishing<S::Future, Secure>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let secure = Secure(if req.uri().path().starts_with("/swagger") {
            CSP_SWAGGER
        } else {
            CSP
        });
        if matches!(*req.method(), Method::POST | Method::PUT) {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > self.max_content_length) {
                let resp = (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "Request Entity Too Large",
                )
                    .into_response();
                return Finishing::answered(resp, secure);
            }
        }
        Finishing::inner(self.inner.call(req), secure)
    }
}

/// The security headers, with the content security policy of the page kind.
#[derive(Debug)]
pub struct Secure(HeaderValue);

impl Finish for Secure {
    fn finish(&self, mut resp: Response) -> Response {
        let h = resp.headers_mut();
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::X_XSS_PROTECTION,
            HeaderValue::from_static("1; mode=block"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
        h.insert(header::CONTENT_SECURITY_POLICY, self.0.clone());
        resp
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

    use axum::body::Body;
    use axum::routing::{get, post};
    use axum::Router;
    use tower::{ServiceBuilder, ServiceExt};

    use super::*;

    fn app(metrics: Metrics) -> Router {
        Router::new()
            .route("/v1/stats", get(|| async { "stats" }))
            .route(CHECK_PATH, get(|| async { "check" }))
            .route("/v1/unbonding", post(|| async { "accepted" }))
            .route("/swagger/", get(|| async { "ui" }))
            .layer(
                ServiceBuilder::new()
                    .layer(EdgeLayer::new(metrics))
                    .layer(tower_http::cors::CorsLayer::permissive())
                    .layer(GuardLayer::new(16)),
            )
    }

    async fn send(app: &Router, req: Request) -> Response {
        app.clone().oneshot(req).await.unwrap()
    }

    fn get_from(path: &str, origin: &str) -> Request {
        Request::get(path)
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    }

    fn preflight(path: &str, origin: &str) -> Request {
        Request::options(path)
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn the_delegation_check_admits_only_the_galxe_dashboard() {
        let app = app(Metrics::new());
        let ok = send(&app, get_from(CHECK_PATH, GALXE)).await;
        assert_eq!(ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], GALXE);
        let other = send(&app, get_from(CHECK_PATH, "https://example.com")).await;
        assert_eq!(other.status(), StatusCode::OK);
        assert!(other
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none());
        let pre = send(&app, preflight(CHECK_PATH, "https://example.com")).await;
        assert_eq!(pre.status(), StatusCode::NO_CONTENT);
        assert!(pre
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none());
        let pre = send(&app, preflight(CHECK_PATH, GALXE)).await;
        assert_eq!(pre.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            pre.headers()[header::ACCESS_CONTROL_ALLOW_METHODS],
            GALXE_METHODS
        );
        // Every other route keeps the configured CORS (here: any origin).
        let stats = send(&app, get_from("/v1/stats", "https://example.com")).await;
        assert_eq!(stats.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    #[tokio::test]
    async fn security_headers_are_on_answers_and_refusals_but_not_on_cors_preflights() {
        let app = app(Metrics::new());
        let stats = send(&app, get_from("/v1/stats", "https://example.com")).await;
        assert_eq!(stats.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(stats.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        let ui = send(&app, get_from("/swagger/", "https://example.com")).await;
        assert_eq!(ui.headers()[header::CONTENT_SECURITY_POLICY], CSP_SWAGGER);
        let too_big = Request::post("/v1/unbonding")
            .header(header::CONTENT_LENGTH, "17")
            .body(Body::from("x".repeat(17)))
            .unwrap();
        let refused = send(&app, too_big).await;
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(refused.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let fits = Request::post("/v1/unbonding")
            .header(header::CONTENT_LENGTH, "16")
            .body(Body::from("x".repeat(16)))
            .unwrap();
        assert_eq!(send(&app, fits).await.status(), StatusCode::OK);
        // The reference's CORS handler answers preflights before its security middleware runs.
        let pre = send(&app, preflight("/v1/stats", "https://example.com")).await;
        assert!(pre.status().is_success());
        assert!(pre.headers().get(header::X_FRAME_OPTIONS).is_none());
    }

    #[tokio::test]
    async fn requests_are_timed_by_matched_route_and_status() {
        let metrics = Metrics::new();
        let app = app(metrics.clone());
        send(&app, get_from("/v1/stats", "https://example.com")).await;
        send(&app, get_from("/v1/stats", "https://example.com")).await;
        send(&app, get_from("/no/such/path", "https://example.com")).await;
        let text = metrics.render();
        let count = |labels: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("http_request_duration_seconds_count") && l.contains(labels)
                })
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(
            count(r#"endpoint="/v1/stats",status="200""#).as_deref(),
            Some("2")
        );
        assert_eq!(
            count(r#"endpoint="unmatched",status="404""#).as_deref(),
            Some("1")
        );
    }
}
