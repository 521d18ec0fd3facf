//! Column ↔ type conversions of the API tables: integers are BIGINT (u64 values must fit i64),
//! keys and txids are lower-case hex text.

use std::str::FromStr;

use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Amount, Txid};

use crate::api::types::{Delegation, DelegationState, TxInfo};
use crate::error::{Result, StoreError};

/// The `api_delegations` columns in table order (the insert relies on it).
pub(crate) const DELEGATION_COLUMNS: &str = "staking_tx_hash, staker_pk, finality_provider_pk, \
     staking_value, state, staking_tx_hex, staking_output_index, staking_start_timestamp, \
     staking_start_height, staking_timelock, unbonding_tx_hex, unbonding_output_index, \
     unbonding_start_timestamp, unbonding_start_height, unbonding_timelock, is_overflow";

pub(crate) fn i64_of(what: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange {
        what,
        value: value.to_string(),
    })
}

pub(crate) fn u64_of(what: &'static str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        value: value.to_string(),
        reason: "negative".into(),
    })
}

pub(crate) fn parse_txid(s: &str) -> Result<Txid> {
    Txid::from_str(s).map_err(|e| StoreError::Corrupt {
        what: "txid",
        value: s.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn parse_pk(s: &str) -> Result<XOnlyPublicKey> {
    XOnlyPublicKey::from_str(s).map_err(|e| StoreError::Corrupt {
        what: "x-only key",
        value: s.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn parse_state(s: &str) -> Result<DelegationState> {
    DelegationState::from_str(s).map_err(|e| StoreError::Corrupt {
        what: "delegation state",
        value: s.to_owned(),
        reason: e.to_string(),
    })
}

/// One `api_delegations` row as the driver returns it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DelegationDbRow {
    staking_tx_hash: String,
    staker_pk: String,
    finality_provider_pk: String,
    staking_value: i64,
    state: String,
    staking_tx_hex: String,
    staking_output_index: i64,
    staking_start_timestamp: i64,
    staking_start_height: i64,
    staking_timelock: i64,
    unbonding_tx_hex: Option<String>,
    unbonding_output_index: Option<i64>,
    unbonding_start_timestamp: Option<i64>,
    unbonding_start_height: Option<i64>,
    unbonding_timelock: Option<i64>,
    is_overflow: bool,
}

impl DelegationDbRow {
    pub(crate) fn decode(self) -> Result<Delegation> {
        let unbonding_tx = match (
            self.unbonding_tx_hex,
            self.unbonding_output_index,
            self.unbonding_start_timestamp,
            self.unbonding_start_height,
            self.unbonding_timelock,
        ) {
            (Some(tx_hex), Some(index), Some(ts), Some(height), Some(timelock)) => Some(TxInfo {
                tx_hex,
                output_index: u64_of("unbonding_output_index", index)?,
                start_timestamp: ts,
                start_height: u64_of("unbonding_start_height", height)?,
                timelock: u64_of("unbonding_timelock", timelock)?,
            }),
            _ => None,
        };
        Ok(Delegation {
            staking_tx_hash: parse_txid(&self.staking_tx_hash)?,
            staker_pk: parse_pk(&self.staker_pk)?,
            finality_provider_pk: parse_pk(&self.finality_provider_pk)?,
            staking_value: Amount::from_sat(u64_of("staking_value", self.staking_value)?),
            state: parse_state(&self.state)?,
            staking_tx: TxInfo {
                tx_hex: self.staking_tx_hex,
                output_index: u64_of("staking_output_index", self.staking_output_index)?,
                start_timestamp: self.staking_start_timestamp,
                start_height: u64_of("staking_start_height", self.staking_start_height)?,
                timelock: u64_of("staking_timelock", self.staking_timelock)?,
            },
            unbonding_tx,
            is_overflow: self.is_overflow,
        })
    }
}
