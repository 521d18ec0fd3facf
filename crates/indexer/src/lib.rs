//! The staking indexer (`stakingd indexer`): follows Bitcoin, recognises staking, unbonding and
//! withdrawal transactions with `staking-core`, keeps the confirmed TVL as the reference does,
//! and writes each confirmed block's state, tip and outbox events in one database transaction
//! (consecutive blocks in one while far behind the tip).
//!
//! * [`processor`]: the pure block processor (block + params + stored view → `BlockWrite`).
//! * [`window`]: the unconfirmed window of `k − 1` blocks; reorgs inside it are dropped from
//!   memory, deeper ones stop the indexer ([`IndexerError::MajorReorg`]).
//! * [`unconfirmed`]: the unconfirmed TVL of the `btc_info` event.
//! * [`run`] / [`run_with`]: the service; [`rollback`]: recovery after a deep reorg.

pub mod config;
mod driver;
pub mod error;
mod group;
pub mod health;
mod known;
pub mod metrics;
pub mod outcome;
pub mod processor;
pub mod progress;
mod retry;
pub mod start;
pub mod unconfirmed;
pub mod window;
mod writer;

pub use config::{IndexerConfig, QueueConfig, RawConfig};
pub use driver::{rollback, run, run_with, IN_PROCESS_REFUSED};
pub use error::{ConfigError, IndexerError, ProcessError};
pub use metrics::IndexerMetrics;
pub use outcome::{BlockCounts, InvalidReason};
pub use processor::{process_block, BlockInput, ProcessedBlock, StoredView};
