//! Crash safety: a writer process killed with SIGKILL at arbitrary moments, restarted from the
//! stored tip, ends with exactly the state of a clean uninterrupted run — rows, TVL, tip and
//! the outbox's event sequence — on SQLite and on PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bitcoin::Amount;
use common::chain::busy_block;
use common::TestDb;
use store::{Db, DbOptions, IndexerStore, InvalidTxQuery, OutboxStore};

const FIRST: u32 = 1_000;
const LAST: u32 = FIRST + 299;
const URL_ENV: &str = "STORE_CRASH_TEST_URL";
/// PostgreSQL `application_name` of the child writer's sessions.
const CHILD_APP: &str = "store_crash_child";

/// Applies blocks from the stored tip on; run as a child process by the tests below.
#[tokio::test]
#[ignore = "child process of the SIGKILL tests, which run it with STORE_CRASH_TEST_URL set"]
async fn crash_child_writer() {
    let url = std::env::var(URL_ENV).expect("STORE_CRASH_TEST_URL names the database");
    let s = Db::connect(&DbOptions::new(url)).await.unwrap().indexer();
    loop {
        let next = s.tip().await.unwrap().map_or(FIRST, |t| t.height + 1);
        if next > LAST {
            return;
        }
        s.apply_block(&busy_block(FIRST, next)).await.unwrap();
    }
}

/// Everything observable about the indexer state, for comparing two runs.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    tip: Option<store::BlockRef>,
    tvl: Amount,
    stakings: Vec<store::StakingTx>,
    unbondings: Vec<Option<store::UnbondingTx>>,
    invalids: Vec<store::InvalidTx>,
    outbox: Vec<(String, String)>,
    hashes: Vec<Option<bitcoin::BlockHash>>,
}

async fn observe((s, outbox): &(IndexerStore, OutboxStore)) -> Observed {
    let stakings = s.staking_txs_in_range(0, u32::MAX).await.unwrap();
    let mut unbondings = Vec::new();
    for st in &stakings {
        unbondings.push(s.unbonding_of(st.txid).await.unwrap());
    }
    let mut hashes = Vec::new();
    for h in FIRST..=LAST {
        hashes.push(s.block_hash_at(h).await.unwrap());
    }
    let all = InvalidTxQuery {
        limit: Some(1_000_000),
        ..Default::default()
    };
    Observed {
        tip: s.tip().await.unwrap(),
        tvl: s.confirmed_tvl().await.unwrap(),
        stakings,
        unbondings,
        invalids: s.invalid_txs(&all).await.unwrap(),
        outbox: outbox
            .fetch_unsent(1_000_000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.queue, r.payload))
            .collect(),
        hashes,
    }
}

/// The state after any prefix of committed blocks: consistent TVL and one outbox row per event
/// of exactly the committed blocks.
async fn assert_consistent_prefix((s, outbox): &(IndexerStore, OutboxStore)) {
    let tvl = s.confirmed_tvl().await.unwrap();
    assert_eq!(
        tvl,
        s.tvl_from_rows().await.unwrap(),
        "stored TVL equals the rows' TVL"
    );
    let tip = s.tip().await.unwrap().map_or(FIRST - 1, |t| t.height);
    let events: usize = (FIRST..=tip)
        .map(|h| busy_block(FIRST, h).events.len())
        .sum();
    assert_eq!(
        outbox.unsent_count().await.unwrap(),
        events as u64,
        "outbox matches blocks up to {tip}"
    );
}

async fn killed_writer_ends_with_the_state_of_a_clean_run(db: TestDb, clean: TestDb) {
    let stores = db.stores().await;
    let s = &stores.0;
    let mut kills = 0;
    for round in 0..5u64 {
        let before = s.tip().await.unwrap().map_or(FIRST - 1, |t| t.height);
        if before >= LAST {
            break;
        }
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "crash_child_writer", "--nocapture"])
            .env(URL_ENV, db.url_for(CHILD_APP))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it write a few blocks, then kill it at a moment that varies between rounds.
        let deadline = Instant::now() + Duration::from_secs(60);
        while s.tip().await.unwrap().map_or(FIRST - 1, |t| t.height) < before + 3 {
            assert!(Instant::now() < deadline, "child made no progress");
            if child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(
            7 + 13 * round + rand::random::<u64>() % 40,
        ))
        .await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        db.wait_for_sessions_of(CHILD_APP).await;
        assert_consistent_prefix(&db.stores().await).await;
    }
    assert!(kills >= 1, "the writer was killed at least once");
    eprintln!("killed the writer {kills} times");

    // Restart: continue from the stored tip to the end.
    loop {
        let next = s.tip().await.unwrap().map_or(FIRST, |t| t.height + 1);
        if next > LAST {
            break;
        }
        s.apply_block(&busy_block(FIRST, next)).await.unwrap();
    }
    let c = clean.stores().await;
    for h in FIRST..=LAST {
        c.0.apply_block(&busy_block(FIRST, h)).await.unwrap();
    }
    let (crashed, reference) = (observe(&stores).await, observe(&c).await);
    assert_eq!(crashed.tip.unwrap().height, LAST);
    assert_eq!(crashed, reference);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writer_killed_at_any_moment_ends_with_the_state_of_a_clean_run() {
    let (db, clean) = (
        TestDb::sqlite().await.unwrap(),
        TestDb::sqlite().await.unwrap(),
    );
    killed_writer_ends_with_the_state_of_a_clean_run(db, clean).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writer_killed_at_any_moment_ends_with_the_state_of_a_clean_run() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let Some(clean) = TestDb::postgres().await else {
        return;
    };
    killed_writer_ends_with_the_state_of_a_clean_run(db, clean).await;
}
