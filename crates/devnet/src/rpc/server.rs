//! HTTP transport: bitcoind's JSON-RPC 1.0 envelope, batches, basic auth and limits.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{code, methods, RpcError};
use crate::node::Node;

/// Largest request body accepted (bitcoind's `MAX_SIZE`, 32 MiB); larger ones get HTTP 413.
pub const MAX_BODY: usize = 0x0200_0000;

/// The RPC server's connection protections: `net`'s defaults, with bitcoind's body limit, a
/// request timeout long enough for `generatetoaddress` of many blocks, and no per-client cap
/// below the overall one (every service of a devnet connects from loopback).
pub fn default_limits() -> net::ServerLimits {
    let defaults = net::ServerLimits::default();
    net::ServerLimits {
        max_connections_per_client: defaults.max_connections,
        ..defaults
    }
    .with_request_limits(MAX_BODY, Duration::from_secs(300))
}

/// Expected `Authorization` header.
#[derive(Debug, Clone)]
pub struct Auth {
    expected: String,
}

impl Auth {
    /// Basic auth with `user:password`.
    pub fn new(user: &str, password: &str) -> Self {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self {
            expected: format!("Basic {token}"),
        }
    }

    fn accepts(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| constant_time_eq(v.trim().as_bytes(), self.expected.as_bytes()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Clone)]
struct App {
    node: Arc<Node>,
    auth: Auth,
}

/// Serves JSON-RPC on `listener` with `limits` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Arc<Node>,
    auth: Auth,
    limits: net::ServerLimits,
    shutdown: CancellationToken,
) {
    let app = Router::new()
        .route("/", post(handle))
        .route("/wallet/{*name}", post(handle))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(App { node, auth });
    net::serve(listener, app, limits, None, shutdown).await;
}

async fn handle(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if !app.auth.accepts(&headers) {
        // bitcoind waits 250 ms to slow down password guessing, then answers 401 with no body.
        tokio::time::sleep(Duration::from_millis(250)).await;
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"jsonrpc\"")],
        )
            .into_response();
    }
    let node = Arc::clone(&app.node);
    let outcome = tokio::task::spawn_blocking(move || process(&node, &body)).await;
    match outcome {
        Ok((status, value)) => reply(status, &value),
        Err(e) => {
            tracing::error!(error = %e, "RPC handler panicked");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                &envelope(
                    Value::Null,
                    Err(RpcError::new(code::MISC_ERROR, "internal error")),
                    Value::Null,
                ),
            )
        }
    }
}

fn reply(status: StatusCode, value: &Value) -> Response {
    let mut body = value.to_string();
    body.push('\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn envelope(_placeholder: Value, result: Result<Value, RpcError>, id: Value) -> Value {
    match result {
        Ok(v) => json!({"result": v, "error": null, "id": id}),
        Err(e) => json!({"result": null, "error": e.to_json(), "id": id}),
    }
}

/// Parses and runs a request body; returns the HTTP status and the JSON reply.
pub fn process(node: &Node, body: &[u8]) -> (StatusCode, Value) {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                envelope(
                    Value::Null,
                    Err(RpcError::new(code::PARSE_ERROR, "Parse error")),
                    Value::Null,
                ),
            )
        }
    };
    match request {
        Value::Object(_) => {
            let (id, result) = one(node, request);
            let status = match &result {
                Ok(_) => StatusCode::OK,
                Err(e) if e.code == code::INVALID_REQUEST => StatusCode::BAD_REQUEST,
                Err(e) if e.code == code::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, envelope(Value::Null, result, id))
        }
        Value::Array(items) => {
            let replies = items
                .into_iter()
                .map(|item| {
                    let (id, result) = one(node, item);
                    envelope(Value::Null, result, id)
                })
                .collect();
            (StatusCode::OK, Value::Array(replies))
        }
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            envelope(
                Value::Null,
                Err(RpcError::new(
                    code::PARSE_ERROR,
                    "Top-level object parse error",
                )),
                Value::Null,
            ),
        ),
    }
}

/// One request object: its id and the call's outcome.
fn one(node: &Node, request: Value) -> (Value, Result<Value, RpcError>) {
    let Value::Object(mut obj) = request else {
        return (
            Value::Null,
            Err(RpcError::new(
                code::INVALID_REQUEST,
                "Invalid Request object",
            )),
        );
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    let method = match obj.remove("method") {
        None => {
            return (
                id,
                Err(RpcError::new(code::INVALID_REQUEST, "Missing method")),
            )
        }
        Some(Value::String(m)) => m,
        Some(_) => {
            return (
                id,
                Err(RpcError::new(
                    code::INVALID_REQUEST,
                    "Method must be a string",
                )),
            )
        }
    };
    let params = obj.remove("params").unwrap_or(Value::Null);
    if !matches!(params, Value::Null | Value::Array(_) | Value::Object(_)) {
        return (
            id,
            Err(RpcError::new(
                code::INVALID_REQUEST,
                "Params must be an array or object",
            )),
        );
    }
    let result = methods::call(node, &method, params);
    (id, result)
}
