//! What the helpers promise: a test's database and queues exist while it runs and are gone
//! after it, on the machine's real PostgreSQL and RabbitMQ; and without those services such a
//! test fails, saying how to start them, unless skipping was allowed (never with `CI=true`).
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
use testkit::{PgTestDb, QueueCleanup};

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
    let Some(url) = testkit::rabbitmq().await else {
        return;
    };
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
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

/// What a run of one test of this binary, as a process of its own, did.
struct ChildRun {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `test` alone in a fresh process of this test binary, with `CI` and the opt-out cleared
/// and then `env` set.
fn run_alone(test: &str, env: &[(&str, &str)]) -> ChildRun {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([test, "--exact", "--test-threads=1"])
        .env_remove("CI")
        .env_remove(testkit::ALLOW_SKIP_VAR)
        .env_remove("RUST_TEST_NOCAPTURE");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    ChildRun {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A loopback port nothing listens on (bound by us, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The last line a test binary wrote to stderr.
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

const PG_TEST: &str = "a_test_database_is_usable_and_gone_once_dropped";
const AMQP_TEST: &str = "a_tests_queues_are_gone_once_the_cleanup_is_dropped";

#[test]
fn without_postgresql_a_test_fails_with_the_service_the_url_and_how_to_start_it() {
    let port = closed_port();
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{port}/x");
    let run = run_alone(PG_TEST, &[("DATABASE_URL", &url)]);
    assert!(!run.success, "{}{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("1 failed"), "{all}");
    assert!(
        all.contains(&format!(
            "PostgreSQL is unreachable at postgres://postgres:***@127.0.0.1:{port}/x ("
        )),
        "{all}"
    );
    assert!(all.contains("start it with `bash .ci/services`"), "{all}");
    assert!(all.contains("STAKINGD_TEST_ALLOW_SKIP=1"), "{all}");
    assert!(!all.contains("hunter2"), "the password was printed: {all}");
}

#[test]
fn without_postgresql_the_opt_out_skips_and_the_binary_ends_with_the_skip_count() {
    let url = format!("postgres://postgres@127.0.0.1:{}/x", closed_port());
    let run = run_alone(
        PG_TEST,
        &[("DATABASE_URL", &url), ("STAKINGD_TEST_ALLOW_SKIP", "1")],
    );
    assert!(run.success, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("1 passed"), "{}", run.stdout);
    assert_eq!(
        last_line(&run.stderr),
        format!(
            "1 test skipped (STAKINGD_TEST_ALLOW_SKIP=1; unreachable: PostgreSQL), counted as \
             passed above: {PG_TEST}"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn with_ci_true_the_opt_out_is_refused() {
    let url = format!("postgres://postgres@127.0.0.1:{}/x", closed_port());
    let run = run_alone(
        PG_TEST,
        &[
            ("DATABASE_URL", &url),
            ("STAKINGD_TEST_ALLOW_SKIP", "1"),
            ("CI", "true"),
        ],
    );
    assert!(!run.success, "{}{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("STAKINGD_TEST_ALLOW_SKIP is ignored with CI=true"),
        "{all}"
    );
    assert!(!all.contains("skipped ("), "{all}");
}

#[test]
fn without_rabbitmq_a_test_fails_unless_skipping_is_allowed() {
    let port = closed_port();
    let url = format!("amqp://guest:hunter2@127.0.0.1:{port}/%2f");
    let failed = run_alone(AMQP_TEST, &[("AMQP_URL", &url)]);
    assert!(!failed.success, "{}{}", failed.stdout, failed.stderr);
    let all = format!("{}{}", failed.stdout, failed.stderr);
    assert!(
        all.contains(&format!(
            "RabbitMQ is unreachable at amqp://guest:***@127.0.0.1:{port}/%2f ("
        )),
        "{all}"
    );
    assert!(all.contains("`rabbitmq-server -detached`"), "{all}");
    assert!(!all.contains("hunter2"), "the password was printed: {all}");

    let skipped = run_alone(
        AMQP_TEST,
        &[("AMQP_URL", &url), ("STAKINGD_TEST_ALLOW_SKIP", "1")],
    );
    assert!(skipped.success, "{}{}", skipped.stdout, skipped.stderr);
    assert!(
        last_line(&skipped.stderr)
            .starts_with("1 test skipped (STAKINGD_TEST_ALLOW_SKIP=1; unreachable: RabbitMQ)"),
        "{}",
        skipped.stderr
    );
}
