//! The staking expiry checker (`stakingd expiry-checker`): finds delegations whose staking or
//! unbonding timelock has passed and emits the reference's `ExpiredStakingEvent` on
//! `expired_staking_queue`, which the API turns into `unbonded`.
//!
//! * Expiry rule (as the reference): the API stores `expire_height = start_height + timelock`
//!   in `api_timelock_queue`; a row is due once the Bitcoin tip (`getblockcount`) is
//!   `≥ expire_height`, i.e. in the tip block the output has become spendable through the
//!   timelock path (CSV), never one block early.
//! * Exactly once per delegation and path: each batch of due rows is removed, recorded in
//!   `api_expiry_emitted` and written to `api_expiry_outbox` in one database transaction
//!   (`store::ExpiryStore::claim_expired`); a duplicated timelock row emits nothing.
//! * Several instances: PostgreSQL rows are claimed with `FOR UPDATE SKIP LOCKED`; SQLite is
//!   single-writer.
//! * Delivery: the checker's own relay publishes `api_expiry_outbox` (a table the indexer's
//!   relay never reads, so sharing a database never double-publishes), claiming rows with a
//!   lease so two checkers never publish the same row at once. A crash after the claim loses
//!   nothing: the rows wait in the outbox for the next relay. Delivery is at-least-once, and
//!   the API's expired handler is idempotent.
//!
//! Differences from the reference (which publishes, then deletes, and must run alone): the
//! outbox (no event lost, none duplicated by a restart), several instances, the first poll at
//! start rather than after one interval, transient node and database failures retried instead
//! of a fatal exit.

pub mod checker;
pub mod config;
pub mod error;
pub mod metrics;

pub use checker::{poll_once, run, run_with, PollReport};
pub use config::{Config, ManualTip, QueueConfig, RawConfig, TipSource};
pub use error::{ConfigError, ExpiryError};
pub use metrics::ExpiryMetrics;
