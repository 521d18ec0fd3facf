//! An Esplora / mempool.space-compatible REST over the devnet's chain and mempool, so browser
//! wallets, the staking dApp and Esplora clients (BDK's `esplora-client`) work against the
//! devnet unchanged.
//!
//! Served on its own port under both `/api/` and `/signet/api/` (the dApp calls
//! `${NEXT_PUBLIC_MEMPOOL_API}/signet/api/…`), CORS open to any origin. Shapes and errors follow
//! Esplora: text bodies for errors, 404 for an unknown transaction or block, 400 for malformed
//! input; rejected broadcasts answer 400 with `sendrawtransaction RPC error: {"code":…}` as
//! mempool.space does. Addresses are accepted in the devnet's regtest spelling (`bcrt1…`) and in
//! the test-network spelling of the same program (`tb1…`). Also serves an `ord`-compatible
//! `POST /ord/outputs` (no inscriptions, no runes: the devnet has none), which the devnet's API
//! uses for `POST /v1/ordinals/verify-utxos`.

mod handlers;
pub mod scripts;
pub mod view;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::cors::CorsLayer;

use crate::error::DevnetError;
use crate::node::{Node, NodeState};

/// A running Esplora REST server.
#[derive(Debug)]
pub struct EsploraHandle {
    /// `http://ADDR` (Esplora clients take `{url}/api`; the dApp takes `url` itself).
    pub url: String,
    /// The address bound.
    pub addr: SocketAddr,
    /// The server task; it ends after the shutdown token is cancelled.
    pub task: JoinHandle<()>,
}

/// Binds `addr` (port 0: a free one) and serves the REST over `node` until `shutdown`.
pub async fn spawn(
    addr: SocketAddr,
    node: Arc<Node>,
    shutdown: CancellationToken,
) -> Result<EsploraHandle, DevnetError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DevnetError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| DevnetError::Bind { addr, source })?;
    let server = net::Server::new(listener, router(node));
    let task = tokio::spawn(server.serve(shutdown));
    Ok(EsploraHandle {
        url: format!("http://{bound}"),
        addr: bound,
        task,
    })
}

/// The REST's routes under `/api` and `/signet/api`, plus `/ord`, with CORS for any origin.
pub fn router(node: Arc<Node>) -> Router {
    let api = handlers::routes();
    Router::new()
        .nest("/api", api.clone())
        .nest("/signet/api", api)
        .route("/ord/outputs", post(handlers::ord_outputs))
        .route("/", get(handlers::index))
        .fallback(handlers::not_found)
        .layer(CorsLayer::permissive())
        .with_state(node)
}

/// An Esplora error: a status and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    /// HTTP status.
    pub status: StatusCode,
    /// Plain-text body.
    pub message: String,
}

impl RestError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.message,
        )
            .into_response()
    }
}

/// Runs `f` on the locked node state off the async workers (mining can hold the lock for a
/// while, and must not stall other connections).
async fn read<T, F>(node: &Arc<Node>, f: F) -> Result<T, RestError>
where
    T: Send + 'static,
    F: FnOnce(&NodeState) -> Result<T, RestError> + Send + 'static,
{
    let node = Arc::clone(node);
    tokio::task::spawn_blocking(move || {
        let state = node.lock();
        f(&state)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "esplora handler panicked");
        RestError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error".to_owned(),
        }
    })?
}
