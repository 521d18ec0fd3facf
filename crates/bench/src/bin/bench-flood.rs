//! Valid signing requests per second and API `/v1/stats` latency with 2,000 idle connections
//! held open against each server, next to the same figures without them, in one run: a
//! covenant signer (in-memory chain) and the API (SQLite, the test fixtures) in this process,
//! both with their default connection limits, the load and the flood over loopback.
//!
//! Run: `cargo run --release -p bench --bin bench-flood -- [--seconds 5] [--idle 2000]`.
//! Prints one markdown table for `docs/benchmarks.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench tool: a panic is a failed run"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::Summary;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, Txid};
use clap::Parser;
use covenant_signer::chain::{CachedChain, MemoryChain};
use covenant_signer::fixture::{Fixture, FixtureShape};
use covenant_signer::keystore::KeyBackend;
use net::flood::{FloodConfig, IdleFlood};
use tokio_util::sync::CancellationToken;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/api-fixtures");

#[derive(Debug, Parser)]
struct Args {
    /// Seconds of each measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Idle connections held against each server in the flooded phase.
    #[arg(long, default_value_t = 2000)]
    idle: usize,
    /// Loopback source addresses of the flood (per-client cap 64: keep idle / sources ≤ 64).
    #[arg(long, default_value_t = 40)]
    sources: u8,
    /// Signing requests in flight.
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// API requests in flight.
    #[arg(long, default_value_t = 8)]
    api_in_flight: usize,
}

/// Runs `in_flight` loops of `call` for `seconds`; the latency summary of the successes.
async fn load<F, Fut>(seconds: u64, in_flight: usize, call: F) -> Summary
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..in_flight {
        let call = Arc::clone(&call);
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors, mut i) = (Vec::new(), 0u64, worker);
            while Instant::now() < deadline {
                let t = Instant::now();
                if call(i).await {
                    latencies.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                } else {
                    errors += 1;
                }
                i += in_flight;
            }
            (latencies, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, e) = task.await.unwrap();
        all.extend(latencies);
        errors += e;
    }
    Summary::from_micros(&mut all, errors, started.elapsed().as_secs_f64())
}

async fn start_signer() -> (SocketAddr, Vec<String>) {
    let fx = Fixture::new(FixtureShape::default(), 5).unwrap();
    let chain = Arc::new(MemoryChain::new(10_000));
    let mut bodies = Vec::new();
    for i in 0..64u64 {
        let mut funding = [0u8; 32];
        funding[..8].copy_from_slice(&i.to_le_bytes());
        let outpoint = OutPoint::new(Txid::from_byte_array(funding), 0);
        let staking_tx = fx
            .staking_tx(outpoint, Amount::from_sat(100_000 + i), 1000, None)
            .unwrap();
        chain.confirm(staking_tx.clone(), 500);
        let request = fx.request(&staking_tx, 1000, 0).unwrap();
        bodies.push(serde_json::to_string(&request.to_json()).unwrap());
    }
    let config = covenant_signer::config::Config::from_toml(
        "[server]\nport = 0\n[metrics]\nenabled = false\n[rate-limit]\nrequests-per-second = 0\n\
         burst = 0\n[btc-config]\nurl = \"http://127.0.0.1:1\"\nuser = \"u\"\npass = \"p\"\n\
         [signer]\nbackend = \"file\"\nkey-file = \"/nonexistent\"\n",
    )
    .unwrap();
    let cached = CachedChain::new(chain, Duration::from_secs(600), 10_000);
    let backend = KeyBackend::File(fx.member_covenant_key(0).unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(covenant_signer::serve(
        config,
        fx.params.clone(),
        Arc::new(cached),
        backend,
        CancellationToken::new(),
        move |bound| {
            let _ = tx.send(bound);
        },
    ));
    (rx.await.unwrap().api, bodies)
}

async fn start_api(dir: &std::path::Path) -> SocketAddr {
    let text = format!(
        "params = \"{TESTDATA}/global-params-test.json\"\n\
         finality_providers = \"{TESTDATA}/finality-providers-test.json\"\n\
         [server]\nlisten = \"127.0.0.1:0\"\nnetwork = \"signet\"\n\
         [db]\nurl = \"sqlite://{}\"\n[queue]\nurl = \"in-process\"\n",
        dir.join("api.db").display()
    );
    let config = api::Config::from_toml(&text).unwrap();
    let service = api::Service::build(&config).await.unwrap();
    let transport = events::Transport::InProcess(events::InProcessTransport::new(
        events::EventsMetrics::default(),
    ));
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    tokio::spawn(api::run_with(
        service,
        transport,
        addr,
        None,
        config.consumer(),
        CancellationToken::new(),
    ));
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    addr
}

/// Signing requests/s and `/v1/stats` latency, one after the other.
async fn measure(
    args: &Args,
    signer: SocketAddr,
    bodies: &Arc<Vec<String>>,
    api: SocketAddr,
) -> (Summary, Summary) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let sign_url = format!("http://{signer}/v1/sign-unbonding-tx");
    let (c, b) = (client.clone(), Arc::clone(bodies));
    let signing = load(args.seconds, args.in_flight, move |i| {
        let request = c
            .post(&sign_url)
            .header("content-type", "application/json")
            .body(b[i % b.len()].clone());
        async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    let stats_url = format!("http://{api}/v1/stats");
    let stats = load(args.seconds, args.api_in_flight, move |_| {
        let request = client.get(&stats_url);
        async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    (signing, stats)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let limit = net::raise_fd_limit();
    let dir = tempfile_dir();
    let (signer, bodies) = start_signer().await;
    let bodies = Arc::new(bodies);
    let api = start_api(&dir).await;

    let (sign_base, api_base) = measure(&args, signer, &bodies, api).await;
    let floods = [signer, api]
        .map(|target| IdleFlood::start(FloodConfig::loopback(target, args.idle, args.sources)));
    for flood in &floods {
        assert!(
            flood
                .wait_open(args.idle.min(1000), Duration::from_secs(30))
                .await,
            "the flood did not open its connections: {:?}",
            flood.counts()
        );
    }
    let (sign_flood, api_flood) = measure(&args, signer, &bodies, api).await;
    let mut counts = Vec::new();
    for flood in floods {
        counts.push(flood.stop().await);
    }
    println!(
        "| phase | signing req/s | signing errors | `/v1/stats` req/s | p50 ms | p99 ms | errors |"
    );
    println!("|---|---|---|---|---|---|---|");
    let flooded = format!("{} idle connections on each server", args.idle);
    for (phase, s, a) in [
        ("no idle connections", &sign_base, &api_base),
        (flooded.as_str(), &sign_flood, &api_flood),
    ] {
        println!(
            "| {phase} | {:.0} | {} | {:.0} | {:.2} | {:.2} | {} |",
            s.requests_per_sec, s.errors, a.requests_per_sec, a.p50_ms, a.p99_ms, a.errors
        );
    }
    println!(
        "\nRatio signing req/s flooded / not: {:.2}; open-file limit {limit:?}; flood (signer, API): {counts:?}",
        sign_flood.requests_per_sec / sign_base.requests_per_sec.max(1.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bench-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
