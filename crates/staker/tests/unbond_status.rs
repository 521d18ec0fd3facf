//! `unbond` and `status` against a small fake of the API's v1 endpoints (`spec/api.md` §4, §6),
//! on a devnet: the exact request body is checked, then the unbonding tx is completed with our
//! own committee's signatures, mined, and withdrawn after the unbonding time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{covenant, params, stderr, Env, UNBONDING_FEE, UNBONDING_TIME};
use serde_json::{json, Value};
use staking_core::bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use staking_core::bitcoin::hex::FromHex;
use staking_core::bitcoin::{OutPoint, Transaction};
use staking_core::params::BlockHeight;
use staking_core::signing::{sign, verify};
use staking_core::staking_tx::{classify, StakingTxClass};
use staking_core::unbonding::{canonical_unbonding_tx, unbonding_sighash, UnbondingTerms};
use staking_core::witness::unbonding_witness;

#[derive(Default)]
struct Fake {
    delegation: Option<Value>,
    requests: Vec<Value>,
}

type Shared = Arc<Mutex<Fake>>;

async fn delegation(
    State(fake): State<Shared>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let fake = fake.lock().unwrap();
    match &fake.delegation {
        Some(d)
            if d["staking_tx_hash_hex"].as_str()
                == q.get("staking_tx_hash_hex").map(String::as_str) =>
        {
            (StatusCode::OK, Json(json!({ "data": d })))
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(
                json!({"errorCode":"NOT_FOUND","message":"staking delegation not found, please retry"}),
            ),
        ),
    }
}

async fn delegations(
    State(fake): State<Shared>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Json<Value> {
    let fake = fake.lock().unwrap();
    let data: Vec<Value> = fake
        .delegation
        .iter()
        .filter(|d| d["staker_pk_hex"].as_str() == q.get("staker_btc_pk").map(String::as_str))
        .cloned()
        .collect();
    Json(json!({"data": data, "pagination": {"next_key": ""}}))
}

async fn unbonding(
    State(fake): State<Shared>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut guard = fake.lock().unwrap();
    let state = guard.delegation.as_ref().map(|d| d["state"].clone());
    if state != Some(json!("active")) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"errorCode":"FORBIDDEN","message":"delegation state is not active"})),
        );
    }
    guard.requests.push(body);
    if let Some(d) = guard.delegation.as_mut() {
        d["state"] = json!("unbonding_requested");
    }
    let fake = fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        if let Some(d) = fake.lock().unwrap().delegation.as_mut() {
            d["state"] = json!("unbonding");
        }
    });
    (StatusCode::ACCEPTED, Json(Value::Null))
}

fn serve(env: &mut Env) -> Shared {
    let fake: Shared = Arc::default();
    let app = Router::new()
        .route("/v1/delegation", get(delegation))
        .route("/v1/staker/delegations", get(delegations))
        .route("/v1/unbonding", post(unbonding))
        .with_state(fake.clone());
    let listener = env
        .rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    env.api_url = Some(format!("http://{}", listener.local_addr().unwrap()));
    env.rt
        .spawn(async move { axum::serve(listener, app).await });
    fake
}

fn delegation_json(tx: &Transaction, height: u64, staker: &str, state: &str) -> Value {
    json!({
        "staking_tx_hash_hex": tx.compute_txid().to_string(),
        "staker_pk_hex": staker,
        "finality_provider_pk_hex": common::FP,
        "state": state,
        "staking_value": tx.output[0].value.to_sat(),
        "staking_tx": {
            "tx_hex": serialize_hex(tx), "output_index": 0,
            "start_timestamp": "2026-01-01T00:00:00Z", "start_height": height,
            "timelock": common::STAKING_TIME
        },
        "is_overflow": false
    })
}

#[test]
fn unbond_submits_the_canonical_tx_and_signature_then_the_unbonding_output_is_withdrawn() {
    let mut env = Env::new();
    let fake = serve(&mut env);
    let (key, utxo) = env.funded_key(1_000_000);
    let staker = key["staker_pk_hex"].as_str().unwrap().to_owned();
    let txid = env.stake(utxo, 300_000);
    env.mine(2);
    let height = env.tip() - 1;
    let staking_tx = env.tx(&txid);
    fake.lock().unwrap().delegation = Some(delegation_json(&staking_tx, height, &staker, "active"));

    let v = env.staker_json(&["unbond", "--staking-txid", &txid.to_string(), "--wait"]);
    assert_eq!(v["submitted"], true);
    assert_eq!(v["state"], "unbonding");

    // The exact payload: four fields, the canonical tx, the staker's valid signature.
    let requests = fake.lock().unwrap().requests.clone();
    assert_eq!(requests.len(), 1);
    let body = requests[0].as_object().unwrap();
    let mut fields: Vec<&str> = body.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "staker_signed_signature_hex",
            "staking_tx_hash_hex",
            "unbonding_tx_hash_hex",
            "unbonding_tx_hex"
        ]
    );
    let params = params();
    let StakingTxClass::Valid(parsed) = classify(&staking_tx, &params, BlockHeight(height)) else {
        panic!("not staking")
    };
    let version = params.version(0).unwrap();
    let staking = staking_core::script::StakingOutput::new(
        version
            .staking_keys(parsed.staker, parsed.finality_provider)
            .unwrap(),
        parsed.staking_time,
    )
    .unwrap();
    let terms = UnbondingTerms {
        unbonding_time: UNBONDING_TIME,
        unbonding_fee: staking_core::bitcoin::Amount::from_sat(UNBONDING_FEE),
    };
    let expected = canonical_unbonding_tx(
        &staking,
        OutPoint::new(txid, 0),
        parsed.staking_value,
        &terms,
    )
    .unwrap();
    let sent: Transaction = deserialize_hex(body["unbonding_tx_hex"].as_str().unwrap()).unwrap();
    assert_eq!(sent, expected);
    assert_eq!(body["staking_tx_hash_hex"], txid.to_string());
    assert_eq!(
        body["unbonding_tx_hash_hex"],
        expected.compute_txid().to_string()
    );
    assert_eq!(sent.output[0].value.to_sat(), 300_000 - UNBONDING_FEE);
    let sighash = unbonding_sighash(&expected, &staking, parsed.staking_value).unwrap();
    let sig_bytes =
        Vec::<u8>::from_hex(body["staker_signed_signature_hex"].as_str().unwrap()).unwrap();
    let staker_sig = verify(&sighash, &sig_bytes, &parsed.staker).unwrap();

    // A second request is refused with the API's message.
    let o = env.staker(&["unbond", "--staking-txid", &txid.to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is `unbonding`; only an `active` delegation"),
        "{}",
        stderr(&o)
    );

    // status lists it.
    let s = env.staker_json(&["status"]);
    assert_eq!(s["delegations"][0]["staking_tx_hash_hex"], txid.to_string());
    assert_eq!(s["delegations"][0]["state"], "unbonding");

    // The committee (ours) completes the tx; then the unbonding output is withdrawn.
    let cov: Vec<_> = (1..=2u8)
        .map(|i| {
            (
                covenant(i).x_only_public_key().0,
                sign(&sighash, &covenant(i)),
            )
        })
        .collect();
    let mut signed = expected.clone();
    signed.input[0].witness = unbonding_witness(&staking, &staker_sig, &cov).unwrap();
    env.node.submit_tx(signed).unwrap();
    env.mine(1);
    let unbonding_txid = expected.compute_txid().to_string();
    let o = env.staker(&[
        "--json",
        "withdraw",
        "--unbonding-txid",
        &unbonding_txid,
        "--fee-rate",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "unbonding");
    assert_eq!(v["blocks_remaining"], u64::from(UNBONDING_TIME) - 1);
    let o = env.staker(&[
        "withdraw",
        "--staking-txid",
        &txid.to_string(),
        "--fee-rate",
        "2",
    ]);
    assert!(
        stderr(&o).contains("withdraw with --unbonding-txid"),
        "{}",
        stderr(&o)
    );

    env.mine(u32::from(UNBONDING_TIME) - 1);
    let v = env.staker_json(&[
        "withdraw",
        "--unbonding-txid",
        &unbonding_txid,
        "--fee-rate",
        "2",
    ]);
    assert_eq!(v["broadcast"], true);
    env.mine(1);
    assert!(!env.unspent(OutPoint::new(expected.compute_txid(), 0)));
}

#[test]
fn unbond_of_an_unknown_delegation_says_when_it_will_appear() {
    let mut env = Env::new();
    let _fake = serve(&mut env);
    let _ = env.staker_json(&["keys", "generate"]);
    let o = env.staker(&["unbond", "--staking-txid", &"ab".repeat(32)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("the API does not know staking tx"),
        "{}",
        stderr(&o)
    );
}
