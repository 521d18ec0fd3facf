//! Valid signing requests per second through the whole HTTP stack on loopback: parse, every
//! check, BIP340 verify of the staker signature, BIP340 sign, JSON answer. The chain is in
//! memory behind the same per-txid cache the RPC chain uses, so the number is the signer's
//! own cost (a real node adds its `getblockcount` and `gettxout` round trips).
//!
//! Run: `cargo bench -p covenant-signer --bench signing_throughput` (or `bench/run`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench code: a panic is a failed run"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, Txid};
use covenant_signer::chain::{CachedChain, MemoryChain};
use covenant_signer::config::Config;
use covenant_signer::fixture::{Fixture, FixtureShape};
use covenant_signer::keystore::KeyBackend;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

const STAKING_TXS: usize = 64;
const BATCH: usize = 512;
const IN_FLIGHT: usize = 32;

fn config() -> Config {
    Config::from_toml(
        r#"
        [server]
        port = 0
        [metrics]
        enabled = false
        [rate-limit]
        requests-per-second = 0
        burst = 0
        [btc-config]
        url = "http://127.0.0.1:1"
        user = "u"
        pass = "p"
        [signer]
        backend = "file"
        key-file = "/nonexistent"
        "#,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fx = Fixture::new(FixtureShape::default(), 5).unwrap();
    let chain = Arc::new(MemoryChain::new(10_000));
    let mut bodies = Vec::new();
    for i in 0..STAKING_TXS {
        let mut funding = [0u8; 32];
        funding[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let staking_tx = fx
            .staking_tx(
                OutPoint::new(Txid::from_byte_array(funding), 0),
                Amount::from_sat(100_000 + i as u64),
                1000,
                None,
            )
            .unwrap();
        chain.confirm(staking_tx.clone(), 500);
        let request = fx.request(&staking_tx, 1000, 0).unwrap();
        bodies.push(serde_json::to_string(&request.to_json()).unwrap());
    }
    let cached = CachedChain::new(chain, Duration::from_secs(600), 10_000);
    let backend = KeyBackend::File(fx.member_covenant_key(0).unwrap());
    let shutdown = CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = runtime.spawn(covenant_signer::serve(
        config(),
        fx.params.clone(),
        Arc::new(cached),
        backend,
        shutdown.clone(),
        move |bound| tx.send(bound).unwrap(),
    ));
    let bound = rx.recv().unwrap();
    let url = format!("http://{}/v1/sign-unbonding-tx", bound.api);
    let client = reqwest::Client::new();

    let mut group = c.benchmark_group("covenant_signer");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.bench_function("valid_signing_requests_over_loopback_http", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    let ok = futures::stream::iter(0..BATCH)
                        .map(|i| {
                            let request = client
                                .post(&url)
                                .header("content-type", "application/json")
                                .body(bodies[i % bodies.len()].clone());
                            async move { request.send().await.map(|r| r.status().is_success()) }
                        })
                        .buffer_unordered(IN_FLIGHT)
                        .filter(|r| futures::future::ready(matches!(r, Ok(true))))
                        .count()
                        .await;
                    assert_eq!(ok, BATCH, "every request in the batch is signed");
                }
                started.elapsed()
            })
        });
    });
    group.finish();
    shutdown.cancel();
    runtime.block_on(server).unwrap().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
