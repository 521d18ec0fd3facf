//! Contract of the devnet's Esplora REST as a browser or `curl` sees it: mempool.space's shapes
//! under `/api` and `/signet/api`, CORS, `tb1…` addresses, 404 for the unknown, 400 for the
//! malformed, never 500.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use bitcoin::{Address, Amount, Network, OutPoint, Sequence, TxOut};
use common::esplora::Rest;
use devnet::wallet::Wallet;
use serde_json::{json, Value};

struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    fn new(rest: &Rest) -> Http {
        Http {
            client: reqwest::Client::new(),
            base: rest.handle.url.clone(),
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    async fn post(&self, path: &str, body: &str) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

fn tb1(wallet: &Wallet) -> String {
    Address::from_script(wallet.script_pubkey(), Network::Testnet)
        .unwrap()
        .to_string()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_prefixes_answer_mempool_space_shapes_with_cors_for_any_origin() {
    let rest = Rest::start().await;
    let http = Http::new(&rest);
    rest.mine(3).await;
    for prefix in ["/api", "/signet/api"] {
        assert_eq!(
            http.get(&format!("{prefix}/blocks/tip/height")).await,
            (200, "3".to_owned())
        );
        let (status, hash) = http.get(&format!("{prefix}/blocks/tip/hash")).await;
        assert_eq!((status, hash), (200, rest.node.tip().hash.to_string()));
        let fees = http.json(&format!("{prefix}/v1/fees/recommended")).await;
        assert_eq!(
            keys(&fees),
            [
                "economyFee",
                "fastestFee",
                "halfHourFee",
                "hourFee",
                "minimumFee"
            ]
        );
        assert!(fees
            .as_object()
            .unwrap()
            .values()
            .all(|v| v.as_u64() >= Some(1)));
    }
    let r = http
        .client
        .get(format!("{}/signet/api/blocks/tip/height", http.base))
        .header("Origin", "http://dapp.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let preflight = http
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/signet/api/tx", http.base),
        )
        .header("Origin", "http://dapp.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    let blocks = http.json("/api/blocks").await;
    let block = &blocks[0];
    assert_eq!(
        keys(block),
        [
            "bits",
            "difficulty",
            "height",
            "id",
            "mediantime",
            "merkle_root",
            "nonce",
            "previousblockhash",
            "size",
            "timestamp",
            "tx_count",
            "version",
            "weight"
        ]
    );
    let id = block["id"].as_str().unwrap();
    assert_eq!(http.get("/api/block-height/3").await, (200, id.to_owned()));
    let (status, header) = http.get(&format!("/api/block/{id}/header")).await;
    assert_eq!((status, header.len()), (200, 160), "80 bytes as hex");
    let fee_estimates = http.json("/api/fee-estimates").await;
    assert_eq!(fee_estimates["6"], json!(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_answers_the_same_in_its_tb1_and_bcrt1_spellings() {
    let rest = Rest::start().await;
    let http = Http::new(&rest);
    let dave = Wallet::from_seed(b"contract dave");
    rest.fund(dave.script_pubkey(), 70_000, true).await;
    rest.fund(dave.script_pubkey(), 30_000, false).await;
    let signet = tb1(&dave);
    let regtest = dave.address().to_string();

    let a = http.json(&format!("/signet/api/address/{signet}")).await;
    let b = http.json(&format!("/api/address/{regtest}")).await;
    assert_eq!(a["address"], json!(signet));
    assert_eq!(a["chain_stats"], b["chain_stats"]);
    assert_eq!(
        a["chain_stats"],
        json!({"funded_txo_count": 1, "funded_txo_sum": 70_000, "spent_txo_count": 0, "spent_txo_sum": 0, "tx_count": 1})
    );
    assert_eq!(a["mempool_stats"]["funded_txo_sum"], json!(30_000));

    let valid = http
        .json(&format!("/signet/api/v1/validate-address/{signet}"))
        .await;
    let program = hex::encode(&dave.script_pubkey().as_bytes()[2..]);
    assert_eq!(
        valid,
        json!({
            "isvalid": true,
            "address": signet,
            "scriptPubKey": hex::encode(dave.script_pubkey().as_bytes()),
            "isscript": true,
            "iswitness": true,
            "witness_version": 1,
            "witness_program": program,
        })
    );
    let mainnet = Address::from_script(dave.script_pubkey(), Network::Bitcoin).unwrap();
    let refused = http
        .json(&format!("/api/v1/validate-address/{mainnet}"))
        .await;
    assert_eq!(refused["isvalid"], json!(false));
    assert!(refused["error"].is_string());
    assert_eq!(http.get(&format!("/api/address/{mainnet}")).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utxos_leave_out_mempool_spends_and_include_unconfirmed_outputs() {
    let rest = Rest::start().await;
    let http = Http::new(&rest);
    let erin = Wallet::from_seed(b"contract erin");
    let kept = rest.fund(erin.script_pubkey(), 40_000, true).await;
    let spent = rest.fund(erin.script_pubkey(), 60_000, true).await;
    let coin = OutPoint::new(spent, 0);
    let change = erin.spend(
        &[(coin, rest.output(coin))],
        vec![TxOut {
            value: Amount::from_sat(59_000),
            script_pubkey: erin.script_pubkey().clone(),
        }],
        Sequence::ENABLE_RBF_NO_LOCKTIME,
    );
    let (status, txid) = http
        .post(
            "/signet/api/tx",
            &bitcoin::consensus::encode::serialize_hex(&change),
        )
        .await;
    assert_eq!(
        (status, txid.clone()),
        (200, change.compute_txid().to_string())
    );

    let utxos = http
        .json(&format!("/signet/api/address/{}/utxo", tb1(&erin)))
        .await;
    let list = utxos.as_array().unwrap();
    assert_eq!(list.len(), 2, "{utxos}");
    let unconfirmed = list.iter().find(|u| u["txid"] == json!(txid)).unwrap();
    assert_eq!(unconfirmed["status"], json!({"confirmed": false}));
    assert_eq!(unconfirmed["value"], json!(59_000));
    let confirmed = list
        .iter()
        .find(|u| u["txid"] == json!(kept.to_string()))
        .unwrap();
    assert_eq!(keys(confirmed), ["status", "txid", "value", "vout"]);
    assert_eq!(
        keys(&confirmed["status"]),
        ["block_hash", "block_height", "block_time", "confirmed"]
    );
    assert!(list.iter().all(|u| u["txid"] != json!(spent.to_string())));

    let tx = http.json(&format!("/api/tx/{txid}")).await;
    assert_eq!(
        keys(&tx),
        ["fee", "locktime", "size", "status", "txid", "version", "vin", "vout", "weight"]
    );
    assert_eq!(tx["fee"], json!(1_000));
    assert_eq!(tx["vin"][0]["prevout"]["value"], json!(60_000));
    assert_eq!(tx["vout"][0]["scriptpubkey_type"], json!("v1_p2tr"));
    assert_eq!(
        http.get(&format!("/api/tx/{txid}/hex")).await,
        (200, bitcoin::consensus::encode::serialize_hex(&change))
    );
    assert_eq!(
        http.json(&format!("/api/tx/{txid}/status")).await,
        json!({"confirmed": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_things_are_404_malformed_input_is_400_and_nothing_is_500() {
    let rest = Rest::start().await;
    let http = Http::new(&rest);
    rest.mine(1).await;
    let unknown = "11".repeat(32);
    for path in [
        format!("/api/tx/{unknown}"),
        format!("/api/tx/{unknown}/hex"),
        format!("/api/block/{unknown}"),
        format!("/api/block/{unknown}/header"),
        "/api/block-height/99".to_owned(),
        "/api/no/such/route".to_owned(),
    ] {
        assert_eq!(http.get(&path).await.0, 404, "{path}");
    }
    assert_eq!(
        http.get(&format!("/api/tx/{unknown}")).await.1,
        "Transaction not found"
    );
    for path in [
        "/api/tx/zz",
        "/api/tx/zz/status",
        "/api/block/zz/header",
        "/api/block-height/abc",
        "/api/block-height/-1",
        "/api/address/notanaddress",
        "/api/address/notanaddress/utxo",
        "/signet/api/v1/validate-address/x/extra",
        "/api/scripthash/xyz/txs",
        "/api/blocks/x",
        "/api/tx/zz/outspend/0",
    ] {
        let (status, body) = http.get(path).await;
        assert!(status == 400 || status == 404, "{path}: {status} {body}");
    }
    for path in [
        "/api/tx/zz",
        "/api/address/notanaddress",
        "/api/block-height/abc",
    ] {
        assert_eq!(http.get(path).await.0, 400, "{path}");
    }
    let (status, body) = http.post("/api/tx", "not hex").await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with(
            r#"sendrawtransaction RPC error: {"code":-22,"message":"TX decode failed"#
        ),
        "{body}"
    );
    let (status, _) = http.post("/ord/outputs", "{").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripthash_history_pages_by_25_after_the_last_seen_txid() {
    let rest = Rest::start().await;
    let http = Http::new(&rest);
    let frank = Wallet::from_seed(b"contract frank");
    for _ in 0..30 {
        rest.fund(frank.script_pubkey(), 10_000, false).await;
    }
    rest.mine(1).await;
    rest.fund(frank.script_pubkey(), 10_000, false).await;
    let hash = devnet::script_index::script_hash(frank.script_pubkey());

    let first = http.json(&format!("/api/scripthash/{hash}/txs")).await;
    let first = first.as_array().unwrap();
    assert_eq!(first.len(), 26, "1 mempool + 25 confirmed");
    assert_eq!(first[0]["status"]["confirmed"], json!(false));
    let last = first[25]["txid"].as_str().unwrap();
    let next = http
        .json(&format!("/api/scripthash/{hash}/txs/chain/{last}"))
        .await;
    assert_eq!(next.as_array().unwrap().len(), 5);
    let chain = http
        .json(&format!("/api/scripthash/{hash}/txs/chain"))
        .await;
    assert_eq!(chain.as_array().unwrap().len(), 25);
    let stats = http.json(&format!("/api/scripthash/{hash}")).await;
    assert_eq!(stats["chain_stats"]["tx_count"], json!(30));
    assert_eq!(stats["scripthash"], json!(hash.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ord_stand_in_reports_no_inscriptions_for_every_output() {
    let rest = Rest::start().await;
    let http = Http::new(&rest);
    let gina = Wallet::from_seed(b"contract gina");
    let txid = rest.fund(gina.script_pubkey(), 10_000, true).await;
    let body = json!([format!("{txid}:0"), format!("{}:1", "22".repeat(32))]).to_string();
    let r = http
        .client
        .post(format!("{}/ord/outputs", http.base))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let found: Value = r.json().await.unwrap();
    assert_eq!(found.as_array().unwrap().len(), 2);
    assert_eq!(found[0]["inscriptions"], json!([]));
    assert_eq!(found[0]["runes"], json!({}));
    assert_eq!(found[0]["value"], json!(10_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_faucet_pays_the_signet_spelling_of_an_address_to_the_same_script() {
    let d = common::start().await;
    let hana = Wallet::from_seed(b"contract hana");
    let txid = d.rpc.call("faucet", json!([tb1(&hana), 0.5])).await;
    let tx = d.rpc.tx(&txid.as_str().unwrap().parse().unwrap()).await;
    assert!(tx.output.iter().any(
        |o| o.script_pubkey == *hana.script_pubkey() && o.value == Amount::from_sat(50_000_000)
    ));
    let mainnet = Address::from_script(hana.script_pubkey(), Network::Bitcoin).unwrap();
    let refused = d
        .rpc
        .try_call("faucet", json!([mainnet.to_string(), 0.5]))
        .await
        .unwrap_err();
    assert_eq!(refused.message, "Invalid address");
}
