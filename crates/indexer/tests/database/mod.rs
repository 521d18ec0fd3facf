//! A database of a test's own: a SQLite file in the test's temp dir, or a PostgreSQL database
//! created for the test and dropped (with its sessions) when the handle is dropped, even after a
//! failed assertion. Outside CI an unreachable PostgreSQL skips the test with a notice; with
//! `CI=true` it fails it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    reason = "test code: a panic is a failed test; each test binary uses part of the helpers"
)]

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `DATABASE_URL` (any database name in it is replaced), or the local server of `.ci/services`.
pub fn pg_base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

static NEXT: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    /// PostgreSQL: the server to drop the database from, and its name.
    drop: Option<(PgConnectOptions, String)>,
}

impl TestDatabase {
    /// A fresh database called `label` (a file in `dir` for SQLite); `None` when PostgreSQL is
    /// unreachable outside CI.
    pub async fn new(backend: Backend, dir: &std::path::Path, label: &str) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(TestDatabase {
                url: format!("sqlite://{}", dir.join(format!("{label}.db")).display()),
                drop: None,
            }),
            Backend::Postgres => {
                let admin = PgConnectOptions::from_str(&pg_base_url())
                    .expect("DATABASE_URL is a PostgreSQL URL");
                let mut conn = match PgConnection::connect_with(&admin).await {
                    Ok(c) => c,
                    Err(e) if !ci() => {
                        eprintln!(
                            "SKIPPED: PostgreSQL unreachable at {} ({e}); CI=true makes this fail",
                            pg_base_url()
                        );
                        return None;
                    }
                    Err(e) => panic!(
                        "CI=true and PostgreSQL is unreachable at {}: {e}",
                        pg_base_url()
                    ),
                };
                let name = format!(
                    "indexer_{label}_{}_{}_{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .subsec_nanos()
                );
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create database");
                let _ = conn.close().await;
                let url = admin.clone().database(&name).to_url_lossy().to_string();
                Some(TestDatabase {
                    url,
                    drop: Some((admin, name)),
                })
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.drop.take() else {
            return;
        };
        let shown = name.clone();
        // Drop runs inside the test's runtime: use a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let mut conn = PgConnection::connect_with(&admin)
                    .await
                    .map_err(std::io::Error::other)?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {shown}: {dropped:?}");
        }
    }
}
