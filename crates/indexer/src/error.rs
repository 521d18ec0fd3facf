//! Errors of the indexer: configuration, block processing (inconsistent stored state) and the
//! service as a whole.

use bitcoin::{Amount, BlockHash, Txid};

/// The stored state contradicts itself or the params; processing cannot go on safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    #[error("stored staking tx {txid} was parsed under params version {version}, which the loaded params do not have (wrong params file?)")]
    UnknownParamsVersion { txid: Txid, version: u32 },
    #[error("stored unbonding tx {unbonding} names staking tx {staking}, which was not loaded")]
    MissingStakingOfUnbonding { unbonding: Txid, staking: Txid },
    #[error("cannot rebuild the scripts of staking tx {txid}: {reason}")]
    Script { txid: Txid, reason: String },
    #[error("confirmed TVL overflows adding staking tx {txid}")]
    TvlOverflow { txid: Txid },
    #[error("confirmed TVL would go negative: {tvl} minus {value} for unbonding tx {unbonding}")]
    NegativeTvl {
        tvl: Amount,
        value: Amount,
        unbonding: Txid,
    },
    #[error("params version {0} does not fit the store's column")]
    VersionTooLarge(u64),
}

/// A configuration problem, in words that say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Why the indexer stopped.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("start height: {0}")]
    StartHeight(String),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    #[error("bitcoind RPC: {0}")]
    Rpc(#[from] bitcoin_rpc::RpcError),
    #[error("outbox relay: {0}")]
    Relay(#[from] events::RelayError),
    #[error("queue: {0}")]
    Queue(#[from] events::EventsError),
    #[error("metrics endpoint: {0}")]
    Metrics(String),
    /// The chain reorganised below the last confirmed (processed) block.
    #[error(
        "major reorg: block {height} ({hash}) was processed as confirmed but left the active chain \
         (reorg deeper than the confirmation window of {depth} blocks). The indexer stopped without \
         writing anything; find the fork point and run `stakingd indexer rollback --to-height H` \
         with H at or below it, then start the indexer again"
    )]
    MajorReorg {
        height: u32,
        hash: BlockHash,
        depth: u16,
    },
    #[error("the block source stopped: {0}")]
    SourceStopped(String),
}
