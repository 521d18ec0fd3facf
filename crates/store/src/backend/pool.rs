//! The connection pool of each backend, its embedded migrations, and write transactions.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, PgConnection, Postgres, Sqlite, Transaction};

use super::stmt::{Stmt, Target};
use super::Backend;
use crate::db::DbOptions;
use crate::error::{Result, StoreError};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
const IDLE_PING_AFTER: Duration = Duration::from_secs(5);

/// SQLite serialises writers anyway; a few connections let readers run beside the writer.
const SQLITE_CONNECTIONS: u32 = 4;

/// A backend's pool. Cheap to clone (a handle).
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Pool {
    /// Connects the pool `options.url` names. Does not migrate.
    pub(crate) async fn connect(options: &DbOptions) -> Result<Pool> {
        let url = options.url.as_str();
        match Backend::of_url(url) {
            Some(Backend::Postgres) => postgres(url, options.max_connections).await,
            Some(Backend::Sqlite) => sqlite(url).await,
            None => Err(StoreError::UnsupportedUrl {
                url: net::redact_url(url),
            }),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The backend's embedded migrations (`migrations/<backend>/`).
    pub(crate) fn migrations(&self) -> &'static Migrator {
        match self {
            Pool::Postgres(_) => &POSTGRES_MIGRATIONS,
            Pool::Sqlite(_) => &SQLITE_MIGRATIONS,
        }
    }

    /// Applies the embedded migrations; safe to run repeatedly.
    pub(crate) async fn migrate(&self) -> Result<()> {
        match self {
            Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
            Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
        }
        Ok(())
    }

    /// A statement run on a connection of the pool.
    pub(crate) fn query<'c, 'q>(&'c self, sql: &'q str) -> Stmt<'c, 'q> {
        match self {
            Pool::Postgres(p) => Stmt::Postgres(Target::Pool(p), sqlx::query(sql)),
            Pool::Sqlite(p) => Stmt::Sqlite(Target::Pool(p), sqlx::query(sql)),
        }
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, taking the database
    /// write lock up front, so two writers (even in two processes) serialise instead of
    /// failing when a read snapshot would have to be upgraded.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        let op = StoreError::db("begin transaction");
        Ok(match self {
            Pool::Postgres(p) => Tx::Postgres(p.begin().await.map_err(op)?),
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await.map_err(op)?),
        })
    }

    /// Closes every connection (on SQLite this checkpoints the WAL).
    pub(crate) async fn close(&self) {
        match self {
            Pool::Postgres(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

/// The PostgreSQL pool, tuned where measurements showed a cost (`docs/benchmarks.md`).
async fn postgres(url: &str, max_connections: u32) -> Result<Pool> {
    let options = PgConnectOptions::from_str(url)
        .map_err(StoreError::db("parse the PostgreSQL URL"))?
        // Every statement is prepared once per connection and its plan does not depend on the
        // values (each query has exactly one right index). PostgreSQL's default re-plans the
        // first executions with the values and may keep doing so; planning cost 0.1 ms against
        // 0.05 ms of execution for a page of delegations.
        .options([("plan_cache_mode", "force_generic_plan")]);
    // One plain attempt first: the pool retries a refused connection until its acquire timeout
    // and then reports only "pool timed out"; this says at once what is wrong (connection
    // refused, login failed, no such database) and where.
    let probe = PgConnection::connect_with(&options)
        .await
        .map_err(|error| StoreError::connect(url, error, &options))?;
    // The probe's work is done; a failed goodbye changes nothing.
    let _ignored = probe.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out by default: a second round trip per query,
        // a sixth of the API's CPU on a page of delegations. Only a connection idle for a while
        // is checked (a restarted server has dropped it); one in steady use fails its query
        // instead, its error is transient and sqlx closes it, so the next acquire gets a fresh
        // one.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > IDLE_PING_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .map_err(StoreError::db("connect to PostgreSQL"))?;
    Ok(Pool::Postgres(pool))
}

/// The SQLite pool on `sqlite:PATH` / `sqlite://PATH` (query parameters are not supported),
/// creating the file if missing. WAL journal with `synchronous = FULL`: a committed write
/// survives a crash or power loss (one fsync per commit), readers never block the writer.
async fn sqlite(url: &str) -> Result<Pool> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty() && !p.contains('?') && *p != ":memory:")
        .ok_or_else(|| StoreError::UnsupportedUrl {
            url: net::redact_url(url),
        })?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    let pool = SqlitePoolOptions::new()
        .max_connections(SQLITE_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(|error| StoreError::Connect {
            url: url.to_owned(),
            reason: crate::error::connect_reason(&error, None),
            error,
        })?;
    Ok(Pool::Sqlite(pool))
}

/// A write transaction: everything in it commits together or not at all. Dropping it without
/// [`Tx::commit`] rolls it back.
#[derive(Debug)]
pub(crate) enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

impl Tx {
    /// A statement run inside this transaction.
    pub(crate) fn query<'c, 'q>(&'c mut self, sql: &'q str) -> Stmt<'c, 'q> {
        match self {
            Tx::Postgres(t) => Stmt::Postgres(Target::Conn(&mut **t), sqlx::query(sql)),
            Tx::Sqlite(t) => Stmt::Sqlite(Target::Conn(&mut **t), sqlx::query(sql)),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Tx::Postgres(_) => Backend::Postgres,
            Tx::Sqlite(_) => Backend::Sqlite,
        }
    }

    pub(crate) async fn commit(self, op: &'static str) -> Result<()> {
        match self {
            Tx::Postgres(t) => t.commit().await,
            Tx::Sqlite(t) => t.commit().await,
        }
        .map_err(StoreError::db(op))
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            Tx::Postgres(t) => t.rollback().await,
            Tx::Sqlite(t) => t.rollback().await,
        }
        .map_err(StoreError::db("roll back"))
    }
}
