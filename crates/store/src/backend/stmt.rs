//! One statement type over both drivers. The SQL text and the bound values are the same for
//! every backend; only the driver that runs them differs, so each operation is a two-arm
//! `match` that hands the statement to sqlx. Rows are decoded with `sqlx::FromRow` (derived
//! structs or tuples), natively on each driver: nothing is converted through an intermediate
//! representation, which keeps the hot paths (block writes, delegation pages) as fast as
//! driver-specific code.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Database, Encode, FromRow, Postgres, Sqlite, Type};

use crate::error::{Result, StoreError};

/// A value both drivers can bind (integers, text, bytes, booleans, timestamps, `Option`s).
pub(crate) trait Value<'q>:
    'q + Encode<'q, Postgres> + Type<Postgres> + Encode<'q, Sqlite> + Type<Sqlite>
{
}

impl<'q, T> Value<'q> for T where
    T: 'q + Encode<'q, Postgres> + Type<Postgres> + Encode<'q, Sqlite> + Type<Sqlite>
{
}

/// A row type both drivers can decode (`#[derive(sqlx::FromRow)]` structs, tuples).
pub(crate) trait Record:
    for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

impl<T> Record for T where
    T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

/// Where a statement runs: on a connection taken from the pool for it, or on one already held
/// (a transaction's).
pub(crate) enum Target<'c, DB: Database> {
    Pool(&'c sqlx::Pool<DB>),
    Conn(&'c mut DB::Connection),
}

/// The connection a statement runs on, once acquired.
enum Held<'c, DB: Database> {
    Pooled(PoolConnection<DB>),
    Borrowed(&'c mut DB::Connection),
}

impl<'c, DB: Database> Target<'c, DB> {
    async fn hold(self) -> sqlx::Result<Held<'c, DB>> {
        Ok(match self {
            Target::Pool(pool) => Held::Pooled(pool.acquire().await?),
            Target::Conn(conn) => Held::Borrowed(conn),
        })
    }
}

impl<DB: Database> Deref for Held<'_, DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        match self {
            Held::Pooled(c) => c,
            Held::Borrowed(c) => c,
        }
    }
}

impl<DB: Database> DerefMut for Held<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            Held::Pooled(c) => c,
            Held::Borrowed(c) => c,
        }
    }
}

/// A statement with its bound values, ready to run on its backend.
pub(crate) enum Stmt<'c, 'q> {
    Postgres(Target<'c, Postgres>, Query<'q, Postgres, PgArguments>),
    Sqlite(Target<'c, Sqlite>, Query<'q, Sqlite, SqliteArguments<'q>>),
}

impl<'q> Stmt<'_, 'q> {
    /// Binds the next `$n` parameter.
    pub(crate) fn bind<T: Value<'q>>(self, value: T) -> Self {
        match self {
            Stmt::Postgres(t, q) => Stmt::Postgres(t, q.bind(value)),
            Stmt::Sqlite(t, q) => Stmt::Sqlite(t, q.bind(value)),
        }
    }

    /// Binds a list as the next parameter, for a condition written with
    /// [`super::Backend::in_list`]: an array on PostgreSQL, JSON array text on SQLite.
    pub(crate) fn bind_list<T>(self, items: &'q [T]) -> Self
    where
        T: Clone,
        &'q [T]: Encode<'q, Postgres> + Type<Postgres>,
        serde_json::Value: From<Vec<T>>,
    {
        match self {
            Stmt::Postgres(t, q) => Stmt::Postgres(t, q.bind(items)),
            Stmt::Sqlite(t, q) => {
                let json = serde_json::Value::from(items.to_vec()).to_string();
                Stmt::Sqlite(t, q.bind(json))
            }
        }
    }

    /// Runs the statement; the number of rows it changed.
    pub(crate) async fn execute(self, op: &'static str) -> Result<u64> {
        self.try_execute().await.map_err(StoreError::db(op))
    }

    /// [`Stmt::execute`] keeping the driver's error, for callers that tell constraint
    /// violations apart.
    pub(crate) async fn try_execute(self) -> sqlx::Result<u64> {
        Ok(match self {
            Stmt::Postgres(t, q) => q.execute(&mut *t.hold().await?).await?.rows_affected(),
            Stmt::Sqlite(t, q) => q.execute(&mut *t.hold().await?).await?.rows_affected(),
        })
    }

    /// Every row, decoded.
    pub(crate) async fn fetch_all<T: Record>(self, op: &'static str) -> Result<Vec<T>> {
        self.all().await.map_err(StoreError::db(op))
    }

    /// The first row, if any, decoded.
    pub(crate) async fn fetch_optional<T: Record>(self, op: &'static str) -> Result<Option<T>> {
        self.optional().await.map_err(StoreError::db(op))
    }

    /// The first row, decoded; no row is an error.
    pub(crate) async fn fetch_one<T: Record>(self, op: &'static str) -> Result<T> {
        self.optional()
            .await
            .and_then(|row| row.ok_or(sqlx::Error::RowNotFound))
            .map_err(StoreError::db(op))
    }

    /// The single column of the first row.
    pub(crate) async fn scalar<T>(self, op: &'static str) -> Result<T>
    where
        (T,): Record,
    {
        Ok(self.fetch_one::<(T,)>(op).await?.0)
    }

    /// The single column of the first row, if there is a row.
    pub(crate) async fn scalar_optional<T>(self, op: &'static str) -> Result<Option<T>>
    where
        (T,): Record,
    {
        Ok(self.fetch_optional::<(T,)>(op).await?.map(|(v,)| v))
    }

    async fn all<T: Record>(self) -> sqlx::Result<Vec<T>> {
        match self {
            Stmt::Postgres(t, q) => {
                let rows = q.fetch_all(&mut *t.hold().await?).await?;
                rows.iter()
                    .map(<T as FromRow<'_, PgRow>>::from_row)
                    .collect()
            }
            Stmt::Sqlite(t, q) => {
                let rows = q.fetch_all(&mut *t.hold().await?).await?;
                rows.iter()
                    .map(<T as FromRow<'_, SqliteRow>>::from_row)
                    .collect()
            }
        }
    }

    async fn optional<T: Record>(self) -> sqlx::Result<Option<T>> {
        match self {
            Stmt::Postgres(t, q) => q
                .fetch_optional(&mut *t.hold().await?)
                .await?
                .map(|row| <T as FromRow<'_, PgRow>>::from_row(&row))
                .transpose(),
            Stmt::Sqlite(t, q) => q
                .fetch_optional(&mut *t.hold().await?)
                .await?
                .map(|row| <T as FromRow<'_, SqliteRow>>::from_row(&row))
                .transpose(),
        }
    }
}
