//! The indexer's operations surface against real services: readiness (`/health/ready`) goes
//! 503 with the reason when the node, the database or the broker stops, or the indexer falls
//! behind, and back to 200 when they return; its metrics move when their events happen; and
//! the reference queue topology exists from start-up, so a consumer that only binds, or one
//! that declares the queues and starts first, misses nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod broker;
mod devnet;
mod ops_support;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use devnet::{Backend, Harness};
use events::{QueueName, QueueNaming, QueueType};
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use ops_support::{free_port, ready_until, sample};
use store::{Db, DbOptions, INDEXER_LOCK};
use support::{Fx, V};
use testkit::{target_of, Proxy};

const ACTIVATION: u32 = 130;
const WAIT: Duration = Duration::from_secs(30);

fn not_ready_on(check: &'static str) -> impl Fn(u16, &serde_json::Value) -> bool {
    move |status, body| status == 503 && body["checks"][check]["ok"] == false
}

fn is_ready(status: u16, body: &serde_json::Value) -> bool {
    status == 200 && body["status"] == "ready"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_node_database_broker_and_lag_and_the_metrics_move_with_their_events() {
    let Some(prefix) = broker::prefix("ready").await else {
        return;
    };
    let naming = QueueNaming::new(prefix.clone());
    let _cleanup = broker::Cleanup(naming.clone());
    let fx = Fx::new(&[V::amount(u64::from(ACTIVATION), 1_000_000)], 3);
    let Some(mut h) = Harness::start(Backend::Postgres, fx).await else {
        return;
    };
    // The indexer reaches its node, database and broker through proxies the test can stop.
    let mut node = Proxy::start(target_of(&h.devnet.rpc_url).await).await;
    let mut database = Proxy::start(target_of(&h.db_url).await).await;
    let mut amqp = Proxy::start(target_of(&broker::amqp_uri()).await).await;
    let ops: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut raw = h.raw_config();
    raw.metrics_addr = Some(ops.to_string());
    raw.max_lag_blocks = Some(2);
    raw.database_url = Some(database.url_through(&h.db_url));
    raw.bitcoind.url = Some(node.url_through(&h.devnet.rpc_url));
    raw.queue.url = Some(amqp.url_through(&broker::amqp_uri()));
    raw.queue.queue_prefix = Some(prefix);

    // Another writer holds the lock: the indexer waits as a standby and processes nothing.
    let holder = Db::connect(&DbOptions::new(h.db_url.as_str()))
        .await
        .unwrap();
    let lock = holder.try_writer_lock(INDEXER_LOCK).await.unwrap().unwrap();
    h.start_indexer_with(raw);
    let body = ready_until(ops, "ready below the activation height", WAIT, is_ready).await;
    assert_eq!(body["checks"]["lag"]["ok"], true, "{body}");
    let staked = sample(ops, r#"si_total_staking_txs{tx_type="active"}"#).await;
    assert_eq!(staked, 0.0);

    // The chain moves past the activation height while nothing is processed: behind.
    let stake = h.stake(ACTIVATION, 50_000, 10);
    while h.tip() < ACTIVATION - 1 {
        h.mine_empty(1);
    }
    h.mine(vec![stake]);
    h.mine_empty(8);
    let body = ready_until(ops, "503 on lag", WAIT, not_ready_on("lag")).await;
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("lag: the indexer is") && reason.contains("max_lag_blocks = 2"),
        "{reason}"
    );

    // The lock is free: it catches up, indexes the stake and publishes its events.
    lock.release().await.unwrap();
    ready_until(ops, "ready after catching up", WAIT, is_ready).await;
    let active_queue = naming.queue(QueueName::ActiveStaking);
    let published = format!(r#"events_published_total{{queue="{active_queue}"}}"#);
    let deadline = Instant::now() + WAIT;
    while sample(ops, r#"si_total_staking_txs{tx_type="active"}"#).await < 1.0
        || sample(ops, &published).await < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the stake was not indexed and relayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sample(ops, &published).await, 1.0);
    let deadline = Instant::now() + WAIT;
    while sample(ops, r#"events_outbox_backlog{outbox="outbox"}"#).await > 0.0 {
        assert!(
            Instant::now() < deadline,
            "the outbox backlog stayed above 0"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The node stops and comes back.
    let fetch_failures = r#"si_failed_operations_total{operation="block_fetch"}"#;
    let failed_before = sample(ops, fetch_failures).await;
    node.down();
    let body = ready_until(ops, "503 on the node", WAIT, not_ready_on("node")).await;
    assert!(
        body["reason"].as_str().unwrap().starts_with("node: "),
        "{body}"
    );
    let deadline = Instant::now() + WAIT;
    while sample(ops, fetch_failures).await <= failed_before {
        assert!(Instant::now() < deadline, "{fetch_failures} did not move");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.up().await;
    ready_until(ops, "ready with the node back", WAIT, is_ready).await;

    // The broker stops and comes back.
    let connect_failures = r#"queue_operation_failure_total{operation="connect",queuename="all"}"#;
    let before = sample(ops, connect_failures).await;
    amqp.down();
    ready_until(ops, "503 on the broker", WAIT, not_ready_on("broker")).await;
    assert!(sample(ops, connect_failures).await > before);
    // A block while the broker is away: its events wait in the outbox.
    h.mine_empty(1);
    let backlog = r#"events_outbox_backlog{outbox="outbox"}"#;
    let deadline = Instant::now() + WAIT;
    while sample(ops, backlog).await < 1.0 {
        assert!(Instant::now() < deadline, "{backlog} did not rise");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    amqp.up().await;
    ready_until(ops, "ready with the broker back", WAIT, is_ready).await;
    let deadline = Instant::now() + WAIT;
    while sample(ops, backlog).await > 0.0 {
        assert!(
            Instant::now() < deadline,
            "{backlog} did not fall back to 0"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The database stops and comes back.
    database.down();
    let body = ready_until(ops, "503 on the database", WAIT, not_ready_on("database")).await;
    assert_eq!(body["status"], "not_ready", "{body}");
    database.up().await;
    ready_until(ops, "ready with the database back", WAIT, is_ready).await;

    let (status, live) = ops_support::get(ops, "/health/live").await.unwrap();
    assert_eq!((status, live.contains("live")), (200, true));
    // Its writer-lock session died with the database connection: ending may report that.
    let _ended = h.stop_indexer().await;
}

/// Whether `name` exists on the broker (a passive declare, as a consumer that only binds).
async fn queue_exists(name: &str) -> bool {
    let connection = Connection::connect(&broker::amqp_uri(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let exists = channel
        .queue_declare(
            name,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .is_ok();
    let _ = connection.close(200, "probe").await;
    exists
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queues_exist_right_after_start_while_the_indexer_waits_below_activation() {
    let Some(prefix) = broker::prefix("early").await else {
        return;
    };
    let naming = QueueNaming::new(prefix.clone());
    let _cleanup = broker::Cleanup(naming.clone());
    let fx = Fx::new(&[V::amount(u64::from(ACTIVATION), 1_000_000)], 3);
    let mut h = Harness::start(Backend::Sqlite, fx).await.unwrap();
    assert!(h.tip() < ACTIVATION);
    for queue in QueueName::ALL {
        assert!(
            !queue_exists(&naming.queue(queue)).await,
            "{queue} before start"
        );
    }
    let mut raw = h.raw_config();
    raw.queue.url = Some(broker::amqp_uri());
    raw.queue.queue_prefix = Some(prefix);
    h.start_indexer_with(raw);
    let deadline = Instant::now() + Duration::from_secs(10);
    for queue in QueueName::ALL {
        for name in [naming.queue(queue), naming.delay_queue(queue)] {
            while !queue_exists(&name).await {
                assert!(Instant::now() < deadline, "{name} not declared at start");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(h.store.tip().await.unwrap(), None, "nothing processed yet");
    h.stop_indexer().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_declares_the_reference_topology_and_starts_first_sees_every_event() {
    let Some(prefix) = broker::prefix("first").await else {
        return;
    };
    let naming = QueueNaming::new(prefix.clone());
    let _cleanup = broker::Cleanup(naming.clone());
    let fx = Fx::new(&[V::amount(u64::from(ACTIVATION), 1_000_000)], 3);
    let mut h = Harness::start(Backend::Sqlite, fx).await.unwrap();

    // The reference consumer: declare each queue's topology, then consume.
    let connection = Connection::connect(&broker::amqp_uri(), ConnectionProperties::default())
        .await
        .unwrap();
    let mut streams = Vec::new();
    for queue in QueueName::ALL {
        let channel = connection.create_channel().await.unwrap();
        events::rabbitmq::declare_queue_topology(&channel, &naming, QueueType::Quorum, queue)
            .await
            .unwrap();
        let consumer = channel
            .basic_consume(
                &naming.queue(queue),
                "",
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        streams.push((queue, consumer));
    }
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    for (queue, mut consumer) in streams {
        let sink = std::sync::Arc::clone(&received);
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let body = String::from_utf8(delivery.data).unwrap();
                sink.lock().unwrap().push((queue.as_str().to_owned(), body));
            }
        });
    }

    let mut raw = h.raw_config();
    raw.extra_event_enabled = Some(true);
    raw.queue.url = Some(broker::amqp_uri());
    raw.queue.queue_prefix = Some(prefix);
    h.start_indexer_with(raw);
    while h.tip() < ACTIVATION - 1 {
        h.mine_empty(1);
    }
    let first = h.stake(ACTIVATION, 50_000, 10);
    let second = h.stake(ACTIVATION, 70_000, 10);
    h.mine(vec![first, second]);
    h.confirm(h.tip());
    // The relay runs against the broker here, so the outbox's unsent rows are not a record.
    h.settle_stored().await;

    let deadline = Instant::now() + WAIT;
    loop {
        let unsent = h.outbox.unsent_count().await.unwrap();
        let rows: Vec<(String, String)> = sqlx_rows(&h.db_url).await;
        let got = received.lock().unwrap().clone();
        if unsent == 0 && !rows.is_empty() && got.len() == rows.len() {
            let mut got = got;
            let mut rows = rows;
            got.sort();
            rows.sort();
            assert_eq!(
                got, rows,
                "the early consumer saw exactly the committed events"
            );
            assert_eq!(
                got.iter()
                    .filter(|(q, _)| q == "active_staking_queue")
                    .count(),
                2
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer saw {} of {} events",
            got.len(),
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.stop_indexer().await.unwrap();
    let _ = connection.close(200, "done").await;
}

/// Every outbox row (sent or not) as (queue, payload).
async fn sqlx_rows(url: &str) -> Vec<(String, String)> {
    use sqlx::Connection as _;
    let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query_as("SELECT queue, payload FROM outbox ORDER BY id")
        .fetch_all(&mut db)
        .await
        .unwrap()
}
