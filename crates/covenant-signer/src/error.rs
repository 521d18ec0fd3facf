//! Why a signing request was refused, and how each reason is answered on the wire.
//!
//! The wire format is the reference signer's (`docs/reference.md#signer-wire-format`): a JSON
//! body `{"errorCode","message"}`. Client mistakes are `400 BAD_REQUEST` with the reason followed
//! by `: invalid signing request`; our own failures are `500 INTERNAL_SERVICE_ERROR` with a fixed
//! message, the real cause only logged. Unlike the reference, "staking tx not in a block", "no
//! params for height" and "staking output already spent" are client mistakes
//! (`docs/decisions.md#covenant-signer`).

use axum::http::StatusCode;
use bitcoin::{OutPoint, Txid};
use serde::Serialize;

/// The parse-stage problems, answered with the reference's exact messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The body is not JSON of the expected shape.
    #[error("invalid request payload")]
    Payload,
    /// `staking_output_pk_script_hex` is not hex.
    #[error("invalid staking output pk script")]
    StakingPkScript,
    /// `covenant_public_key` is not a 33-byte compressed key.
    #[error("invalid covenant public key")]
    CovenantKey,
    /// `unbonding_tx_hex` is not exactly one serialized transaction.
    #[error("invalid unbonding transaction")]
    UnbondingTx,
    /// `staker_unbonding_sig_hex` is not a 64-byte BIP340 signature.
    #[error("invalid staker unbonding signature")]
    StakerSignature,
}

/// Every reason a well-formed request is refused or fails, in the order the checks run.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The request body or one of its fields could not be parsed.
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// Check 1: the unbonding tx is not a valid pre-signed transaction.
    #[error("{0}")]
    TxSanity(String),
    /// Check 2: the staking output script is not a Taproot output script.
    #[error("staking output pk script {0} is not a taproot output script")]
    NotTaproot(String),
    /// Check 3: the full node does not know the staking tx.
    #[error("staking transaction {0} not found")]
    StakingTxNotFound(Txid),
    /// Check 3: the staking tx is only in the mempool.
    #[error("staking transaction {0} is not included in a block")]
    StakingTxNotInBlock(Txid),
    /// Check 3: the staking tx has no output with the given script.
    #[error("staking transaction {txid} has no output with pk script {script}")]
    StakingOutputNotInTx { txid: Txid, script: String },
    /// Check 4: the configured `max-staking-transaction-height` cut-off (reference text, sic).
    #[error(
        "staking transaction is inlcluded to late in btc. Max allowed height is {max}, but staking tx height is {height}"
    )]
    StakingTxTooHigh { max: u32, height: u32 },
    /// Check 6: no params version is active at the staking tx's height.
    #[error("no global params for staking transaction height {0}")]
    NoParams(u32),
    /// Check 7: the requested key is not in that version's committee.
    #[error("received covenant public key {key} is not committee member at height {height}")]
    NotCommitteeMember { key: String, height: u32 },
    /// Ours: the key is in the committee, but this signer does not hold it (asked the wrong
    /// signer).
    #[error("covenant public key {0} is not held by this signer")]
    KeyNotHeld(String),
    /// Check 8: not deep enough yet.
    #[error(
        "staking transaction {txid} has {confirmations} confirmations, but {required} are required"
    )]
    NotDeepEnough {
        txid: Txid,
        confirmations: i64,
        required: u32,
    },
    /// Check 9: the staking tx is not a V0 staking tx of that params version.
    #[error("staking transaction {txid} is not a valid staking transaction: {reason}")]
    NotStakingTx { txid: Txid, reason: String },
    /// Check 10: the unbonding tx spends another output of the staking tx.
    #[error("unbonding transaction spends output {spent} of the staking transaction, but the staking output is {expected}")]
    WrongInputIndex { spent: u32, expected: u32 },
    /// Check 11: staking time outside the version's bounds.
    #[error("staking time {time} is not between {min} and {max}")]
    StakingTimeOutOfBounds { time: u16, min: u16, max: u16 },
    /// Check 12: staking amount outside the version's bounds.
    #[error("staking amount {} sat is not between {} and {} sat", amount.to_sat(), min.to_sat(), max.to_sat())]
    StakingAmountOutOfBounds {
        amount: bitcoin::Amount,
        min: bitcoin::Amount,
        max: bitcoin::Amount,
    },
    /// Check 13: the params' unbonding fee eats the whole stake (a params problem: 500).
    #[error("unbonding fee {} sat is not below the staking amount {} sat", fee.to_sat(), amount.to_sat())]
    FeeExceedsStake {
        fee: bitcoin::Amount,
        amount: bitcoin::Amount,
    },
    /// Check 14: the output is not the canonical unbonding output.
    #[error("unbonding output does not match expected output")]
    UnbondingOutputMismatch,
    /// Check 16: the staker did not sign this exact transaction.
    #[error("staker unbonding signature verification failed: signature is not valid")]
    StakerSignatureInvalid,
    /// Our addition: the staking output was already spent (unbonded or withdrawn).
    #[error("staking output {0} is already spent")]
    AlreadySpent(OutPoint),
    /// A script could not be built from params and chain data (500).
    #[error("cannot build script: {0}")]
    Script(#[from] staking_core::script::ScriptError),
    /// The full node could not be asked (500).
    #[error("bitcoin node: {0}")]
    Chain(#[from] crate::chain::ChainError),
    /// The key backend failed (500).
    #[error("signing: {0}")]
    Signing(#[from] crate::keystore::SigningError),
}

/// Which class of answer a refusal gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Malformed body or field (400, counted separately in metrics).
    Malformed,
    /// A well-formed request that the rules refuse (400).
    Refused,
    /// Our own failure (500).
    Internal,
}

impl SignError {
    /// 400 for the client's mistakes, 500 for ours.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Malformed(_) => ErrorClass::Malformed,
            Self::FeeExceedsStake { .. } | Self::Script(_) | Self::Chain(_) | Self::Signing(_) => {
                ErrorClass::Internal
            }
            _ => ErrorClass::Refused,
        }
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self.class() {
            ErrorClass::Malformed | ErrorClass::Refused => StatusCode::BAD_REQUEST,
            ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body of the answer: the reason chain for 400, a fixed text for 500.
    pub fn body(&self) -> ErrorBody {
        match self.class() {
            ErrorClass::Malformed => ErrorBody::new("BAD_REQUEST", self.to_string()),
            ErrorClass::Refused => {
                ErrorBody::new("BAD_REQUEST", format!("{self}: invalid signing request"))
            }
            ErrorClass::Internal => {
                ErrorBody::new("INTERNAL_SERVICE_ERROR", "Internal service error")
            }
        }
    }
}

/// `{"errorCode": …, "message": …}`, the reference's error envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "errorCode")]
    pub error_code: String,
    pub message: String,
}

impl ErrorBody {
    /// An error body with the given code and message.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            error_code: code.to_owned(),
            message: message.into(),
        }
    }
}
