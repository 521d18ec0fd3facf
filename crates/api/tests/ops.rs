#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
//! The API's operations port (`server.metrics_listen`): the queue consumers' metrics are
//! registered and move with their events (applied, duplicate, unprocessable, the processing
//! histogram), and `/health/ready` goes 503 when the database disappears and 200 when it is
//! back.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use events::{ConsumerConfig, EventsMetrics, InProcessTransport, QueueName, Transport};
use sqlx::{ConnectOptions, Executor};
use tokio_util::sync::CancellationToken;

const FP: &str = "03d5a0bb72d71993e435d6c5a70e2aa4db500a62cfaae33c56050deefee64ec0";

async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://{addr}{path}")).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

async fn sample(addr: SocketAddr, series: &str) -> f64 {
    let (_, text) = get(addr, "/metrics").await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
        .unwrap_or(0.0)
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} not reached in 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ready_status(addr: SocketAddr) -> (u16, serde_json::Value) {
    let (status, body) = get(addr, "/health/ready").await.unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_port_counts_consumed_messages_and_readiness_follows_the_database() {
    let Some(pg) = testkit::PgTestDb::create_or_skip("api_ops").await else {
        return;
    };
    let config = api::Config::from_toml(&config_toml(&pg.url, 10)).unwrap();
    let service = api::Service::build(&config).await.unwrap();
    let transport = Transport::InProcess(InProcessTransport::new(EventsMetrics::new()));
    let ops: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let shutdown = CancellationToken::new();
    let consumer = ConsumerConfig {
        processing_timeout: Duration::from_secs(5),
        max_retry_attempts: 0,
        requeue_delay: Duration::from_millis(50),
    };
    let task = tokio::spawn(api::run_with(
        service,
        transport.clone(),
        "127.0.0.1:0".parse().unwrap(),
        Some(ops),
        consumer,
        shutdown.clone(),
    ));
    until("ready", async || {
        get(ops, "/health/ready")
            .await
            .is_some_and(|(s, _)| s == 200)
    })
    .await;
    let applied = r#"events_consumed_total{outcome="applied",queue="active_staking_queue"}"#;
    let duplicate = r#"events_consumed_total{outcome="duplicate",queue="active_staking_queue"}"#;
    let parked = r#"unprocessable_entity_total{entity="withdraw_staking_queue"}"#;
    assert_eq!(sample(ops, applied).await, 0.0);
    assert_eq!(sample(ops, parked).await, 0.0);

    let event =
        serde_json::to_vec(&active_event(&txid(7), &key(7), FP, 5_000, 120, false)).unwrap();
    transport
        .publish(QueueName::ActiveStaking, &event)
        .await
        .unwrap();
    until("applied", async || sample(ops, applied).await == 1.0).await;
    transport
        .publish(QueueName::ActiveStaking, &event)
        .await
        .unwrap();
    until("duplicate", async || sample(ops, duplicate).await == 1.0).await;
    transport
        .publish(QueueName::WithdrawStaking, b"not json")
        .await
        .unwrap();
    until("unprocessable", async || sample(ops, parked).await == 1.0).await;
    let histogram = r#"event_processing_duration_seconds_count{attempts="0",queuename="active_staking_queue",status="applied"}"#;
    assert_eq!(sample(ops, histogram).await, 1.0);

    // The database goes away, then comes back (empty: readiness only asks that it answers).
    let mut admin = pg.admin_options().connect().await.unwrap();
    admin
        .execute(format!("DROP DATABASE {} WITH (FORCE)", pg.name).as_str())
        .await
        .unwrap();
    until("503 on the database", async || {
        let (status, body) = ready_status(ops).await;
        status == 503 && body["checks"]["database"]["ok"] == false
    })
    .await;
    admin
        .execute(format!("CREATE DATABASE {}", pg.name).as_str())
        .await
        .unwrap();
    until("ready again", async || ready_status(ops).await.0 == 200).await;
    shutdown.cancel();
    let _ended = task.await.unwrap();
}
