//! Everything checked about a request before any signer is asked (step 2 of
//! `docs/rules.md#unbonding-pipeline`, `docs/decisions.md#unbonding-pipeline`): the stored row
//! decodes, the staking tx is in a block of our node's chain with the stored output, the params
//! version of its inclusion height rebuilds exactly that output, the unbonding tx is the
//! canonical one with a valid staker signature, and the staking output is still unspent.
//!
//! The reference pipeline checks only part of this and asks the signers first; here a request
//! that cannot succeed never reaches the committee.

use std::collections::HashMap;
use std::sync::Mutex;

use bitcoin::secp256k1::schnorr;
use bitcoin::{Amount, BlockHash, OutPoint, TapSighash, Transaction, Txid};
use bitcoin_rpc::{RpcClient, RpcError};
use staking_core::params::{BlockHeight, GlobalParams, ParamsVersion};
use staking_core::script::StakingOutput;
use staking_core::unbonding::{unbonding_sighash, verify_unbonding_request, UnbondingTerms};
use store::api::NewUnbondingRequest;

use crate::outcome::{FailureKind, Outcome, RetryKind};

/// `RPC_INVALID_ADDRESS_OR_KEY`: Core's "No such mempool or blockchain transaction".
const NOT_FOUND: i32 = -5;

/// A request that passed every check and can be put to the committee.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub unbonding_tx: Transaction,
    pub staker_signature: schnorr::Signature,
    pub staking: StakingOutput,
    pub staking_outpoint: OutPoint,
    pub staking_value: Amount,
    pub version: ParamsVersion,
    /// What the staker and every covenant member sign.
    pub sighash: TapSighash,
}

/// The outcome for an RPC error of our own node.
pub(crate) fn node_error(what: &str, e: &RpcError) -> Outcome {
    Outcome::retry(RetryKind::NodeUnavailable, format!("{what}: {e}"))
}

fn invalid(reason: impl Into<String>) -> Outcome {
    Outcome::failed(FailureKind::InvalidRequest, reason)
}

/// Heights of blocks already looked up (a block's height never changes; many staking txs share
/// a block), so each request costs one `getblockheader` less. Bounded: cleared when full.
#[derive(Debug, Default)]
pub struct Heights(Mutex<HashMap<BlockHash, u32>>);

const MAX_CACHED_HEIGHTS: usize = 100_000;

impl Heights {
    async fn of(&self, rpc: &RpcClient, hash: BlockHash) -> Result<u32, Outcome> {
        if let Some(h) = self.lock().get(&hash) {
            return Ok(*h);
        }
        let header = rpc
            .get_block_header_info(&hash)
            .await
            .map_err(|e| node_error("getblockheader of the staking tx's block", &e))?;
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED_HEIGHTS {
            cache.clear();
        }
        cache.insert(hash, header.height);
        Ok(header.height)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BlockHash, u32>> {
        // A panic while holding this lock leaves a valid map: keep using it.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs every check in order; the first that fails decides the outcome.
pub async fn prepare(
    rpc: &RpcClient,
    params: &GlobalParams,
    request: &NewUnbondingRequest,
) -> Result<Prepared, Outcome> {
    prepare_with(rpc, params, request, &Heights::default()).await
}

/// [`prepare`] with a shared cache of block heights.
pub async fn prepare_with(
    rpc: &RpcClient,
    params: &GlobalParams,
    request: &NewUnbondingRequest,
    heights: &Heights,
) -> Result<Prepared, Outcome> {
    let unbonding_tx = staking_core::staking_tx::decode_transaction_hex(&request.unbonding_tx_hex)
        .map_err(|e| invalid(format!("stored unbonding tx does not decode: {e}")))?;
    let stored_staking_tx =
        staking_core::staking_tx::decode_transaction_hex(&request.staking_tx_hex)
            .map_err(|e| invalid(format!("stored staking tx does not decode: {e}")))?;
    let signature_bytes = hex::decode(&request.staker_signature_hex).map_err(|_| {
        invalid(format!(
            "stored staker signature {:?} is not hex",
            request.staker_signature_hex
        ))
    })?;
    let staker_signature = staking_core::signing::parse_signature(&signature_bytes)
        .map_err(|e| invalid(format!("stored staker signature: {e}")))?;
    let staking_txid = stored_staking_tx.compute_txid();
    if staking_txid != request.staking_tx_hash {
        return Err(invalid(format!(
            "stored staking tx has txid {staking_txid}, the request names {}",
            request.staking_tx_hash
        )));
    }
    let vout = u32::try_from(request.staking_output_index)
        .ok()
        .filter(|v| (*v as usize) < stored_staking_tx.output.len())
        .ok_or_else(|| {
            invalid(format!(
                "staking output index {} is not an output of staking tx {staking_txid}",
                request.staking_output_index
            ))
        })?;
    let stored_output = &stored_staking_tx.output[vout as usize];

    // The staking tx must be in a block of our node's chain, with that output.
    let info = match rpc.get_raw_transaction_info(&staking_txid).await {
        Ok(info) => info,
        Err(RpcError::Rpc { code, message }) if code == NOT_FOUND => {
            return Err(Outcome::retry(
                RetryKind::StakingTxNotConfirmed,
                format!("staking tx {staking_txid} is unknown to the node: {message}"),
            ))
        }
        Err(e) => return Err(node_error("getrawtransaction of the staking tx", &e)),
    };
    let Some((block_hash, _confirmations)) = info.confirmed_in() else {
        return Err(Outcome::retry(
            RetryKind::StakingTxNotConfirmed,
            format!("staking tx {staking_txid} is not in a block"),
        ));
    };
    if info.transaction.output.get(vout as usize) != Some(stored_output) {
        return Err(invalid(format!(
            "staking tx {staking_txid} on chain has no output {vout} equal to the stored one"
        )));
    }
    let height = BlockHeight(u64::from(heights.of(rpc, block_hash).await?));
    let version = params.for_height(height).cloned().ok_or_else(|| {
        Outcome::failed(
            FailureKind::NoParams,
            format!("no params version for the staking tx's inclusion height {height}"),
        )
    })?;

    // Rebuild the staking output from the stored keys, timelock and params.
    let timelock = u16::try_from(request.staking_timelock).map_err(|_| {
        invalid(format!(
            "staking timelock {} does not fit 16 bits",
            request.staking_timelock
        ))
    })?;
    let keys = version
        .staking_keys(request.staker_pk, request.finality_provider_pk)
        .map_err(|e| invalid(format!("staking keys: {e}")))?;
    let staking =
        StakingOutput::new(keys, timelock).map_err(|e| invalid(format!("staking output: {e}")))?;
    if stored_output.script_pubkey != *staking.script_pubkey()
        || stored_output.value != request.staking_amount
    {
        return Err(Outcome::failed(
            FailureKind::StakingOutputMismatch,
            format!(
                "staking output {staking_txid}:{vout} ({} sat, {}) is not the output rebuilt from \
                 the stored keys, timelock {timelock} and amount {} with params version {} \
                 (wrong params file or network?)",
                stored_output.value.to_sat(),
                stored_output.script_pubkey,
                request.staking_amount.to_sat(),
                version.version
            ),
        ));
    }

    // The canonical unbonding tx with the staker's signature (the API checked it; the row may
    // have been written by something else, or the params file may have changed since).
    let staking_outpoint = OutPoint::new(staking_txid, vout);
    let terms = UnbondingTerms {
        unbonding_time: version.unbonding_time,
        unbonding_fee: version.unbonding_fee,
    };
    verify_unbonding_request(
        &unbonding_tx,
        request.unbonding_tx_hash,
        &signature_bytes,
        &staking,
        staking_outpoint,
        stored_output.value,
        &terms,
    )
    .map_err(|e| invalid(format!("unbonding request: {e}")))?;
    let sighash = unbonding_sighash(&unbonding_tx, &staking, stored_output.value)
        .map_err(|e| invalid(format!("unbonding sighash: {e}")))?;

    ensure_unspent(rpc, staking_outpoint, unbonding_tx.compute_txid()).await?;
    Ok(Prepared {
        unbonding_tx,
        staker_signature,
        staking,
        staking_outpoint,
        staking_value: stored_output.value,
        version,
        sighash,
    })
}

/// `Ok` while the staking output is unspent (mempool included). Spent by our own unbonding tx
/// ⇒ [`Outcome::AlreadySent`]; by anything else ⇒ terminal `input_spent`.
pub async fn ensure_unspent(
    rpc: &RpcClient,
    staking: OutPoint,
    unbonding_txid: Txid,
) -> Result<(), Outcome> {
    match rpc.get_tx_out(&staking.txid, staking.vout, true).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(spent_by(rpc, staking, unbonding_txid).await),
        Err(e) => Err(node_error("gettxout of the staking output", &e)),
    }
}

/// Who spent the staking output: our unbonding tx (already sent) or another one.
pub async fn spent_by(rpc: &RpcClient, staking: OutPoint, unbonding_txid: Txid) -> Outcome {
    match rpc.get_raw_transaction_info(&unbonding_txid).await {
        Ok(_) => Outcome::AlreadySent(unbonding_txid),
        Err(RpcError::Rpc { code, .. }) if code == NOT_FOUND => Outcome::failed(
            FailureKind::InputSpent,
            format!(
                "staking output {staking} is already spent by another transaction (not the \
                 unbonding tx {unbonding_txid})"
            ),
        ),
        Err(e) => node_error("getrawtransaction of the unbonding tx", &e),
    }
}
