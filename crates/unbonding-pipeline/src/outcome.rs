//! What happened to one attempt at one request, and how it is recorded.

use bitcoin::Txid;

/// Why a request is terminally `failed` (the metric label; the stored reason has the details).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The stored row does not decode or is not a valid request (bad hex, wrong tx, bad staker
    /// signature, not the canonical unbonding tx).
    InvalidRequest,
    /// No params version covers the staking tx's inclusion height.
    NoParams,
    /// The stored staking output differs from the one rebuilt from the stored keys and params.
    StakingOutputMismatch,
    /// The staking output was spent by another transaction.
    InputSpent,
    /// Fewer than `quorum` valid covenant signatures, attempt after attempt.
    NoQuorum,
    /// The staking tx stayed out of the chain, attempt after attempt.
    StakingTxNotConfirmed,
    /// The mempool refuses the fixed unbonding fee (too low for its policy, or above the cap).
    FeeRejected,
    /// The mempool or the node refused the transaction for another reason.
    Rejected,
}

impl FailureKind {
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::InvalidRequest => "invalid_request",
            FailureKind::NoParams => "no_params",
            FailureKind::StakingOutputMismatch => "staking_output_mismatch",
            FailureKind::InputSpent => "input_spent",
            FailureKind::NoQuorum => "no_quorum",
            FailureKind::StakingTxNotConfirmed => "staking_tx_not_confirmed",
            FailureKind::FeeRejected => "fee_rejected",
            FailureKind::Rejected => "rejected",
        }
    }
}

/// Why an attempt is retried later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryKind {
    /// Fewer than `quorum` valid signatures this time (signers down, slow or answering garbage).
    NoQuorum,
    /// The staking tx is not in a block of the node's chain (reorg, or the node lags).
    StakingTxNotConfirmed,
    /// Our own node did not answer. Does not use up an attempt: an outage of our node must not
    /// fail every request.
    NodeUnavailable,
}

impl RetryKind {
    pub fn label(self) -> &'static str {
        match self {
            RetryKind::NoQuorum => "no_quorum",
            RetryKind::StakingTxNotConfirmed => "staking_tx_not_confirmed",
            RetryKind::NodeUnavailable => "node_unavailable",
        }
    }

    /// Whether the attempt counts toward `max_attempts`.
    pub fn counts_as_attempt(self) -> bool {
        !matches!(self, RetryKind::NodeUnavailable)
    }

    /// The terminal failure when the attempts run out.
    pub fn exhausted(self) -> FailureKind {
        match self {
            RetryKind::NoQuorum => FailureKind::NoQuorum,
            RetryKind::StakingTxNotConfirmed => FailureKind::StakingTxNotConfirmed,
            RetryKind::NodeUnavailable => FailureKind::Rejected,
        }
    }
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Broadcast now.
    Sent(Txid),
    /// Already in the mempool or the chain (an earlier attempt broadcast it and then died
    /// before recording it, or someone else broadcast the same deterministic tx).
    AlreadySent(Txid),
    /// Terminal.
    Failed { kind: FailureKind, reason: String },
    /// Try again after a backoff.
    Retry { kind: RetryKind, error: String },
}

impl Outcome {
    pub(crate) fn failed(kind: FailureKind, reason: impl Into<String>) -> Self {
        Outcome::Failed {
            kind,
            reason: reason.into(),
        }
    }

    pub(crate) fn retry(kind: RetryKind, error: impl Into<String>) -> Self {
        Outcome::Retry {
            kind,
            error: error.into(),
        }
    }
}
