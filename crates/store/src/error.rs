//! Store errors, each classified as transient (retry) or permanent (stop and report).

use bitcoin::{Amount, BlockHash, Txid};
use sqlx::postgres::PgConnectOptions;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database driver failed; see [`StoreError::is_transient`] for retry advice.
    #[error("database error during {op}: {source}")]
    Database {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The first connection failed: unreachable server, refused login, missing database.
    #[error("cannot connect to the database {url}: {reason}")]
    Connect {
        /// The URL with any password replaced by `***`.
        url: String,
        /// What went wrong, said once (`error`'s own text repeats its cause).
        reason: String,
        /// The driver's error, for [`StoreError::is_transient`].
        error: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url {url:?}: expected postgres://, postgresql:// or sqlite:")]
    UnsupportedUrl {
        /// The URL as given, its password redacted ([`net::redact_url`]).
        url: String,
    },
    /// The next block's `prev_hash` is not the stored tip: a reorg deeper than the window.
    #[error(
        "block {height} ({hash}) does not connect: its prev_hash is {prev_hash} but the stored tip \
         {tip_height} is {tip_hash} (reorg below the processed tip; roll back with \
         `stakingd indexer rollback --to-height H`)"
    )]
    NotConnected {
        height: u32,
        hash: BlockHash,
        prev_hash: BlockHash,
        tip_height: u32,
        tip_hash: BlockHash,
    },
    #[error("block {height} leaves a gap: the stored tip is {tip_height}")]
    HeightGap { height: u32, tip_height: u32 },
    /// A block at an already-processed height has another hash than the one stored.
    #[error("block {height} is {hash} but {stored} was processed at that height (reorg)")]
    ConflictingBlock {
        height: u32,
        hash: BlockHash,
        stored: BlockHash,
    },
    #[error("block {height} is below the first processed block {first_height}: cannot replay it")]
    BelowHistory { height: u32, first_height: u32 },
    #[error("{what} {txid} claims block {claimed_height}/{claimed_hash} but is written with block {height}/{hash}")]
    BlockMismatch {
        what: &'static str,
        txid: Txid,
        claimed_height: u32,
        claimed_hash: BlockHash,
        height: u32,
        hash: BlockHash,
    },
    #[error("{what}: txid {txid} does not match the transaction, whose txid is {computed}")]
    TxidMismatch {
        what: &'static str,
        txid: Txid,
        computed: Txid,
    },
    #[error("unbonding tx {unbonding} spends staking tx {staking}, which is not stored")]
    UnknownStakingTx { unbonding: Txid, staking: Txid },
    #[error("staking tx {staking} is already unbonded by {existing}; {unbonding} cannot unbond it again")]
    AlreadyUnbonded {
        staking: Txid,
        existing: Txid,
        unbonding: Txid,
    },
    /// As the reference's `ErrNegativeTvl`: the stored TVL is inconsistent with the rows.
    #[error("confirmed TVL would go negative: {tvl} minus {value} for unbonding tx {unbonding}")]
    NegativeTvl {
        tvl: Amount,
        value: Amount,
        unbonding: Txid,
    },
    #[error("confirmed TVL overflows adding {value} for staking tx {staking}")]
    TvlOverflow { value: Amount, staking: Txid },
    #[error("invalid tx {txid}: reason {reason:?} is not a snake_case identifier")]
    InvalidReason { txid: Txid, reason: String },
    #[error("{what} value {value} does not fit the database column")]
    OutOfRange { what: &'static str, value: String },
    /// A stored value could not be parsed back: the database was edited by hand or is corrupt.
    #[error("stored {what} {value:?} is corrupt: {reason}")]
    Corrupt {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("the writer lock {name:?} was lost (connection closed)")]
    LockLost { name: String },
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { op, source }
    }

    /// A failed first connection to the PostgreSQL database `url` (options parsed from it).
    pub(crate) fn connect(url: &str, error: sqlx::Error, options: &PgConnectOptions) -> StoreError {
        StoreError::Connect {
            url: net::redact_url(url),
            reason: connect_reason(&error, Some(options)),
            error,
        }
    }

    /// True when retrying the same operation later may succeed: lost connections, pool
    /// timeouts, lock contention, serialization failures. Everything else (constraint
    /// violations, reorgs, corrupt rows, negative TVL) is permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database { source, .. } => sqlx_is_transient(source),
            StoreError::Connect { error, .. } => sqlx_is_transient(error),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(source)) => {
                sqlx_is_transient(source)
            }
            _ => false,
        }
    }
}

/// Why a first connection failed, in one clause: the OS's or the server's words once, and what
/// to do when that is clear (start the server, create the database, fix the login).
pub(crate) fn connect_reason(error: &sqlx::Error, pg: Option<&PgConnectOptions>) -> String {
    match error {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is the server running and listening on that host and port?)"
                .to_owned()
        }
        sqlx::Error::Io(io) => lowercase_first(&io.to_string()),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        sqlx::Error::Database(db) => match (db.code().as_deref(), pg) {
            // invalid_catalog_name: the server answers, the database is missing.
            (Some("3D000"), Some(pg)) => format!(
                "{}; create it first: createdb -h {} -p {} -U {} {}",
                db.message(),
                pg.get_host(),
                pg.get_port(),
                pg.get_username(),
                pg.get_database().unwrap_or(pg.get_username())
            ),
            // invalid_password, invalid_authorization_specification.
            (Some("28P01" | "28000"), _) => {
                format!("the server refused the login: {}", db.message())
            }
            _ => db.message().to_owned(),
        },
        other => other.to_string(),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn sqlx_is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code_is_transient(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes that mean "try again".
fn code_is_transient(code: &str) -> bool {
    // PostgreSQL: 08xxx connection exception, 40001 serialization failure, 40P01 deadlock,
    // 53xxx insufficient resources, 57P01..57P03 shutdown / cannot connect now.
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "40001" | "40P01" | "57P01" | "57P02" | "57P03")
        // SQLite: 5 SQLITE_BUSY (and extended 261, 517), 6 SQLITE_LOCKED (262).
        || matches!(code, "5" | "6" | "261" | "262" | "517")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;

    #[tokio::test]
    async fn a_refused_postgresql_connection_is_said_at_once_with_the_url_and_the_cause_once() {
        let started = std::time::Instant::now();
        let url = "postgres://app:s3cret@127.0.0.1:1/ledger";
        let e = crate::Db::connect(&crate::DbOptions::new(url))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let text = e.to_string();
        assert_eq!(text.matches("connection refused").count(), 1, "{text}");
        assert!(
            text.contains("postgres://app:***@127.0.0.1:1/ledger"),
            "{text}"
        );
        assert!(
            !text.contains("s3cret") && !text.contains("timed out"),
            "{text}"
        );
        // Nothing below it for `{:#}` to repeat.
        assert!(std::error::Error::source(&e).is_none());
        assert!(e.is_transient());
    }

    #[tokio::test]
    async fn a_missing_postgresql_database_is_named_with_the_createdb_command_that_makes_it() {
        let Some(db) = testkit::PgTestDb::create_or_skip("store_missing").await else {
            return;
        };
        use sqlx::ConnectOptions as _;
        let missing = format!("{}_missing", db.name);
        let options = db.connect_options().database(&missing);
        let url = options.to_url_lossy().to_string();
        let text = crate::Db::connect(&crate::DbOptions::new(url))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            text.contains(&format!("database \"{missing}\" does not exist")),
            "{text}"
        );
        let createdb = format!(
            "createdb -h {} -p {} -U {} {missing}",
            options.get_host(),
            options.get_port(),
            options.get_username()
        );
        assert!(text.contains(&createdb), "{createdb:?} not in {text}");
    }

    #[test]
    fn connection_loss_is_transient() {
        let e = StoreError::Database {
            op: "tip",
            source: sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        };
        assert!(e.is_transient());
        let e = StoreError::Database {
            op: "tip",
            source: sqlx::Error::PoolTimedOut,
        };
        assert!(e.is_transient());
    }

    #[test]
    fn lock_contention_and_serialization_codes_are_transient() {
        for code in ["40001", "40P01", "08006", "57P01", "5", "517"] {
            assert!(code_is_transient(code), "{code}");
        }
    }

    #[test]
    fn constraint_violations_and_logic_errors_are_permanent() {
        // 23505 unique_violation, 23503 foreign_key_violation, SQLite 19 / 2067 constraint.
        for code in ["23505", "23503", "19", "2067", "42P01"] {
            assert!(!code_is_transient(code), "{code}");
        }
        let e = StoreError::HeightGap {
            height: 10,
            tip_height: 5,
        };
        assert!(!e.is_transient());
        let e = StoreError::Database {
            op: "x",
            source: sqlx::Error::RowNotFound,
        };
        assert!(!e.is_transient());
    }
}
