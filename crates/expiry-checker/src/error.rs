//! Why the expiry checker stopped or refused to start.

/// A setting that cannot work; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid expiry-checker configuration: {0}")]
pub struct ConfigError(pub String);

/// A fatal failure of [`crate::run`]. Transient database, node and broker failures are retried
/// inside the service and never surface here.
#[derive(Debug, thiserror::Error)]
pub enum ExpiryError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database failed permanently (e.g. a missing table, a corrupt row).
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    /// The Bitcoin node refused permanently (e.g. wrong credentials).
    #[error("bitcoind: {0}")]
    Rpc(#[from] bitcoin_rpc::RpcError),
    /// The outbox relay stopped on a permanent failure.
    #[error("expiry outbox relay: {0}")]
    Relay(#[from] events::RelayError),
    /// The relay task ended on its own (a bug); the checker stops rather than pile up events.
    #[error("expiry outbox relay stopped: {0}")]
    RelayStopped(String),
    /// The Prometheus endpoint could not be served.
    #[error("metrics: {0}")]
    Metrics(String),
}
