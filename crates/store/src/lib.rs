//! Persistence for the staking back-end behind one interface.
//!
//! * [`IndexerStore`] and [`OutboxStore`] are the interface; [`PgStore`] (PostgreSQL,
//!   production) and [`SqliteStore`] (embedded default, `stakingd devnet`, fast tests) implement
//!   it, and [`Store`] picks one from a URL. Both pass the same conformance suite
//!   (`tests/conformance.rs`).
//! * Migrations are embedded (`migrations/postgres/`, `migrations/sqlite/`); [`Store::migrate`]
//!   is what `stakingd migrate` runs. Later modules (API tables, …) add their own numbered files
//!   to both folders and their own module next to `postgres.rs` / `sqlite.rs`.
//! * One block = one database transaction (or consecutive blocks in one, `apply_blocks`): rows,
//!   confirmed TVL, tip and outbox events commit together, so a crash at any moment leaves the
//!   state of some clean run.
//! * A second indexer waits as a hot standby on [`WriterLock`] (PostgreSQL advisory lock;
//!   SQLite exclusive lock on a side file).

pub mod api;
mod codec;
mod error;
mod interface;
mod lock;
mod outbox;
mod postgres;
mod postgres_block;
mod sqlite;
mod sqlite_block;
mod store;
mod types;
mod undelivered;
mod validation;

pub use error::{Result, StoreError};
pub use interface::{IndexerStore, OutboxStore};
pub use lock::{WriterLock, INDEXER_LOCK};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use store::{MigrationInfo, Store};
pub use types::{
    ApplyOutcome, BlockApplied, BlockRef, BlockWrite, InvalidTx, InvalidTxKind, InvalidTxQuery,
    OutboxEvent, OutboxRow, RollbackReport, SpentLookup, StakingTx, UnbondingTx,
};
pub use undelivered::{OutboxTable, UndeliveredRow};
