//! The HTTP JSON-RPC envelope as bitcoind serves it: auth, parse errors, unknown methods, type
//! errors, batches, body limits, and the read calls' shapes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use bitcoin::consensus::encode::deserialize;
use serde_json::{json, Value};

#[tokio::test]
async fn wrong_credentials_get_401_with_an_empty_body() {
    let d = common::start().await;
    let resp = d
        .rpc
        .client
        .post(&d.rpc.url)
        .basic_auth("devnet", Some("wrong"))
        .body(r#"{"method":"getblockcount","params":[],"id":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("www-authenticate").is_some());
    assert_eq!(resp.text().await.unwrap(), "");
    let none = d
        .rpc
        .client
        .post(&d.rpc.url)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(none.status().as_u16(), 401);
}

#[tokio::test]
async fn malformed_json_is_a_parse_error_with_status_500() {
    let d = common::start().await;
    let (status, body) = d.rpc.post("{not json".to_owned()).await;
    assert_eq!(status, 500);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        json!({"result": null, "error": {"code": -32700, "message": "Parse error"}, "id": null})
    );
}

#[tokio::test]
async fn an_unknown_method_is_404_method_not_found_and_echoes_the_id() {
    let d = common::start().await;
    let (status, body) = d
        .rpc
        .post(r#"{"method":"nosuchcall","params":[],"id":[1,"x"]}"#.to_owned())
        .await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["error"],
        json!({"code": -32601, "message": "Method not found"})
    );
    assert_eq!(v["id"], json!([1, "x"]));
}

#[tokio::test]
async fn invalid_request_objects_and_wrong_types_get_cores_codes() {
    let d = common::start().await;
    let (status, body) = d.rpc.post(r#"{"method":5,"id":1}"#.to_owned()).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        -32600
    );
    let (status, body) = d.rpc.post(r#""just a string""#.to_owned()).await;
    assert_eq!(status, 500);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        -32700
    );

    let err = d
        .rpc
        .try_call("getblockhash", json!(["1"]))
        .await
        .unwrap_err();
    assert_eq!(err.code, -3);
    assert_eq!(
        err.message,
        "JSON value of type string for field height is not of expected type number"
    );
    assert_eq!(
        d.rpc
            .try_call("getblockhash", json!([]))
            .await
            .unwrap_err()
            .code,
        -1
    );
    assert_eq!(
        d.rpc
            .try_call("getblockhash", json!([1, 2]))
            .await
            .unwrap_err()
            .code,
        -1
    );
    let err = d
        .rpc
        .try_call("getblockhash", json!([5]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (-8, "Block height out of range")
    );
    let err = d
        .rpc
        .try_call("getblock", json!(["abc"]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (-8, "blockhash must be of length 64 (not 3, for 'abc')")
    );
    let err = d
        .rpc
        .try_call("getblock", json!(["00".repeat(32)]))
        .await
        .unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (-5, "Block not found"));
    let err = d
        .rpc
        .try_call("sendrawtransaction", json!(["zz"]))
        .await
        .unwrap_err();
    assert_eq!(err.code, -22);
    let err = d
        .rpc
        .try_call("getrawtransaction", json!(["11".repeat(32)]))
        .await
        .unwrap_err();
    assert_eq!(err.code, -5);
    let err = d
        .rpc
        .try_call("getmempoolentry", json!(["11".repeat(32)]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (-5, "Transaction not in mempool")
    );
    let err = d
        .rpc
        .try_call("generatetoaddress", json!([1, "bc1qnotregtest"]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (-5, "Error: Invalid address")
    );
    let err = d
        .rpc
        .try_call("estimatesmartfee", json!([0]))
        .await
        .unwrap_err();
    assert_eq!(err.code, -8);
}

#[tokio::test]
async fn a_batch_answers_each_call_in_order_with_status_200() {
    let d = common::start().await;
    let body = json!([
        {"method": "getblockcount", "params": [], "id": 1},
        {"method": "nosuchcall", "params": [], "id": 2},
        {"method": "getblockhash", "params": {"height": 0}, "id": 3},
        7,
    ]);
    let (status, text) = d.rpc.post(body.to_string()).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v[0], json!({"result": 0, "error": null, "id": 1}));
    assert_eq!(v[1]["error"]["code"], -32601);
    assert_eq!(
        v[2]["result"],
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    );
    assert_eq!(v[3]["error"]["code"], -32600);
}

#[tokio::test]
async fn a_body_above_32_mib_is_refused_with_413_and_the_server_keeps_serving() {
    let d = common::start().await;
    let huge = format!(
        r#"{{"method":"getblockcount","params":["{}"],"id":1}}"#,
        "a".repeat(33 * 1024 * 1024)
    );
    let (status, _) = d.rpc.post(huge).await;
    assert_eq!(status, 413);
    assert_eq!(d.rpc.height().await, 0);
}

#[tokio::test]
async fn blocks_headers_and_transactions_have_cores_shapes_and_agree_with_each_other() {
    let d = common::start().await;
    let genesis = d.rpc.call("getblockhash", json!([0])).await;
    let info = d.rpc.call("getblockchaininfo", json!([])).await;
    assert_eq!(info["chain"], "regtest");
    assert_eq!(info["bestblockhash"], genesis);
    assert_eq!(info["blocks"], 0);

    let hashes = d.rpc.mine(3).await;
    let hash = &hashes[1];
    let header = d.rpc.call("getblockheader", json!([hash])).await;
    assert_eq!(header["height"], 2);
    assert_eq!(header["confirmations"], 2);
    assert_eq!(header["previousblockhash"], json!(hashes[0]));
    assert_eq!(header["nextblockhash"], json!(hashes[2]));
    assert_eq!(header["bits"], "207fffff");
    assert_eq!(header["chainwork"], format!("{:064x}", 6));
    let raw_header = d.rpc.call("getblockheader", json!([hash, false])).await;
    assert_eq!(raw_header.as_str().unwrap().len(), 160);

    let raw = d.rpc.call("getblock", json!([hash, 0])).await;
    let block: bitcoin::Block = deserialize(&hex::decode(raw.as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(block.block_hash().to_string(), *hash);
    // BIP34: height 2 is pushed as OP_2, as Core's miner does.
    assert_eq!(block.txdata[0].input[0].script_sig.as_bytes()[0], 0x52);
    let v1 = d.rpc.call("getblock", json!([hash, 1])).await;
    assert_eq!(
        v1["tx"][0],
        json!(block.txdata[0].compute_txid().to_string())
    );
    assert_eq!(
        v1["size"],
        json!(bitcoin::consensus::serialize(&block).len())
    );
    let v2 = d.rpc.call("getblock", json!([hash, 2])).await;
    assert_eq!(
        v2["tx"][0]["vin"][0]["coinbase"].as_str().unwrap().len() % 2,
        0
    );
    assert_eq!(v2["tx"][0]["vout"][0]["value"], 50.0);
    let cb = d
        .rpc
        .call("getrawtransaction", json!([v1["tx"][0], true]))
        .await;
    assert_eq!(cb["blockhash"], json!(hash));
    assert_eq!(cb["confirmations"], 2);
    let out = d.rpc.call("gettxout", json!([v1["tx"][0], 0])).await;
    assert_eq!(out["coinbase"], true);
    assert_eq!(out["confirmations"], 2);
    assert_eq!(out["scriptPubKey"]["type"], "witness_v1_taproot");

    let net = d.rpc.call("getnetworkinfo", json!([])).await;
    assert_eq!(net["relayfee"], 0.00001);
    assert!(
        d.rpc.call("estimatesmartfee", json!([6])).await["feerate"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[tokio::test]
async fn generateblock_mines_exactly_the_given_transactions() {
    let d = common::start().await;
    let w = devnet::wallet::Wallet::from_seed(b"generateblock test");
    let (op, prev) = d
        .rpc
        .fund(w.script_pubkey(), bitcoin::Amount::from_sat(100_000))
        .await;
    let prev_again = prev.clone();
    let tx = w.spend(
        &[(op, prev)],
        vec![bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(99_000),
            script_pubkey: w.script_pubkey().clone(),
        }],
        bitcoin::Sequence::MAX,
    );
    let hex_tx = bitcoin::consensus::encode::serialize_hex(&tx);
    let addr = w.address().to_string();
    let res = d.rpc.call("generateblock", json!([addr, [hex_tx]])).await;
    let block = d.rpc.call("getblock", json!([res["hash"], 1])).await;
    assert_eq!(block["tx"].as_array().unwrap().len(), 2);
    assert_eq!(block["tx"][1], json!(tx.compute_txid().to_string()));
    // The same transaction again would overwrite unspent outputs (BIP30).
    let err = d
        .rpc
        .try_call("generateblock", json!([addr, [hex_tx]]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            -25,
            "TestBlockValidity failed: bad-txns-BIP30, tried to overwrite transaction"
        )
    );
    // Another spend of the same coin: its input is gone.
    let double = w.spend(
        &[(op, prev_again)],
        vec![bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(98_000),
            script_pubkey: w.script_pubkey().clone(),
        }],
        bitcoin::Sequence::MAX,
    );
    let err = d
        .rpc
        .try_call(
            "generateblock",
            json!([addr, [bitcoin::consensus::encode::serialize_hex(&double)]]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, -25);
    assert!(
        err.message
            .starts_with("TestBlockValidity failed: bad-txns-inputs-missingorspent"),
        "{}",
        err.message
    );
    let height = d.rpc.height().await;
    assert_eq!(d.rpc.call("getblockcount", json!([])).await, json!(height));
    let err = d
        .rpc
        .try_call("generateblock", json!([addr, ["22".repeat(32)]]))
        .await
        .unwrap_err();
    assert_eq!(err.code, -5);
}

#[tokio::test]
async fn the_faucet_pays_from_mature_coinbases_and_confirms_by_default() {
    let d = common::start().await;
    let w = devnet::wallet::Wallet::from_seed(b"faucet user");
    let addr = w.address().to_string();
    let txid = d.rpc.call("faucet", json!([addr, 1.5])).await;
    let tx = d.rpc.call("getrawtransaction", json!([txid, true])).await;
    assert_eq!(tx["confirmations"], 1);
    assert_eq!(tx["vout"][0]["value"], 1.5);
    assert_eq!(tx["vout"][0]["scriptPubKey"]["address"], json!(addr));
    let pending = d.rpc.call("faucet", json!([addr, "0.25", false])).await;
    assert_eq!(
        d.rpc.call("getrawmempool", json!([])).await,
        json!([pending])
    );
    let entry = d.rpc.call("getmempoolentry", json!([pending])).await;
    assert!(entry["fees"]["base"].as_f64().unwrap() > 0.0);
    let err = d
        .rpc
        .try_call("faucet", json!([addr, 0.000001]))
        .await
        .unwrap_err();
    assert_eq!(err.code, -8);
}

#[tokio::test]
async fn concurrent_faucet_calls_never_pick_the_same_coins() {
    let d = common::start().await;
    let addr = devnet::wallet::Wallet::from_seed(b"faucet crowd")
        .address()
        .to_string();
    d.rpc.call("faucet", json!([addr, 0.1])).await; // matures the faucet's first coins
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let rpc = common::Rpc {
            client: d.rpc.client.clone(),
            url: d.rpc.url.clone(),
            user: d.rpc.user.clone(),
            password: d.rpc.password.clone(),
        };
        let addr = addr.clone();
        set.spawn(async move { rpc.try_call("faucet", json!([addr, 0.01, false])).await });
    }
    let mut txids: Vec<String> = set
        .join_all()
        .await
        .into_iter()
        .map(|r| r.unwrap().as_str().unwrap().to_owned())
        .collect();
    txids.sort();
    txids.dedup();
    assert_eq!(txids.len(), 8);
    // Each payment exists (in the mempool, or mined when a later call had to mine coins).
    for txid in &txids {
        d.rpc.call("getrawtransaction", json!([txid])).await;
    }
}
