//! Shared helpers of the RPC tests: a started devnet and a minimal JSON-RPC caller (plain
//! reqwest + serde_json, independent of the `bitcoin-rpc` client crate).
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod esplora;

use bitcoin::consensus::encode::{deserialize, serialize_hex};
use bitcoin::{Address, Amount, Network, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use devnet::{DevnetConfig, DevnetHandle};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// A running devnet and a caller.
pub struct Devnet {
    pub handle: DevnetHandle,
    pub rpc: Rpc,
    pub shutdown: CancellationToken,
}

/// Starts an in-memory devnet on a random loopback port.
pub async fn start() -> Devnet {
    start_with(DevnetConfig::default()).await
}

/// Starts a devnet with `config`.
pub async fn start_with(config: DevnetConfig) -> Devnet {
    let shutdown = CancellationToken::new();
    let handle = devnet::spawn(config, shutdown.clone())
        .await
        .expect("devnet starts");
    let rpc = Rpc {
        client: reqwest::Client::new(),
        url: handle.rpc_url.clone(),
        user: handle.rpc_user.clone(),
        password: handle.rpc_password.clone(),
    };
    Devnet {
        handle,
        rpc,
        shutdown,
    }
}

/// A JSON-RPC caller.
pub struct Rpc {
    pub client: reqwest::Client,
    pub url: String,
    pub user: String,
    pub password: String,
}

/// An RPC error: code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcErr {
    pub code: i64,
    pub message: String,
}

impl Rpc {
    /// Posts `body` with the right credentials; returns status and body text.
    pub async fn post(&self, body: String) -> (u16, String) {
        let resp = self
            .client
            .post(&self.url)
            .basic_auth(&self.user, Some(&self.password))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("http");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    /// Calls `method`; `Err` carries Core's code and message.
    pub async fn try_call(&self, method: &str, params: Value) -> Result<Value, RpcErr> {
        let body =
            json!({"jsonrpc": "1.0", "id": "t", "method": method, "params": params}).to_string();
        let (_, text) = self.post(body).await;
        let v: Value = serde_json::from_str(&text).expect("JSON reply");
        assert_eq!(v["id"], "t");
        if v["error"].is_null() {
            Ok(v["result"].clone())
        } else {
            Err(RpcErr {
                code: v["error"]["code"].as_i64().expect("code"),
                message: v["error"]["message"].as_str().expect("message").to_owned(),
            })
        }
    }

    /// Calls `method` and expects success.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        match self.try_call(method, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{method} {params} failed: {e:?}"),
        }
    }

    pub async fn height(&self) -> u64 {
        self.call("getblockcount", json!([]))
            .await
            .as_u64()
            .expect("height")
    }

    pub async fn mine(&self, n: u32) -> Vec<String> {
        let addr = devnet::wallet::Wallet::from_seed(b"test miner")
            .address()
            .to_string();
        let v = self.call("generatetoaddress", json!([n, addr])).await;
        v.as_array()
            .expect("hashes")
            .iter()
            .map(|h| h.as_str().expect("hash").to_owned())
            .collect()
    }

    pub async fn send(&self, tx: &Transaction) -> Result<Value, RpcErr> {
        self.try_call("sendrawtransaction", json!([serialize_hex(tx)]))
            .await
    }

    pub async fn tx(&self, txid: &Txid) -> Transaction {
        let hex_tx = self
            .call("getrawtransaction", json!([txid.to_string()]))
            .await;
        deserialize(&hex::decode(hex_tx.as_str().expect("hex")).expect("hex")).expect("tx")
    }

    /// Pays `amount` to `script` through the `faucet` call, confirmed; returns the outpoint.
    pub async fn fund(&self, script: &ScriptBuf, amount: Amount) -> (OutPoint, TxOut) {
        let addr = Address::from_script(script, Network::Regtest).expect("address");
        let txid: Txid = self
            .call("faucet", json!([addr.to_string(), amount.to_btc()]))
            .await
            .as_str()
            .expect("txid")
            .parse()
            .expect("txid");
        let tx = self.tx(&txid).await;
        let vout = tx
            .output
            .iter()
            .position(|o| &o.script_pubkey == script)
            .expect("paid output");
        (
            OutPoint {
                txid,
                vout: vout as u32,
            },
            tx.output[vout].clone(),
        )
    }
}
