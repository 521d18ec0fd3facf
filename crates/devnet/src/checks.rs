//! Transaction rules: Core's `CheckTransaction`, `IsStandardTx`, `IsFinalTx`, BIP68 sequence
//! locks, `CheckTxInputs`, and script verification through libbitcoinconsensus.

use std::collections::HashSet;

use bitcoin::consensus::encode::serialize;
use bitcoin::opcodes::all::{OP_CHECKMULTISIG, OP_PUSHNUM_1, OP_PUSHNUM_16, OP_RETURN};
use bitcoin::script::Instruction;
use bitcoin::{Amount, Script, Transaction, TxOut};

use crate::coins::Coin;
use crate::error::{RejectReason, TxReject};
use crate::params;

/// `CheckTransaction`: rules that need no context.
pub fn check_transaction(tx: &Transaction) -> Result<(), TxReject> {
    if tx.input.is_empty() {
        return Err(TxReject::new(RejectReason::VinEmpty));
    }
    if tx.output.is_empty() {
        return Err(TxReject::new(RejectReason::VoutEmpty));
    }
    if tx.base_size() as u64 * 4 > params::MAX_BLOCK_WEIGHT {
        return Err(TxReject::new(RejectReason::Oversize));
    }
    let mut total = Amount::ZERO;
    for out in &tx.output {
        if out.value > Amount::MAX_MONEY {
            return Err(TxReject::new(RejectReason::VoutTooLarge));
        }
        total = match total.checked_add(out.value) {
            Some(t) if t <= Amount::MAX_MONEY => t,
            _ => return Err(TxReject::new(RejectReason::TxoutTotalTooLarge)),
        };
    }
    let mut seen = HashSet::with_capacity(tx.input.len());
    for input in &tx.input {
        if !seen.insert(input.previous_output) {
            return Err(TxReject::new(RejectReason::InputsDuplicate));
        }
    }
    if tx.is_coinbase() {
        let len = tx.input[0].script_sig.len();
        if !(2..=100).contains(&len) {
            return Err(TxReject::new(RejectReason::BadCbLength));
        }
    } else if tx.input.iter().any(|i| i.previous_output.is_null()) {
        return Err(TxReject::new(RejectReason::PrevoutNull));
    }
    Ok(())
}

/// `IsStandardTx` plus the `tx-size-small` rule.
pub fn check_standard(tx: &Transaction) -> Result<(), TxReject> {
    if tx.version.0 < 1 || tx.version.0 > params::MAX_STANDARD_VERSION {
        return Err(TxReject::new(RejectReason::Version));
    }
    if tx.weight().to_wu() > params::MAX_STANDARD_TX_WEIGHT {
        return Err(TxReject::new(RejectReason::TxSize));
    }
    for input in &tx.input {
        if input.script_sig.len() > params::MAX_STANDARD_SCRIPTSIG_SIZE {
            return Err(TxReject::new(RejectReason::ScriptsigSize));
        }
        if !input.script_sig.is_push_only() {
            return Err(TxReject::new(RejectReason::ScriptsigNotPushonly));
        }
    }
    let mut data_outputs = 0;
    for out in &tx.output {
        match output_kind(&out.script_pubkey) {
            OutputKind::NonStandard => return Err(TxReject::new(RejectReason::Scriptpubkey)),
            OutputKind::NullData => data_outputs += 1,
            OutputKind::Standard => {
                if out.value
                    < out
                        .script_pubkey
                        .minimal_non_dust_custom(params::DUST_RELAY_FEE)
                {
                    return Err(TxReject::new(RejectReason::Dust));
                }
            }
        }
    }
    if data_outputs > 1 {
        return Err(TxReject::new(RejectReason::MultiOpReturn));
    }
    if tx.base_size() < params::MIN_STANDARD_TX_NONWITNESS_SIZE {
        return Err(TxReject::new(RejectReason::TxSizeSmall));
    }
    Ok(())
}

enum OutputKind {
    Standard,
    NullData,
    NonStandard,
}

/// Core's `Solver` reduced to what `IsStandard` needs.
fn output_kind(script: &Script) -> OutputKind {
    if script.is_p2pkh()
        || script.is_p2sh()
        || script.is_p2wpkh()
        || script.is_p2wsh()
        || script.is_p2tr()
        || script.is_p2pk()
        || is_bare_multisig(script)
    {
        return OutputKind::Standard;
    }
    if script.is_witness_program() {
        // Witness v0 of another length is invalid to spend; v1+ unknown programs are standard.
        return match script.witness_version() {
            Some(v) if v.to_num() == 0 => OutputKind::NonStandard,
            _ => OutputKind::Standard,
        };
    }
    let bytes = script.as_bytes();
    if bytes.first() == Some(&OP_RETURN.to_u8())
        && bytes.len() <= params::MAX_OP_RETURN_RELAY
        && Script::from_bytes(&bytes[1..]).is_push_only()
    {
        return OutputKind::NullData;
    }
    OutputKind::NonStandard
}

/// Bare `m <keys> n OP_CHECKMULTISIG` with 1 <= m <= n <= 3 (standard in Core 26).
fn is_bare_multisig(script: &Script) -> bool {
    let Ok(instructions) = script.instructions().collect::<Result<Vec<_>, _>>() else {
        return false;
    };
    let small_int = |i: &Instruction| match i {
        Instruction::Op(op)
            if (OP_PUSHNUM_1.to_u8()..=OP_PUSHNUM_16.to_u8()).contains(&op.to_u8()) =>
        {
            Some(usize::from(op.to_u8() - OP_PUSHNUM_1.to_u8() + 1))
        }
        _ => None,
    };
    let [first, keys @ .., n_op, last] = instructions.as_slice() else {
        return false;
    };
    let (Some(m), Some(n)) = (small_int(first), small_int(n_op)) else {
        return false;
    };
    *last == Instruction::Op(OP_CHECKMULTISIG)
        && m <= n
        && n <= 3
        && keys.len() == n
        && keys
            .iter()
            .all(|k| matches!(k, Instruction::PushBytes(b) if b.len() == 33 || b.len() == 65))
}

/// `IsFinalTx`: the absolute locktime is reached at `height` / median-time-past `mtp`.
pub fn is_final(tx: &Transaction, height: u32, mtp: u32) -> bool {
    let lock = tx.lock_time.to_consensus_u32();
    if lock == 0 {
        return true;
    }
    let threshold = if lock < bitcoin::absolute::LOCK_TIME_THRESHOLD {
        height
    } else {
        mtp
    };
    if lock < threshold {
        return true;
    }
    tx.input
        .iter()
        .all(|i| i.sequence == bitcoin::Sequence::MAX)
}

/// BIP68 (`CalculateSequenceLocks` + `EvaluateSequenceLocks`): whether `tx` may be in the block
/// at `height` whose parent has median-time-past `prev_mtp`. `coin_heights[i]` is the height of
/// the block that created input `i`'s coin; `mtp_at(h)` is the median-time-past of block `h`.
pub fn sequence_locks_ok(
    tx: &Transaction,
    coin_heights: &[u32],
    height: u32,
    prev_mtp: u32,
    mtp_at: impl Fn(u32) -> u32,
) -> bool {
    const DISABLE: u32 = 1 << 31;
    const TYPE_TIME: u32 = 1 << 22;
    const MASK: u32 = 0x0000_ffff;
    if tx.version.0 < 2 {
        return true;
    }
    let mut min_height: i64 = -1;
    let mut min_time: i64 = -1;
    for (input, &coin_height) in tx.input.iter().zip(coin_heights) {
        let seq = input.sequence.to_consensus_u32();
        if seq & DISABLE != 0 {
            continue;
        }
        if seq & TYPE_TIME != 0 {
            let coin_time = i64::from(mtp_at(coin_height.saturating_sub(1)));
            min_time = min_time.max(coin_time + (i64::from(seq & MASK) << 9) - 1);
        } else {
            min_height = min_height.max(i64::from(coin_height) + i64::from(seq & MASK) - 1);
        }
    }
    min_height < i64::from(height) && min_time < i64::from(prev_mtp)
}

/// `Consensus::CheckTxInputs`: maturity and amounts; returns the fee.
pub fn check_tx_inputs(
    tx: &Transaction,
    coins: &[Coin],
    spend_height: u32,
) -> Result<Amount, TxReject> {
    let mut value_in = Amount::ZERO;
    for coin in coins {
        if coin.is_coinbase && spend_height.saturating_sub(coin.height) < params::COINBASE_MATURITY
        {
            return Err(TxReject::with(
                RejectReason::PrematureSpendOfCoinbase,
                format!(
                    "tried to spend coinbase at depth {}",
                    spend_height.saturating_sub(coin.height)
                ),
            ));
        }
        value_in = match value_in.checked_add(coin.output.value) {
            Some(v) if coin.output.value <= Amount::MAX_MONEY && v <= Amount::MAX_MONEY => v,
            _ => return Err(TxReject::new(RejectReason::InputValuesOutOfRange)),
        };
    }
    let value_out = tx
        .output
        .iter()
        .map(|o| o.value)
        .fold(Amount::ZERO, |a, b| a + b);
    if value_in < value_out {
        return Err(TxReject::with(
            RejectReason::InBelowOut,
            format!(
                "value in ({}) < value out ({})",
                format_money(value_in),
                format_money(value_out)
            ),
        ));
    }
    Ok(value_in - value_out)
}

/// Core's `FormatMoney`: BTC with at least two decimals, trailing zeros trimmed.
pub fn format_money(amount: Amount) -> String {
    let sat = amount.to_sat();
    let mut s = format!("{}.{:08}", sat / 100_000_000, sat % 100_000_000);
    while s.ends_with('0') && s.len() - s.find('.').map_or(0, |p| p + 1) > 2 {
        s.pop();
    }
    s
}

/// Verifies every input's script with Bitcoin Core's interpreter under all regtest consensus
/// flags (P2SH, DERSIG, NULLDUMMY, CLTV, CSV, witness, taproot).
pub fn verify_scripts(tx: &Transaction, spent: &[TxOut]) -> Result<(), TxReject> {
    let bytes = serialize(tx);
    let utxos: Vec<bitcoinconsensus::Utxo> = spent
        .iter()
        .map(|o| bitcoinconsensus::Utxo {
            script_pubkey: o.script_pubkey.as_bytes().as_ptr(),
            script_pubkey_len: o.script_pubkey.len() as u32,
            value: o.value.to_sat() as i64,
        })
        .collect();
    for (index, out) in spent.iter().enumerate() {
        bitcoinconsensus::verify_with_flags(
            out.script_pubkey.as_bytes(),
            out.value.to_sat(),
            &bytes,
            Some(&utxos),
            index,
            params::SCRIPT_FLAGS,
        )
        .map_err(|e| {
            let why = match e {
                bitcoinconsensus::Error::ERR_SCRIPT => {
                    format!("script evaluation failed on input {index}; libbitcoinconsensus reports no finer reason")
                }
                other => format!("input {index}: {other}"),
            };
            TxReject::with(RejectReason::ScriptVerifyFailed, why)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_like_bitcoin_core() {
        assert_eq!(format_money(Amount::from_sat(100_000_000)), "1.00");
        assert_eq!(format_money(Amount::from_sat(123_456_789)), "1.23456789");
        assert_eq!(format_money(Amount::from_sat(10_000)), "0.0001");
        assert_eq!(format_money(Amount::ZERO), "0.00");
    }

    #[test]
    fn op_return_up_to_83_bytes_is_standard_and_longer_is_not() {
        let ok = bitcoin::ScriptBuf::new_op_return([0u8; 75]);
        assert!(matches!(output_kind(&ok), OutputKind::NullData));
        let mut long = vec![OP_RETURN.to_u8(), 0x4c, 81];
        long.extend([0u8; 81]);
        assert!(matches!(
            output_kind(Script::from_bytes(&long)),
            OutputKind::NonStandard
        ));
    }
}
