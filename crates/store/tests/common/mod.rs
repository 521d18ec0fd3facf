//! Test harness shared by the conformance suite and the crash test: a fresh database per test
//! (PostgreSQL: a randomly named database dropped at the end; SQLite: a temp file) and
//! deterministic chain data.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod chain;

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};
use store::{PgStore, SqliteStore, Store};

/// Where PostgreSQL is (`DATABASE_URL` overrides; any database name in it is replaced).
pub fn pg_base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A fresh, migrated database for one test.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin: Box<PgConnectOptions>,
        name: String,
    },
}

impl TestDb {
    pub async fn sqlite() -> Option<TestDb> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.db");
        let db = TestDb {
            url: format!("sqlite://{}", path.display()),
            kind: Kind::Sqlite { _dir: dir },
        };
        db.open().await.migrate().await.expect("migrate SQLite");
        Some(db)
    }

    /// `None` (test skipped, with a message) when PostgreSQL is unreachable outside CI; with
    /// `CI=true` an unreachable server fails the test.
    pub async fn postgres() -> Option<TestDb> {
        let admin =
            PgConnectOptions::from_str(&pg_base_url()).expect("DATABASE_URL is a PostgreSQL URL");
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
        let name = format!("store_test_{:016x}", rand::random::<u64>());
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        let _ = conn.close().await;
        let url = admin.clone().database(&name).to_url_lossy().to_string();
        let db = TestDb {
            url,
            kind: Kind::Postgres {
                admin: Box::new(admin),
                name,
            },
        };
        db.open().await.migrate().await.expect("migrate PostgreSQL");
        Some(db)
    }

    /// A new handle (own pool) on this database, as a second process would have.
    pub async fn open(&self) -> Store {
        match &self.kind {
            Kind::Sqlite { .. } => {
                Store::Sqlite(SqliteStore::connect(&self.url).await.expect("open SQLite"))
            }
            Kind::Postgres { admin, name } => {
                let pool = PgPoolOptions::new()
                    .max_connections(4)
                    .connect_with((**admin).clone().database(name))
                    .await
                    .expect("connect PostgreSQL test database");
                Store::Postgres(PgStore::from_pool(pool))
            }
        }
    }

    /// The URL a child process uses; on PostgreSQL its sessions are tagged with `app` so
    /// [`TestDb::wait_for_sessions_of`] can find them.
    pub fn url_for(&self, app: &str) -> String {
        match &self.kind {
            Kind::Sqlite { .. } => self.url.clone(),
            Kind::Postgres { .. } if self.url.contains('?') => {
                format!("{}&application_name={app}", self.url)
            }
            Kind::Postgres { .. } => format!("{}?application_name={app}", self.url),
        }
    }

    /// Waits until the sessions of `app` have ended (PostgreSQL: a killed client's server
    /// session may still be finishing a COMMIT it sent just before dying).
    pub async fn wait_for_sessions_of(&self, app: &str) {
        let Kind::Postgres { admin, name } = &self.kind else {
            return;
        };
        let mut conn = PgConnection::connect_with(admin)
            .await
            .expect("admin connection");
        for _ in 0..500 {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            )
            .bind(name)
            .bind(app)
            .fetch_one(&mut conn)
            .await
            .expect("pg_stat_activity");
            if others == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("sessions of a killed client still open after 10 s");
    }

    /// Runs raw SQL, to corrupt state on purpose.
    pub async fn exec(&self, sql: &str) {
        match self.open().await {
            Store::Postgres(s) => {
                s.pool().execute(sql).await.expect("raw SQL");
            }
            Store::Sqlite(s) => {
                s.pool().execute(sql).await.expect("raw SQL");
                s.close().await;
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Kind::Postgres { admin, name } = &self.kind {
            let (admin, name) = ((**admin).clone(), name.clone());
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
}
