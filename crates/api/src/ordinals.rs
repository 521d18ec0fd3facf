//! Optional endpoints: terms-acceptance logging and the ordinals / runes UTXO check against a
//! configured `ord` server (`docs/reference.md#terms-acceptance`,
//! `docs/reference.md#ordinals-check`).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::model::{Data, TermsBody, TermsStatus, UtxoOut, VerifyUtxosBody};
use crate::query::{parse_address, parse_hash_value, parse_pk_value};
use crate::state::AppState;

/// The ord client.
#[derive(Debug, Clone)]
pub struct Ordinals {
    pub client: reqwest::Client,
    pub url: String,
    pub max_utxos: usize,
}

impl Ordinals {
    pub fn new(config: &crate::config::OrdinalsConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()?;
        Ok(Ordinals {
            client,
            url: config.url.trim_end_matches('/').to_owned(),
            max_utxos: config.max_utxos,
        })
    }
}

/// Logs that an address accepted the terms.
#[utoipa::path(post, path = "/log-terms-acceptance", tag = "terms", request_body = TermsBody,
    responses((status = 200, body = inline(Data<TermsStatus>)), (status = 400, body = ErrorBody),
              (status = 413, description = "body larger than the limit", content_type = "text/plain", body = String),
              (status = 500, body = ErrorBody)))]
pub async fn log_terms(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let req: TermsBody = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("Invalid request payload"))?;
    parse_address(&req.address, app.inner.network)
        .map_err(|_| ApiError::bad_request("Invalid Bitcoin address"))?;
    if parse_pk_value(&req.public_key).is_none() {
        return Err(ApiError::bad_request("Invalid public key"));
    }
    app.inner
        .store
        .insert_terms(&req.address, &req.public_key)
        .await?;
    Ok(Json(Data {
        data: TermsStatus { status: true },
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
struct OrdOutput {
    #[serde(default)]
    inscriptions: Vec<serde_json::Value>,
    #[serde(default)]
    runes: serde_json::Value,
}

/// Flags UTXOs that carry inscriptions or runes.
#[utoipa::path(post, path = "/v1/ordinals/verify-utxos", tag = "ordinals", request_body = VerifyUtxosBody,
    responses((status = 200, body = inline(Data<Vec<UtxoOut>>)), (status = 400, body = ErrorBody),
              (status = 408, body = ErrorBody),
              (status = 413, description = "body larger than the limit", content_type = "text/plain", body = String),
              (status = 500, body = ErrorBody)))]
pub async fn verify_utxos(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let Some(ord) = app.inner.ordinals.as_ref() else {
        return Err(ApiError::internal("ordinals route without config"));
    };
    let req: VerifyUtxosBody =
        serde_json::from_slice(&body).map_err(|_| ApiError::bad_request("invalid input format"))?;
    if req.utxos.is_empty() {
        return Err(ApiError::bad_request("empty UTXO array"));
    }
    if req.utxos.len() > ord.max_utxos {
        return Err(ApiError::bad_request("too many UTXOs in the request"));
    }
    if req
        .utxos
        .iter()
        .any(|u| parse_hash_value(&u.txid).is_none())
    {
        return Err(ApiError::bad_request("invalid UTXO txid"));
    }
    parse_address(&req.address, app.inner.network)
        .map_err(|e| ApiError::bad_request(e.message()))?;
    let outputs: Vec<String> = req
        .utxos
        .iter()
        .map(|u| format!("{}:{}", u.txid.to_ascii_lowercase(), u.vout))
        .collect();
    let resp = ord
        .client
        .post(format!("{}/outputs", ord.url))
        .header("Accept", "application/json")
        .json(&outputs)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorCode::RequestTimeout,
                    "request to ord server timed out",
                )
            } else {
                ApiError::internal(e)
            }
        })?;
    let status = resp.status();
    if status.is_client_error() {
        return Err(ApiError::new(
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorCode::BadRequest,
            "ord server rejected the request",
        ));
    }
    if !status.is_success() {
        return Err(ApiError::internal(format!("ord server answered {status}")));
    }
    let found: Vec<OrdOutput> = resp.json().await.map_err(ApiError::internal)?;
    if found.len() != req.utxos.len() {
        return Err(ApiError::internal("ord answer does not match the request"));
    }
    let data: Vec<UtxoOut> = req
        .utxos
        .iter()
        .zip(found)
        .map(|(u, o)| {
            let runes = !(o.runes.is_null()
                || o.runes.as_object().is_some_and(serde_json::Map::is_empty)
                || o.runes.as_array().is_some_and(Vec::is_empty));
            UtxoOut {
                txid: u.txid.clone(),
                vout: u.vout,
                inscription: runes || !o.inscriptions.is_empty(),
            }
        })
        .collect();
    Ok(Json(Data { data }).into_response())
}
