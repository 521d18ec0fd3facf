//! Unbondings per second end to end: N accepted requests in the database, a committee of 9
//! real signing servers on loopback (quorum 6), the devnet over RPC; the clock runs from the
//! first claim until every request is recorded `sent` (checks, 9 signer calls each with its
//! own chain lookups, signature verification, witness, testmempoolaccept, sendrawtransaction,
//! state write). Run with `crates/unbonding-pipeline/bench/run` (release build).
//!
//! Environment: `PIPELINE_BENCH_N` (requests, default 2000), `PIPELINE_BENCH_BACKEND`
//! (`sqlite`, default, or `postgres`), `PIPELINE_BENCH_CONCURRENCY` (default 64).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]
#![allow(clippy::print_stdout, reason = "the benchmark reports on stdout")]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{insert_request, Backend, Member, TestDb, World};
use tokio_util::sync::CancellationToken;
use unbonding_pipeline::Pipeline;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument other than ours means another bench.
    if std::env::args().skip(1).any(|a| a == "--list") {
        return;
    }
    let n: usize = env_or("PIPELINE_BENCH_N", 2000);
    let concurrency: usize = env_or("PIPELINE_BENCH_CONCURRENCY", 64);
    let backend = match std::env::var("PIPELINE_BENCH_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let db = TestDb::new(backend).await.expect("database available");
        let setup = Instant::now();
        let world = World::start(&[Member::Honest; 9], 6, n).await;
        let (stakes, height) = world.stake_confirmed(n);
        let store = db.store().await;
        for s in &stakes {
            insert_request(&store, &world.request_for(s), height).await;
        }
        println!(
            "setup: {n} confirmed staking txs and accepted requests in {:.1} s ({backend:?})",
            setup.elapsed().as_secs_f64()
        );
        let mut config = world.config(&db.url);
        config.concurrency = concurrency;
        config.batch_size = 256;
        config.signer_timeout = Duration::from_secs(10);
        config.lease = Duration::from_secs(120);
        let pipeline = Pipeline::connect(config).await.unwrap();
        let started = Instant::now();
        let summary = pipeline.run_pass(&CancellationToken::new()).await.unwrap();
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(summary.sent as usize, n, "every request sent: {summary:?}");
        let mempool = world.rpc.get_raw_mempool().await.unwrap().len();
        assert!(mempool >= n, "{mempool} txs in the mempool");
        println!(
            "unbonding pipeline end to end: {n} unbondings in {elapsed:.2} s = {:.0} unbondings/s \
             (9 signers on loopback, quorum 6, {concurrency} in flight, {backend:?})",
            n as f64 / elapsed
        );
        world.stop().await;
    });
}
