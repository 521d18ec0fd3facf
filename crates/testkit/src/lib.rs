//! Test support for the workspace's integration tests.
//!
//! Every test that touches PostgreSQL gets a database of its own ([`PgTestDb`]) so tests run in
//! parallel without seeing each other's rows, and the database is dropped when the handle is, so
//! a test run leaves nothing on the shared server (CI runs on the same server many times).
//! [`QueueCleanup`] does the same for a test's RabbitMQ queues. [`tls`] gives servers under
//! test a certificate, and tests of descriptor exhaustion a lower open-file limit.
//! [`Proxy`] lets a test stop and restart the path to a node, database or broker without
//! touching the shared server.
//!
//! A test whose service is unreachable fails with a sentence saying how to start it, unless the
//! developer opted into skipping ([`service_unreachable`], [`ALLOW_SKIP_VAR`]; never with
//! `CI=true`).

mod help;
mod http;
mod proxy;
mod services;
pub mod tls;

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};

pub use help::{help_password_leaks, HELP_MARKER};
pub use http::{http_get, sample};
pub use proxy::{authority, target_of, Proxy};
pub use services::{
    ci, redact_url, service_unreachable, skip_allowed, skip_summary, unreachable_message, Service,
    ALLOW_SKIP_VAR,
};

/// Where PostgreSQL is when `DATABASE_URL` does not say (the machine's trust-auth server).
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long a test waits for a service to answer before calling it unreachable.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The administrative PostgreSQL URL: `DATABASE_URL`, else [`DEFAULT_PG_URL`]. Test databases
/// are created through it; its own database name is replaced in theirs.
pub fn pg_admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

/// Why a test database could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PgTestDbError {
    #[error("DATABASE_URL {} is not a PostgreSQL URL: {reason}", redact_url(.url))]
    BadUrl { url: String, reason: String },
    #[error("PostgreSQL at {}: {reason}", redact_url(.url))]
    Server { url: String, reason: String },
}

/// A fresh, empty PostgreSQL database for one test, dropped (`WITH (FORCE)`, so pools still
/// open do not keep it alive) when this is dropped.
#[derive(Debug)]
pub struct PgTestDb {
    /// Connection URL of the new database.
    pub url: String,
    /// Its name (`{prefix}_{pid}_{n}_{nanos}`).
    pub name: String,
    admin: PgConnectOptions,
    keep: bool,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl PgTestDb {
    /// Creates a database named after `prefix` (lower-case letters, digits and `_`).
    ///
    /// An unreachable server fails the test ([`service_unreachable`]); `Ok(None)` means "skip": it is
    /// unreachable and the developer allowed skipping.
    pub async fn create(prefix: &str) -> Result<Option<PgTestDb>, PgTestDbError> {
        assert!(
            !prefix.is_empty()
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "a test database prefix is an SQL identifier in lower case, not {prefix:?}"
        );
        let url = pg_admin_url();
        let admin = PgConnectOptions::from_str(&url).map_err(|e| PgTestDbError::BadUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&admin))
            .await
            .map_err(|_| format!("no answer in {} s", CONNECT_TIMEOUT.as_secs()))
            .and_then(|r| r.map_err(|e| e.to_string()));
        let mut conn = match connected {
            Ok(c) => c,
            Err(e) => {
                service_unreachable(Service::PostgreSql, &url, &e);
                return Ok(None);
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "{prefix}_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let created = conn
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .map_err(|e| PgTestDbError::Server {
                url: url.clone(),
                reason: format!("CREATE DATABASE {name}: {e}"),
            });
        let _ = conn.close().await;
        created?;
        let db_url = admin.clone().database(&name).to_url_lossy().to_string();
        Ok(Some(PgTestDb {
            url: db_url,
            name,
            admin,
            keep: std::env::var_os("KEEP_TEST_DB").is_some(),
        }))
    }

    /// Options to connect to this database, for a pool of the test's own.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.admin.clone().database(&self.name)
    }

    /// Options to connect to the server's administrative database (to watch
    /// `pg_stat_activity`, say).
    pub fn admin_options(&self) -> &PgConnectOptions {
        &self.admin
    }

    /// As [`PgTestDb::create`], panicking on an error (the test fails with its message);
    /// `None` only when the developer allowed skipping.
    pub async fn create_or_skip(prefix: &str) -> Option<PgTestDb> {
        match PgTestDb::create(prefix).await {
            Ok(db) => db,
            Err(e) => panic!("{e}"),
        }
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("KEEP_TEST_DB is set: database {} kept", self.name);
            return;
        }
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let what = format!("drop test database {}", self.name);
        on_own_runtime(&what, async move {
            let mut conn = PgConnection::connect_with(&admin)
                .await
                .map_err(|e| e.to_string())?;
            conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await
                .map_err(|e| e.to_string())?;
            let _ = conn.close().await;
            Ok(())
        });
    }
}

/// Runs `cleanup` to completion on a thread and a small runtime of its own, and reports its
/// failure on stderr. `Drop` may run inside a test's runtime, which cannot block on itself.
fn on_own_runtime(what: &str, cleanup: impl Future<Output = Result<(), String>> + Send + 'static) {
    let done = std::thread::spawn(move || -> Result<(), String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(cleanup)
    })
    .join();
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("could not {what}: {e}"),
        Err(_) => eprintln!("could not {what}: the cleanup panicked"),
    }
}

/// The RabbitMQ URL tests use: `AMQP_URL`, else the machine's broker (guest/guest, vhost `/`).
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned())
}

/// Where RabbitMQ is when `AMQP_URL` does not say.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// [`amqp_url`] once the broker there accepted a connection (closed again). An unreachable
/// broker fails the test ([`service_unreachable`]); `None` means "skip": it is unreachable and the
/// developer allowed skipping.
pub async fn rabbitmq() -> Option<String> {
    use lapin::{Connection, ConnectionProperties};
    let url = amqp_url();
    let connected = tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect(&url, ConnectionProperties::default()),
    )
    .await
    .map_err(|_| format!("no answer in {} s", CONNECT_TIMEOUT.as_secs()))
    .and_then(|r| r.map_err(|e| e.to_string()));
    match connected {
        Ok(connection) => {
            let _ = connection.close(200, "probe").await;
            Some(url)
        }
        Err(e) => {
            service_unreachable(Service::RabbitMq, &url, &e);
            None
        }
    }
}

/// Deletes a test's queues (every queue and delay queue under its naming) and its dead-letter
/// exchange when dropped, even after a failed assertion, so the shared broker keeps nothing of
/// the test. Tests use a prefix of their own ([`events::QueueNaming`]).
#[derive(Debug)]
pub struct QueueCleanup {
    naming: events::QueueNaming,
    url: String,
}

impl QueueCleanup {
    /// Cleans up `naming`'s queues on the broker at [`amqp_url`].
    pub fn new(naming: events::QueueNaming) -> Self {
        QueueCleanup {
            naming,
            url: amqp_url(),
        }
    }
}

impl Drop for QueueCleanup {
    fn drop(&mut self) {
        let (naming, url) = (self.naming.clone(), self.url.clone());
        on_own_runtime("delete a test's queues", async move {
            use lapin::{Connection, ConnectionProperties};
            let c = Connection::connect(&url, ConnectionProperties::default())
                .await
                .map_err(|e| e.to_string())?;
            // A failed operation closes its channel: one channel per operation, so one
            // failure does not keep the rest from being deleted.
            let mut failed = Vec::new();
            for q in events::QueueName::ALL {
                for name in [naming.queue(q), naming.delay_queue(q)] {
                    let deleted = match c.create_channel().await {
                        Ok(ch) => ch.queue_delete(&name, Default::default()).await.map(drop),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = deleted {
                        failed.push(format!("queue {name}: {e}"));
                    }
                }
            }
            let exchange = naming.dead_letter_exchange();
            let deleted = match c.create_channel().await {
                Ok(ch) => ch.exchange_delete(&exchange, Default::default()).await,
                Err(e) => Err(e),
            };
            if let Err(e) = deleted {
                failed.push(format!("exchange {exchange}: {e}"));
            }
            let _ = c.close(200, "test cleanup").await;
            if failed.is_empty() {
                Ok(())
            } else {
                Err(failed.join("; "))
            }
        });
    }
}
