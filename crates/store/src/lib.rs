//! Persistence for the staking back-end: PostgreSQL (production) or SQLite (embedded default,
//! `stakingd devnet`, fast tests) behind one handle, [`Db`].
//!
//! * A service connects a [`Db`] from [`DbOptions`], runs [`Db::migrate`] and keeps only the
//!   handle of the tables it owns: [`IndexerStore`] and [`OutboxStore`] (indexer),
//!   [`ApiStore`] (API), [`ExpiryStore`] (expiry checker), [`UnbondingStore`] (unbonding
//!   pipeline). The expiry checker's handle cannot write a delegation; the API's cannot claim
//!   an unbonding request.
//! * The tables are written once; what differs between the backends (pool tuning, migrations
//!   folder, how a write transaction starts, a few SQL fragments, the writer lock) lives in
//!   `backend/`. Both backends pass the same conformance suite (`tests/conformance.rs`).
//! * Migrations are embedded (`migrations/postgres/`, `migrations/sqlite/`); [`Db::migrate`]
//!   is what `stakingd migrate` runs.
//! * One block = one database transaction (or consecutive blocks in one, `apply_blocks`):
//!   rows, confirmed TVL, tip and outbox events commit together, so a crash at any moment
//!   leaves the state of some clean run.
//! * A second indexer waits as a hot standby on [`WriterLock`] (PostgreSQL advisory lock;
//!   SQLite exclusive lock on a side file).
//! * Text from outside the process is stored through [`sanitize`] (no NUL or other control
//!   characters, bounded length).

pub mod api;
mod backend;
mod db;
mod error;
pub mod expiry;
mod indexer;
mod outbox;
pub mod sanitize;
pub mod unbonding;
mod undelivered;

pub use api::ApiStore;
pub use backend::{Backend, WriterLock, INDEXER_LOCK};
pub use db::{Db, DbOptions, MigrationInfo};
pub use error::{Result, StoreError};
pub use expiry::ExpiryStore;
pub use indexer::types::{
    ApplyOutcome, BlockApplied, BlockRef, BlockWrite, InvalidTx, InvalidTxKind, InvalidTxQuery,
    RollbackReport, SpentLookup, StakingTx, UnbondingTx,
};
pub use indexer::IndexerStore;
pub use outbox::{OutboxEvent, OutboxRow, OutboxStore};
pub use unbonding::UnbondingStore;
pub use undelivered::{OutboxTable, UndeliveredRow};
