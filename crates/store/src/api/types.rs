//! Values the staking API stores and reads back, typed at this edge.

use std::fmt;
use std::str::FromStr;

use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Amount, Txid};

/// The delegation states of the v1 API (`docs/rules.md#delegation-states`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DelegationState {
    Active,
    UnbondingRequested,
    Unbonding,
    Unbonded,
    Withdrawn,
}

impl DelegationState {
    /// Every state, in lifecycle order.
    pub const ALL: [DelegationState; 5] = [
        DelegationState::Active,
        DelegationState::UnbondingRequested,
        DelegationState::Unbonding,
        DelegationState::Unbonded,
        DelegationState::Withdrawn,
    ];

    /// The wire and column text, e.g. `unbonding_requested`.
    pub fn as_str(self) -> &'static str {
        match self {
            DelegationState::Active => "active",
            DelegationState::UnbondingRequested => "unbonding_requested",
            DelegationState::Unbonding => "unbonding",
            DelegationState::Unbonded => "unbonded",
            DelegationState::Withdrawn => "withdrawn",
        }
    }
}

impl fmt::Display for DelegationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not one of the five states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid delegation state: {0}")]
pub struct UnknownState(pub String);

impl FromStr for DelegationState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DelegationState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// A staking or unbonding transaction as the API shows it (`TransactionPublic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxInfo {
    /// Full serialization, hex.
    pub tx_hex: String,
    pub output_index: u64,
    /// Unix seconds of the inclusion block's header time.
    pub start_timestamp: i64,
    pub start_height: u64,
    /// Blocks.
    pub timelock: u64,
}

/// One delegation row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub staking_tx_hash: Txid,
    pub staker_pk: XOnlyPublicKey,
    pub finality_provider_pk: XOnlyPublicKey,
    pub staking_value: Amount,
    pub state: DelegationState,
    pub staking_tx: TxInfo,
    /// Present once an unbonding tx confirmed for it.
    pub unbonding_tx: Option<TxInfo>,
    pub is_overflow: bool,
}

/// The three addresses of a staker key (`docs/reference.md#address-mapping`), derived by the
/// caller for its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressMapping {
    pub staker_pk: XOnlyPublicKey,
    pub taproot: String,
    pub native_segwit_odd: String,
    pub native_segwit_even: String,
}

/// Identifies a consumed message for the idempotency record: the queue and the SHA-256 of the
/// body, so a redelivered or re-published identical message is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedKey {
    pub queue: String,
    pub body_sha256: String,
}

/// What applying one consumed message did. `RetryLater` means nothing was written (the
/// transaction was rolled back) and the message must come back later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The state (and stats) changed.
    Changed,
    /// Already at or past the target: acknowledged, nothing changed.
    Ignored(&'static str),
    /// This exact message was consumed before.
    Duplicate,
    /// A predecessor is missing (e.g. unbonding before active): retry after a delay.
    RetryLater(String),
}

/// `tx_type` of an expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryKind {
    /// The staking timelock expired.
    Active,
    /// The unbonding timelock expired.
    Unbonding,
}

impl ExpiryKind {
    /// The stored `tx_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryKind::Active => "active",
            ExpiryKind::Unbonding => "unbonding",
        }
    }
}

/// A `StatsEvent` from the stats queue (reference producers), applied under the stats lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsChange {
    pub staking_tx_hash: Txid,
    pub staker_pk: XOnlyPublicKey,
    pub finality_provider_pk: XOnlyPublicKey,
    pub staking_value: Amount,
    /// `true`: count it in (state `active`); `false`: take it out of the active counters.
    pub entering_active: bool,
    /// `None` for legacy events: read from the stored delegation.
    pub is_overflow: Option<bool>,
}

/// The four counters of a finality provider or staker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub active_tvl: i64,
    pub total_tvl: i64,
    pub active_delegations: i64,
    pub total_delegations: i64,
}

/// Stats of one key (finality provider or staker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStats {
    pub pk: XOnlyPublicKey,
    pub counters: Counters,
}

/// Overall counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OverallStats {
    pub counters: Counters,
    pub total_stakers: i64,
}

/// The latest `BtcInfoEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BtcInfo {
    pub height: u64,
    pub confirmed_tvl: u64,
    pub unconfirmed_tvl: u64,
}

/// The page cursor of a staker's delegations: the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationCursor {
    pub start_height: u64,
    pub staking_tx_hash: Txid,
}

/// The page cursor of FP / staker stats sorted by `active_tvl` desc, key asc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TvlCursor {
    pub active_tvl: i64,
    pub pk: XOnlyPublicKey,
}

/// An accepted unbonding request for the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUnbondingRequest {
    pub staking_tx_hash: Txid,
    pub unbonding_tx_hash: Txid,
    pub unbonding_tx_hex: String,
    pub staker_pk: XOnlyPublicKey,
    pub finality_provider_pk: XOnlyPublicKey,
    pub staker_signature_hex: String,
    pub staking_tx_hex: String,
    pub staking_output_index: u64,
    pub staking_timelock: u64,
    pub staking_amount: Amount,
}

/// State of an unbonding request in the pipeline: accepted → claimed (lease) → sent / failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnbondingRequestState {
    Accepted,
    Claimed { lease_until: i64 },
    Sent,
    Failed { reason: String },
}

/// A stored unbonding request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbondingRequest {
    pub id: i64,
    pub request: NewUnbondingRequest,
    pub state: UnbondingRequestState,
    pub created_at: i64,
}

/// Result of storing an unbonding request together with `active → unbonding_requested`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    Accepted,
    /// The delegation is no longer `active` (a concurrent request won).
    NotActive,
    /// A request with this unbonding txid exists (nothing changed).
    AlreadyExists,
}

/// A `timelock_queue` row (read by the expiry checker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelockRow {
    pub id: i64,
    pub staking_tx_hash: Txid,
    pub expire_height: u64,
    pub tx_type: ExpiryKind,
}

/// A message kept after failing past the retry limit.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UnprocessableMessage {
    pub id: i64,
    pub queue: String,
    pub message_body: String,
    pub receipt: String,
    pub reason: String,
}
