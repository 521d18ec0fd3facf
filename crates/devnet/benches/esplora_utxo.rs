//! Cost of the Esplora REST's `GET address/{addr}/utxo` on a long chain: by default 2,000 blocks
//! of 2,500 transactions (5 M transactions, 5 M unspent outputs spread over 1 M addresses),
//! queried through HTTP for random addresses. Target: p99 < 5 ms — the answer reads the
//! address's own history from the script index, whatever the size of the chain.
//!
//! `cargo bench -p devnet --bench esplora_utxo` (env: `BLOCKS`, `TXS`, `ADDRESSES`, `QUERIES`).
//! The chain is written as a block file and loaded the way a restart replays it (scripts assumed
//! valid: every output is an anyone-can-spend `OP_TRUE` change or a payment to a P2WPKH
//! address), so building it takes a minute instead of hours of signing. Prints one
//! `esplora_utxo …` line with the percentiles.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench code: a panic is a failed bench"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::blockdata::constants::genesis_block;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::{
    absolute, transaction, Address, Amount, Network, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, WPubkeyHash, Witness,
};
use devnet::store::{BlockStore, Record};
use devnet::{miner, params, Node};
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The P2WPKH script of pool address `i`.
fn address_script(i: u64) -> ScriptBuf {
    let h = sha256::Hash::hash(&i.to_le_bytes());
    let program = WPubkeyHash::from_slice(&h.as_byte_array()[..20]).unwrap();
    ScriptBuf::new_p2wpkh(&program)
}

/// Writes `blocks` full blocks (after 100 coinbase-only ones that mature their coins) to a block
/// file in `dir`: block `h` chains `txs` one-input transactions from the coinbase of block
/// `h - 100`, each paying 100 sat to the next pool address and the rest on to the next one.
fn write_chain(dir: &std::path::Path, blocks: u32, txs: u64, addresses: u64) {
    let (mut store, existing) = BlockStore::open(dir).unwrap();
    assert!(existing.is_empty());
    let op_true = ScriptBuf::from_bytes(vec![0x51]);
    let mut prev = genesis_block(Network::Regtest).block_hash();
    let mut coinbases: Vec<(OutPoint, Amount)> = vec![(OutPoint::null(), Amount::ZERO)];
    let mut next_address = 0u64;
    let started = Instant::now();
    for height in 1..=(params::COINBASE_MATURITY + blocks) {
        let mut body = Vec::new();
        if height > params::COINBASE_MATURITY {
            let (mut coin, mut value) = coinbases[(height - params::COINBASE_MATURITY) as usize];
            for _ in 0..txs {
                let pay = Amount::from_sat(100);
                let tx = Transaction {
                    version: transaction::Version::TWO,
                    lock_time: absolute::LockTime::ZERO,
                    input: vec![TxIn {
                        previous_output: coin,
                        script_sig: ScriptBuf::new(),
                        sequence: Sequence::MAX,
                        witness: Witness::new(),
                    }],
                    output: vec![
                        TxOut {
                            value: pay,
                            script_pubkey: address_script(next_address % addresses),
                        },
                        TxOut {
                            value: value - pay,
                            script_pubkey: op_true.clone(),
                        },
                    ],
                };
                next_address += 1;
                value -= pay;
                coin = OutPoint::new(tx.compute_txid(), 1);
                body.push(tx);
            }
        }
        let time = 1_700_000_000 + height;
        let block = miner::assemble(
            u64::from(height),
            prev,
            height,
            time,
            &op_true,
            Amount::ZERO,
            body,
        );
        prev = block.block_hash();
        coinbases.push((
            OutPoint::new(block.txdata[0].compute_txid(), 0),
            params::block_subsidy(height),
        ));
        store.append(&Record::Block(block)).unwrap();
    }
    store.sync().unwrap();
    println!(
        "wrote {} blocks ({} full × {txs} txs) in {:.1} s",
        params::COINBASE_MATURITY + blocks,
        blocks,
        started.elapsed().as_secs_f64()
    );
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let blocks = u32::try_from(env("BLOCKS", 2_000)).unwrap();
    let txs = env("TXS", 2_500);
    let addresses = env("ADDRESSES", 1_000_000);
    let queries = env("QUERIES", 2_000);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), blocks, txs, addresses);
    let started = Instant::now();
    let node = Arc::new(Node::open(dir.path()).unwrap());
    println!(
        "loaded and indexed height {} in {:.1} s",
        node.tip().height,
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let rest = devnet::esplora::spawn(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&node),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let client = reqwest::Client::new();
        // A fixed pseudo-random walk over the pool (the same addresses on every run).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut latencies = Vec::with_capacity(queries as usize);
        let mut utxos_seen = 0usize;
        for i in 0..(queries + queries / 10) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let script = address_script(x % addresses.min(txs * u64::from(blocks)));
            let address = Address::from_script(&script, Network::Testnet).unwrap();
            let url = format!("{}/signet/api/address/{address}/utxo", rest.url);
            let t = Instant::now();
            let resp = client.get(&url).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{url}");
            let body: Vec<serde_json::Value> = resp.json().await.unwrap();
            let took = t.elapsed();
            assert!(!body.is_empty(), "{url}: every pool address was paid");
            if i >= queries / 10 {
                latencies.push(took);
                utxos_seen += body.len();
            }
        }
        latencies.sort_unstable();
        let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
        println!(
            "esplora_utxo blocks={blocks} txs_per_block={txs} addresses={addresses} queries={} utxos_per_answer={:.1} p50_ms={p50:.3} p99_ms={p99:.3} max_ms={:.3} {}",
            latencies.len(),
            utxos_seen as f64 / latencies.len() as f64,
            percentile(&latencies, 1.0),
            if p99 < 5.0 { "PASS" } else { "FAIL" }
        );
        shutdown.cancel();
        let _ignored = rest.task.await;
    });
}
