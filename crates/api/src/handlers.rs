//! The GET endpoints of v1 (`docs/reference.md#endpoints`), with the reference's shapes and
//! messages.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use store::api::{KeyStats, TvlCursor};

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::model::{
    Data, DelegationCheck, DelegationPublic, FpDetailsPublic, MaybePaged, OverallStatsPublic,
    Paged, Pagination, StakerStatsPublic,
};
use crate::query::{
    decode_token, delegation_cursor, encode_token, invalid_token, parse_address, parse_hash,
    parse_pk, parse_pk_value, parse_state, QueryPairs,
};
use crate::state::AppState;

/// Page size of the FP listing (hard-coded in the reference).
pub const FP_PAGE_SIZE: u32 = 500;
/// At most this many addresses per pubkey lookup.
pub const MAX_LOOKUP_ADDRESSES: usize = 10;

fn json_raw(bytes: impl Into<axum::body::Bytes>) -> Response {
    let bytes: axum::body::Bytes = bytes.into();
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Health: pings the database.
#[utoipa::path(get, path = "/healthcheck", tag = "health",
    responses((status = 200, body = inline(Data<String>), example = json!({"data": "Server is up and running"})),
              (status = 500, body = ErrorBody)))]
pub async fn healthcheck(State(app): State<AppState>) -> Result<Response, ApiError> {
    app.inner.store.ping().await?;
    Ok(Json(Data {
        data: "Server is up and running",
    })
    .into_response())
}

#[derive(Debug, Serialize, Deserialize)]
struct DelegationToken {
    staking_tx_hash_hex: String,
    staking_start_height: u64,
}

/// A staker's delegations, newest first; the state filter holds on every page.
#[utoipa::path(get, path = "/v1/staker/delegations", tag = "delegations",
    params(("staker_btc_pk" = String, Query, pattern = "^[0-9a-fA-F]{64}$"),
           ("state" = Option<crate::model::StatePublic>, Query),
           ("pagination_key" = Option<String>, Query)),
    responses((status = 200, body = inline(Paged<Vec<DelegationPublic>>)),
              (status = 400, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn staker_delegations(
    State(app): State<AppState>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let staker = parse_pk("staker_btc_pk", q.first("staker_btc_pk"))?;
    let token: Option<DelegationToken> = decode_token(q.first("pagination_key"))?;
    let state = parse_state(q.first("state"))?;
    let cursor = token
        .map(|t| delegation_cursor(&t.staking_tx_hash_hex, t.staking_start_height))
        .transpose()?;
    let limit = app.inner.page_size;
    let mut rows = app
        .inner
        .store
        .delegations_by_staker(&staker, state, cursor.as_ref(), limit + 1)
        .await?;
    let next_key = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map_or_else(String::new, |d| {
            encode_token(&DelegationToken {
                staking_tx_hash_hex: d.staking_tx_hash.to_string(),
                staking_start_height: d.staking_tx.start_height,
            })
        })
    } else {
        String::new()
    };
    let data: Vec<DelegationPublic> = rows.into_iter().map(Into::into).collect();
    Ok(Json(Paged {
        data,
        pagination: Pagination { next_key },
    })
    .into_response())
}

/// One delegation.
#[utoipa::path(get, path = "/v1/delegation", tag = "delegations",
    params(("staking_tx_hash_hex" = String, Query, pattern = "^[0-9a-fA-F]{64}$")),
    responses((status = 200, body = inline(Data<DelegationPublic>)),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn delegation(State(app): State<AppState>, q: QueryPairs) -> Result<Response, ApiError> {
    let hash = parse_hash("staking_tx_hash_hex", q.first("staking_tx_hash_hex"))?;
    match app.inner.store.delegation(&hash).await? {
        Some(d) => Ok(Json(Data {
            data: DelegationPublic::from(d),
        })
        .into_response()),
        None => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "staking delegation not found, please retry",
        )),
    }
}

/// Whether a delegation can be unbonded now (body `null`).
#[utoipa::path(get, path = "/v1/unbonding/eligibility", tag = "unbonding",
    params(("staking_tx_hash_hex" = String, Query, pattern = "^[0-9a-fA-F]{64}$")),
    responses((status = 200, description = "eligible; the body is the JSON literal null", content_type = "application/json", body = inline(Option<bool>)),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn eligibility(State(app): State<AppState>, q: QueryPairs) -> Result<Response, ApiError> {
    let hash = parse_hash("staking_tx_hash_hex", q.first("staking_tx_hash_hex"))?;
    let d = app
        .inner
        .store
        .delegation(&hash)
        .await?
        .ok_or_else(|| ApiError::forbidden(ErrorCode::NotFound, "delegation not found"))?;
    if d.state != store::api::DelegationState::Active {
        return Err(ApiError::forbidden(
            ErrorCode::Forbidden,
            "delegation state is not active",
        ));
    }
    Ok(json_raw(axum::body::Bytes::from_static(b"null")))
}

/// The versioned global parameters, in file order.
#[utoipa::path(get, path = "/v1/global-params", tag = "params",
    responses((status = 200, description = "`{\"data\":{\"versions\":[…]}}`", body = inline(Data<serde_json::Value>))))]
pub async fn global_params(State(app): State<AppState>) -> Response {
    json_raw(app.inner.params_body.clone())
}

fn fp_public(app: &AppState, stats: Option<&KeyStats>, key: &str) -> FpDetailsPublic {
    let file = app.inner.fp_index.get(key).map(|&i| &app.inner.fps[i]);
    let c = stats.map(|s| s.counters).unwrap_or_default();
    FpDetailsPublic {
        description: file.map(|f| f.description.clone()).unwrap_or_default(),
        commission: file.map(|f| f.commission.clone()).unwrap_or_default(),
        btc_pk: file.map_or_else(|| key.to_owned(), |f| f.key().to_owned()),
        active_tvl: c.active_tvl,
        total_tvl: c.total_tvl,
        active_delegations: c.active_delegations,
        total_delegations: c.total_delegations,
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct FpToken {
    finality_provider_pk_hex: String,
    active_tvl: i64,
}

/// Finality providers: the metadata file merged with their stats.
#[utoipa::path(get, path = "/v1/finality-providers", tag = "finality-providers",
    params(("fp_btc_pk" = Option<String>, Query, pattern = "^[0-9a-fA-F]{64}$"),
           ("pagination_key" = Option<String>, Query),
           ("sort" = Option<String>, Query, description = "`random` shuffles the page")),
    responses((status = 200, description = "`data` is null when nothing matches; `pagination` only without `fp_btc_pk`", body = inline(MaybePaged<Option<Vec<FpDetailsPublic>>>)),
              (status = 400, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn finality_providers(
    State(app): State<AppState>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    if let Some(pk) = q.first("fp_btc_pk").filter(|v| !v.is_empty()) {
        let fp = parse_pk_value(pk).ok_or_else(|| ApiError::bad_request("invalid fp_btc_pk"))?;
        let key = fp.to_string();
        let stats = app.inner.store.fp_stats(&fp).await?;
        if stats.is_none() && !app.inner.fp_index.contains_key(&key) {
            return Ok(json_raw(axum::body::Bytes::from_static(
                br#"{"data":null}"#,
            )));
        }
        return Ok(Json(Data {
            data: vec![fp_public(&app, stats.as_ref(), &key)],
        })
        .into_response());
    }
    let token: Option<FpToken> = decode_token(q.first("pagination_key"))?;
    if app.inner.fps.is_empty() {
        return Err(ApiError::internal("the finality providers file lists none"));
    }
    let cursor = match &token {
        Some(t) => Some(TvlCursor {
            active_tvl: t.active_tvl,
            pk: parse_pk_value(&t.finality_provider_pk_hex).ok_or_else(invalid_token)?,
        }),
        None => None,
    };
    let fallback = || -> Vec<FpDetailsPublic> {
        app.inner
            .fps
            .iter()
            .map(|f| fp_public(&app, None, &f.key().to_ascii_lowercase()))
            .collect()
    };
    let (mut data, next_key) = match app
        .inner
        .store
        .fp_stats_page(cursor.as_ref(), FP_PAGE_SIZE + 1)
        .await
    {
        Err(e) => {
            tracing::warn!(error = %e, "fp stats unavailable; serving the file alone");
            (fallback(), String::new())
        }
        Ok(rows) if rows.is_empty() && cursor.is_none() => (fallback(), String::new()),
        Ok(mut rows) => {
            let more = rows.len() > FP_PAGE_SIZE as usize;
            rows.truncate(FP_PAGE_SIZE as usize);
            let mut data: Vec<FpDetailsPublic> = rows
                .iter()
                .map(|r| fp_public(&app, Some(r), &r.pk.to_string()))
                .collect();
            let next_key = if more {
                rows.last().map_or_else(String::new, |r| {
                    encode_token(&FpToken {
                        finality_provider_pk_hex: r.pk.to_string(),
                        active_tvl: r.counters.active_tvl,
                    })
                })
            } else {
                // Last page: every file FP without stats, in file order.
                let with_stats = all_fp_keys_with_stats(&app).await?;
                for f in &app.inner.fps {
                    let key = f.key().to_ascii_lowercase();
                    if !with_stats.contains(&key) {
                        data.push(fp_public(&app, None, &key));
                    }
                }
                String::new()
            };
            (data, next_key)
        }
    };
    if q.first("sort") == Some("random") {
        data.shuffle(&mut rand::thread_rng());
    }
    Ok(Json(Paged {
        data,
        pagination: Pagination { next_key },
    })
    .into_response())
}

async fn all_fp_keys_with_stats(
    app: &AppState,
) -> Result<std::collections::HashSet<String>, ApiError> {
    let mut keys = std::collections::HashSet::new();
    for f in &app.inner.fps {
        let key = f.key().to_ascii_lowercase();
        if let Some(pk) = parse_pk_value(&key) {
            if app.inner.store.fp_stats(&pk).await?.is_some() {
                keys.insert(key);
            }
        }
    }
    Ok(keys)
}

/// Overall statistics.
#[utoipa::path(get, path = "/v1/stats", tag = "stats",
    responses((status = 200, body = inline(Data<OverallStatsPublic>)), (status = 500, body = ErrorBody)))]
pub async fn stats(State(app): State<AppState>) -> Result<Response, ApiError> {
    if let Some(body) = app.inner.stats_cache.get() {
        return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
    }
    let generation = crate::stats_cache::generation();
    let (overall, info) =
        tokio::try_join!(app.inner.store.overall_stats(), app.inner.store.btc_info())?;
    let info = info.unwrap_or_default();
    let c = overall.counters;
    let body = serde_json::to_vec(&Data {
        data: OverallStatsPublic {
            active_tvl: c.active_tvl,
            total_tvl: c.total_tvl,
            active_delegations: c.active_delegations,
            total_delegations: c.total_delegations,
            total_stakers: u64::try_from(overall.total_stakers).unwrap_or(0),
            unconfirmed_tvl: info.unconfirmed_tvl,
            pending_tvl: info.unconfirmed_tvl.saturating_sub(info.confirmed_tvl),
        },
    })
    .map_err(|e| ApiError::internal(format!("rendering stats: {e}")))?;
    let body = axum::body::Bytes::from(body);
    app.inner.stats_cache.put(generation, body.clone());
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Debug, Serialize, Deserialize)]
struct StakerToken {
    staker_pk_hex: String,
    active_tvl: i64,
}

/// One staker's stats, or the top stakers by active TVL.
#[utoipa::path(get, path = "/v1/stats/staker", tag = "stats",
    params(("staker_btc_pk" = Option<String>, Query, pattern = "^[0-9a-fA-F]{64}$"),
           ("pagination_key" = Option<String>, Query)),
    responses((status = 200, description = "`data` is null when there is nothing to show; `pagination` only without `staker_btc_pk`", body = inline(MaybePaged<Option<Vec<StakerStatsPublic>>>)),
              (status = 400, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn staker_stats(
    State(app): State<AppState>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    if let Some(pk) = q.first("staker_btc_pk").filter(|v| !v.is_empty()) {
        let staker =
            parse_pk_value(pk).ok_or_else(|| ApiError::bad_request("invalid staker_btc_pk"))?;
        return match app.inner.store.staker_stats(&staker).await? {
            Some(s) => Ok(Json(Data {
                data: vec![StakerStatsPublic::from(&s)],
            })
            .into_response()),
            None => Ok(json_raw(axum::body::Bytes::from_static(
                br#"{"data":null}"#,
            ))),
        };
    }
    let token: Option<StakerToken> = decode_token(q.first("pagination_key"))?;
    let cursor = match &token {
        Some(t) => Some(TvlCursor {
            active_tvl: t.active_tvl,
            pk: parse_pk_value(&t.staker_pk_hex).ok_or_else(invalid_token)?,
        }),
        None => None,
    };
    let limit = app.inner.page_size;
    let mut rows = app
        .inner
        .store
        .staker_stats_page(cursor.as_ref(), limit + 1)
        .await?;
    let next_key = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map_or_else(String::new, |r| {
            encode_token(&StakerToken {
                staker_pk_hex: r.pk.to_string(),
                active_tvl: r.counters.active_tvl,
            })
        })
    } else {
        String::new()
    };
    let data: Option<Vec<StakerStatsPublic>> = if rows.is_empty() {
        None
    } else {
        Some(rows.iter().map(Into::into).collect())
    };
    Ok(Json(Paged {
        data,
        pagination: Pagination { next_key },
    })
    .into_response())
}

/// Partner check: does the address's staker have an active delegation (optionally started today)?
#[utoipa::path(get, path = "/v1/staker/delegation/check", tag = "delegations",
    params(("address" = String, Query), ("timeframe" = Option<String>, Query, description = "only `today`")),
    responses((status = 200, body = DelegationCheck), (status = 400, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn delegation_check(
    State(app): State<AppState>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let address = q
        .first("address")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request("address is required"))?;
    parse_address(address, app.inner.network).map_err(|e| ApiError::bad_request(e.message()))?;
    let since = match q.first("timeframe").filter(|v| !v.is_empty()) {
        None => None,
        Some("today") => {
            let now = chrono::Utc::now();
            Some(now.timestamp() - i64::from(chrono::Timelike::num_seconds_from_midnight(&now)))
        }
        Some(_) => return Err(ApiError::bad_request("invalid timeframe value")),
    };
    let found = app.inner.store.pubkeys_for(&[address.to_owned()]).await?;
    let data = match found.first().and_then(|(_, pk)| parse_pk_value(pk)) {
        None => false,
        Some(pk) => app.inner.store.has_active_delegation(&pk, since).await?,
    };
    Ok(Json(DelegationCheck { data, code: 0 }).into_response())
}

/// Address → staker key for up to 10 taproot / native segwit addresses.
#[utoipa::path(get, path = "/v1/staker/pubkey-lookup", tag = "delegations",
    params(("address" = Vec<String>, Query, description = "repeat for several (1..10)")),
    responses((status = 200, body = inline(Data<std::collections::BTreeMap<String, String>>)),
              (status = 400, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn pubkey_lookup(
    State(app): State<AppState>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let addresses: Vec<String> = q
        .all("address")
        .into_iter()
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if addresses.is_empty() {
        return Err(ApiError::bad_request("address is required"));
    }
    if addresses.len() > MAX_LOOKUP_ADDRESSES {
        return Err(ApiError::bad_request(format!(
            "Maximum {MAX_LOOKUP_ADDRESSES} address allowed"
        )));
    }
    for a in &addresses {
        parse_address(a, app.inner.network).map_err(|e| ApiError::bad_request(e.message()))?;
    }
    let found = app.inner.store.pubkeys_for(&addresses).await?;
    let map: std::collections::BTreeMap<String, String> = found.into_iter().collect();
    Ok(Json(Data { data: map }).into_response())
}
