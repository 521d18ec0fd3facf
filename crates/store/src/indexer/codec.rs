//! Conversions between typed values and the database's primitive columns, shared by both
//! backends: every integer column is a 64-bit integer, hashes and keys are lower-case hex text,
//! transactions are consensus bytes.

use std::str::FromStr;

use bitcoin::{consensus, Amount, BlockHash, Transaction, Txid, XOnlyPublicKey};

use super::types::{BlockRef, InvalidTx, InvalidTxKind, StakingTx, UnbondingTx};
use crate::error::{Result, StoreError};

pub(crate) fn amount_to_db(what: &'static str, amount: Amount) -> Result<i64> {
    i64::try_from(amount.to_sat()).map_err(|_| StoreError::OutOfRange {
        what,
        value: amount.to_string(),
    })
}

pub(crate) fn amount_from_db(what: &'static str, sat: i64) -> Result<Amount> {
    u64::try_from(sat)
        .map(Amount::from_sat)
        .map_err(|_| corrupt(what, sat, "negative amount"))
}

pub(crate) fn u32_from_db(what: &'static str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt(what, v, "out of u32 range"))
}

fn u16_from_db(what: &'static str, v: i64) -> Result<u16> {
    u16::try_from(v).map_err(|_| corrupt(what, v, "out of u16 range"))
}

fn corrupt(what: &'static str, value: impl ToString, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

pub(crate) fn txid_from_db(what: &'static str, s: &str) -> Result<Txid> {
    Txid::from_str(s).map_err(|e| corrupt(what, s, e))
}

pub(crate) fn block_hash_from_db(what: &'static str, s: &str) -> Result<BlockHash> {
    BlockHash::from_str(s).map_err(|e| corrupt(what, s, e))
}

fn key_from_db(what: &'static str, s: &str) -> Result<XOnlyPublicKey> {
    XOnlyPublicKey::from_str(s).map_err(|e| corrupt(what, s, e))
}

pub(crate) fn tx_from_db(what: &'static str, bytes: &[u8]) -> Result<Transaction> {
    consensus::deserialize(bytes).map_err(|e| corrupt(what, hex_prefix(bytes), e))
}

fn hex_prefix(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for b in bytes.iter().take(32) {
        let _ = write!(s, "{b:02x}");
    }
    if bytes.len() > 32 {
        s.push('…');
    }
    s
}

/// Rejects a row whose declared txid is not the transaction's own.
pub(crate) fn check_txid(what: &'static str, txid: Txid, tx: &Transaction) -> Result<()> {
    let computed = tx.compute_txid();
    if computed == txid {
        Ok(())
    } else {
        Err(StoreError::TxidMismatch {
            what,
            txid,
            computed,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct BlockRow {
    pub height: i64,
    pub hash: String,
}

impl TryFrom<BlockRow> for BlockRef {
    type Error = StoreError;
    fn try_from(r: BlockRow) -> Result<Self> {
        Ok(BlockRef {
            height: u32_from_db("block height", r.height)?,
            hash: block_hash_from_db("block hash", &r.hash)?,
        })
    }
}

/// Column list matching [`StakingRow`], for `SELECT`s in both backends.
pub(crate) const STAKING_COLUMNS: &str = "txid, raw_tx, staking_output_index, inclusion_height, \
     block_hash, position_in_block, staker_pk, finality_provider_pk, staking_time, value, \
     is_overflow, params_version";

#[derive(sqlx::FromRow)]
pub(crate) struct StakingRow {
    pub txid: String,
    pub raw_tx: Vec<u8>,
    pub staking_output_index: i64,
    pub inclusion_height: i64,
    pub block_hash: String,
    pub position_in_block: i64,
    pub staker_pk: String,
    pub finality_provider_pk: String,
    pub staking_time: i64,
    pub value: i64,
    pub is_overflow: bool,
    pub params_version: i64,
}

impl TryFrom<StakingRow> for StakingTx {
    type Error = StoreError;
    fn try_from(r: StakingRow) -> Result<Self> {
        Ok(StakingTx {
            txid: txid_from_db("staking txid", &r.txid)?,
            tx: tx_from_db("staking raw_tx", &r.raw_tx)?,
            staking_output_index: u32_from_db("staking_output_index", r.staking_output_index)?,
            inclusion_height: u32_from_db("inclusion_height", r.inclusion_height)?,
            block_hash: block_hash_from_db("staking block_hash", &r.block_hash)?,
            position_in_block: u32_from_db("position_in_block", r.position_in_block)?,
            staker_pk: key_from_db("staker_pk", &r.staker_pk)?,
            finality_provider_pk: key_from_db("finality_provider_pk", &r.finality_provider_pk)?,
            staking_time: u16_from_db("staking_time", r.staking_time)?,
            value: amount_from_db("staking value", r.value)?,
            is_overflow: r.is_overflow,
            params_version: u32_from_db("params_version", r.params_version)?,
        })
    }
}

/// Column list matching [`UnbondingRow`].
pub(crate) const UNBONDING_COLUMNS: &str = "txid, raw_tx, staking_txid, height, block_hash";

#[derive(sqlx::FromRow)]
pub(crate) struct UnbondingRow {
    pub txid: String,
    pub raw_tx: Vec<u8>,
    pub staking_txid: String,
    pub height: i64,
    pub block_hash: String,
}

impl TryFrom<UnbondingRow> for UnbondingTx {
    type Error = StoreError;
    fn try_from(r: UnbondingRow) -> Result<Self> {
        Ok(UnbondingTx {
            txid: txid_from_db("unbonding txid", &r.txid)?,
            tx: tx_from_db("unbonding raw_tx", &r.raw_tx)?,
            staking_txid: txid_from_db("unbonding staking_txid", &r.staking_txid)?,
            height: u32_from_db("unbonding height", r.height)?,
            block_hash: block_hash_from_db("unbonding block_hash", &r.block_hash)?,
        })
    }
}

/// Column list matching [`InvalidRow`].
pub(crate) const INVALID_COLUMNS: &str = "txid, kind, height, block_hash, reason, raw_tx";

#[derive(sqlx::FromRow)]
pub(crate) struct InvalidRow {
    pub txid: String,
    pub kind: String,
    pub height: i64,
    pub block_hash: String,
    pub reason: String,
    pub raw_tx: Option<Vec<u8>>,
}

impl TryFrom<InvalidRow> for InvalidTx {
    type Error = StoreError;
    fn try_from(r: InvalidRow) -> Result<Self> {
        Ok(InvalidTx {
            txid: txid_from_db("invalid txid", &r.txid)?,
            kind: InvalidTxKind::parse(&r.kind)
                .ok_or_else(|| corrupt("invalid tx kind", &r.kind, "unknown kind"))?,
            height: u32_from_db("invalid height", r.height)?,
            block_hash: block_hash_from_db("invalid block_hash", &r.block_hash)?,
            reason: r.reason,
            tx: r
                .raw_tx
                .map(|b| tx_from_db("invalid raw_tx", &b))
                .transpose()?,
        })
    }
}

/// Collects rows into typed values, stopping at the first corrupt one.
pub(crate) fn convert_all<R, T>(rows: Vec<R>) -> Result<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}
