//! How fast the indexer's hot paths are: one block write (`apply_block`: 100 stakings, 50
//! unbondings, 150 events) and the per-block batch lookup of 4 000 spent outpoints, on SQLite
//! (temp file, WAL, synchronous=FULL) and on PostgreSQL when reachable (`DATABASE_URL`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench code: a panic is a failed run"
)]

#[path = "../tests/common/chain.rs"]
#[allow(dead_code, reason = "shared with the tests; the bench uses part of it")]
mod chain;

use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use chain::{block, event, staking, unbonding};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use store::{BlockWrite, Db, DbOptions, IndexerStore};

const STAKINGS: u32 = 100;
const UNBONDINGS: u32 = 50;

/// Block `height`: 100 new stakes, unbonding half of the previous block's stakes, 150 events.
fn big_block(height: u32) -> BlockWrite {
    let mut b = block(height, 0, 0);
    for p in 0..STAKINGS {
        b.stakings.push(staking(&b, p + 1, 10_000, p % 10 == 0));
        b.events.push(event("active_staking_queue", u64::from(p)));
    }
    if height > 1 {
        let prev = block(height - 1, 0, 0);
        for p in 0..UNBONDINGS {
            let s = staking(&prev, p + 1, 10_000, p % 10 == 0);
            b.unbondings.push(unbonding(&b, &s));
            b.events
                .push(event("unbonding_staking_queue", u64::from(p)));
        }
    }
    b
}

/// A throw-away PostgreSQL database (dropped with the returned guard), migrated.
async fn postgres() -> Option<(IndexerStore, testkit::PgTestDb)> {
    let pg = testkit::PgTestDb::create_or_skip("store_bench").await?;
    let db = Db::connect(&DbOptions::new(pg.url.clone())).await.ok()?;
    db.migrate().await.ok()?;
    Some((db.indexer(), pg))
}

fn bench_backend(c: &mut Criterion, label: &str, rt: &tokio::runtime::Runtime, s: &IndexerStore) {
    let mut next_height = 1u32;
    let mut group = c.benchmark_group(format!("{label}/apply_block"));
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.bench_function("100_stakings_50_unbondings_150_events", |b| {
        b.iter_custom(|iters| {
            let blocks: Vec<_> = (0..iters)
                .map(|i| big_block(next_height + i as u32))
                .collect();
            next_height += iters as u32;
            let start = Instant::now();
            rt.block_on(async {
                for blk in &blocks {
                    s.apply_block(blk).await.unwrap();
                }
            });
            start.elapsed()
        });
    });
    group.finish();

    // 4 000 prevouts: 50 stored staking outputs, 3 950 unrelated.
    let stored = block(1, 0, 0);
    let mut prevouts: Vec<OutPoint> = (0..50)
        .map(|p| staking(&stored, p + 1, 10_000, p % 10 == 0).staking_outpoint())
        .collect();
    prevouts.extend(
        (0..3_950u32).map(|i| OutPoint::new(Txid::from_byte_array([(i % 250) as u8; 32]), i)),
    );
    let mut group = c.benchmark_group(format!("{label}/lookup_spent"));
    group.throughput(Throughput::Elements(prevouts.len() as u64));
    group.bench_function("4000_prevouts", |b| {
        b.iter(|| {
            let found = rt.block_on(s.lookup_spent(&prevouts)).unwrap();
            assert_eq!(found.stakings.len(), 50);
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt.block_on(async {
        let url = format!("sqlite:{}", dir.path().join("bench.db").display());
        let db = Db::connect(&DbOptions::new(url)).await.unwrap();
        db.migrate().await.unwrap();
        db.indexer()
    });
    bench_backend(c, "sqlite", &rt, &sqlite);

    match rt.block_on(postgres()) {
        Some((pg, _dropped_at_the_end)) => bench_backend(c, "postgres", &rt, &pg),
        None => eprintln!("PostgreSQL unreachable: only SQLite was measured"),
    }
}

criterion_group! {
    name = store_benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(store_benches);
