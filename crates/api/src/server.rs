//! The router and its middleware, in the reference's order: CORS → security headers →
//! content-length limit → handlers; plus request timeouts, an optional per-client rate limit and
//! Prometheus metrics.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;
use crate::openapi::ApiDoc;
use crate::state::AppState;
use crate::{handlers, ordinals, unbonding};

/// Router settings beyond the handler state.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub allowed_origins: Vec<String>,
    pub max_content_length: usize,
    pub request_timeout: Duration,
    pub rate_limit_per_second: Option<u32>,
    pub terms_enabled: bool,
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'self'; form-action 'self'; block-all-mixed-content; base-uri 'self';";
const CSP_SWAGGER: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdnjs.cloudflare.com https://stackpath.bootstrap.com; style-src 'self' 'unsafe-inline' https://cdnjs.cloudflare.com https://stackpath.bootstrap.com; img-src 'self' data: https://cdnjs.cloudflare.com https://stackpath.bootstrap.com; font-src 'self' https://cdnjs.cloudflare.com https://stackpath.bootstrap.com; object-src 'none'; frame-ancestors 'self'; form-action 'self'; block-all-mixed-content; base-uri 'self';";
const GALXE: &str = "https://dashboard.galxe.com";

/// The OpenAPI document of this configuration (absent optional routes are left out).
pub fn openapi(settings: &ServerSettings, ordinals: bool) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if !settings.terms_enabled {
        doc.paths.paths.remove("/log-terms-acceptance");
    }
    if !ordinals {
        doc.paths.paths.remove("/v1/ordinals/verify-utxos");
    }
    doc
}

/// Builds the application.
pub fn router(app: AppState, settings: &ServerSettings, metrics: Metrics) -> Router {
    let doc = openapi(settings, app.inner.ordinals.is_some());
    let mut api = Router::new()
        .route("/healthcheck", get(handlers::healthcheck))
        .route("/v1/staker/delegations", get(handlers::staker_delegations))
        .route("/v1/delegation", get(handlers::delegation))
        .route("/v1/unbonding", post(unbonding::unbonding))
        .route("/v1/unbonding/eligibility", get(handlers::eligibility))
        .route("/v1/global-params", get(handlers::global_params))
        .route("/v1/finality-providers", get(handlers::finality_providers))
        .route("/v1/stats", get(handlers::stats))
        .route("/v1/stats/staker", get(handlers::staker_stats))
        .route(
            "/v1/staker/delegation/check",
            get(handlers::delegation_check),
        )
        .route("/v1/staker/pubkey-lookup", get(handlers::pubkey_lookup));
    if settings.terms_enabled {
        api = api.route("/log-terms-acceptance", post(ordinals::log_terms));
    }
    if app.inner.ordinals.is_some() {
        api = api.route("/v1/ordinals/verify-utxos", post(ordinals::verify_utxos));
    }
    let max = settings.max_content_length;
    let mut router = api
        .with_state(app)
        .merge(SwaggerUi::new("/swagger").url("/openapi.json", doc))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            content_length(max, req, next)
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ));
    if let Some(rate) = settings.rate_limit_per_second.and_then(NonZeroU32::new) {
        let limiter: Arc<DefaultKeyedRateLimiter<IpAddr>> =
            Arc::new(RateLimiter::keyed(Quota::per_second(rate)));
        router = router.layer(middleware::from_fn_with_state(limiter, rate_limit));
    }
    router
        .layer(middleware::from_fn(security_headers))
        .layer(cors(&settings.allowed_origins))
        .layer(middleware::from_fn(galxe_cors))
        .layer(middleware::from_fn_with_state(metrics, record_metrics))
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods(tower_http::cors::AllowMethods::mirror_request())
        .allow_headers([
            header::ACCEPT,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-requested-with"),
        ])
        .max_age(Duration::from_secs(300))
}

/// `/v1/staker/delegation/check` admits the Galxe dashboard only.
async fn galxe_cors(req: Request, next: Next) -> Response {
    if req.uri().path() != "/v1/staker/delegation/check" {
        return next.run(req).await;
    }
    let from_galxe = req
        .headers()
        .get(header::ORIGIN)
        .is_some_and(|o| o.as_bytes() == GALXE.as_bytes());
    if !from_galxe {
        let mut resp = if req.method() == Method::OPTIONS {
            StatusCode::NO_CONTENT.into_response()
        } else {
            next.run(req).await
        };
        resp.headers_mut()
            .remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
        return resp;
    }
    let mut resp = if req.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static(GALXE),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS, POST"),
    );
    resp
}

async fn security_headers(req: Request, next: Next) -> Response {
    let swagger = req.uri().path().starts_with("/swagger");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "x-xss-protection",
        HeaderValue::from_static("1; mode=block"),
    );
    h.insert(
        "referrer-policy",
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(if swagger { CSP_SWAGGER } else { CSP }),
    );
    resp
}

/// A declared `Content-Length` above the limit on POST/PUT is refused before reading.
async fn content_length(max: usize, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::POST | Method::PUT) {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Request Entity Too Large",
            )
                .into_response();
        }
    }
    next.run(req).await
}

async fn rate_limit(
    State(limiter): State<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    req: Request,
    next: Next,
) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = ip {
        if limiter.check_key(&ip).is_err() {
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::Forbidden,
                "too many requests",
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn record_metrics(
    State(metrics): State<Metrics>,
    req: Request<Body>,
    next: Next,
) -> Response {
    // `MatchedPath` holds an `Arc<str>`: cloning it allocates nothing per request.
    let endpoint = req.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let resp = next.run(req).await;
    metrics.observe_http(
        endpoint.as_ref().map_or("unmatched", MatchedPath::as_str),
        resp.status(),
        started.elapsed(),
    );
    resp
}
