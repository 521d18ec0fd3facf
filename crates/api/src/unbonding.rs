//! `POST /v1/unbonding`: every validation of `docs/reference.md#unbonding-request` in order, then
//! the state change and the request row in one transaction.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bitcoin::consensus::deserialize;
use bitcoin::{OutPoint, Transaction, Txid};
use staking_core::script::StakingOutput;
use staking_core::unbonding::{verify_unbonding_request, UnbondingTerms};
use store::api::{DelegationState, NewUnbondingRequest, RequestOutcome};

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::model::UnbondingRequestBody;
use crate::query::parse_hash_value;
use crate::state::AppState;

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::forbidden(ErrorCode::ValidationError, message)
}

/// A `/v1/unbonding` body whose fields all parsed (the checks that need no stored state).
#[derive(Debug)]
pub struct ParsedUnbondingRequest {
    /// The body as sent.
    pub body: UnbondingRequestBody,
    pub staking_hash: Txid,
    pub unbonding_hash: Txid,
    pub unbonding_tx: Transaction,
    /// The staker's signature bytes (a valid BIP340 encoding).
    pub signature: Vec<u8>,
}

/// Parses the untrusted body, field by field in the reference's order, with its 400 messages.
/// Separate from the handler so the fuzz target exercises exactly this code.
pub fn parse_unbonding_body(body: &[u8]) -> Result<ParsedUnbondingRequest, ApiError> {
    let req: UnbondingRequestBody = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("invalid request payload"))?;
    let staking_hash = parse_hash_value(&req.staking_tx_hash_hex)
        .ok_or_else(|| ApiError::bad_request("invalid staking transaction hash"))?;
    let unbonding_hash = parse_hash_value(&req.unbonding_tx_hash_hex)
        .ok_or_else(|| ApiError::bad_request("invalid unbonding transaction hash"))?;
    let unbonding_tx: Transaction = hex::decode(&req.unbonding_tx_hex)
        .ok()
        .and_then(|bytes| deserialize(&bytes).ok())
        .ok_or_else(|| ApiError::bad_request("invalid unbonding transaction hex"))?;
    let signature = hex::decode(&req.staker_signed_signature_hex)
        .ok()
        .filter(|s| staking_core::signing::parse_signature(s).is_ok())
        .ok_or_else(|| ApiError::bad_request("invalid staker signed signature hex"))?;
    Ok(ParsedUnbondingRequest {
        body: req,
        staking_hash,
        unbonding_hash,
        unbonding_tx,
        signature,
    })
}

/// Accepts a staker-signed unbonding tx for the pipeline.
#[utoipa::path(post, path = "/v1/unbonding", tag = "unbonding",
    request_body = UnbondingRequestBody,
    responses((status = 202, description = "accepted; the body is the JSON literal null", content_type = "application/json", body = inline(Option<bool>)),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 413, description = "body larger than the limit", content_type = "text/plain", body = String),
              (status = 500, body = ErrorBody)))]
pub async fn unbonding(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let ParsedUnbondingRequest {
        body: req,
        staking_hash,
        unbonding_hash,
        unbonding_tx: tx,
        signature,
    } = parse_unbonding_body(&body)?;

    let store = &app.inner.store;
    let d = store
        .delegation(&staking_hash)
        .await?
        .ok_or_else(|| ApiError::forbidden(ErrorCode::NotFound, "delegation not found"))?;
    if d.state != DelegationState::Active {
        return Err(ApiError::forbidden(
            ErrorCode::Forbidden,
            "delegation state is not active",
        ));
    }
    let height = staking_core::params::BlockHeight(d.staking_tx.start_height);
    let params =
        app.inner.params.for_height(height).ok_or_else(|| {
            ApiError::internal(format!("no params version for height {}", height.0))
        })?;
    let keys = params
        .staking_keys(d.staker_pk, d.finality_provider_pk)
        .map_err(ApiError::internal)?;
    let timelock = u16::try_from(d.staking_tx.timelock).map_err(ApiError::internal)?;
    let staking = StakingOutput::new(keys, timelock).map_err(ApiError::internal)?;
    let vout = u32::try_from(d.staking_tx.output_index).map_err(ApiError::internal)?;
    let terms = UnbondingTerms {
        unbonding_time: params.unbonding_time,
        unbonding_fee: params.unbonding_fee,
    };
    verify_unbonding_request(
        &tx,
        unbonding_hash,
        &signature,
        &staking,
        OutPoint::new(staking_hash, vout),
        d.staking_value,
        &terms,
    )
    .map_err(|e| validation(e.to_string()))?;

    let request = NewUnbondingRequest {
        staking_tx_hash: staking_hash,
        unbonding_tx_hash: unbonding_hash,
        unbonding_tx_hex: req.unbonding_tx_hex.to_ascii_lowercase(),
        staker_pk: d.staker_pk,
        finality_provider_pk: d.finality_provider_pk,
        staker_signature_hex: hex::encode(&signature),
        staking_tx_hex: d.staking_tx.tx_hex.clone(),
        staking_output_index: d.staking_tx.output_index,
        staking_timelock: d.staking_tx.timelock,
        staking_amount: d.staking_value,
    };
    match store.request_unbonding(&request).await? {
        RequestOutcome::Accepted => Ok((
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "application/json")],
            "null",
        )
            .into_response()),
        RequestOutcome::NotActive => Err(ApiError::forbidden(
            ErrorCode::Forbidden,
            "no active delegation found for unbonding request",
        )),
        RequestOutcome::AlreadyExists => Err(ApiError::forbidden(
            ErrorCode::Forbidden,
            "unbonding transaction already exists",
        )),
    }
}
