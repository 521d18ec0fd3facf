//! Everything that differs between the database backends lives in this folder; the tables
//! (`indexer/`, `outbox.rs`, `api/`, `expiry.rs`, `unbonding.rs`) are written once against
//! [`Stmt`] and [`Tx`] and never match on the backend.
//!
//! * [`Backend`] names the backend and carries the dialect: the few SQL fragments that are not
//!   portable (row locks, binding a list, finding the migrations table).
//! * `pool.rs`: the connection pool of each backend, its tuning, its migrations folder and how
//!   a write transaction starts.
//! * `stmt.rs`: one statement type over both drivers: bind values, run, decode rows.
//! * `lock.rs`: the single-writer lock (an advisory lock; a file lock).
//!
//! Both drivers run the same SQL text: `$n` placeholders, `ON CONFLICT`, `RETURNING` and
//! `excluded` mean the same on PostgreSQL and SQLite.

mod lock;
mod pool;
mod stmt;

use std::fmt;

pub(crate) use lock::Contender;
pub use lock::{WriterLock, INDEXER_LOCK};
pub(crate) use pool::{Pool, Tx};
pub(crate) use stmt::Stmt;

/// Which database a [`crate::Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL: production, several replicas of every service but the indexer.
    Postgres,
    /// SQLite: `stakingd devnet`, single-machine installs, fast tests.
    Sqlite,
}

impl Backend {
    /// The backend a URL names: `postgres://…` / `postgresql://…` or `sqlite:…`.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }

    /// `"postgres"` or `"sqlite"`, for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }

    /// Appended to a sub-select that picks rows to claim: on PostgreSQL concurrent claimers
    /// skip each other's rows (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time, so
    /// its claims are serialised anyway.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// Appended to the read of the indexer state row that starts a block write: on PostgreSQL
    /// concurrent writers serialise on that row; on SQLite `BEGIN IMMEDIATE` already did.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// `column IN <list>` for a list bound with [`Stmt::bind_list`] as parameter `param`
    /// (`$1`): an array on PostgreSQL, a JSON array expanded by `json_each` on SQLite (which has
    /// no arrays and limits the number of parameters).
    pub(crate) fn in_list(self, column: &str, param: &str) -> String {
        match self {
            Backend::Postgres => format!("{column} = ANY({param})"),
            Backend::Sqlite => format!("{column} IN (SELECT value FROM json_each({param}))"),
        }
    }

    /// A query answering whether sqlx's migrations table exists (it does not on a fresh
    /// database).
    pub(crate) fn migrations_table_exists(self) -> &'static str {
        match self {
            Backend::Postgres => "SELECT to_regclass('_sqlx_migrations') IS NOT NULL",
            Backend::Sqlite => {
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
                 AND name = '_sqlx_migrations')"
            }
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            Backend::of_url("postgres://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("postgresql://h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("sqlite:/tmp/x.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("mysql://h/db"), None);
    }
}
