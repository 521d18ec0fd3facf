//! A fake JSON-RPC node for the client and follower tests: a scripted HTTP server speaking
//! Bitcoin Core's wire format, and a toy chain (blocks with real headers, no proof of work)
//! that can grow and reorganise. The thing under test is the client; this only has to answer
//! the way Bitcoin Core does.
#![allow(
    dead_code,
    reason = "each test crate uses a different part of the support module"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence,
    Transaction, TxIn, TxMerkleNode, TxOut, Witness,
};
use serde_json::{json, Value};

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub params: Vec<Value>,
    pub body: Value,
    pub authorization: Option<String>,
}

/// What the fake answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    /// HTTP 200 with a JSON-RPC result.
    pub fn result(result: Value) -> Self {
        Self {
            status: 200,
            body: json!({"result": result, "error": null, "id": 1}).to_string(),
            delay: Duration::ZERO,
        }
    }

    /// A JSON-RPC error as Bitcoin Core sends it to a JSON-RPC 1.0 request: HTTP 500
    /// (404 for an unknown method) with the error object in the body.
    pub fn error(code: i32, message: &str) -> Self {
        let status = if code == -32601 { 404 } else { 500 };
        Self {
            status,
            body: json!({"result": null, "error": {"code": code, "message": message}, "id": 1})
                .to_string(),
            delay: Duration::ZERO,
        }
    }

    /// A bare HTTP status with a text body (e.g. 503 "Work queue depth exceeded").
    pub fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    /// The same reply, after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// Serves `handler` on a random loopback port until the test's runtime ends; returns the URL.
pub async fn serve(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> String {
    let handler: Arc<Handler> = Arc::new(handler);
    let app = Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: Bytes| {
            let handler = Arc::clone(&handler);
            async move {
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let seen = Seen {
                    method: body["method"].as_str().unwrap_or_default().to_owned(),
                    params: body["params"].as_array().cloned().unwrap_or_default(),
                    authorization: headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    body,
                };
                let reply = handler(&seen);
                if !reply.delay.is_zero() {
                    tokio::time::sleep(reply.delay).await;
                }
                (
                    StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    reply.body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

/// A toy chain: every block ever made, and the active chain as a list of hashes.
#[derive(Debug, Default)]
pub struct FakeChain {
    pub blocks: HashMap<BlockHash, (u32, Block)>,
    pub active: Vec<BlockHash>,
    salt: u32,
    /// Methods whose next call fails with HTTP 503.
    pub fail_next: Vec<String>,
}

impl FakeChain {
    /// A chain of `len` blocks (heights 0..len).
    pub fn with_blocks(len: u32) -> Self {
        let mut chain = Self::default();
        chain.mine(len);
        chain
    }

    pub fn tip_height(&self) -> u32 {
        u32::try_from(self.active.len()).expect("small chain") - 1
    }

    /// Appends `n` new blocks to the active chain.
    pub fn mine(&mut self, n: u32) -> Vec<BlockHash> {
        (0..n)
            .map(|_| {
                let height = u32::try_from(self.active.len()).expect("small chain");
                let prev = self
                    .active
                    .last()
                    .copied()
                    .unwrap_or_else(BlockHash::all_zeros);
                self.salt += 1;
                let block = make_block(prev, height, self.salt);
                let hash = block.block_hash();
                self.blocks.insert(hash, (height, block));
                self.active.push(hash);
                hash
            })
            .collect()
    }

    /// Drops the active blocks above `height` (like `invalidateblock` of the block at
    /// `height + 1`); the blocks stay known, as Bitcoin Core keeps stale blocks.
    pub fn truncate_to(&mut self, height: u32) {
        self.active.truncate(height as usize + 1);
    }

    pub fn answer(&mut self, request: &Seen) -> Reply {
        if let Some(i) = self.fail_next.iter().position(|m| *m == request.method) {
            self.fail_next.remove(i);
            return Reply::status(503, "Work queue depth exceeded");
        }
        let hash_param =
            |i: usize| -> Option<BlockHash> { request.params.get(i)?.as_str()?.parse().ok() };
        match request.method.as_str() {
            "getblockchaininfo" => Reply::result(json!({
                "chain": "regtest", "blocks": self.tip_height(), "headers": self.tip_height(),
                "bestblockhash": self.active.last().map(ToString::to_string),
                "initialblockdownload": false, "pruned": false
            })),
            "getblockcount" => Reply::result(json!(self.tip_height())),
            "getblockhash" => {
                let height = request.params.first().and_then(Value::as_u64);
                match height.and_then(|h| self.active.get(usize::try_from(h).ok()?)) {
                    Some(hash) => Reply::result(json!(hash.to_string())),
                    None => Reply::error(-8, "Block height out of range"),
                }
            }
            "getblock" | "getblockheader" => {
                let Some((height, block)) = hash_param(0).and_then(|h| self.blocks.get(&h)) else {
                    return Reply::error(-5, "Block not found");
                };
                let on_active = self.active.get(*height as usize) == Some(&block.block_hash());
                let confirmations = if on_active {
                    i64::from(self.tip_height() - height + 1)
                } else {
                    -1
                };
                let verbose = match request.params.get(1) {
                    Some(Value::Bool(v)) => *v,
                    Some(Value::Number(n)) => n.as_u64() != Some(0),
                    _ => true,
                };
                match (request.method.as_str(), verbose) {
                    ("getblock", false) => Reply::result(json!(serialize_hex(block))),
                    ("getblockheader", false) => Reply::result(json!(serialize_hex(&block.header))),
                    _ => Reply::result(json!({
                        "hash": block.block_hash().to_string(),
                        "confirmations": confirmations,
                        "height": height,
                        "version": block.header.version.to_consensus(),
                        "merkleroot": block.header.merkle_root.to_string(),
                        "time": block.header.time,
                        "nonce": block.header.nonce,
                        "nTx": block.txdata.len(),
                        "previousblockhash": (*height > 0).then(|| block.header.prev_blockhash.to_string()),
                        "tx": block.txdata.iter().map(|tx| tx.compute_txid().to_string()).collect::<Vec<_>>(),
                    })),
                }
            }
            other => Reply::error(-32601, &format!("Method not found: {other}")),
        }
    }
}

/// Serves `chain` as a node; returns the URL.
pub async fn serve_chain(chain: Arc<Mutex<FakeChain>>) -> String {
    serve(move |request| chain.lock().expect("chain lock").answer(request)).await
}

/// A block on `prev` with a coinbase unique to (`height`, `salt`).
pub fn make_block(prev: BlockHash, height: u32, salt: u32) -> Block {
    let mut script_sig = height.to_le_bytes().to_vec();
    script_sig.extend_from_slice(&salt.to_le_bytes());
    let coinbase = Transaction {
        version: transaction::Version::ONE,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(script_sig),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(5_000_000_000),
            script_pubkey: ScriptBuf::new(),
        }],
    };
    let mut block = Block {
        header: Header {
            version: BlockVersion::ONE,
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time: 1_700_000_000 + salt,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        },
        txdata: vec![coinbase],
    };
    block.header.merkle_root = block.compute_merkle_root().expect("one transaction");
    block
}
