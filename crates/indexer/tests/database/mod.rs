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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    /// PostgreSQL: the database, dropped with this.
    _pg: Option<testkit::PgTestDb>,
}

impl TestDatabase {
    /// A fresh database called `label` (a file in `dir` for SQLite); `None` when PostgreSQL is
    /// unreachable outside CI.
    pub async fn new(backend: Backend, dir: &std::path::Path, label: &str) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(TestDatabase {
                url: format!("sqlite://{}", dir.join(format!("{label}.db")).display()),
                _pg: None,
            }),
            Backend::Postgres => {
                let pg = testkit::PgTestDb::create_or_skip(&format!("indexer_{label}")).await?;
                Some(TestDatabase {
                    url: pg.url.clone(),
                    _pg: Some(pg),
                })
            }
        }
    }
}
