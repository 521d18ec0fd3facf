//! Crash test: the indexer, as a child process relaying to the real RabbitMQ broker, is killed
//! with SIGKILL at random moments while it catches up over a devnet chain of busy blocks
//! (stakes, unbondings, invalid unbondings, withdrawals from staking and unbonding outputs,
//! invalid stakes, overflow). After the last restart it finishes, and
//!
//! * the stored state (staking rows with their overflow flags, unbondings, invalid txs, TVL,
//!   tip and the outbox's event sequence) equals a clean uninterrupted run's, and
//! * every event of the clean run reached its queue at least once, in order, with none
//!   invented (an idempotent consumer that skips repeats sees exactly the clean sequence).
//!
//! It runs on SQLite and on PostgreSQL (databases of its own, dropped at the end).
//! `INDEXER_CRASH_BLOCKS` (default 300) and `INDEXER_CRASH_KILLS` (default 20) give the long
//! form; `INDEXER_CRASH_SEED` replays a run's kill moments (the seed is printed).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod broker;
mod database;
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bitcoin::{OutPoint, Transaction};
use database::{Backend, TestDatabase};
use devnet::{DevnetConfig, DevnetHandle, Node};
use events::{QueueName, QueueNaming, QueueType};
use indexer::RawConfig;
use sqlx::Connection;
use store::{Db, DbOptions, IndexerStore, InvalidTxQuery, OutboxStore};
use support::{Fx, V};
use tokio_util::sync::CancellationToken;

const DEPTH: u16 = 10;
const ACTIVATION: u32 = 102;
/// Amount cap: reached after some 70 blocks, so later stakes overflow until unbondings bring
/// the TVL back under it.
const CAP: u64 = 3_000_000;
const TIME: u16 = 10;
const CHILD_ENV: &str = "INDEXER_CRASH_CHILD_CONFIG";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

/// The indexer as `stakingd indexer` runs it (`indexer::run`, RabbitMQ relay), from the TOML
/// config named by `INDEXER_CRASH_CHILD_CONFIG`. Runs until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of the SIGKILL crash test, which runs it with INDEXER_CRASH_CHILD_CONFIG set"]
async fn crash_child_indexer() {
    let path = std::env::var(CHILD_ENV).expect("INDEXER_CRASH_CHILD_CONFIG names the config");
    let config = RawConfig::from_file(Path::new(&path))
        .unwrap()
        .validate()
        .unwrap();
    indexer::run(config, CancellationToken::new())
        .await
        .unwrap();
}

/// Per block after activation: three valid stakes, one stake below the minimum amount
/// (invalid), the unbonding of a stake of two blocks before, every fifth block an unbonding with
/// the wrong fee (invalid), from block 12 on a withdrawal of a stake of twelve blocks before,
/// and from block 8 on a withdrawal of an unbonding output mined six blocks before.
fn build_chain(node: &Node, fx: &Fx, blocks: u32) -> u32 {
    node.mine_blocks(1, fx.staker.script_pubkey()).unwrap();
    node.mine_blocks(ACTIVATION - 2, node.faucet_wallet().script_pubkey())
        .unwrap();
    let cb = {
        let state = node.lock();
        let hash = state.chain.hash_at(1).unwrap();
        state.chain.entry(&hash).unwrap().block.txdata[0].clone()
    };
    let mut funding = (OutPoint::new(cb.compute_txid(), 0), cb.output[0].clone());
    let mut stakes: Vec<[(Transaction, u32); 3]> = Vec::new();
    let mut unbondings: Vec<Option<(Transaction, u32)>> = Vec::new();
    for i in 0..blocks as usize {
        let height = node.tip().height + 1;
        let mut txs = Vec::new();
        let mut mine = Vec::new();
        for j in 0..3u64 {
            let value = 20_000 + i as u64 * 10 + j;
            let tx = fx.staking_tx(height, &funding, value, TIME);
            funding = Fx::change_of(&tx);
            mine.push((tx.clone(), height));
            txs.push(tx);
        }
        let invalid = fx.staking_tx(height, &funding, support::MIN_AMOUNT / 2, TIME);
        funding = Fx::change_of(&invalid);
        txs.push(invalid);
        let mut unbonded = None;
        if i >= 2 {
            let (s, h) = &stakes[i - 2][0];
            let u = fx.unbonding_tx(s, *h, TIME, None);
            unbonded = Some((u.clone(), *h));
            txs.push(u);
            if i % 5 == 0 {
                let (s, h) = &stakes[i - 2][1];
                txs.push(fx.unbonding_tx(s, *h, TIME, Some(support::UNBONDING_FEE + 1)));
            }
        }
        if i >= 12 {
            let (s, h) = &stakes[i - 12][2];
            txs.push(fx.withdraw_staking_tx(&[(s, *h, TIME)]));
        }
        if i >= 8 {
            if let Some((u, h)) = &unbondings[i - 6] {
                txs.push(fx.withdraw_unbonding_tx(&[(u, *h, TIME)]));
            }
        }
        node.mine_block_with(txs, node.faucet_wallet().script_pubkey(), None)
            .unwrap();
        stakes.push(mine.try_into().unwrap());
        unbondings.push(unbonded);
    }
    node.mine_blocks(u32::from(DEPTH) - 1, node.faucet_wallet().script_pubkey())
        .unwrap();
    node.tip().height
}

fn config_toml(devnet: &DevnetHandle, params: &Path, db: &str, queue: Option<&str>) -> String {
    let queue = queue.map_or(String::new(), |prefix| {
        format!(
            "[queue]\nurl = \"{}\"\nqueue_type = \"quorum\"\nqueue_prefix = \"{prefix}\"\n",
            broker::amqp_uri()
        )
    });
    format!(
        "network = \"regtest\"\nparams = \"{}\"\ndatabase_url = \"{db}\"\nmetrics_addr = \"off\"\n\
         extra_event_enabled = true\n\
         [bitcoind]\nurl = \"{}\"\nuser = \"{}\"\npassword = \"{}\"\npoll_interval_ms = 50\n{queue}",
        params.display(),
        devnet.rpc_url,
        devnet.rpc_user,
        devnet.rpc_password
    )
}

/// Kills (SIGKILL) and reaps the child when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(config: &Path) -> Killed {
    let exe = std::env::current_exe().unwrap();
    Killed(
        Command::new(exe)
            .args(["--ignored", "--exact", "crash_child_indexer", "--nocapture"])
            .env(CHILD_ENV, config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

/// The stored tip height; 0 before the indexer created its tables.
async fn stored_tip(s: &IndexerStore) -> u32 {
    s.tip().await.ok().flatten().map_or(0, |t| t.height)
}

/// The indexer's tables and outbox in the database at `url`.
async fn connect(url: &str) -> (IndexerStore, OutboxStore) {
    let db = Db::connect(&DbOptions::new(url)).await.unwrap();
    (db.indexer(), db.outbox())
}

/// Everything stored that must not depend on crashes.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    tip: Option<store::BlockRef>,
    tvl: u64,
    stakings: Vec<store::StakingTx>,
    unbondings: Vec<Option<store::UnbondingTx>>,
    invalids: Vec<store::InvalidTx>,
    /// Every outbox row but `btc_info` (its timing depends on the node's tip), sent or not,
    /// in id order.
    outbox: Vec<(String, String)>,
}

async fn observe(db: &str) -> Observed {
    let s = connect(db).await.0;
    assert_eq!(
        s.tvl_from_rows().await.unwrap(),
        s.confirmed_tvl().await.unwrap(),
        "stored TVL differs from the TVL computed from the rows"
    );
    let stakings = s.staking_txs_in_range(0, u32::MAX).await.unwrap();
    let mut unbondings = Vec::new();
    for st in &stakings {
        unbondings.push(s.unbonding_of(st.txid).await.unwrap());
    }
    let all = InvalidTxQuery {
        limit: Some(1_000_000),
        ..Default::default()
    };
    let sql = "SELECT queue, payload FROM outbox WHERE queue <> 'btc_info_queue' ORDER BY id";
    let outbox: Vec<(String, String)> = if db.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(db).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
    };
    Observed {
        tip: s.tip().await.unwrap(),
        tvl: s.confirmed_tvl().await.unwrap().to_sat(),
        stakings,
        unbondings,
        invalids: s.invalid_txs(&all).await.unwrap(),
        outbox,
    }
}

/// A small deterministic generator (xorshift64*), so a failing run can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_indexer_at_random_moments_on_sqlite_loses_no_event_and_changes_no_state() {
    crash_test(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_indexer_at_random_moments_on_postgres_loses_no_event_and_changes_no_state() {
    crash_test(Backend::Postgres).await;
}

/// One crash test at a time: the kill moments are spread over the clean run's duration, which
/// must be measured under the same load as the crash run (and CI has two cores).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn crash_test(backend: Backend) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(prefix) = broker::prefix(match backend {
        Backend::Sqlite => "crash_sqlite",
        Backend::Postgres => "crash_pg",
    })
    .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(clean_db) = TestDatabase::new(backend, dir.path(), "clean").await else {
        return;
    };
    let Some(crash_db) = TestDatabase::new(backend, dir.path(), "crash").await else {
        return;
    };
    let naming = QueueNaming::new(prefix.clone());
    let _cleanup = broker::Cleanup(naming.clone());
    let blocks = u32::try_from(env_or("INDEXER_CRASH_BLOCKS", 300)).unwrap();
    let kills = env_or("INDEXER_CRASH_KILLS", 20);
    let seed = env_or(
        "INDEXER_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    eprintln!(
        "crash test on {backend:?}: {blocks} busy blocks, {kills} kills, INDEXER_CRASH_SEED={seed}"
    );

    let fx = Fx::new(&[V::amount(u64::from(ACTIVATION), CAP)], DEPTH);
    let devnet = devnet::spawn(DevnetConfig::default(), CancellationToken::new())
        .await
        .unwrap();
    let started = Instant::now();
    let tip = {
        let (d, f) = (std::sync::Arc::clone(&devnet.chain), fx.clone());
        tokio::task::spawn_blocking(move || build_chain(&d, &f, blocks))
            .await
            .unwrap()
    };
    let last = tip + 1 - u32::from(DEPTH);
    eprintln!("chain of {tip} blocks built in {:?}", started.elapsed());
    let params = dir.path().join("params.json");
    std::fs::write(&params, fx.params_json()).unwrap();

    // The clean run, in this process, events kept in its outbox.
    let clean_db = clean_db.url.clone();
    let config = RawConfig::from_toml(&config_toml(&devnet, &params, &clean_db, None))
        .unwrap()
        .validate()
        .unwrap();
    let token = CancellationToken::new();
    let registry = prometheus::Registry::new();
    let (clean_store, _) = connect(&clean_db).await;
    let clean_started = Instant::now();
    let run = {
        let t = token.clone();
        tokio::spawn(async move { indexer::run_with(config, None, &registry, t).await })
    };
    while stored_tip(&clean_store).await < last {
        assert!(!run.is_finished(), "clean run stopped: {:?}", run.await);
        assert!(
            clean_started.elapsed() < Duration::from_secs(120),
            "clean run too slow"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let clean_time = clean_started.elapsed();
    token.cancel();
    run.await.unwrap().unwrap();
    let clean = observe(&clean_db).await;
    eprintln!("clean run: {last} blocks in {clean_time:?}");
    assert_eq!(clean.tip.map(|t| t.height), Some(last));
    let overflow = clean.stakings.iter().filter(|s| s.is_overflow).count();
    let unbonded = clean.unbondings.iter().flatten().count();
    assert!(
        overflow > 0 && overflow < clean.stakings.len(),
        "the chain must cross the cap"
    );
    assert!(unbonded > 0 && !clean.invalids.is_empty());
    // Exactly what `build_chain` put in, also when a block spends from the blocks written
    // together with it while catching up.
    let n = blocks as usize;
    assert_eq!(clean.stakings.len(), 3 * n, "every valid stake is stored");
    assert_eq!(
        unbonded,
        n.saturating_sub(2),
        "every valid unbonding is stored"
    );
    let withdrawals = clean
        .outbox
        .iter()
        .filter(|(q, _)| q == QueueName::WithdrawStaking.as_str())
        .count();
    assert_eq!(
        withdrawals,
        n.saturating_sub(12) + n.saturating_sub(8),
        "every withdrawal (from staking and from unbonding outputs) is emitted"
    );

    // The crash run: child processes relaying to the broker, killed at random moments spread
    // over the clean run's duration.
    let crash_db = crash_db.url.clone();
    let child_config = dir.path().join("crash.toml");
    std::fs::write(
        &child_config,
        config_toml(&devnet, &params, &crash_db, Some(&prefix)),
    )
    .unwrap();
    let (store, outbox) = connect(&crash_db).await;
    let mut rng = Rng(seed);
    let span = u64::try_from(clean_time.as_millis()).unwrap().max(100);
    let mut mid_catch_up = 0;
    let kills_started = Instant::now();
    for _ in 0..kills {
        let child = spawn_child(&child_config);
        // Short lives (start-up: exec, runtime, migrations, lock, then some blocks), so that
        // the kills land all over the catch-up rather than after it.
        let wait = 40 + rng.below(span / 10);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        drop(child); // SIGKILL
        if stored_tip(&store).await < last {
            mid_catch_up += 1;
        }
    }
    let killed_at = stored_tip(&store).await;
    eprintln!(
        "{kills} kills in {:?}, {mid_catch_up} of them before the catch-up ended (tip {killed_at})",
        kills_started.elapsed()
    );
    assert!(
        mid_catch_up * 2 >= kills,
        "most kills must hit the catch-up itself ({mid_catch_up} of {kills} did)"
    );

    // The last start finishes: every block, every outbox row relayed.
    let finish = Instant::now();
    let child = spawn_child(&child_config);
    loop {
        let done = store.tip().await.unwrap().map(|t| t.height) == Some(last)
            && outbox.unsent_count().await.unwrap() == 0;
        if done {
            break;
        }
        assert!(
            finish.elapsed() < Duration::from_secs(120),
            "the last run did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(child);
    eprintln!("last run finished in {:?}", finish.elapsed());
    let crashed = observe(&crash_db).await;
    assert_eq!(
        crashed, clean,
        "state after the crashes differs from the clean run"
    );

    // Delivery: per queue, what reached the broker.
    for queue in [
        QueueName::ActiveStaking,
        QueueName::UnbondingStaking,
        QueueName::WithdrawStaking,
        QueueName::ConfirmedInfo,
    ] {
        let expected: Vec<String> = clean
            .outbox
            .iter()
            .filter(|(q, _)| q == queue.as_str())
            .map(|(_, p)| p.clone())
            .collect();
        assert!(!expected.is_empty(), "the clean run has no {queue} event");
        let delivered = broker::drain(&naming, QueueType::Quorum, queue).await;
        let firsts = broker::first_occurrences(&delivered);
        let invented: Vec<_> = firsts.iter().filter(|m| !expected.contains(m)).collect();
        assert!(
            invented.is_empty(),
            "{queue}: invented messages {invented:?}"
        );
        assert_eq!(
            firsts.len(),
            expected.len(),
            "{queue}: {} of {} events delivered",
            firsts.len(),
            expected.len()
        );
        assert_eq!(firsts, expected, "{queue}: events out of order");
        eprintln!(
            "{queue}: {} events, {} deliveries ({} repeats after kills)",
            expected.len(),
            delivered.len(),
            delivered.len() - expected.len()
        );
    }
    let infos = broker::drain(&naming, QueueType::Quorum, QueueName::BtcInfo).await;
    assert!(!infos.is_empty(), "no btc_info event reached the broker");
}
