#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
//! The expiry checker against the API's real tables on SQLite and PostgreSQL: the expiry
//! height, exactly-once emission (duplicated rows, a crash between claim and relay), the API
//! consumer turning the event into `unbonded` with stats falling, and the tip read from a node.

#[path = "../../api/tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use events::{
    ConsumerConfig, EventsMetrics, Handled, HandlerError, InProcessTransport, Message,
    MessageHandler, QueueName, Transport,
};
use expiry_checker::{poll_once, Config, ManualTip, QueueConfig, TipSource};
use prometheus::Registry;
use serde_json::{json, Value};
use sqlx::Connection;
use store::api::Applied;
use store::{Db, DbOptions, ExpiryStore};
use tokio_util::sync::CancellationToken;

const FP: &str = "03d5a0bb72d71993e435d6c5a70e2aa4db500a62cfaae33c56050deefee64ec0";
/// The golden active event's staking timelock.
const TIMELOCK: u64 = 100;

async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    for _ in 0..150 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not reached in 15 s");
}

fn payloads(rows: &[store::expiry::ExpiryOutboxRow]) -> Vec<Value> {
    rows.iter()
        .map(|r| {
            assert_eq!(r.queue, "expired_staking_queue");
            serde_json::from_str(&r.payload).unwrap()
        })
        .collect()
}

fn expired(hash: &str, tx_type: &str) -> Value {
    json!({"schema_version": 0, "event_type": 4, "staking_tx_hash_hex": hash, "tx_type": tx_type})
}

async fn activate(h: &Harness, n: u64, height: u64) -> String {
    let hash = txid(n);
    let applied = h
        .deliver(
            QueueName::ActiveStaking,
            &active_event(&hash, &key(n), FP, 10_000 + n, height, false),
        )
        .await;
    assert_eq!(applied, Applied::Changed);
    hash
}

/// The expiry checker's handle on the test's database (a pool of its own).
async fn expiry_store(url: &str) -> ExpiryStore {
    let db = Db::connect(&DbOptions::new(url)).await.unwrap();
    db.migrate().await.unwrap();
    db.expiry()
}

/// Runs a checker (with its own metrics registry) until `shutdown`.
fn spawn_checker(
    config: Config,
    transport: Option<Transport>,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<Result<(), expiry_checker::ExpiryError>> {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let registry = Registry::new();
        expiry_checker::run_with(config, transport, &registry, shutdown).await
    })
}

fn checker_config(db: &str, tip: &ManualTip) -> Config {
    let mut c = Config::new(db, TipSource::Manual(tip.clone()));
    c.poll_interval = Duration::from_millis(50);
    c.batch_size = 7;
    c
}

async fn expires_at_exactly_start_plus_timelock(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let expiry = expiry_store(&h.db.url).await;
    let hash = activate(&h, 1, 120).await;
    let expire = 120 + TIMELOCK;
    let early = poll_once(&expiry, expire - 1, 100, None, None)
        .await
        .unwrap();
    assert_eq!((early.emitted, early.duplicates), (0, 0));
    assert!(expiry.expiry_outbox_rows().await.unwrap().is_empty());
    assert_eq!(expiry.timelock_counts(expire - 1).await.unwrap(), (1, 0));

    let due = poll_once(&expiry, expire, 100, None, None).await.unwrap();
    assert_eq!((due.tip, due.emitted, due.duplicates), (expire, 1, 0));
    let rows = expiry.expiry_outbox_rows().await.unwrap();
    assert_eq!(payloads(&rows), vec![expired(&hash, "active")]);
    assert_eq!(rows[0].sent_at, None, "nothing relays in this test");
    assert_eq!(expiry.timelock_counts(expire).await.unwrap(), (0, 0));

    let again = poll_once(&expiry, expire + 50, 100, None, None)
        .await
        .unwrap();
    assert_eq!(again.emitted, 0, "a claimed row is gone");
}
both_backends!(
    a_timelock_expires_at_start_plus_timelock_not_one_block_early,
    expires_at_exactly_start_plus_timelock
);

async fn insert_timelock_row(url: &str, hash: &str, expire: i64, tx_type: &str) {
    let sql = "INSERT INTO api_timelock_queue (staking_tx_hash, expire_height, tx_type) VALUES ($1, $2, $3)";
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        let q = sqlx::query(sql).bind(hash).bind(expire).bind(tx_type);
        q.execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let q = sqlx::query(sql).bind(hash).bind(expire).bind(tx_type);
        q.execute(&mut conn).await.unwrap();
    }
}

async fn duplicated_rows_emit_once(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let expiry = expiry_store(&h.db.url).await;
    let hash = activate(&h, 2, 120).await;
    // The reference's API can store a timelock row twice (replayed active event); batches of
    // one put the duplicates in separate transactions.
    insert_timelock_row(&h.db.url, &hash, 220, "active").await;
    insert_timelock_row(&h.db.url, &hash, 221, "active").await;
    insert_timelock_row(&h.db.url, &hash, 230, "unbonding").await;
    let report = poll_once(&expiry, 300, 1, None, None).await.unwrap();
    assert_eq!((report.emitted, report.duplicates), (2, 2));
    let rows = expiry.expiry_outbox_rows().await.unwrap();
    assert_eq!(
        payloads(&rows),
        vec![expired(&hash, "active"), expired(&hash, "unbonding")]
    );
}
both_backends!(
    duplicated_timelock_rows_emit_one_event_per_delegation_and_path,
    duplicated_rows_emit_once
);

/// Runs the API consumers on `transport` until the returned token is cancelled.
fn spawn_consumers(h: &Harness, transport: &Transport) -> CancellationToken {
    let shutdown = CancellationToken::new();
    let config = ConsumerConfig {
        processing_timeout: Duration::from_secs(5),
        max_retry_attempts: 5,
        requeue_delay: Duration::from_millis(200),
    };
    tokio::spawn(api::consumer::run_consumers(
        h.consumer.clone(),
        transport.clone(),
        config,
        shutdown.clone(),
    ));
    shutdown
}

async fn consumer_unbonds_and_stats_fall(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let expiry = expiry_store(&h.db.url).await;
    let transport = Transport::InProcess(InProcessTransport::new(EventsMetrics::default()));
    let consumers = spawn_consumers(&h, &transport);
    let staking_path = activate(&h, 3, 120).await;
    let unbonding_path = activate(&h, 4, 120).await;
    assert_eq!(
        h.deliver(
            QueueName::UnbondingStaking,
            &unbonding_event(&unbonding_path, 130)
        )
        .await,
        Applied::Changed
    );
    let before = h.stats().await;
    assert_eq!(before["active_delegations"], 1, "{before}");
    assert_eq!(before["active_tvl"], 10_003, "{before}");

    let tip = ManualTip::new(134);
    let shutdown = CancellationToken::new();
    let checker = spawn_checker(
        checker_config(&h.db.url, &tip),
        Some(transport.clone()),
        &shutdown,
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        h.state_of(&unbonding_path).await,
        "unbonding",
        "one block early"
    );
    tip.set(135); // unbonding start 130 + unbonding timelock 5
    let s = h.store.clone();
    let parsed: bitcoin::Txid = unbonding_path.parse().unwrap();
    wait_for("unbonding path expired", || {
        let s = s.clone();
        async move { s.delegation(&parsed).await.unwrap().unwrap().state.as_str() == "unbonded" }
    })
    .await;
    assert_eq!(h.state_of(&staking_path).await, "active");

    tip.set(220); // staking start 120 + staking timelock 100
    let parsed: bitcoin::Txid = staking_path.parse().unwrap();
    wait_for("staking path expired", || {
        let s = s.clone();
        async move { s.delegation(&parsed).await.unwrap().unwrap().state.as_str() == "unbonded" }
    })
    .await;
    let after = h.stats().await;
    assert_eq!(after["active_delegations"], 0, "{after}");
    assert_eq!(after["active_tvl"], 0, "{after}");
    assert_eq!(after["total_delegations"], 2, "{after}");
    wait_for("every outbox row marked sent", || {
        let e = expiry.clone();
        async move {
            e.expiry_outbox_rows()
                .await
                .unwrap()
                .iter()
                .all(|r| r.sent_at.is_some())
        }
    })
    .await;
    // The unbonded delegation's staking row (expire 220) emits too; the API ignores it.
    assert_eq!(expiry.expiry_outbox_rows().await.unwrap().len(), 3);
    shutdown.cancel();
    checker.await.unwrap().unwrap();
    consumers.cancel();
}
both_backends!(
    the_api_consumer_turns_expiry_into_unbonded_and_active_stats_fall,
    consumer_unbonds_and_stats_fall
);

/// A first checker claims the row but cannot publish (its broker is unreachable), then is
/// killed (`crash`: the task is aborted, its lease on the outbox row stays until it ends) or
/// stopped cleanly (it releases its lease). A second checker delivers the event either way.
async fn claimed_event_survives_the_first_checker(b: Backend, crash: bool) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let expiry = expiry_store(&h.db.url).await;
    let hash = activate(&h, 5, 150).await;
    let mut dead_broker = checker_config(&h.db.url, &ManualTip::new(250));
    // Killed: the lease must end for the row to be taken over. Stopped: released at once.
    dead_broker.relay_lease = if crash {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(600)
    };
    dead_broker.queue = QueueConfig::RabbitMq(events::RabbitMqConfig::from_uri(
        "amqp://guest:guest@127.0.0.1:1/%2f",
    ));
    let stop_first = CancellationToken::new();
    let first = spawn_checker(dead_broker, None, &stop_first);
    let s = expiry.clone();
    wait_for("the first checker claims the row", || {
        let s = s.clone();
        async move { s.timelock_counts(250).await.unwrap() == (0, 0) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if crash {
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
    } else {
        stop_first.cancel();
        first.await.unwrap().unwrap();
    }
    let waiting = expiry.expiry_outbox_rows().await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].sent_at, None, "nothing could be published");
    assert_eq!(h.state_of(&hash).await, "active");

    let transport = Transport::InProcess(InProcessTransport::new(EventsMetrics::default()));
    let consumers = spawn_consumers(&h, &transport);
    let shutdown = CancellationToken::new();
    let checker = spawn_checker(
        checker_config(&h.db.url, &ManualTip::new(250)),
        Some(transport.clone()),
        &shutdown,
    );
    let s = h.store.clone();
    let parsed: bitcoin::Txid = hash.parse().unwrap();
    wait_for("restarted checker delivers the claimed event", || {
        let s = s.clone();
        async move { s.delegation(&parsed).await.unwrap().unwrap().state.as_str() == "unbonded" }
    })
    .await;
    let rows = expiry.expiry_outbox_rows().await.unwrap();
    assert_eq!(rows.len(), 1, "no second event");
    shutdown.cancel();
    checker.await.unwrap().unwrap();
    consumers.cancel();
}
async fn crash_after_claim_loses_nothing(b: Backend) {
    claimed_event_survives_the_first_checker(b, true).await;
}
both_backends!(
    a_crash_between_claim_and_relay_loses_nothing,
    crash_after_claim_loses_nothing
);

async fn clean_stop_releases_claims(b: Backend) {
    claimed_event_survives_the_first_checker(b, false).await;
}
both_backends!(
    a_stopped_checker_releases_its_claims_to_the_next_one,
    clean_stop_releases_claims
);

/// Counts what arrives on `expired_staking_queue`.
#[derive(Debug, Default)]
struct Count {
    seen: std::sync::Mutex<Vec<Value>>,
    n: AtomicUsize,
}

impl MessageHandler for Count {
    async fn handle(&self, message: &Message) -> Result<Handled, HandlerError> {
        self.seen
            .lock()
            .unwrap()
            .push(serde_json::from_slice(&message.body).unwrap());
        self.n.fetch_add(1, Ordering::SeqCst);
        Ok(Handled::Applied)
    }

    async fn unprocessable(&self, _: &Message, e: &HandlerError) -> Result<(), HandlerError> {
        panic!("unexpected unprocessable: {e}");
    }
}

#[tokio::test]
async fn two_checkers_on_postgres_emit_and_publish_each_expiry_exactly_once() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let store = expiry_store(&db.url).await;
    const N: u64 = 400;
    {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        // N delegations' rows, a third of them duplicated, in one statement.
        sqlx::query(
            "INSERT INTO api_timelock_queue (staking_tx_hash, expire_height, tx_type) \
             SELECT lpad(to_hex(g % $1), 64, '0'), 100 + g % 10, 'active' \
             FROM generate_series(0, $1 + $1 / 3 - 1) AS g",
        )
        .bind(i64::try_from(N).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let transport = Transport::InProcess(InProcessTransport::new(EventsMetrics::default()));
    let count = Arc::new(Count::default());
    let stop_consumer = CancellationToken::new();
    tokio::spawn({
        let (t, c, s) = (transport.clone(), Arc::clone(&count), stop_consumer.clone());
        async move {
            t.consume(QueueName::ExpiredStaking, c, ConsumerConfig::default(), s)
                .await
        }
    });
    let tip = ManualTip::new(200);
    let shutdown = CancellationToken::new();
    let checkers: Vec<_> = (0..2)
        .map(|_| {
            let mut c = checker_config(&db.url, &tip);
            c.batch_size = 5;
            c.max_connections = 3;
            c.queue = QueueConfig::InProcess;
            spawn_checker(c, Some(transport.clone()), &shutdown)
        })
        .collect();
    let c = Arc::clone(&count);
    wait_for("every expiry published", || {
        let c = Arc::clone(&c);
        async move { c.n.load(Ordering::SeqCst) >= N as usize }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();
    for c in checkers {
        c.await.unwrap().unwrap();
    }
    stop_consumer.cancel();
    let seen = count.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), N as usize, "each expiry published exactly once");
    let distinct: std::collections::HashSet<String> = seen
        .iter()
        .map(|v| v["staking_tx_hash_hex"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(distinct.len(), N as usize);
    let rows = store.expiry_outbox_rows().await.unwrap();
    assert_eq!(
        rows.len(),
        N as usize,
        "one outbox row per delegation and path"
    );
    assert!(rows.iter().all(|r| r.sent_at.is_some()));
    assert_eq!(store.timelock_counts(200).await.unwrap(), (0, 0));
}

#[tokio::test]
async fn the_tip_comes_from_the_nodes_getblockcount() {
    use bitcoin::secp256k1::{PublicKey, SecretKey};
    use bitcoin_rpc::{RpcAuth, RpcClient, RpcConfig};
    let Some(h) = Harness::new(Backend::Sqlite).await else {
        return;
    };
    let node_stop = CancellationToken::new();
    let node = devnet::spawn(
        devnet::DevnetConfig {
            rpc_addr: "127.0.0.1:0".parse().unwrap(),
            rpc_user: "u".into(),
            rpc_password: "p".into(),
            datadir: None,
            block_interval: None,
            ..devnet::DevnetConfig::default()
        },
        node_stop.clone(),
    )
    .await
    .unwrap();
    let rpc_config = RpcConfig::new(
        node.rpc_url.clone(),
        RpcAuth::UserPass {
            user: "u".into(),
            password: "p".into(),
        },
    );
    let rpc = RpcClient::new(rpc_config.clone()).unwrap();
    let start = u64::from(rpc.get_block_count().await.unwrap());
    let hash = activate(&h, 6, start).await; // expires at start + 100
    let mut config = Config::new(&h.db.url, TipSource::Rpc(rpc_config));
    config.poll_interval = Duration::from_millis(50);
    let transport = Transport::InProcess(InProcessTransport::new(EventsMetrics::default()));
    let consumers = spawn_consumers(&h, &transport);
    let shutdown = CancellationToken::new();
    let checker = spawn_checker(config, Some(transport), &shutdown);
    let sk = SecretKey::from_slice(&[7u8; 32]).unwrap();
    let pk =
        bitcoin::CompressedPublicKey(PublicKey::from_secret_key(&staking_core::keys::SECP, &sk));
    let addr = bitcoin::Address::p2wpkh(&pk, bitcoin::Network::Regtest);
    rpc.generate_to_address(u32::try_from(TIMELOCK).unwrap() - 1, &addr)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.state_of(&hash).await, "active", "one block early");
    rpc.generate_to_address(1, &addr).await.unwrap();
    let s = h.store.clone();
    let parsed: bitcoin::Txid = hash.parse().unwrap();
    wait_for("expired at the node's tip", || {
        let s = s.clone();
        async move { s.delegation(&parsed).await.unwrap().unwrap().state.as_str() == "unbonded" }
    })
    .await;
    shutdown.cancel();
    checker.await.unwrap().unwrap();
    consumers.cancel();
    node_stop.cancel();
}

#[tokio::test]
async fn a_standalone_checker_delivers_through_rabbitmq_to_the_api() {
    let Some(h) = Harness::new(Backend::Postgres).await else {
        return;
    };
    let Some(url) = testkit::rabbitmq().await else {
        return;
    };
    let mut rabbit = events::RabbitMqConfig::from_uri(url);
    rabbit.queue_prefix = format!(
        "t_expiry_{}_{:x}_",
        std::process::id(),
        rand::random::<u32>()
    );
    rabbit.publish_timeout = Duration::from_secs(10);
    let _cleanup = testkit::QueueCleanup::new(rabbit.naming());
    let api_side = Transport::RabbitMq(
        events::RabbitMqTransport::connect(rabbit.clone(), EventsMetrics::default())
            .await
            .unwrap(),
    );
    let consumers = spawn_consumers(&h, &api_side);
    let hash = activate(&h, 7, 300).await;
    let tip = ManualTip::new(400);
    let mut config = checker_config(&h.db.url, &tip);
    config.queue = QueueConfig::RabbitMq(rabbit);
    // No transport handed in: the checker connects to the broker itself, as `stakingd
    // expiry-checker` does.
    let shutdown = CancellationToken::new();
    let checker = spawn_checker(config, None, &shutdown);
    let s = h.store.clone();
    let parsed: bitcoin::Txid = hash.parse().unwrap();
    wait_for("expired through RabbitMQ", || {
        let s = s.clone();
        async move { s.delegation(&parsed).await.unwrap().unwrap().state.as_str() == "unbonded" }
    })
    .await;
    assert_eq!(h.stats().await["active_delegations"], 0);
    shutdown.cancel();
    checker.await.unwrap().unwrap();
    consumers.cancel();
}

#[tokio::test]
async fn two_claimers_at_once_on_postgres_take_each_row_once_and_emit_each_expiry_once() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let first = expiry_store(&db.url).await;
    let second = expiry_store(&db.url).await;
    {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        // 300 delegations, 100 of them with a duplicated row.
        sqlx::query(
            "INSERT INTO api_timelock_queue (staking_tx_hash, expire_height, tx_type) \
             SELECT lpad(to_hex(g % 300), 64, '0'), 500 + g % 7, 'unbonding' \
             FROM generate_series(0, 399) AS g",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let (a, b) = tokio::join!(
        poll_once(&first, 1_000, 3, None, None),
        poll_once(&second, 1_000, 3, None, None)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.emitted + b.emitted, 300, "{a:?} {b:?}");
    assert_eq!(a.duplicates + b.duplicates, 100, "{a:?} {b:?}");
    let rows = first.expiry_outbox_rows().await.unwrap();
    let distinct: std::collections::HashSet<&str> =
        rows.iter().map(|r| r.payload.as_str()).collect();
    assert_eq!((rows.len(), distinct.len()), (300, 300));
    assert_eq!(first.timelock_counts(1_000).await.unwrap(), (0, 0));
}
