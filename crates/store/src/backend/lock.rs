//! The single-writer lock: one indexer writes, a second instance waits as a hot standby and
//! takes over when the first one dies.
//!
//! * PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock(hashtextextended(name,
//!   0))`) held by a dedicated connection outside the pool. The server releases it when that
//!   connection ends, including when the process is killed.
//! * SQLite: an exclusive lock (`BEGIN EXCLUSIVE`) on a side database file
//!   `<database>.<name>.lock`, held by a dedicated connection. The operating system releases
//!   the file lock when the process dies; it works between processes on one machine (SQLite
//!   itself is single-machine). The main database stays writable by the holder.
//!
//! Waiting polls (`try` every `poll` interval) so the shutdown token can interrupt it.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};
use tokio_util::sync::CancellationToken;

use super::Pool;
use crate::error::{Result, StoreError};

/// Lock name the indexer uses.
pub const INDEXER_LOCK: &str = "stakingd-indexer";

/// Held writer lock; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub struct WriterLock {
    name: String,
    conn: LockConnection,
}

#[derive(Debug)]
enum LockConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// A backend's way of trying the lock once on its own connection.
pub(crate) enum Contender {
    Postgres(PgConnection),
    /// Connected lazily: opening the side file itself is refused while another connection
    /// holds its exclusive lock.
    Sqlite(Box<SqliteConnectOptions>, Option<SqliteConnection>),
}

fn sqlite_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c == "5"))
}

impl Contender {
    /// Ready to try the lock `name` on `pool`'s database.
    pub(crate) async fn new(pool: &Pool, name: &str) -> Result<Self> {
        match pool {
            Pool::Postgres(p) => {
                // Outside the pool: the advisory lock must die with its connection.
                let conn = PgConnection::connect_with(&p.connect_options())
                    .await
                    .map_err(StoreError::db("open lock connection"))?;
                Ok(Contender::Postgres(conn))
            }
            Pool::Sqlite(p) => {
                let mut path: PathBuf = p.connect_options().get_filename().to_path_buf();
                let mut file = path
                    .file_name()
                    .map(|f| f.to_os_string())
                    .unwrap_or_default();
                file.push(format!(".{name}.lock"));
                path.set_file_name(file);
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .busy_timeout(Duration::ZERO);
                Ok(Contender::Sqlite(Box::new(options), None))
            }
        }
    }

    /// One attempt; gives the connection back on failure so the next attempt reuses it.
    pub(crate) async fn try_lock(self, name: &str) -> Result<Result<WriterLock, Contender>> {
        match self {
            Contender::Postgres(mut conn) => {
                let got: bool =
                    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                        .bind(name)
                        .fetch_one(&mut conn)
                        .await
                        .map_err(StoreError::db("try advisory lock"))?;
                if got {
                    Ok(Ok(WriterLock {
                        name: name.to_owned(),
                        conn: LockConnection::Postgres(conn),
                    }))
                } else {
                    Ok(Err(Contender::Postgres(conn)))
                }
            }
            Contender::Sqlite(options, conn) => {
                let mut conn = match conn {
                    Some(conn) => conn,
                    None => match SqliteConnection::connect_with(&options).await {
                        Ok(conn) => conn,
                        Err(e) if sqlite_busy(&e) => {
                            return Ok(Err(Contender::Sqlite(options, None)))
                        }
                        Err(e) => {
                            return Err(StoreError::Database {
                                op: "open SQLite lock file",
                                source: e,
                            })
                        }
                    },
                };
                match sqlx::query("BEGIN EXCLUSIVE").execute(&mut conn).await {
                    Ok(_) => Ok(Ok(WriterLock {
                        name: name.to_owned(),
                        conn: LockConnection::Sqlite(conn),
                    })),
                    Err(e) if sqlite_busy(&e) => Ok(Err(Contender::Sqlite(options, Some(conn)))),
                    Err(e) => Err(StoreError::Database {
                        op: "lock SQLite lock file",
                        source: e,
                    }),
                }
            }
        }
    }

    /// Tries until the lock is taken or `shutdown` fires (then `None`).
    pub(crate) async fn wait(
        mut self,
        name: &str,
        poll: Duration,
        shutdown: &CancellationToken,
    ) -> Result<Option<WriterLock>> {
        loop {
            if shutdown.is_cancelled() {
                return Ok(None);
            }
            match self.try_lock(name).await? {
                Ok(lock) => return Ok(Some(lock)),
                Err(again) => self = again,
            }
            tracing::debug!(
                lock = name,
                "writer lock is held elsewhere; waiting as standby"
            );
            tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

impl WriterLock {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Confirms the lock is still held (PostgreSQL: the session is alive and owns it). Call it
    /// before each block write; on `LockLost` stop writing.
    pub async fn check(&mut self) -> Result<()> {
        let held = match &mut self.conn {
            LockConnection::Postgres(conn) => sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid() AND granted)",
            )
            .fetch_one(conn)
            .await
            .unwrap_or(false),
            LockConnection::Sqlite(conn) => sqlx::query("SELECT 1").execute(conn).await.is_ok(),
        };
        if held {
            Ok(())
        } else {
            Err(StoreError::LockLost {
                name: self.name.clone(),
            })
        }
    }

    /// Releases the lock now (dropping it also releases it, when the connection closes).
    pub async fn release(self) -> Result<()> {
        match self.conn {
            LockConnection::Postgres(conn) => conn
                .close()
                .await
                .map_err(StoreError::db("close lock connection")),
            LockConnection::Sqlite(conn) => conn
                .close()
                .await
                .map_err(StoreError::db("close lock connection")),
        }
    }
}
