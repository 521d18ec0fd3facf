//! What the helpers promise: a test's database and queues exist while it runs and are gone
//! after it, on the machine's real PostgreSQL and RabbitMQ.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::str::FromStr;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection as _, PgConnection};
use testkit::{amqp_url, ci, PgTestDb, QueueCleanup};

async fn database_exists(name: &str) -> bool {
    let admin = PgConnectOptions::from_str(&testkit::pg_admin_url()).unwrap();
    let mut conn = PgConnection::connect_with(&admin).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    n == 1
}

#[tokio::test]
async fn a_test_database_is_usable_and_gone_once_dropped() {
    let Some(db) = PgTestDb::create_or_skip("testkit_test").await else {
        return;
    };
    let name = db.name.clone();
    assert!(name.starts_with("testkit_test_"), "{name}");
    assert!(database_exists(&name).await);
    // Usable by its URL, and an open connection does not keep it alive.
    let opts = PgConnectOptions::from_str(&db.url).unwrap();
    let mut conn = opts.connect().await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    drop(db);
    assert!(!database_exists(&name).await, "{name} survived its handle");
}

#[tokio::test]
async fn a_test_database_prefix_must_be_an_identifier() {
    let refused = tokio::spawn(PgTestDb::create("bad-prefix; DROP")).await;
    assert!(
        refused.is_err(),
        "a prefix that is not an identifier was accepted"
    );
}

#[tokio::test]
async fn a_tests_queues_are_gone_once_the_cleanup_is_dropped() {
    let conn = match Connection::connect(&amqp_url(), ConnectionProperties::default()).await {
        Ok(c) => c,
        Err(e) if !ci() => {
            eprintln!("SKIPPED: RabbitMQ unreachable ({e}); CI=true makes this fail");
            return;
        }
        Err(e) => panic!("CI=true and RabbitMQ is unreachable: {e}"),
    };
    let prefix = format!("testkit{}_", std::process::id());
    let naming = events::QueueNaming::new(prefix);
    let queue = naming.queue(events::QueueName::ALL[0]);
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        &queue,
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    drop(QueueCleanup::new(naming));
    // A passive declaration of a missing queue fails (and closes its channel).
    let ch = conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let still_there = ch
        .queue_declare(&queue, passive, FieldTable::default())
        .await;
    assert!(still_there.is_err(), "{queue} survived the cleanup");
    let _ = conn.close(200, "done").await;
}
