//! Test harness shared by the conformance suite and the crash test: a fresh database per test
//! (PostgreSQL: a randomly named database dropped at the end; SQLite: a temp file) and
//! deterministic chain data.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod chain;

use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use store::{Db, DbOptions, IndexerStore, OutboxStore};

/// A fresh, migrated database for one test.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Sqlite { _dir: tempfile::TempDir },
    Postgres(Box<testkit::PgTestDb>),
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
        let pg = testkit::PgTestDb::create_or_skip("store_test").await?;
        let db = TestDb {
            url: pg.url.clone(),
            kind: Kind::Postgres(Box::new(pg)),
        };
        db.open().await.migrate().await.expect("migrate PostgreSQL");
        Some(db)
    }

    /// A new handle (own pool) on this database, as a second process would have.
    pub async fn open(&self) -> Db {
        Db::connect(&DbOptions::new(self.url.clone()).max_connections(4))
            .await
            .expect("connect the test database")
    }

    /// The indexer's tables and its outbox, on a new handle of their own.
    pub async fn stores(&self) -> (IndexerStore, OutboxStore) {
        let db = self.open().await;
        (db.indexer(), db.outbox())
    }

    /// The URL a child process uses; on PostgreSQL its sessions are tagged with `app` so
    /// [`TestDb::wait_for_sessions_of`] can find them.
    pub fn url_for(&self, app: &str) -> String {
        match &self.kind {
            Kind::Sqlite { .. } => self.url.clone(),
            Kind::Postgres(_) if self.url.contains('?') => {
                format!("{}&application_name={app}", self.url)
            }
            Kind::Postgres(_) => format!("{}?application_name={app}", self.url),
        }
    }

    /// Waits until the sessions of `app` have ended (PostgreSQL: a killed client's server
    /// session may still be finishing a COMMIT it sent just before dying).
    pub async fn wait_for_sessions_of(&self, app: &str) {
        let Kind::Postgres(pg) = &self.kind else {
            return;
        };
        let mut conn = PgConnection::connect_with(pg.admin_options())
            .await
            .expect("admin connection");
        for _ in 0..500 {
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            )
            .bind(&pg.name)
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
        match &self.kind {
            Kind::Sqlite { .. } => {
                let mut conn = SqliteConnection::connect(&self.url)
                    .await
                    .expect("open SQLite");
                conn.execute(sql).await.expect("raw SQL");
                conn.close().await.expect("close SQLite");
            }
            Kind::Postgres(pg) => {
                let mut conn = PgConnection::connect_with(&pg.connect_options())
                    .await
                    .expect("connect PostgreSQL test database");
                conn.execute(sql).await.expect("raw SQL");
            }
        }
    }
}
