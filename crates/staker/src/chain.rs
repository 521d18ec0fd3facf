//! Talking to the node for the staker: UTXO discovery, fee rates, broadcast, confirmations,
//! and finding a staking tx with the height it was mined at.

use std::io::Write;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bitcoin_rpc::{codes, AcceptOutcome, FeeEstimate, RpcClient, RpcError};
use serde_json::{json, Value};
use staking_core::bitcoin::{Address, Amount, OutPoint, Transaction, Txid};
use staking_core::builder::Utxo;
use staking_core::params::{BlockHeight, GlobalParams};
use staking_core::staking_tx::{classify, ParsedStaking, StakingTxClass};

use crate::exit::{not_yet, refused};

/// `--utxo txid:vout[:sat]`: an output to fund from; without the amount it is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtxoArg {
    pub outpoint: OutPoint,
    pub value: Option<Amount>,
}

impl FromStr for UtxoArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || format!("`{s}` is not txid:vout or txid:vout:sat");
        let (txid, vout, value) = match parts.as_slice() {
            [txid, vout] => (txid, vout, None),
            [txid, vout, sat] => (txid, vout, Some(sat)),
            _ => return Err(bad()),
        };
        let txid = Txid::from_str(txid).map_err(|e| format!("`{txid}` is not a txid: {e}"))?;
        let vout = vout.parse::<u32>().map_err(|_| bad())?;
        let value = value
            .map(|v| v.parse::<u64>().map(Amount::from_sat).map_err(|_| bad()))
            .transpose()?;
        Ok(Self {
            outpoint: OutPoint::new(txid, vout),
            value,
        })
    }
}

/// The given outputs, checked unspent on the node (value and script from `gettxout`).
pub async fn given_utxos(rpc: &RpcClient, args: &[UtxoArg]) -> Result<Vec<Utxo>> {
    let mut utxos = Vec::with_capacity(args.len());
    for arg in args {
        let out = rpc
            .get_tx_out(&arg.outpoint.txid, arg.outpoint.vout, true)
            .await
            .with_context(|| format!("cannot look up {}", arg.outpoint))?
            .ok_or_else(|| {
                refused(format!(
                    "{} is spent or unknown to the node; list unspent outputs and pick another",
                    arg.outpoint
                ))
            })?;
        if let Some(value) = arg.value {
            if value != out.value {
                return Err(refused(format!(
                    "{} holds {} sat, not the {} sat given",
                    arg.outpoint,
                    out.value.to_sat(),
                    value.to_sat()
                )));
            }
        }
        utxos.push(Utxo {
            outpoint: arg.outpoint,
            value: out.value,
            script_pubkey: out.script_pubkey,
        });
    }
    Ok(utxos)
}

/// The unspent outputs of `addresses`, found with Bitcoin Core's `scantxoutset` (no wallet
/// needed on the node).
pub async fn scan_utxos(rpc: &RpcClient, addresses: &[Address]) -> Result<Vec<Utxo>> {
    let descriptors: Vec<Value> = addresses
        .iter()
        .map(|a| json!(format!("addr({a})")))
        .collect();
    let result = match rpc
        .call_value("scantxoutset", &[json!("start"), Value::Array(descriptors)])
        .await
    {
        Ok(v) => v,
        Err(RpcError::Rpc { code, .. }) if code == codes::METHOD_NOT_FOUND => bail!(
            "the node has no `scantxoutset`, so the staker's outputs cannot be found: \
             give them with --utxo txid:vout (repeatable)"
        ),
        Err(e) => return Err(e).context("scantxoutset failed"),
    };
    let unspents = result["unspents"]
        .as_array()
        .context("scantxoutset answered without `unspents`")?;
    let mut utxos = Vec::new();
    for u in unspents {
        let txid = u["txid"]
            .as_str()
            .and_then(|t| Txid::from_str(t).ok())
            .context("scantxoutset: bad txid")?;
        let vout = u["vout"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .context("scantxoutset: bad vout")?;
        let value = u["amount"]
            .as_f64()
            .and_then(|a| Amount::from_btc(a).ok())
            .context("scantxoutset: bad amount")?;
        let script: Vec<u8> = u["scriptPubKey"]
            .as_str()
            .and_then(|h| staking_core::bitcoin::hex::FromHex::from_hex(h).ok())
            .context("scantxoutset: bad scriptPubKey")?;
        utxos.push(Utxo {
            outpoint: OutPoint::new(txid, vout),
            value,
            script_pubkey: script.into(),
        });
    }
    Ok(utxos)
}

/// `--fee-rate`, else the node's estimate for 6 blocks (at least 1 sat/vB).
pub async fn fee_rate(rpc: &RpcClient, flag: Option<u64>) -> Result<u64> {
    if let Some(rate) = flag {
        return Ok(rate);
    }
    match rpc
        .estimate_smart_fee(6)
        .await
        .context("cannot estimate the fee rate")?
    {
        FeeEstimate::Available { fee_rate, .. } => Ok(fee_rate.to_sat_per_vb_ceil().max(1)),
        FeeEstimate::Unavailable { errors, .. } => bail!(
            "the node has no fee estimate ({}); give --fee-rate in sat/vB",
            errors.join("; ")
        ),
    }
}

/// `testmempoolaccept` first (so a refusal says why without side effects), then broadcast.
pub async fn broadcast(rpc: &RpcClient, tx: &Transaction) -> Result<Txid> {
    let verdicts = rpc
        .test_mempool_accept(std::slice::from_ref(tx))
        .await
        .context("testmempoolaccept failed")?;
    if let Some(AcceptOutcome::Rejected { reason }) = verdicts.first().map(|v| &v.outcome) {
        return Err(refused(format!("the node refuses the tx: {reason}")));
    }
    rpc.send_raw_transaction(tx)
        .await
        .context("sendrawtransaction failed")
}

/// A tx on the node with the height of its block (None while unconfirmed).
pub async fn tx_with_height(
    rpc: &RpcClient,
    txid: &Txid,
) -> Result<(Transaction, Option<BlockHeight>)> {
    let info = rpc.get_raw_transaction_info(txid).await.with_context(|| {
        format!("the node does not know tx {txid} (is it the right network? txindex on?)")
    })?;
    let height = match info.confirmed_in() {
        Some((_, confirmations)) => {
            let tip = rpc
                .get_block_count()
                .await
                .context("getblockcount failed")?;
            Some(BlockHeight(u64::from(tip) + 1 - u64::from(confirmations)))
        }
        None => None,
    };
    Ok((info.transaction, height))
}

/// The staking tx `txid`, confirmed and valid at its height.
pub async fn confirmed_staking(
    rpc: &RpcClient,
    params: &GlobalParams,
    txid: &Txid,
) -> Result<(Transaction, BlockHeight, ParsedStaking)> {
    let (tx, height) = tx_with_height(rpc, txid).await?;
    let Some(height) = height else {
        return Err(not_yet(format!(
            "staking tx {txid} is not confirmed yet; wait for it to be mined"
        )));
    };
    match classify(&tx, params, height) {
        StakingTxClass::Valid(parsed) => Ok((tx, height, parsed)),
        StakingTxClass::Invalid { reason, .. } => Err(refused(format!(
            "{txid} is an invalid staking tx at height {height}: {reason}"
        ))),
        StakingTxClass::NotStaking(reason) => Err(refused(format!(
            "{txid} is not a staking tx at height {height}: {reason}"
        ))),
    }
}

/// Waits until `txid` has `depth` confirmations, printing progress on stderr; gives up after
/// `timeout_secs`.
pub async fn wait_confirmations(
    rpc: &RpcClient,
    txid: &Txid,
    depth: u32,
    timeout_secs: u64,
) -> Result<u32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_secs);
    let mut last = None;
    loop {
        let info = rpc
            .get_raw_transaction_info(txid)
            .await
            .with_context(|| format!("cannot follow tx {txid}"))?;
        let confirmations = info.confirmations.unwrap_or(0);
        if last != Some(confirmations) {
            eprintln!("waiting: {txid} has {confirmations} of {depth} confirmations");
            let _ = std::io::stderr().flush();
            last = Some(confirmations);
        }
        if confirmations >= depth {
            return Ok(confirmations);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(not_yet(format!(
                "{txid} has {confirmations} of {depth} confirmations after {timeout_secs} s; \
                 it stays broadcast: check again later (`staker withdraw`/`status` work once it is mined)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
