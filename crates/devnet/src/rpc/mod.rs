//! The bitcoind-compatible JSON-RPC server: HTTP transport and auth ([`server`]), argument
//! handling ([`args`]), the calls ([`methods`]) and Core's JSON shapes ([`json`](mod@json)).

pub mod args;
pub mod json;
pub mod methods;
pub mod scan;
pub mod server;

use serde_json::{json, Value};

/// Bitcoin Core's RPC error codes used by the devnet.
pub mod code {
    /// Generic application error (also wrong number of parameters, with the usage text).
    pub const MISC_ERROR: i32 = -1;
    /// Unexpected type was passed as parameter.
    pub const TYPE_ERROR: i32 = -3;
    /// Invalid address or key; also "not found" for blocks and transactions.
    pub const INVALID_ADDRESS_OR_KEY: i32 = -5;
    /// Insufficient funds (the faucet).
    pub const WALLET_INSUFFICIENT_FUNDS: i32 = -6;
    /// Invalid, missing or duplicate parameter.
    pub const INVALID_PARAMETER: i32 = -8;
    /// Error parsing or validating structure in raw format.
    pub const DESERIALIZATION_ERROR: i32 = -22;
    /// General error during transaction or block submission.
    pub const VERIFY_ERROR: i32 = -25;
    /// Transaction or block was rejected by network rules.
    pub const VERIFY_REJECTED: i32 = -26;
    /// Transaction already in chain.
    pub const VERIFY_ALREADY_IN_CHAIN: i32 = -27;
    /// JSON-RPC: invalid request object.
    pub const INVALID_REQUEST: i32 = -32600;
    /// JSON-RPC: method not found.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// JSON-RPC: parse error.
    pub const PARSE_ERROR: i32 = -32700;
}

/// An RPC error object `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// Core's error code.
    pub code: i32,
    /// Core's message.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The JSON error object.
    pub fn to_json(&self) -> Value {
        json!({ "code": self.code, "message": self.message })
    }
}
