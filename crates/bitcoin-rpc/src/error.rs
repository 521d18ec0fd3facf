//! What can go wrong talking to a node, and whether retrying can help.

use std::path::PathBuf;
use std::time::Duration;

/// Bitcoin Core's RPC error codes (`src/rpc/protocol.h`) that callers branch on.
pub mod codes {
    /// `RPC_MISC_ERROR`: exception thrown in command handling (also wrong parameter count).
    pub const MISC_ERROR: i32 = -1;
    /// `RPC_TYPE_ERROR`: a parameter has the wrong JSON type.
    pub const TYPE_ERROR: i32 = -3;
    /// `RPC_INVALID_ADDRESS_OR_KEY`: unknown block, transaction or mempool entry.
    pub const INVALID_ADDRESS_OR_KEY: i32 = -5;
    /// `RPC_INVALID_PARAMETER`: e.g. "Block height out of range", malformed hash.
    pub const INVALID_PARAMETER: i32 = -8;
    /// `RPC_DESERIALIZATION_ERROR`: e.g. "TX decode failed".
    pub const DESERIALIZATION_ERROR: i32 = -22;
    /// `RPC_VERIFY_ERROR` / `RPC_TRANSACTION_ERROR`: e.g. missing inputs on broadcast.
    pub const VERIFY_ERROR: i32 = -25;
    /// `RPC_VERIFY_REJECTED` / `RPC_TRANSACTION_REJECTED`: the mempool rejected the tx.
    pub const VERIFY_REJECTED: i32 = -26;
    /// `RPC_VERIFY_ALREADY_IN_CHAIN` (`RPC_VERIFY_ALREADY_IN_UTXO_SET`).
    pub const VERIFY_ALREADY_IN_CHAIN: i32 = -27;
    /// `RPC_IN_WARMUP`: the node is still loading; the only RPC error worth retrying.
    pub const IN_WARMUP: i32 = -28;
    /// `RPC_METHOD_NOT_FOUND`.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// `RPC_INVALID_REQUEST`.
    pub const INVALID_REQUEST: i32 = -32600;
    /// `RPC_PARSE_ERROR`.
    pub const PARSE_ERROR: i32 = -32700;
}

/// An error from [`RpcClient`](crate::RpcClient).
///
/// Use [`RpcError::is_transient`] to decide whether to retry; an RPC-level error carries the
/// node's own code and message in [`RpcError::Rpc`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The node answered with a JSON-RPC error.
    #[error("RPC error {code}: {message}")]
    Rpc {
        /// Bitcoin Core's code (see [`codes`]).
        code: i32,
        /// Bitcoin Core's message, verbatim.
        message: String,
    },
    /// No TCP connection could be made (node down, wrong port, not yet listening).
    #[error("{method}: cannot connect to {url}: {source}")]
    Connect {
        /// The RPC method being called.
        method: String,
        /// The node's URL.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The request did not complete within the configured timeout.
    #[error("{method}: no answer from {url} within {timeout:?}")]
    Timeout {
        /// The RPC method being called.
        method: String,
        /// The node's URL.
        url: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The connection broke while sending or receiving (reset, truncated body).
    #[error("{method}: transport error talking to {url}: {source}")]
    Transport {
        /// The RPC method being called.
        method: String,
        /// The node's URL.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The node rejected the credentials (after re-reading the cookie file, for cookie auth).
    #[error("{method}: {url} rejected the RPC credentials (HTTP 401)")]
    Unauthorized {
        /// The RPC method being called.
        method: String,
        /// The node's URL.
        url: String,
    },
    /// An HTTP status without a JSON-RPC body (e.g. 503 "Work queue depth exceeded", 404 on a
    /// wrong path).
    #[error("{method}: HTTP {status} from {url}: {body}")]
    Http {
        /// The RPC method being called.
        method: String,
        /// The node's URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The cookie file could not be read.
    #[error("cannot read RPC cookie file {path}: {source}")]
    Cookie {
        /// The cookie file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The cookie file does not hold `user:password`.
    #[error("RPC cookie file {path} does not hold `user:password`")]
    CookieFormat {
        /// The cookie file.
        path: PathBuf,
    },
    /// The HTTP client could not be built from the configuration (unreadable CA file, …).
    #[error("cannot build the HTTP client for {url}: {source}")]
    Client {
        /// The node's URL.
        url: String,
        /// The underlying error.
        #[source]
        source: net::ClientError,
    },
    /// The answer was longer than [`RpcConfig::max_response_bytes`](crate::RpcConfig::max_response_bytes);
    /// reading stopped there.
    #[error("{method}: the answer from {url} is larger than {limit} bytes")]
    TooLarge {
        /// The RPC method being called.
        method: String,
        /// The node's URL.
        url: String,
        /// The configured limit.
        limit: usize,
    },
    /// The node answered, but not with what the method promises.
    #[error("{method}: unexpected answer: {reason}")]
    Decode {
        /// The RPC method being called.
        method: String,
        /// What did not parse, with the offending text.
        reason: String,
    },
}

impl RpcError {
    /// Whether retrying the same call later can succeed: the node is unreachable, slow, busy,
    /// restarting (cookie file missing) or still warming up (`-28`). RPC errors with any
    /// other code, bad credentials and malformed answers are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            RpcError::Rpc { code, .. } => *code == codes::IN_WARMUP,
            RpcError::Connect { .. } | RpcError::Timeout { .. } | RpcError::Transport { .. } => {
                true
            }
            RpcError::Http { status, .. } => matches!(status, 502..=504),
            RpcError::Cookie { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            RpcError::Unauthorized { .. }
            | RpcError::CookieFormat { .. }
            | RpcError::Client { .. }
            | RpcError::TooLarge { .. }
            | RpcError::Decode { .. } => false,
        }
    }

    /// The Bitcoin Core error code, when the node answered with a JSON-RPC error.
    pub fn code(&self) -> Option<i32> {
        match self {
            RpcError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(code: i32) -> RpcError {
        RpcError::Rpc {
            code,
            message: "m".into(),
        }
    }

    #[test]
    fn only_the_warm_up_rpc_code_is_transient() {
        assert!(rpc(codes::IN_WARMUP).is_transient());
        for code in [
            codes::MISC_ERROR,
            codes::INVALID_ADDRESS_OR_KEY,
            codes::INVALID_PARAMETER,
            codes::DESERIALIZATION_ERROR,
            codes::VERIFY_ERROR,
            codes::VERIFY_REJECTED,
            codes::METHOD_NOT_FOUND,
        ] {
            assert!(!rpc(code).is_transient(), "code {code}");
        }
    }

    #[test]
    fn a_busy_or_gateway_http_status_is_transient_and_a_client_error_is_not() {
        let http = |status| RpcError::Http {
            method: "getblockcount".into(),
            url: "http://127.0.0.1:1".into(),
            status,
            body: String::new(),
        };
        assert!(http(503).is_transient());
        assert!(http(502).is_transient());
        assert!(!http(404).is_transient());
        assert!(!http(500).is_transient());
    }

    #[test]
    fn a_missing_cookie_file_is_transient_because_the_node_may_be_starting() {
        let missing = RpcError::Cookie {
            path: PathBuf::from("/nope/.cookie"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let denied = RpcError::Cookie {
            path: PathBuf::from("/root/.cookie"),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(missing.is_transient());
        assert!(!denied.is_transient());
    }

    #[test]
    fn the_message_names_the_code_and_the_nodes_text() {
        let err = RpcError::Rpc {
            code: -8,
            message: "Block height out of range".into(),
        };
        assert_eq!(err.to_string(), "RPC error -8: Block height out of range");
        assert_eq!(err.code(), Some(-8));
    }
}
