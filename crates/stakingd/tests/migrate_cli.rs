//! `stakingd migrate` as a process: it creates every table (indexer, outbox, API) on SQLite and
//! on PostgreSQL, prints what it applied, applies nothing the second time, takes the database
//! from a service's config file or the environment, and without a database says what to pass.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::process::{Command, Output};

use sqlx::{Connection, PgConnection, SqliteConnection};
use store::{Db, DbOptions};

fn stakingd(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stakingd"));
    command.args(args).env_remove("STAKINGD_DATABASE_URL");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stakingd failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Runs `stakingd migrate` twice on `url` and checks the tables the services use exist.
async fn migrates_once_then_is_up_to_date(url: &str) {
    let first = stdout(&stakingd(&["migrate", "--database-url", url], &[]));
    assert!(first.contains("applied"), "{first}");
    for name in ["0001 indexer", "0002 outbox", "1000 api"] {
        assert!(
            first.contains(name),
            "{name} not listed as applied: {first}"
        );
    }
    let second = stdout(&stakingd(&["migrate", "--database-url", url], &[]));
    assert!(second.contains("up to date"), "{second}");
    assert!(!second.contains("0001"), "{second}");

    let store = Db::connect(&DbOptions::new(url)).await.unwrap().indexer();
    assert_eq!(store.tip().await.unwrap(), None, "indexer tables answer");
    assert_eq!(store.confirmed_tvl().await.unwrap().to_sat(), 0);
    let count = "SELECT COUNT(*) FROM api_delegations";
    let delegations: i64 = if url.starts_with("sqlite:") {
        let mut c = SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(count).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(count).fetch_one(&mut c).await.unwrap()
    };
    assert_eq!(delegations, 0, "API tables answer");
}

#[tokio::test]
async fn migrate_creates_every_table_on_sqlite_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("staking.db").display());
    migrates_once_then_is_up_to_date(&url).await;
}

#[tokio::test]
async fn migrate_creates_every_table_on_postgres_and_is_idempotent() {
    let Some(db) = testkit::PgTestDb::create_or_skip("stakingd_migrate").await else {
        return;
    };
    migrates_once_then_is_up_to_date(&db.url).await;
}

#[test]
fn migrate_reads_the_database_from_a_service_config_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let indexer_db = dir.path().join("indexer.db");
    let indexer_toml = dir.path().join("indexer.toml");
    std::fs::write(
        &indexer_toml,
        format!(
            "network = \"regtest\"\ndatabase_url = \"sqlite:{}\"\n",
            indexer_db.display()
        ),
    )
    .unwrap();
    let out = stdout(&stakingd(
        &["migrate", "--config", indexer_toml.to_str().unwrap()],
        &[],
    ));
    assert!(
        out.contains("indexer.db") && out.contains("applied"),
        "{out}"
    );

    let api_db = dir.path().join("api.db");
    let api_toml = dir.path().join("api.toml");
    std::fs::write(
        &api_toml,
        format!("[db]\nurl = \"sqlite:{}\"\n", api_db.display()),
    )
    .unwrap();
    let out = stdout(&stakingd(
        &["migrate", "--config", api_toml.to_str().unwrap()],
        &[],
    ));
    assert!(out.contains("api.db") && out.contains("applied"), "{out}");

    let env_db = format!("sqlite:{}", dir.path().join("env.db").display());
    let out = stdout(&stakingd(
        &["migrate"],
        &[("STAKINGD_DATABASE_URL", &env_db)],
    ));
    assert!(out.contains("env.db") && out.contains("applied"), "{out}");
}

#[test]
fn migrate_without_a_database_says_what_to_pass() {
    let output = stakingd(&["migrate"], &[]);
    assert!(!output.status.success());
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(
        err.contains("--database-url") && err.contains("STAKINGD_DATABASE_URL"),
        "{err}"
    );
}

#[test]
fn a_closed_postgresql_port_is_one_line_at_once_naming_the_url_and_connection_refused() {
    let started = std::time::Instant::now();
    let output = stakingd(
        &[
            "migrate",
            "--database-url",
            "postgres://postgres:s3cret@127.0.0.1:1/ledger",
        ],
        &[],
    );
    assert!(!output.status.success());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let err = String::from_utf8(output.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("postgres://postgres:***@127.0.0.1:1/ledger"),
        "{err}"
    );
    assert_eq!(err.matches("connection refused").count(), 1, "{err}");
    assert!(
        !err.contains("timed out") && !err.contains("s3cret"),
        "{err}"
    );
}
