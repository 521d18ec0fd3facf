//! Async client for a Bitcoin Core node's JSON-RPC interface, and a tip follower.
//!
//! Every service that reads Bitcoin goes through this crate, against a real `bitcoind`
//! (mainnet, signet, testnet, regtest) or the embedded devnet alike: same code path, same
//! error codes. Results are parsed at the edge into `bitcoin` types ([`bitcoin::BlockHash`],
//! [`bitcoin::Txid`], [`bitcoin::Block`], [`bitcoin::Transaction`], [`bitcoin::Amount`]).
//!
//! * [`RpcClient`] — typed calls plus a generic [`RpcClient::call`]; cookie or user/password
//!   authentication ([`RpcAuth`]); a per-request timeout.
//! * [`RpcError`] — what went wrong, with [`RpcError::is_transient`] telling callers whether a
//!   retry can help (connection refused, timeouts, node warming up) or not (RPC errors with their
//!   Bitcoin Core codes, see [`codes`]).
//! * [`TipFollower`] — yields [`ChainEvent::Connected`] and [`ChainEvent::Disconnected`] in chain
//!   order, detecting reorgs by comparing each new block's `prev_blockhash` with the last block
//!   it reported. Polls (default 1 s) and, with the `zmq` feature, also wakes on `hashblock`.

mod client;
mod config;
mod error;
mod follower;
mod hex;
mod types;
#[cfg(feature = "zmq")]
mod zmq;

pub use client::RpcClient;
pub use config::{
    default_rpc_port, RpcAuth, RpcConfig, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT,
};
pub use error::{codes, RpcError};
pub use follower::{
    ChainEvent, FollowerConfig, StartPoint, TipFollower, DEFAULT_POLL_INTERVAL, DEFAULT_PREFETCH,
};
pub use types::{
    AcceptOutcome, BlockHeaderInfo, BlockInfo, BlockchainInfo, FeeEstimate, MempoolAcceptance,
    MempoolEntry, RawTransactionInfo, TxOutInfo,
};
