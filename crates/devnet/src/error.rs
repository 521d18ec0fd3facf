//! Why the devnet refuses a transaction or a block, with Bitcoin Core's reject strings, and the
//! crate's operational errors.

use std::path::PathBuf;

/// Why a transaction was refused. The strings are Bitcoin Core's reject reasons, so tools that
/// match on them behave the same against the devnet and against bitcoind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// A coinbase submitted as a loose transaction.
    Coinbase,
    /// No inputs.
    VinEmpty,
    /// No outputs.
    VoutEmpty,
    /// Larger than a block.
    Oversize,
    /// An output value above 21M BTC.
    VoutTooLarge,
    /// Output values sum above 21M BTC.
    TxoutTotalTooLarge,
    /// The same outpoint spent twice.
    InputsDuplicate,
    /// A non-coinbase input with a null prevout.
    PrevoutNull,
    /// Coinbase scriptSig shorter than 2 or longer than 100 bytes.
    BadCbLength,
    /// Non-standard transaction version.
    Version,
    /// Above the standard weight.
    TxSize,
    /// Non-witness size below 65 bytes.
    TxSizeSmall,
    /// scriptSig larger than 1650 bytes.
    ScriptsigSize,
    /// scriptSig with non-push opcodes.
    ScriptsigNotPushonly,
    /// Non-standard output script.
    Scriptpubkey,
    /// An output below the dust threshold.
    Dust,
    /// More than one OP_RETURN output.
    MultiOpReturn,
    /// Absolute locktime not yet reached.
    NonFinal,
    /// BIP68 relative locktime not yet reached.
    NonBip68Final,
    /// The same transaction (wtxid) is already in the mempool.
    AlreadyInMempool,
    /// A transaction with the same txid but other witness is in the mempool.
    SameNonwitnessDataInMempool,
    /// Spends an output a mempool transaction already spends (and that one is not replaceable).
    MempoolConflict,
    /// An input is neither in the UTXO set nor created by a mempool transaction.
    MissingInputs,
    /// The transaction's outputs are already in the UTXO set (it is confirmed).
    AlreadyKnown,
    /// Spends a coinbase output with fewer than 100 confirmations.
    PrematureSpendOfCoinbase,
    /// An input value out of range.
    InputValuesOutOfRange,
    /// Outputs worth more than inputs.
    InBelowOut,
    /// Fee out of range.
    FeeOutOfRange,
    /// Fee below the minimum relay fee.
    MinRelayFeeNotMet,
    /// A replacement that does not pay enough (BIP125 rules 3, 4, 6).
    InsufficientFee,
    /// A replacement that spends an output of a transaction it replaces.
    SpendsConflictingTx,
    /// A replacement that would evict more than 100 transactions.
    TooManyPotentialReplacements,
    /// Too many unconfirmed ancestors or descendants.
    TooLongMempoolChain,
    /// An input's script failed under the consensus flags.
    ScriptVerifyFailed,
    /// Fee rate above the caller's `maxfeerate`.
    MaxFeeExceeded,
}

impl RejectReason {
    /// Bitcoin Core's reject reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coinbase => "coinbase",
            Self::VinEmpty => "bad-txns-vin-empty",
            Self::VoutEmpty => "bad-txns-vout-empty",
            Self::Oversize => "bad-txns-oversize",
            Self::VoutTooLarge => "bad-txns-vout-toolarge",
            Self::TxoutTotalTooLarge => "bad-txns-txouttotal-toolarge",
            Self::InputsDuplicate => "bad-txns-inputs-duplicate",
            Self::PrevoutNull => "bad-txns-prevout-null",
            Self::BadCbLength => "bad-cb-length",
            Self::Version => "version",
            Self::TxSize => "tx-size",
            Self::TxSizeSmall => "tx-size-small",
            Self::ScriptsigSize => "scriptsig-size",
            Self::ScriptsigNotPushonly => "scriptsig-not-pushonly",
            Self::Scriptpubkey => "scriptpubkey",
            Self::Dust => "dust",
            Self::MultiOpReturn => "multi-op-return",
            Self::NonFinal => "non-final",
            Self::NonBip68Final => "non-BIP68-final",
            Self::AlreadyInMempool => "txn-already-in-mempool",
            Self::SameNonwitnessDataInMempool => "txn-same-nonwitness-data-in-mempool",
            Self::MempoolConflict => "txn-mempool-conflict",
            Self::MissingInputs => "bad-txns-inputs-missingorspent",
            Self::AlreadyKnown => "txn-already-known",
            Self::PrematureSpendOfCoinbase => "bad-txns-premature-spend-of-coinbase",
            Self::InputValuesOutOfRange => "bad-txns-inputvalues-outofrange",
            Self::InBelowOut => "bad-txns-in-belowout",
            Self::FeeOutOfRange => "bad-txns-fee-outofrange",
            Self::MinRelayFeeNotMet => "min relay fee not met",
            Self::InsufficientFee => "insufficient fee",
            Self::SpendsConflictingTx => "bad-txns-spends-conflicting-tx",
            Self::TooManyPotentialReplacements => "too many potential replacements",
            Self::TooLongMempoolChain => "too-long-mempool-chain",
            Self::ScriptVerifyFailed => "mandatory-script-verify-flag-failed",
            Self::MaxFeeExceeded => "max-fee-exceeded",
        }
    }
}

/// A refused transaction: Core's reason plus its debug detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.core_message())]
pub struct TxReject {
    /// The reason.
    pub reason: RejectReason,
    /// Core's debug message (`"100 < 141"`, `"tried to spend coinbase at depth 5"`...).
    pub detail: Option<String>,
}

impl TxReject {
    /// A rejection without detail.
    pub fn new(reason: RejectReason) -> Self {
        Self {
            reason,
            detail: None,
        }
    }

    /// A rejection with Core's debug detail.
    pub fn with(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: Some(detail.into()),
        }
    }

    /// The reject reason as `testmempoolaccept` shows it: the reason alone, except that script
    /// failures carry their cause in parentheses and missing inputs read `missing-inputs`.
    pub fn reject_reason(&self) -> String {
        match (self.reason, &self.detail) {
            (RejectReason::MissingInputs, _) => "missing-inputs".to_owned(),
            (RejectReason::ScriptVerifyFailed, Some(d)) => {
                format!("{} ({d})", self.reason.as_str())
            }
            _ => self.reason.as_str().to_owned(),
        }
    }

    /// The message `sendrawtransaction` returns: Core's `TxValidationState::ToString()`.
    pub fn core_message(&self) -> String {
        match (self.reason, &self.detail) {
            (RejectReason::ScriptVerifyFailed, Some(d)) => {
                format!("{} ({d})", self.reason.as_str())
            }
            (_, Some(d)) => format!("{}, {d}", self.reason.as_str()),
            (_, None) => self.reason.as_str().to_owned(),
        }
    }
}

/// A refused block: Core's reject reason and debug detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.core_message())]
pub struct BlockReject {
    /// Core's reject reason (`bad-txnmrklroot`, `bad-cb-amount`, ...).
    pub reason: String,
    /// Core's debug detail.
    pub detail: Option<String>,
}

impl BlockReject {
    pub(crate) fn new(reason: &str) -> Self {
        Self {
            reason: reason.to_owned(),
            detail: None,
        }
    }

    pub(crate) fn with(reason: &str, detail: impl Into<String>) -> Self {
        Self {
            reason: reason.to_owned(),
            detail: Some(detail.into()),
        }
    }

    /// The block-level form of a transaction failure inside a block.
    pub(crate) fn from_tx(reject: &TxReject, txid: bitcoin::Txid) -> Self {
        let reason = match reject.reason {
            RejectReason::NonFinal => "bad-txns-nonfinal".to_owned(),
            RejectReason::NonBip68Final => "bad-txns-nonfinal".to_owned(),
            RejectReason::ScriptVerifyFailed => reject.reject_reason(),
            other => other.as_str().to_owned(),
        };
        let detail = match reject.reason {
            RejectReason::NonBip68Final => format!("contains a non-BIP68-final transaction {txid}"),
            RejectReason::NonFinal => format!("non-final transaction {txid}"),
            _ => match &reject.detail {
                Some(d) if reject.reason != RejectReason::ScriptVerifyFailed => {
                    format!("{d} (tx {txid})")
                }
                _ => format!("tx {txid}"),
            },
        };
        Self {
            reason,
            detail: Some(detail),
        }
    }

    /// Core's `BlockValidationState::ToString()`.
    pub fn core_message(&self) -> String {
        match &self.detail {
            Some(d) => format!("{}, {d}", self.reason),
            None => self.reason.clone(),
        }
    }
}

/// Operational failures of the devnet (not consensus outcomes).
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The data directory or block file could not be read or written.
    #[error("block store {path}: {source}")]
    Store {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A record in the block file is not a valid block or command.
    #[error("block store {path} is corrupt at offset {offset}: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A stored block no longer connects (the store was edited or the rules changed).
    #[error("stored block {hash} does not connect: {reject}")]
    StoredBlockInvalid {
        /// The block.
        hash: bitcoin::BlockHash,
        /// Why.
        reject: BlockReject,
    },
    /// The RPC listener could not bind.
    #[error("cannot listen for RPC on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A block the devnet mined itself was refused (a bug or an invalid transaction list).
    #[error("mined block refused: {0}")]
    Mine(#[from] BlockReject),
    /// The faucet cannot pay.
    #[error("faucet: {0}")]
    Faucet(String),
}
