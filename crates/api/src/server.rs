//! The router and its middleware, in the reference's order: CORS → security headers →
//! content-length limit → handlers; plus request timeouts, an optional per-client rate limit and
//! Prometheus metrics. The API's own middleware is in [`crate::layers`].

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ApiError, ErrorCode};
use crate::layers::{EdgeLayer, GuardLayer};
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
    /// Connection protections of the listener (`net::serve`).
    pub limits: net::ServerLimits,
    /// Serve HTTPS from these files.
    pub tls: Option<net::TlsFiles>,
}

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
    let limiter = settings
        .rate_limit_per_second
        .and_then(NonZeroU32::new)
        .map(|rate| {
            let limiter: Arc<DefaultKeyedRateLimiter<IpAddr>> =
                Arc::new(RateLimiter::keyed(Quota::per_second(rate)));
            middleware::from_fn_with_state(limiter, rate_limit)
        });
    // One `layer` call: every call adds a boxed level that axum clones on each request.
    let stack = ServiceBuilder::new()
        .layer(EdgeLayer::new(metrics))
        .layer(cors(&settings.allowed_origins))
        .layer(GuardLayer::new(max))
        .option_layer(limiter)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(DefaultBodyLimit::max(max));
    api.with_state(app)
        .merge(SwaggerUi::new("/swagger").url("/openapi.json", doc))
        .fallback(not_found)
        .layer(stack)
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
