//! The REST's routes: parse at the edge (400 on malformed input), read the locked state off the
//! async workers, answer Esplora's shapes.

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bitcoin::consensus::encode::{serialize, serialize_hex};
use bitcoin::hashes::sha256;
use bitcoin::{BlockHash, OutPoint, Txid};
use serde_json::{json, Value};

use super::scripts::{self, Page, Target, TooManyUtxos};
use super::view::{self, block_json, block_status_json, find_tx, tx_json, Status};
use super::{read, RestError};
use crate::chain::BlockEntry;
use crate::node::{Node, NodeState};
use crate::rpc;

type St = State<Arc<Node>>;

/// Blocks per page of `GET blocks` (Esplora: 10).
const BLOCKS_PAGE: u32 = 10;
/// Transactions per page of `GET block/{hash}/txs` (Esplora: 25).
const BLOCK_TXS_PAGE: usize = 25;
/// The devnet has no fee market: every target gets the minimum relay fee rate (sat/vB).
const FEE_RATE: f64 = 1.0;

/// The Esplora routes (mounted under `/api` and `/signet/api`).
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/blocks/tip/height", get(tip_height))
        .route("/blocks/tip/hash", get(tip_hash))
        .route("/blocks", get(blocks_from_tip))
        .route("/blocks/{start}", get(blocks_from))
        .route("/block-height/{height}", get(block_at_height))
        .route("/block/{hash}", get(block))
        .route("/block/{hash}/header", get(block_header))
        .route("/block/{hash}/status", get(block_status))
        .route("/block/{hash}/raw", get(block_raw))
        .route("/block/{hash}/txids", get(block_txids))
        .route("/block/{hash}/txid/{index}", get(block_txid))
        .route("/block/{hash}/txs", get(block_txs_first))
        .route("/block/{hash}/txs/{start}", get(block_txs_from))
        .route("/tx", axum::routing::post(broadcast))
        .route("/tx/{txid}", get(tx))
        .route("/tx/{txid}/hex", get(tx_hex))
        .route("/tx/{txid}/raw", get(tx_raw))
        .route("/tx/{txid}/status", get(tx_status))
        .route("/tx/{txid}/outspend/{vout}", get(outspend))
        .route("/tx/{txid}/outspends", get(outspends))
        .route("/address/{addr}", get(address))
        .route("/address/{addr}/utxo", get(address_utxo))
        .route("/address/{addr}/txs", get(address_txs))
        .route("/address/{addr}/txs/chain", get(address_txs_chain))
        .route("/address/{addr}/txs/chain/{last}", get(address_txs_after))
        .route("/address/{addr}/txs/mempool", get(address_txs_mempool))
        .route("/scripthash/{hash}", get(scripthash))
        .route("/scripthash/{hash}/utxo", get(scripthash_utxo))
        .route("/scripthash/{hash}/txs", get(scripthash_txs))
        .route("/scripthash/{hash}/txs/chain", get(scripthash_txs_chain))
        .route(
            "/scripthash/{hash}/txs/chain/{last}",
            get(scripthash_txs_after),
        )
        .route(
            "/scripthash/{hash}/txs/mempool",
            get(scripthash_txs_mempool),
        )
        .route("/mempool", get(mempool))
        .route("/mempool/txids", get(mempool_txids))
        .route("/mempool/recent", get(mempool_recent))
        .route("/fee-estimates", get(fee_estimates))
        .route("/v1/fees/recommended", get(fees_recommended))
        .route("/v1/validate-address/{addr}", get(validate_address))
}

pub async fn index() -> &'static str {
    "devnet Esplora REST: /api/… and /signet/api/… (mempool.space shapes); ord stand-in: POST /ord/outputs\n"
}

pub async fn not_found() -> RestError {
    RestError::not_found("Not found")
}

fn text(s: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], s).into_response()
}

fn bytes(b: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], b).into_response()
}

fn parse_txid(s: &str) -> Result<Txid, RestError> {
    Txid::from_str(s).map_err(|_| RestError::bad_request(format!("Invalid hex string: {s:?}")))
}

fn parse_block_hash(s: &str) -> Result<BlockHash, RestError> {
    BlockHash::from_str(s).map_err(|_| RestError::bad_request(format!("Invalid hex string: {s:?}")))
}

fn parse_u32(s: &str, what: &str) -> Result<u32, RestError> {
    s.parse()
        .map_err(|_| RestError::bad_request(format!("Invalid {what}: {s:?}")))
}

fn address_target(s: &str) -> Result<Target, RestError> {
    scripts::parse_devnet_address(s)
        .map(Target::script)
        .ok_or_else(|| RestError::bad_request(format!("Invalid Bitcoin address: {s:?}")))
}

fn hash_target(s: &str) -> Result<Target, RestError> {
    sha256::Hash::from_str(s)
        .map(Target::hash)
        .map_err(|_| RestError::bad_request(format!("Invalid scripthash: {s:?}")))
}

fn tx_not_found() -> RestError {
    RestError::not_found("Transaction not found")
}

fn block_not_found() -> RestError {
    RestError::not_found("Block not found")
}

fn known_block<'a>(state: &'a NodeState, hash: &BlockHash) -> Result<&'a BlockEntry, RestError> {
    state.chain.entry(hash).ok_or_else(block_not_found)
}

async fn tip_height(State(node): St) -> Response {
    text(node.tip().height.to_string())
}

async fn tip_hash(State(node): St) -> Response {
    text(node.tip().hash.to_string())
}

fn blocks_json(state: &NodeState, start: u32) -> Vec<Value> {
    let start = start.min(state.chain.height());
    (0..BLOCKS_PAGE)
        .filter_map(|i| start.checked_sub(i))
        .filter_map(|h| state.chain.active_entry(h))
        .map(|e| block_json(state, e))
        .collect()
}

async fn blocks_from_tip(State(node): St) -> Result<Json<Vec<Value>>, RestError> {
    read(&node, |s| Ok(Json(blocks_json(s, s.chain.height())))).await
}

async fn blocks_from(
    State(node): St,
    Path(start): Path<String>,
) -> Result<Json<Vec<Value>>, RestError> {
    let start = parse_u32(&start, "height")?;
    read(&node, move |s| Ok(Json(blocks_json(s, start)))).await
}

async fn block_at_height(
    State(node): St,
    Path(height): Path<String>,
) -> Result<Response, RestError> {
    let height = parse_u32(&height, "height")?;
    read(&node, move |s| {
        let hash = s.chain.hash_at(height).ok_or_else(block_not_found)?;
        Ok(text(hash.to_string()))
    })
    .await
}

async fn block(State(node): St, Path(hash): Path<String>) -> Result<Json<Value>, RestError> {
    let hash = parse_block_hash(&hash)?;
    read(&node, move |s| {
        Ok(Json(block_json(s, known_block(s, &hash)?)))
    })
    .await
}

async fn block_header(State(node): St, Path(hash): Path<String>) -> Result<Response, RestError> {
    let hash = parse_block_hash(&hash)?;
    read(&node, move |s| {
        Ok(text(serialize_hex(&known_block(s, &hash)?.block.header)))
    })
    .await
}

async fn block_status(State(node): St, Path(hash): Path<String>) -> Result<Json<Value>, RestError> {
    let hash = parse_block_hash(&hash)?;
    read(&node, move |s| {
        Ok(Json(block_status_json(s, known_block(s, &hash)?)))
    })
    .await
}

async fn block_raw(State(node): St, Path(hash): Path<String>) -> Result<Response, RestError> {
    let hash = parse_block_hash(&hash)?;
    read(&node, move |s| {
        Ok(bytes(serialize(known_block(s, &hash)?.block.as_ref())))
    })
    .await
}

async fn block_txids(
    State(node): St,
    Path(hash): Path<String>,
) -> Result<Json<Vec<String>>, RestError> {
    let hash = parse_block_hash(&hash)?;
    read(&node, move |s| {
        let entry = known_block(s, &hash)?;
        Ok(Json(
            entry
                .block
                .txdata
                .iter()
                .map(|t| t.compute_txid().to_string())
                .collect(),
        ))
    })
    .await
}

async fn block_txid(
    State(node): St,
    Path((hash, index)): Path<(String, String)>,
) -> Result<Response, RestError> {
    let hash = parse_block_hash(&hash)?;
    let index = parse_u32(&index, "index")?;
    read(&node, move |s| {
        let entry = known_block(s, &hash)?;
        let tx = entry
            .block
            .txdata
            .get(index as usize)
            .ok_or_else(|| RestError::not_found("Transaction index out of range"))?;
        Ok(text(tx.compute_txid().to_string()))
    })
    .await
}

fn block_txs(state: &NodeState, hash: &BlockHash, start: usize) -> Result<Vec<Value>, RestError> {
    let entry = known_block(state, hash)?;
    if !start.is_multiple_of(BLOCK_TXS_PAGE) {
        return Err(RestError::bad_request(format!(
            "start index must be a multiple of {BLOCK_TXS_PAGE}"
        )));
    }
    let status = if state.chain.is_active(hash) {
        Status::Confirmed(entry)
    } else {
        Status::Unconfirmed
    };
    Ok(entry
        .block
        .txdata
        .iter()
        .skip(start)
        .take(BLOCK_TXS_PAGE)
        .map(|tx| tx_json(state, tx, status))
        .collect())
}

async fn block_txs_first(
    State(node): St,
    Path(hash): Path<String>,
) -> Result<Json<Vec<Value>>, RestError> {
    let hash = parse_block_hash(&hash)?;
    read(&node, move |s| Ok(Json(block_txs(s, &hash, 0)?))).await
}

async fn block_txs_from(
    State(node): St,
    Path((hash, start)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, RestError> {
    let hash = parse_block_hash(&hash)?;
    let start = parse_u32(&start, "start index")? as usize;
    read(&node, move |s| Ok(Json(block_txs(s, &hash, start)?))).await
}

/// `POST tx`: the raw transaction as hex text; answers its txid, or 400 with the node's reason
/// as mempool.space words it.
async fn broadcast(State(node): St, body: String) -> Result<Response, RestError> {
    let hex = body.trim().to_owned();
    let node = Arc::clone(&node);
    let outcome = tokio::task::spawn_blocking(move || {
        rpc::methods::call(&node, "sendrawtransaction", json!([hex]))
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "broadcast panicked");
        RestError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error".to_owned(),
        }
    })?;
    match outcome {
        Ok(Value::String(txid)) => Ok(text(txid)),
        Ok(other) => Ok(text(other.to_string())),
        Err(e) => Err(RestError::bad_request(format!(
            "sendrawtransaction RPC error: {}",
            e.to_json()
        ))),
    }
}

async fn tx(State(node): St, Path(txid): Path<String>) -> Result<Json<Value>, RestError> {
    let txid = parse_txid(&txid)?;
    read(&node, move |s| {
        let (tx, status) = find_tx(s, &txid).ok_or_else(tx_not_found)?;
        Ok(Json(tx_json(s, tx, status)))
    })
    .await
}

async fn tx_hex(State(node): St, Path(txid): Path<String>) -> Result<Response, RestError> {
    let txid = parse_txid(&txid)?;
    read(&node, move |s| {
        let (tx, _) = find_tx(s, &txid).ok_or_else(tx_not_found)?;
        Ok(text(serialize_hex(tx)))
    })
    .await
}

async fn tx_raw(State(node): St, Path(txid): Path<String>) -> Result<Response, RestError> {
    let txid = parse_txid(&txid)?;
    read(&node, move |s| {
        let (tx, _) = find_tx(s, &txid).ok_or_else(tx_not_found)?;
        Ok(bytes(serialize(tx)))
    })
    .await
}

/// `GET tx/{txid}/status`. As Esplora, an unknown transaction is `{"confirmed":false}`.
async fn tx_status(State(node): St, Path(txid): Path<String>) -> Result<Json<Value>, RestError> {
    let txid = parse_txid(&txid)?;
    read(&node, move |s| {
        let status = find_tx(s, &txid).map_or(Status::Unconfirmed, |(_, st)| st);
        Ok(Json(status.to_json()))
    })
    .await
}

fn outspend_json(state: &NodeState, txid: Txid, vout: u32) -> Value {
    let Some((tx, _)) = find_tx(state, &txid) else {
        return json!({"spent": false});
    };
    let Some(out) = tx.output.get(vout as usize) else {
        return json!({"spent": false});
    };
    match scripts::spender(state, &OutPoint::new(txid, vout), &out.script_pubkey) {
        Some((spender, vin, status)) => json!({
            "spent": true,
            "txid": spender.compute_txid().to_string(),
            "vin": vin,
            "status": status.to_json(),
        }),
        None => json!({"spent": false}),
    }
}

/// `GET tx/{txid}/outspend/{vout}`. As Esplora, an unknown output is `{"spent":false}`.
async fn outspend(
    State(node): St,
    Path((txid, vout)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    let txid = parse_txid(&txid)?;
    let vout = parse_u32(&vout, "output index")?;
    read(&node, move |s| Ok(Json(outspend_json(s, txid, vout)))).await
}

async fn outspends(
    State(node): St,
    Path(txid): Path<String>,
) -> Result<Json<Vec<Value>>, RestError> {
    let txid = parse_txid(&txid)?;
    read(&node, move |s| {
        let (tx, _) = find_tx(s, &txid).ok_or_else(tx_not_found)?;
        let n = tx.output.len() as u32;
        Ok(Json((0..n).map(|v| outspend_json(s, txid, v)).collect()))
    })
    .await
}

async fn stats_for(
    node: &Arc<Node>,
    target: Target,
    field: &'static str,
    id: String,
) -> Result<Json<Value>, RestError> {
    read(node, move |s| {
        let mut v = scripts::stats(s, &target);
        if let Some(o) = v.as_object_mut() {
            o.insert(field.to_owned(), json!(id));
        }
        Ok(Json(v))
    })
    .await
}

async fn utxo_for(node: &Arc<Node>, target: Target) -> Result<Json<Vec<Value>>, RestError> {
    read(node, move |s| {
        scripts::utxos(s, &target)
            .map(Json)
            .map_err(|TooManyUtxos| {
                RestError::bad_request(format!(
                    "Too many unspent transaction outputs (>{}). Contact support to raise limits.",
                    scripts::MAX_UTXOS
                ))
            })
    })
    .await
}

async fn txs_for(
    node: &Arc<Node>,
    target: Target,
    page: Page,
) -> Result<Json<Vec<Value>>, RestError> {
    read(node, move |s| Ok(Json(scripts::txs(s, &target, page)))).await
}

async fn mempool_txs_for(node: &Arc<Node>, target: Target) -> Result<Json<Vec<Value>>, RestError> {
    read(node, move |s| {
        let mut all = scripts::txs(s, &target, Page::First);
        all.retain(|t| t["status"]["confirmed"] == json!(false));
        Ok(Json(all))
    })
    .await
}

async fn address(State(node): St, Path(addr): Path<String>) -> Result<Json<Value>, RestError> {
    let target = address_target(&addr)?;
    stats_for(&node, target, "address", addr).await
}

async fn address_utxo(
    State(node): St,
    Path(addr): Path<String>,
) -> Result<Json<Vec<Value>>, RestError> {
    utxo_for(&node, address_target(&addr)?).await
}

async fn address_txs(
    State(node): St,
    Path(addr): Path<String>,
) -> Result<Json<Vec<Value>>, RestError> {
    txs_for(&node, address_target(&addr)?, Page::First).await
}

async fn address_txs_chain(
    State(node): St,
    Path(addr): Path<String>,
) -> Result<Json<Vec<Value>>, RestError> {
    txs_for(&node, address_target(&addr)?, Page::Chain(None)).await
}

async fn address_txs_after(
    State(node): St,
    Path((addr, last)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, RestError> {
    let target = address_target(&addr)?;
    txs_for(&node, target, Page::Chain(Some(parse_txid(&last)?))).await
}

async fn address_txs_mempool(
    State(node): St,
    Path(addr): Path<String>,
) -> Result<Json<Vec<Value>>, RestError> {
    mempool_txs_for(&node, address_target(&addr)?).await
}

async fn scripthash(State(node): St, Path(hash): Path<String>) -> Result<Json<Value>, RestError> {
    let target = hash_target(&hash)?;
    stats_for(&node, target, "scripthash", hash).await
}

async fn scripthash_utxo(
    State(node): St,
    Path(hash): Path<String>,
) -> Result<Json<Vec<Value>>, RestError> {
    utxo_for(&node, hash_target(&hash)?).await
}

async fn scripthash_txs(
    State(node): St,
    Path(hash): Path<String>,
) -> Result<Json<Vec<Value>>, RestError> {
    txs_for(&node, hash_target(&hash)?, Page::First).await
}

async fn scripthash_txs_chain(
    State(node): St,
    Path(hash): Path<String>,
) -> Result<Json<Vec<Value>>, RestError> {
    txs_for(&node, hash_target(&hash)?, Page::Chain(None)).await
}

async fn scripthash_txs_after(
    State(node): St,
    Path((hash, last)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, RestError> {
    let target = hash_target(&hash)?;
    txs_for(&node, target, Page::Chain(Some(parse_txid(&last)?))).await
}

async fn scripthash_txs_mempool(
    State(node): St,
    Path(hash): Path<String>,
) -> Result<Json<Vec<Value>>, RestError> {
    mempool_txs_for(&node, hash_target(&hash)?).await
}

async fn mempool(State(node): St) -> Result<Json<Value>, RestError> {
    read(&node, |s| {
        let entries = s.mempool.entries_in_order();
        let vsize: u64 = entries.iter().map(|e| e.vsize).sum();
        let fee: u64 = entries.iter().map(|e| e.fee.to_sat()).sum();
        Ok(Json(json!({
            "count": entries.len(),
            "vsize": vsize,
            "total_fee": fee,
            "fee_histogram": [],
        })))
    })
    .await
}

async fn mempool_txids(State(node): St) -> Result<Json<Vec<String>>, RestError> {
    read(&node, |s| {
        Ok(Json(
            s.mempool
                .entries_in_order()
                .iter()
                .map(|e| e.txid.to_string())
                .collect(),
        ))
    })
    .await
}

/// `GET mempool/recent`: the last 10 transactions to enter the mempool.
async fn mempool_recent(State(node): St) -> Result<Json<Vec<Value>>, RestError> {
    read(&node, |s| {
        Ok(Json(
            s.mempool
                .entries_in_order()
                .iter()
                .rev()
                .take(10)
                .map(|e| {
                    let value: u64 = e.tx.output.iter().map(|o| o.value.to_sat()).sum();
                    json!({"txid": e.txid.to_string(), "fee": e.fee.to_sat(), "vsize": e.vsize, "value": value})
                })
                .collect(),
        ))
    })
    .await
}

/// `GET fee-estimates`: target (blocks) → sat/vB, for Esplora's targets.
async fn fee_estimates() -> Json<Value> {
    let targets = (1..=25).chain([144, 504, 1008]);
    let map: serde_json::Map<String, Value> = targets
        .map(|t: u32| (t.to_string(), json!(FEE_RATE)))
        .collect();
    Json(Value::Object(map))
}

/// `GET v1/fees/recommended` (mempool.space), sat/vB.
async fn fees_recommended() -> Json<Value> {
    let rate = FEE_RATE as u64;
    Json(json!({
        "fastestFee": rate,
        "halfHourFee": rate,
        "hourFee": rate,
        "economyFee": rate,
        "minimumFee": rate,
    }))
}

/// `GET v1/validate-address/{addr}` (mempool.space, Core's `validateaddress` shape).
async fn validate_address(Path(addr): Path<String>) -> Json<Value> {
    let Some(script) = scripts::parse_devnet_address(&addr) else {
        return Json(json!({
            "isvalid": false,
            "error_locations": [],
            "error": "Invalid or unsupported Segwit (Bech32) or Base58 encoding.",
        }));
    };
    let mut v = json!({
        "isvalid": true,
        "address": addr,
        "scriptPubKey": hex::encode(script.as_bytes()),
        "isscript": script.is_p2sh() || script.is_p2wsh() || script.is_p2tr(),
        "iswitness": script.is_witness_program(),
    });
    if let (Some(version), Some(o)) = (script.witness_version(), v.as_object_mut()) {
        o.insert("witness_version".into(), json!(version.to_num()));
        o.insert(
            "witness_program".into(),
            json!(hex::encode(&script.as_bytes()[2..])),
        );
    }
    Json(v)
}

/// `POST /ord/outputs` as `ord` answers it: one entry per `"txid:vout"`, with no inscriptions
/// and no runes (the devnet has none). The devnet's API is configured with this as its ord
/// server, so `POST /v1/ordinals/verify-utxos` answers as in production.
pub async fn ord_outputs(
    State(node): St,
    body: axum::body::Bytes,
) -> Result<Json<Vec<Value>>, RestError> {
    let wanted: Vec<String> = serde_json::from_slice(&body).map_err(|e| {
        RestError::bad_request(format!(
            "expected a JSON array of \"txid:vout\" strings: {e}"
        ))
    })?;
    let outpoints = wanted
        .iter()
        .map(|s| {
            OutPoint::from_str(s).map_err(|_| {
                RestError::bad_request(format!("invalid output {s:?}: expected txid:vout"))
            })
        })
        .collect::<Result<Vec<OutPoint>, RestError>>()?;
    read(&node, move |s| {
        Ok(Json(
            outpoints
                .iter()
                .map(|op| {
                    let out = view::find_output(s, op);
                    json!({
                        "outpoint": op.to_string(),
                        "value": out.map_or(0, |o| o.value.to_sat()),
                        "script_pubkey": out.map(|o| hex::encode(o.script_pubkey.as_bytes())),
                        "inscriptions": [],
                        "runes": {},
                        "sat_ranges": null,
                        "indexed": true,
                        "spent": out.is_some() && s.chain.coin(op).is_none() && s.mempool.get(&op.txid).is_none(),
                        "transaction": op.txid.to_string(),
                    })
                })
                .collect(),
        ))
    })
    .await
}
