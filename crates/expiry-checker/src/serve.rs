//! The Prometheus endpoint (`/metrics`) and a liveness probe (`/health`); the reference checker
//! has no other HTTP surface.

use std::net::SocketAddr;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;

use crate::error::ExpiryError;

async fn metrics(registry: Registry) -> impl IntoResponse {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            e.to_string().into_bytes(),
        ),
    }
}

/// Binds `addr` (so a taken port is reported at start) and serves until `shutdown`.
pub(crate) async fn spawn_metrics(
    addr: SocketAddr,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<SocketAddr, ExpiryError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        ExpiryError::Metrics(format!(
            "cannot listen on {addr}: {e} (set metrics_addr to a free host:port, or `off`)"
        ))
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| ExpiryError::Metrics(e.to_string()))?;
    let app = Router::new()
        .route("/metrics", get(move || metrics(registry.clone())))
        .route("/health", get(|| async { "ok" }));
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok(local)
}
