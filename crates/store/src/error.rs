//! Store errors, each classified as transient (retry) or permanent (stop and report).

use bitcoin::{Amount, BlockHash, Txid};

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

    /// True when retrying the same operation later may succeed: lost connections, pool
    /// timeouts, lock contention, serialization failures. Everything else (constraint
    /// violations, reorgs, corrupt rows, negative TVL) is permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database { source, .. } => sqlx_is_transient(source),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(source)) => {
                sqlx_is_transient(source)
            }
            _ => false,
        }
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
    use super::*;

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
