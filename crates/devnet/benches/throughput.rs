//! Throughput of the devnet: transactions accepted (all checks, scripts through
//! libbitcoinconsensus) and mined, in-process and through the JSON-RPC server; and the
//! mainnet-sized block generator.
//!
//! `cargo bench -p devnet --bench throughput`; criterion prints elements (transactions) per
//! second for each group.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench code: a panic is a failed bench"
)]

use std::sync::Arc;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, Sequence, Transaction, TxOut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use devnet::generator::{fund, generate, GeneratorConfig};
use devnet::wallet::Wallet;
use devnet::{DevnetConfig, Node};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const TXS: usize = 3_000;

/// A node with `TXS` mature independent coins and `TXS` signed 1-in-1-out taproot key-path
/// spends of them, ready to submit.
fn prepared(node: &Node) -> Vec<Transaction> {
    let w = Wallet::from_seed(b"bench wallet");
    let coins = fund(node, &w, w.script_pubkey(), TXS).unwrap();
    coins
        .into_iter()
        .map(|c| {
            let out = TxOut {
                value: c.1.value - Amount::from_sat(500),
                script_pubkey: w.script_pubkey().clone(),
            };
            w.spend(&[c], vec![out], Sequence::MAX)
        })
        .collect()
}

fn mine_all(node: &Node) {
    let payout = Wallet::from_seed(b"bench miner").script_pubkey().clone();
    while !node.lock().mempool.is_empty() {
        node.mine_blocks(1, &payout).unwrap();
    }
}

fn in_process(c: &mut Criterion) {
    let mut g = c.benchmark_group("in_process");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TXS as u64));
    g.bench_function("submit_tx_then_mine_3000_taproot_spends", |b| {
        b.iter_batched(
            || {
                let node = Node::in_memory();
                let txs = prepared(&node);
                (node, txs)
            },
            |(node, txs)| {
                for tx in txs {
                    node.submit_tx(tx).unwrap();
                }
                mine_all(&node);
                assert!(node.lock().mempool.is_empty());
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

async fn post(client: &reqwest::Client, url: &str, body: String) -> Value {
    client
        .post(url)
        .basic_auth("devnet", Some("devnet"))
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn through_rpc(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut g = c.benchmark_group("rpc");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TXS as u64));
    for batch in [1usize, 100] {
        g.bench_function(format!("sendrawtransaction_batch{batch}_then_generate_3000"), |b| {
            b.iter_batched(
                || {
                    let shutdown = CancellationToken::new();
                    let handle = rt.block_on(devnet::spawn(DevnetConfig::default(), shutdown.clone())).unwrap();
                    let txs: Vec<String> = prepared(&handle.chain).iter().map(serialize_hex).collect();
                    (handle, shutdown, txs)
                },
                |(handle, shutdown, txs)| {
                    rt.block_on(async {
                        let client = reqwest::Client::new();
                        let url = Arc::new(handle.rpc_url.clone());
                        // Four connections in parallel, each sending `batch` calls per request.
                        let chunks: Vec<Vec<String>> = txs.chunks(TXS / 4).map(<[String]>::to_vec).collect();
                        let mut tasks = Vec::new();
                        for chunk in chunks {
                            let client = client.clone();
                            let url = Arc::clone(&url);
                            tasks.push(tokio::spawn(async move {
                                for group in chunk.chunks(batch) {
                                    let calls: Vec<Value> = group
                                        .iter()
                                        .map(|h| json!({"method": "sendrawtransaction", "params": [h], "id": 1}))
                                        .collect();
                                    let body = if batch == 1 { calls[0].to_string() } else { Value::Array(calls).to_string() };
                                    let reply = post(&client, &url, body).await;
                                    let replies = if batch == 1 { vec![reply] } else { reply.as_array().unwrap().clone() };
                                    assert!(replies.iter().all(|r| r["error"].is_null()), "{replies:?}");
                                }
                            }));
                        }
                        for t in tasks {
                            t.await.unwrap();
                        }
                        let addr = Wallet::from_seed(b"bench miner").address().to_string();
                        loop {
                            let size = post(&client, &url, json!({"method": "getmempoolinfo", "id": 1}).to_string()).await;
                            if size["result"]["size"] == 0 {
                                break;
                            }
                            post(&client, &url, json!({"method": "generatetoaddress", "params": [1, addr], "id": 1}).to_string())
                                .await;
                        }
                    });
                    shutdown.cancel();
                    rt.block_on(handle.stopped());
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

fn generator(c: &mut Criterion) {
    let mut g = c.benchmark_group("generator");
    g.sample_size(10);
    g.throughput(Throughput::Elements(2_500));
    g.bench_function("one_mainnet_sized_block_2500_txs", |b| {
        b.iter_batched(
            Node::in_memory,
            |node| {
                let out = generate(
                    &node,
                    GeneratorConfig {
                        blocks: 1,
                        txs_per_block: 2_500,
                    },
                )
                .unwrap();
                assert!(out.bytes > 1_400_000, "{} bytes", out.bytes);
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

criterion_group!(benches, in_process, through_rpc, generator);
criterion_main!(benches);
