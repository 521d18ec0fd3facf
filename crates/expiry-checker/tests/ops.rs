//! The expiry checker's operations endpoint: it serves while the database is still away at
//! start (readiness 503, "not connected yet"), turns ready once the database answers, goes 503
//! when it stops and 200 when it is back; the reference's poll metric moves with each poll.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use expiry_checker::config::{Config, ManualTip, TipSource};
use testkit::{http_get, target_of, Proxy};
use tokio_util::sync::CancellationToken;

async fn ready_until(
    ops: SocketAddr,
    what: &str,
    want: impl Fn(u16, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut last = None;
    loop {
        if let Some((status, body)) = http_get(ops, "/health/ready").await {
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            if want(status, &body) {
                return body;
            }
            last = Some((status, body));
        }
        assert!(Instant::now() < deadline, "never {what}; last {last:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn polls(ops: SocketAddr) -> f64 {
    let (_, text) = http_get(ops, "/metrics").await.unwrap();
    testkit::sample(&text, r#"poll_duration_seconds_count{status="success"}"#).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_from_start_and_the_poll_metric_moves() {
    let Some(pg) = testkit::PgTestDb::create_or_skip("expiry_ops").await else {
        return;
    };
    let mut database = Proxy::start(target_of(&pg.url).await).await;
    database.down();
    let ops: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut config = Config::new(
        database.url_through(&pg.url),
        TipSource::Manual(ManualTip::new(100)),
    );
    config.poll_interval = Duration::from_millis(100);
    config.metrics_addr = Some(ops);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(expiry_checker::run(config, shutdown.clone()));

    let body = ready_until(ops, "503 before the database answers", |s, _| s == 503).await;
    let error = body["checks"]["database"]["error"].as_str().unwrap();
    assert!(error.contains("not connected yet"), "{body}");
    assert_eq!(polls(ops).await, 0.0);

    database.up().await;
    ready_until(ops, "ready", |s, b| s == 200 && b["status"] == "ready").await;
    let before = polls(ops).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while polls(ops).await <= before {
        assert!(
            Instant::now() < deadline,
            "poll_duration_seconds did not move"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    database.down();
    let body = ready_until(ops, "503 with the database stopped", |s, b| {
        s == 503 && b["checks"]["database"]["ok"] == false
    })
    .await;
    assert!(
        body["reason"].as_str().unwrap().starts_with("database: "),
        "{body}"
    );
    database.up().await;
    ready_until(ops, "ready again", |s, _| s == 200).await;
    shutdown.cancel();
    let _ended = task.await.unwrap();
}
