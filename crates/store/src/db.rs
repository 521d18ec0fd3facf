//! [`Db`]: one database, whichever backend, and the handles each service works through.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::ApiStore;
use crate::backend::{Backend, Contender, Pool, Stmt, Tx, WriterLock};
use crate::error::Result;
use crate::expiry::ExpiryStore;
use crate::indexer::IndexerStore;
use crate::outbox::OutboxStore;
use crate::unbonding::UnbondingStore;

/// How to reach the database: what every service's `[db]` config section converts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbOptions {
    /// `postgres://…` / `postgresql://…`, or `sqlite:PATH` / `sqlite://PATH`.
    pub url: String,
    /// Upper bound of the PostgreSQL pool (at least 1). SQLite uses a small fixed pool: it has
    /// a single writer whatever the pool size.
    pub max_connections: u32,
}

impl DbOptions {
    /// The PostgreSQL pool size when a service does not configure one.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;

    /// `url` with the default pool size.
    pub fn new(url: impl Into<String>) -> Self {
        DbOptions {
            url: url.into(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// The same options with another pool size.
    pub fn max_connections(self, max_connections: u32) -> Self {
        DbOptions {
            max_connections,
            ..self
        }
    }
}

/// One embedded migration (file `VERSION_DESCRIPTION.sql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    pub version: i64,
    pub description: String,
}

/// A connected database (PostgreSQL or SQLite). Cheap to clone (a pool handle).
///
/// A service connects one, migrates it, and keeps only the handle of its own tables:
/// [`Db::indexer`] and [`Db::outbox`] for the indexer, [`Db::api`] for the API,
/// [`Db::expiry`] for the expiry checker, [`Db::unbonding`] for the unbonding pipeline.
#[derive(Debug, Clone)]
pub struct Db {
    pool: Pool,
}

impl Db {
    /// Connects a pool (does not migrate; call [`Db::migrate`]).
    pub async fn connect(options: &DbOptions) -> Result<Db> {
        Ok(Db {
            pool: Pool::connect(options).await?,
        })
    }

    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// Applies the embedded migrations of the backend (what `stakingd migrate` runs); safe to
    /// run repeatedly and from several services at once.
    pub async fn migrate(&self) -> Result<()> {
        self.pool.migrate().await
    }

    /// [`Db::migrate`], returning the migrations this call applied (empty when the database
    /// was already up to date): what `stakingd migrate` prints.
    pub async fn migrate_reporting(&self) -> Result<Vec<MigrationInfo>> {
        let before = self.applied_versions().await?;
        self.migrate().await?;
        Ok(self
            .pool
            .migrations()
            .iter()
            .filter(|m| !before.contains(&m.version))
            .map(|m| MigrationInfo {
                version: m.version,
                description: m.description.to_string(),
            })
            .collect())
    }

    /// Versions recorded as applied (empty on a fresh database).
    async fn applied_versions(&self) -> Result<Vec<i64>> {
        let exists: bool = self
            .query(self.backend().migrations_table_exists())
            .scalar("look for the migrations table")
            .await?;
        if !exists {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64,)> = self
            .query("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all("read applied migrations")
            .await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    /// `SELECT 1`: the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.query("SELECT 1").execute("ping").await?;
        Ok(())
    }

    /// Closes every connection of this handle's pool (SQLite: checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Takes the writer lock `name` if it is free, `None` if another instance holds it.
    pub async fn try_writer_lock(&self, name: &str) -> Result<Option<WriterLock>> {
        let contender = Contender::new(&self.pool, name).await?;
        Ok(contender.try_lock(name).await?.ok())
    }

    /// Waits (polling every `poll`) until the writer lock `name` is ours; `None` on shutdown.
    pub async fn wait_for_writer_lock(
        &self,
        name: &str,
        poll: Duration,
        shutdown: &CancellationToken,
    ) -> Result<Option<WriterLock>> {
        let contender = Contender::new(&self.pool, name).await?;
        contender.wait(name, poll, shutdown).await
    }

    /// The indexer's tables: blocks, staking / unbonding / invalid txs, confirmed TVL.
    pub fn indexer(&self) -> IndexerStore {
        IndexerStore::new(self.clone())
    }

    /// The transactional outbox the indexer writes and its relay publishes.
    pub fn outbox(&self) -> OutboxStore {
        OutboxStore::new(self.clone())
    }

    /// The API's tables: delegations, statistics, consumed messages, unbonding requests as
    /// the API accepts them.
    pub fn api(&self) -> ApiStore {
        ApiStore::new(self.clone())
    }

    /// The expiry checker's work: the timelock queue, emitted expiries, its own outbox.
    pub fn expiry(&self) -> ExpiryStore {
        ExpiryStore::new(self.clone())
    }

    /// The unbonding pipeline's work: claiming accepted requests and recording outcomes.
    pub fn unbonding(&self) -> UnbondingStore {
        UnbondingStore::new(self.clone())
    }

    pub(crate) fn query<'c, 'q>(&'c self, sql: &'q str) -> Stmt<'c, 'q> {
        self.pool.query(sql)
    }

    pub(crate) async fn begin(&self) -> Result<Tx> {
        self.pool.begin().await
    }
}
