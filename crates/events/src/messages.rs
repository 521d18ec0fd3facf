//! The seven queue messages, byte-compatible with the reference queue client.
//!
//! Encoding writes the v0.4.2+ shapes of `staking-queue-client`: `schema_version` first, then
//! `event_type`, then the fields in the order of `docs/reference.md#queue-messages`, exactly as Go
//! `encoding/json` lays out the reference structs. Decoding accepts the v0.4.1 shapes too: an
//! absent `schema_version` reads as 0 and the fields later versions added are optional.
//!
//! The Rust structs hold parsed values (`Txid`, `XOnlyPublicKey`, `Amount`, `Transaction`); the
//! wire names (`staking_tx_hash_hex`, ...) appear only in the (de)serialisation code. `event_type`
//! is implied by the struct, so it cannot be wrong on encode; on decode it is ignored, because
//! consumers dispatch on the queue, as the reference does.

use std::str::FromStr;

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Amount, Transaction, Txid};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::event::Event;
pub use crate::queue_name::{EventType, QueueName};

/// `ExpiredStakingEvent.tx_type`: which timelock expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpiredTxType {
    /// `"active"`: the staking timelock expired.
    Active,
    /// `"unbonding"`: the unbonding timelock expired.
    Unbonding,
}

/// `StatsEvent.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatsState {
    /// `"active"`
    Active,
    /// `"unbonded"`
    Unbonded,
}

/// Event 1 on `active_staking_queue`: a confirmed, valid staking transaction.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ActiveStakingEvent {
    /// `staking_tx_hash_hex`
    #[serde(rename = "staking_tx_hash_hex")]
    pub staking_tx_hash: Txid,
    /// `staker_pk_hex` (x-only, 64 hex)
    #[serde(rename = "staker_pk_hex")]
    pub staker_pk: XOnlyPublicKey,
    /// `finality_provider_pk_hex` (x-only, 64 hex)
    #[serde(rename = "finality_provider_pk_hex")]
    pub finality_provider_pk: XOnlyPublicKey,
    /// `staking_value`, satoshi
    #[serde(with = "bitcoin::amount::serde::as_sat")]
    pub staking_value: Amount,
    /// `staking_start_height`: inclusion height
    pub staking_start_height: u64,
    /// `staking_start_timestamp`: inclusion block header time, Unix seconds
    pub staking_start_timestamp: i64,
    /// `staking_timelock`, blocks
    pub staking_timelock: u64,
    /// `staking_output_index`
    pub staking_output_index: u64,
    /// `staking_tx_hex`, full serialisation including witnesses
    #[serde(rename = "staking_tx_hex", deserialize_with = "tx_hex::deserialize")]
    pub staking_tx: Transaction,
    /// `is_overflow`
    pub is_overflow: bool,
}

impl ActiveStakingEvent {
    /// The `schema_version` this crate writes.
    pub const SCHEMA_VERSION: u32 = 0;
}

impl Serialize for ActiveStakingEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ActiveStakingEvent", 12)?;
        s.serialize_field("schema_version", &Self::SCHEMA_VERSION)?;
        s.serialize_field("event_type", &EventType::ActiveStaking.number())?;
        s.serialize_field("staking_tx_hash_hex", &self.staking_tx_hash.to_string())?;
        s.serialize_field("staker_pk_hex", &self.staker_pk.to_string())?;
        s.serialize_field(
            "finality_provider_pk_hex",
            &self.finality_provider_pk.to_string(),
        )?;
        s.serialize_field("staking_value", &self.staking_value.to_sat())?;
        s.serialize_field("staking_start_height", &self.staking_start_height)?;
        s.serialize_field("staking_start_timestamp", &self.staking_start_timestamp)?;
        s.serialize_field("staking_timelock", &self.staking_timelock)?;
        s.serialize_field("staking_output_index", &self.staking_output_index)?;
        s.serialize_field("staking_tx_hex", &serialize_hex(&self.staking_tx))?;
        s.serialize_field("is_overflow", &self.is_overflow)?;
        s.end()
    }
}

/// Event 2 on `unbonding_staking_queue`: a confirmed, valid unbonding transaction.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UnbondingStakingEvent {
    /// `staking_tx_hash_hex`
    #[serde(rename = "staking_tx_hash_hex")]
    pub staking_tx_hash: Txid,
    /// `unbonding_start_height`
    pub unbonding_start_height: u64,
    /// `unbonding_start_timestamp`, Unix seconds of the block header time
    pub unbonding_start_timestamp: i64,
    /// `unbonding_timelock`: `unbonding_time` of the staking tx's params version
    pub unbonding_timelock: u64,
    /// `unbonding_output_index` (always 0 from the indexer)
    pub unbonding_output_index: u64,
    /// `unbonding_tx_hex`
    #[serde(rename = "unbonding_tx_hex", deserialize_with = "tx_hex::deserialize")]
    pub unbonding_tx: Transaction,
    /// `unbonding_tx_hash_hex`
    #[serde(rename = "unbonding_tx_hash_hex")]
    pub unbonding_tx_hash: Txid,
}

impl UnbondingStakingEvent {
    /// The `schema_version` this crate writes.
    pub const SCHEMA_VERSION: u32 = 0;
}

impl Serialize for UnbondingStakingEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("UnbondingStakingEvent", 9)?;
        s.serialize_field("schema_version", &Self::SCHEMA_VERSION)?;
        s.serialize_field("event_type", &EventType::UnbondingStaking.number())?;
        s.serialize_field("staking_tx_hash_hex", &self.staking_tx_hash.to_string())?;
        s.serialize_field("unbonding_start_height", &self.unbonding_start_height)?;
        s.serialize_field("unbonding_start_timestamp", &self.unbonding_start_timestamp)?;
        s.serialize_field("unbonding_timelock", &self.unbonding_timelock)?;
        s.serialize_field("unbonding_output_index", &self.unbonding_output_index)?;
        s.serialize_field("unbonding_tx_hex", &serialize_hex(&self.unbonding_tx))?;
        s.serialize_field("unbonding_tx_hash_hex", &self.unbonding_tx_hash.to_string())?;
        s.end()
    }
}

/// The withdraw transaction carried by schema version 1 of `WithdrawStakingEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawTx {
    /// `withdraw_tx_hash_hex`
    pub txid: Txid,
    /// `withdraw_tx_btc_height`: height of the block containing the withdraw tx
    pub btc_height: u64,
    /// `withdraw_tx_hex`
    pub tx: Transaction,
}

/// Event 3 on `withdraw_staking_queue`: a staking or unbonding output was withdrawn.
///
/// `withdraw` is `Some` in what our indexer emits (schema version 1,
/// `docs/decisions.md#withdraw-event-schema`). It is `None` for messages from reference indexers,
/// which send only `staking_tx_hash_hex`; such a value is written back in that schema-0 shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawStakingEvent {
    /// `staking_tx_hash_hex`
    pub staking_tx_hash: Txid,
    /// `withdraw_tx_hash_hex`, `withdraw_tx_btc_height`, `withdraw_tx_hex`
    pub withdraw: Option<WithdrawTx>,
}

impl WithdrawStakingEvent {
    /// The `schema_version` of the shape with the withdraw transaction.
    pub const SCHEMA_VERSION: u32 = 1;
}

impl Serialize for WithdrawStakingEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(withdraw) = &self.withdraw else {
            let mut s = serializer.serialize_struct("WithdrawStakingEvent", 3)?;
            s.serialize_field("schema_version", &0u32)?;
            s.serialize_field("event_type", &EventType::WithdrawStaking.number())?;
            s.serialize_field("staking_tx_hash_hex", &self.staking_tx_hash.to_string())?;
            return s.end();
        };
        let mut s = serializer.serialize_struct("WithdrawStakingEvent", 6)?;
        s.serialize_field("schema_version", &Self::SCHEMA_VERSION)?;
        s.serialize_field("event_type", &EventType::WithdrawStaking.number())?;
        s.serialize_field("staking_tx_hash_hex", &self.staking_tx_hash.to_string())?;
        s.serialize_field("withdraw_tx_hash_hex", &withdraw.txid.to_string())?;
        s.serialize_field("withdraw_tx_btc_height", &withdraw.btc_height)?;
        s.serialize_field("withdraw_tx_hex", &serialize_hex(&withdraw.tx))?;
        s.end()
    }
}

/// What a withdraw message may carry on the wire; Go zero values mean "absent".
#[derive(Deserialize)]
struct WithdrawWire {
    staking_tx_hash_hex: Txid,
    #[serde(default)]
    withdraw_tx_hash_hex: String,
    #[serde(default)]
    withdraw_tx_btc_height: u64,
    #[serde(default)]
    withdraw_tx_hex: String,
}

impl<'de> Deserialize<'de> for WithdrawStakingEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let wire = WithdrawWire::deserialize(deserializer)?;
        if wire.withdraw_tx_hash_hex.is_empty() && wire.withdraw_tx_hex.is_empty() {
            return Ok(WithdrawStakingEvent {
                staking_tx_hash: wire.staking_tx_hash_hex,
                withdraw: None,
            });
        }
        let txid = Txid::from_str(&wire.withdraw_tx_hash_hex).map_err(|e| {
            D::Error::custom(format!(
                "withdraw_tx_hash_hex {:?}: {e}",
                wire.withdraw_tx_hash_hex
            ))
        })?;
        let tx: Transaction = deserialize_hex(&wire.withdraw_tx_hex)
            .map_err(|e| D::Error::custom(format!("withdraw_tx_hex: {e}")))?;
        if tx.compute_txid() != txid {
            return Err(D::Error::custom(format!(
                "withdraw_tx_hash_hex {txid} is not the txid of withdraw_tx_hex ({})",
                tx.compute_txid()
            )));
        }
        Ok(WithdrawStakingEvent {
            staking_tx_hash: wire.staking_tx_hash_hex,
            withdraw: Some(WithdrawTx {
                txid,
                btc_height: wire.withdraw_tx_btc_height,
                tx,
            }),
        })
    }
}

/// Event 4 on `expired_staking_queue`: a staking or unbonding timelock has passed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExpiredStakingEvent {
    /// `staking_tx_hash_hex`
    #[serde(rename = "staking_tx_hash_hex")]
    pub staking_tx_hash: Txid,
    /// `tx_type`
    pub tx_type: ExpiredTxType,
}

impl ExpiredStakingEvent {
    /// The `schema_version` this crate writes.
    pub const SCHEMA_VERSION: u32 = 0;
}

impl Serialize for ExpiredStakingEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ExpiredStakingEvent", 4)?;
        s.serialize_field("schema_version", &Self::SCHEMA_VERSION)?;
        s.serialize_field("event_type", &EventType::ExpiredStaking.number())?;
        s.serialize_field("staking_tx_hash_hex", &self.staking_tx_hash.to_string())?;
        s.serialize_field("tx_type", &self.tx_type)?;
        s.end()
    }
}

/// Event 5 on `staking_stats_queue`: the API's message to itself to update statistics.
///
/// `is_overflow` is `Some` in schema version 1 (queue client v0.4.2+) and `None` in messages
/// from older producers, whose consumers must read the flag from the stored delegation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsEvent {
    /// `staking_tx_hash_hex`
    pub staking_tx_hash: Txid,
    /// `staker_pk_hex`
    pub staker_pk: XOnlyPublicKey,
    /// `finality_provider_pk_hex`
    pub finality_provider_pk: XOnlyPublicKey,
    /// `staking_value`, satoshi
    pub staking_value: Amount,
    /// `state`
    pub state: StatsState,
    /// `is_overflow` (schema version 1)
    pub is_overflow: Option<bool>,
}

impl StatsEvent {
    /// The `schema_version` of the shape with `is_overflow`.
    pub const SCHEMA_VERSION: u32 = 1;
}

impl Serialize for StatsEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (version, len) = match self.is_overflow {
            Some(_) => (Self::SCHEMA_VERSION, 8),
            None => (0, 7),
        };
        let mut s = serializer.serialize_struct("StatsEvent", len)?;
        s.serialize_field("schema_version", &version)?;
        s.serialize_field("event_type", &EventType::Stats.number())?;
        s.serialize_field("staking_tx_hash_hex", &self.staking_tx_hash.to_string())?;
        s.serialize_field("staker_pk_hex", &self.staker_pk.to_string())?;
        s.serialize_field(
            "finality_provider_pk_hex",
            &self.finality_provider_pk.to_string(),
        )?;
        s.serialize_field("staking_value", &self.staking_value.to_sat())?;
        s.serialize_field("state", &self.state)?;
        if let Some(is_overflow) = self.is_overflow {
            s.serialize_field("is_overflow", &is_overflow)?;
        }
        s.end()
    }
}

#[derive(Deserialize)]
struct StatsWire {
    staking_tx_hash_hex: Txid,
    staker_pk_hex: XOnlyPublicKey,
    finality_provider_pk_hex: XOnlyPublicKey,
    #[serde(with = "bitcoin::amount::serde::as_sat")]
    staking_value: Amount,
    state: StatsState,
    #[serde(default)]
    is_overflow: Option<bool>,
}

impl<'de> Deserialize<'de> for StatsEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = StatsWire::deserialize(deserializer)?;
        Ok(StatsEvent {
            staking_tx_hash: w.staking_tx_hash_hex,
            staker_pk: w.staker_pk_hex,
            finality_provider_pk: w.finality_provider_pk_hex,
            staking_value: w.staking_value,
            state: w.state,
            is_overflow: w.is_overflow,
        })
    }
}

/// Event 6 on `btc_info_queue`: TVL at the tip of the unconfirmed window.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BtcInfoEvent {
    /// `height`: tip of the unconfirmed window
    pub height: u64,
    /// `confirmed_tvl`, satoshi
    #[serde(with = "bitcoin::amount::serde::as_sat")]
    pub confirmed_tvl: Amount,
    /// `unconfirmed_tvl`, satoshi
    #[serde(with = "bitcoin::amount::serde::as_sat")]
    pub unconfirmed_tvl: Amount,
}

impl BtcInfoEvent {
    /// The `schema_version` this crate writes.
    pub const SCHEMA_VERSION: u32 = 0;
}

impl Serialize for BtcInfoEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("BtcInfoEvent", 5)?;
        s.serialize_field("schema_version", &Self::SCHEMA_VERSION)?;
        s.serialize_field("event_type", &EventType::BtcInfo.number())?;
        s.serialize_field("height", &self.height)?;
        s.serialize_field("confirmed_tvl", &self.confirmed_tvl.to_sat())?;
        s.serialize_field("unconfirmed_tvl", &self.unconfirmed_tvl.to_sat())?;
        s.end()
    }
}

/// Event 7 on `confirmed_info_queue`: confirmed TVL after a processed block.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConfirmedInfoEvent {
    /// `height`: the confirmed block just processed
    pub height: u64,
    /// `tvl`, satoshi
    #[serde(with = "bitcoin::amount::serde::as_sat")]
    pub tvl: Amount,
}

impl ConfirmedInfoEvent {
    /// The `schema_version` this crate writes.
    pub const SCHEMA_VERSION: u32 = 0;
}

impl Serialize for ConfirmedInfoEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ConfirmedInfoEvent", 4)?;
        s.serialize_field("schema_version", &Self::SCHEMA_VERSION)?;
        s.serialize_field("event_type", &EventType::ConfirmedInfo.number())?;
        s.serialize_field("height", &self.height)?;
        s.serialize_field("tvl", &self.tvl.to_sat())?;
        s.end()
    }
}

/// A transaction from the hex of its full (BIP144) serialisation.
mod tx_hex {
    use bitcoin::consensus::encode::deserialize_hex;
    use bitcoin::Transaction;
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Transaction, D::Error> {
        let hex = String::deserialize(d)?;
        deserialize_hex(&hex).map_err(|e| serde::de::Error::custom(format!("transaction hex: {e}")))
    }
}
