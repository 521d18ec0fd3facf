//! Builders for the staking tx and the withdrawal tx, following btc-staking-ts 0.2.x
//! (`docs/formats.md#staking-and-withdrawal-builders`) so that the same inputs give the same bytes
//! as the staking dApp.
//!
//! Fee rates are in sat/vB. The size estimates are the library's, not exact vsizes: the goal is
//! byte-for-byte agreement with the dApp, not the tightest fee.

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use crate::script::StakingOutput;

/// Outputs at or below this value are dust and are not created (btc-staking-ts `BTC_DUST_SAT`).
pub const DUST: Amount = Amount::from_sat(546);

/// Sequence of every staking-tx input (RBF signalling, as btc-staking-ts 0.2.x).
pub const STAKING_INPUT_SEQUENCE: Sequence = Sequence(0xffff_fffd);

const P2TR_INPUT_VSIZE: u64 = 58;
const P2WPKH_INPUT_VSIZE: u64 = 68;
const OTHER_INPUT_VSIZE: u64 = 180;
const OUTPUT_VSIZE: u64 = 43;
const TX_OVERHEAD_VSIZE: u64 = 11;
const OP_RETURN_EXTRA_VSIZE: u64 = 9;
const LOW_RATE_THRESHOLD: u64 = 2;
const LOW_RATE_BUFFER: u64 = 30;
const WITHDRAWAL_EXTRA_VSIZE: u64 = 17;

/// A spendable output of the staker's wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utxo {
    pub outpoint: OutPoint,
    pub value: Amount,
    pub script_pubkey: ScriptBuf,
}

/// Why a tx cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// No UTXOs were given.
    #[error("no UTXOs to fund the staking tx")]
    NoUtxos,
    /// The UTXOs cannot pay for the amount plus the fee.
    #[error("insufficient funds: {available} sat available, {needed} sat needed (amount plus fee)", available = available.to_sat(), needed = needed.to_sat())]
    InsufficientFunds { available: Amount, needed: Amount },
    /// The fee rate is zero.
    #[error("fee rate must be at least 1 sat/vB")]
    ZeroFeeRate,
    /// The staking amount is zero.
    #[error("staking amount must be positive")]
    ZeroAmount,
    /// What is left after the fee would be dust.
    #[error("output value {value} sat after a fee of {fee} sat is below the dust limit of 546 sat", value = value.to_sat(), fee = fee.to_sat())]
    DustOutput { value: Amount, fee: Amount },
    /// Arithmetic overflow on absurd inputs.
    #[error("amounts overflow")]
    Overflow,
}

/// A staking tx and what a wallet needs to sign it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltStakingTx {
    /// The unsigned tx: `[staking, OP_RETURN, change?]`.
    pub tx: Transaction,
    /// The UTXOs spent, in input order (with their scripts and values for signing).
    pub inputs: Vec<Utxo>,
    /// The fee the library estimated (the real fee is larger by any dust change left out).
    pub fee: Amount,
    /// Index of the staking output (always 0).
    pub staking_output_index: u32,
}

/// Inputs of [`staking_tx`].
#[derive(Debug, Clone)]
pub struct StakingTxRequest<'a> {
    /// The staking output to create.
    pub staking: &'a StakingOutput,
    /// The value locked in the staking output.
    pub amount: Amount,
    /// The V0 OP_RETURN script (`6a47…`, 73 bytes) marking the tx.
    pub op_return: ScriptBuf,
    /// The wallet's spendable outputs, in any order.
    pub utxos: &'a [Utxo],
    /// Where change goes.
    pub change_script: ScriptBuf,
    /// Fee rate in sat/vB.
    pub fee_rate: u64,
    /// `activation_height − 1` of the params version used, so the tx cannot be mined under an
    /// earlier version (the dApp always sets it).
    pub lock_time: LockTime,
}

fn input_vsize(script: &ScriptBuf) -> u64 {
    if script.is_p2tr() {
        P2TR_INPUT_VSIZE
    } else if script.is_p2wpkh() {
        P2WPKH_INPUT_VSIZE
    } else {
        OTHER_INPUT_VSIZE
    }
}

fn low_rate_buffer(fee_rate: u64) -> u64 {
    if fee_rate <= LOW_RATE_THRESHOLD {
        LOW_RATE_BUFFER
    } else {
        0
    }
}

fn sat(value: u64) -> Amount {
    Amount::from_sat(value)
}

/// The btc-staking-ts 0.2.x staking tx: UTXOs sorted by value (largest first; stable for
/// equal values) are added until they cover amount plus fee; version 2, every input with
/// sequence `0xfffffffd`; outputs `[staking, OP_RETURN (0 sat), change if > 546 sat]`.
/// Fee = `rate × (Σ input sizes + 43 + (len(OP_RETURN) + 9) + 11) + (30 if rate ≤ 2)`, plus
/// `43 × rate` when a change output is added.
pub fn staking_tx(request: &StakingTxRequest<'_>) -> Result<BuiltStakingTx, BuildError> {
    if request.fee_rate == 0 {
        return Err(BuildError::ZeroFeeRate);
    }
    if request.amount == Amount::ZERO {
        return Err(BuildError::ZeroAmount);
    }
    if request.utxos.is_empty() {
        return Err(BuildError::NoUtxos);
    }
    let rate = request.fee_rate;
    let mut sorted = request.utxos.to_vec();
    sorted.sort_by_key(|utxo| std::cmp::Reverse(utxo.value));
    let outputs_vsize = OUTPUT_VSIZE + request.op_return.len() as u64 + OP_RETURN_EXTRA_VSIZE;

    let mut selected = Vec::new();
    let mut accumulated = Amount::ZERO;
    let mut inputs_vsize = 0u64;
    let mut fee = Amount::ZERO;
    for utxo in sorted {
        accumulated = accumulated
            .checked_add(utxo.value)
            .ok_or(BuildError::Overflow)?;
        inputs_vsize += input_vsize(&utxo.script_pubkey);
        selected.push(utxo);
        let size = inputs_vsize + outputs_vsize + TX_OVERHEAD_VSIZE;
        fee = sat(size
            .checked_mul(rate)
            .and_then(|f| f.checked_add(low_rate_buffer(rate)))
            .ok_or(BuildError::Overflow)?);
        let needed = request
            .amount
            .checked_add(fee)
            .ok_or(BuildError::Overflow)?;
        if accumulated
            .checked_sub(needed)
            .is_some_and(|left| left > DUST)
        {
            let change_fee = OUTPUT_VSIZE.checked_mul(rate).ok_or(BuildError::Overflow)?;
            fee = fee
                .checked_add(sat(change_fee))
                .ok_or(BuildError::Overflow)?;
        }
        if accumulated
            >= request
                .amount
                .checked_add(fee)
                .ok_or(BuildError::Overflow)?
        {
            break;
        }
    }
    let needed = request
        .amount
        .checked_add(fee)
        .ok_or(BuildError::Overflow)?;
    let Some(change) = accumulated.checked_sub(needed) else {
        return Err(BuildError::InsufficientFunds {
            available: accumulated,
            needed,
        });
    };

    let mut output = vec![
        TxOut {
            value: request.amount,
            script_pubkey: request.staking.script_pubkey().clone(),
        },
        TxOut {
            value: Amount::ZERO,
            script_pubkey: request.op_return.clone(),
        },
    ];
    if change > DUST {
        output.push(TxOut {
            value: change,
            script_pubkey: request.change_script.clone(),
        });
    }
    let tx = Transaction {
        version: Version::TWO,
        lock_time: request.lock_time,
        input: selected
            .iter()
            .map(|utxo| TxIn {
                previous_output: utxo.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: STAKING_INPUT_SEQUENCE,
                witness: Witness::new(),
            })
            .collect(),
        output,
    };
    Ok(BuiltStakingTx {
        tx,
        inputs: selected,
        fee,
        staking_output_index: 0,
    })
}

/// The fee btc-staking-ts 0.2.x uses for a withdrawal:
/// `rate × (58 + 43 + 11 + 17) + (30 if rate ≤ 2)`.
pub fn withdrawal_fee(fee_rate: u64) -> Option<Amount> {
    let size = P2TR_INPUT_VSIZE + OUTPUT_VSIZE + TX_OVERHEAD_VSIZE + WITHDRAWAL_EXTRA_VSIZE;
    size.checked_mul(fee_rate)?
        .checked_add(low_rate_buffer(fee_rate))
        .map(sat)
}

/// The withdrawal tx of btc-staking-ts 0.2.x for a timelock-path spend of a staking or
/// unbonding output: version 2, lock time 0, one input with sequence = the timelock (CSV needs
/// it), one output to `destination` worth the input minus [`withdrawal_fee`].
pub fn withdrawal_tx(
    outpoint: OutPoint,
    value: Amount,
    timelock: u16,
    destination: ScriptBuf,
    fee_rate: u64,
) -> Result<Transaction, BuildError> {
    if fee_rate == 0 {
        return Err(BuildError::ZeroFeeRate);
    }
    let fee = withdrawal_fee(fee_rate).ok_or(BuildError::Overflow)?;
    let out_value = value.checked_sub(fee).unwrap_or(Amount::ZERO);
    if out_value < DUST {
        return Err(BuildError::DustOutput {
            value: out_value,
            fee,
        });
    }
    Ok(Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::from_height(timelock),
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: out_value,
            script_pubkey: destination,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdrawal_fee_follows_the_library_formula() {
        assert_eq!(withdrawal_fee(3), Some(Amount::from_sat(387)));
        assert_eq!(withdrawal_fee(2), Some(Amount::from_sat(2 * 129 + 30)));
        assert_eq!(withdrawal_fee(1), Some(Amount::from_sat(129 + 30)));
    }

    #[test]
    fn withdrawal_leaving_dust_is_refused() {
        let err = withdrawal_tx(
            OutPoint::null(),
            Amount::from_sat(387 + 545),
            10,
            ScriptBuf::new(),
            3,
        )
        .unwrap_err();
        assert!(matches!(err, BuildError::DustOutput { .. }));
        assert!(withdrawal_tx(
            OutPoint::null(),
            Amount::from_sat(387 + 546),
            10,
            ScriptBuf::new(),
            3
        )
        .is_ok());
    }
}
