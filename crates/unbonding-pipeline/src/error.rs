//! What stops a pipeline run. Per-request problems never do: they are outcomes recorded on the
//! request (see [`crate::outcome`]).

/// A fatal error: the run cannot continue (bad configuration, database gone, node unreachable
/// at start, metrics port taken).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The configuration is unusable; the message says what to fix.
    #[error("invalid unbonding pipeline configuration: {0}")]
    Config(String),
    /// The database failed (requests are only ever changed by whole statements, so nothing is
    /// half-recorded).
    #[error(transparent)]
    Store(Box<store::StoreError>),
    /// The Bitcoin node cannot be used.
    #[error("bitcoin node {url}: {source} (check bitcoind.url and credentials; the node needs -txindex)")]
    Node {
        url: String,
        #[source]
        source: Box<bitcoin_rpc::RpcError>,
    },
    /// The `/metrics` endpoint could not start.
    #[error("metrics endpoint: {0}")]
    Metrics(String),
    /// The HTTP client for the signers could not be built.
    #[error("cannot build the HTTP client for the covenant signers: {0}")]
    Http(String),
}

impl From<store::StoreError> for PipelineError {
    fn from(e: store::StoreError) -> Self {
        PipelineError::Store(Box::new(e))
    }
}
