//! Column ↔ type conversions of the API tables: integers are BIGINT (u64 values must fit i64),
//! keys and txids are lower-case hex text.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{LazyLock, RwLock};

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

/// Keys parsed back from the API tables, by their stored hex text.
///
/// Reading an x-only key lifts x to a curve point, a field square root of about 4 µs; a page of
/// `/v1/staker/delegations` reads two keys per row, which made key parsing a third of the API's
/// CPU under load. The same few finality-provider keys recur in every page, and parsing is a pure
/// function of the text, so a process-wide memo is safe. It is cleared when it reaches
/// [`KEY_MEMO_CAP`] entries, which bounds its memory (≈10 MB) whatever the keys read.
static KEY_MEMO: LazyLock<RwLock<HashMap<String, XOnlyPublicKey>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));
const KEY_MEMO_CAP: usize = 65_536;

pub(crate) fn parse_pk(s: &str) -> Result<XOnlyPublicKey> {
    // A poisoned lock only means another thread panicked while holding it; the map holds
    // nothing but fully inserted (text, key) pairs, so it is still sound to use.
    if let Some(pk) = KEY_MEMO
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(s)
    {
        return Ok(*pk);
    }
    let pk = XOnlyPublicKey::from_str(s).map_err(|e| StoreError::Corrupt {
        what: "x-only key",
        value: s.to_owned(),
        reason: e.to_string(),
    })?;
    let mut memo = KEY_MEMO
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if memo.len() >= KEY_MEMO_CAP {
        memo.clear();
    }
    memo.insert(s.to_owned(), pk);
    Ok(pk)
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
        self.decode_for(None)
    }

    /// Decodes a row of `staker`'s listing: the staker's key is already parsed (and every row
    /// of the listing carries it), so only its text is compared.
    pub(crate) fn decode_for(self, staker: Option<(&str, &XOnlyPublicKey)>) -> Result<Delegation> {
        let staker_pk = match staker {
            Some((text, pk)) if text == self.staker_pk => *pk,
            _ => XOnlyPublicKey::from_str(&self.staker_pk).map_err(|e| StoreError::Corrupt {
                what: "x-only key",
                value: self.staker_pk.clone(),
                reason: e.to_string(),
            })?,
        };
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
            staker_pk,
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
