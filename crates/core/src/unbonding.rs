//! The unbonding transaction: its canonical shape
//! (`docs/formats.md#canonical-unbonding-transaction`), the indexer's on-chain rules
//! (`docs/rules.md#unbonding-classification`), the stricter pre-signed rules of the API and the
//! covenant signer (`docs/rules.md#pre-signed-unbonding-rules`) and the API's full check of an
//! unbonding request (`docs/reference.md#unbonding-request`, checks 9–13).
//!
//! Given the staking output, its outpoint and value, and the params version selected by the
//! staking tx's inclusion height, exactly one unbonding tx is valid: there is nothing to choose.

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, OutPoint, ScriptBuf, Sequence, TapSighash, Transaction, TxIn, TxOut, Txid, Witness,
};

use crate::script::{ScriptError, StakingKeys, StakingLeaf, StakingOutput, UnbondingOutput};
use crate::signing::{leaf_sighash, SighashError};
use crate::spend::KnownStaking;

/// The two params values that shape an unbonding tx, taken from the params version selected by
/// the **staking** tx's inclusion height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnbondingTerms {
    /// CSV of the unbonding output's timelock leaf, in blocks.
    pub unbonding_time: u16,
    /// The exact fee of the unbonding tx.
    pub unbonding_fee: Amount,
}

/// Why no unbonding tx can be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnbondingError {
    /// `staking_value − unbonding_fee` is not positive (the reference's text).
    #[error("staking output value is too low, got {}, unbonding fee: {}", go_btc(*staking_value), go_btc(*fee))]
    ValueTooLow { staking_value: Amount, fee: Amount },
    /// The unbonding output cannot be built from the keys.
    #[error(transparent)]
    Script(#[from] ScriptError),
}

/// Formats an amount as Go's `btcutil.Amount.String()` does (`0.0005 BTC`, `1 BTC`), so error
/// texts match the reference's.
pub(crate) fn go_btc(amount: Amount) -> String {
    let sat = amount.to_sat();
    let whole = sat / 100_000_000;
    let frac = sat % 100_000_000;
    if frac == 0 {
        return format!("{whole} BTC");
    }
    let frac = format!("{frac:08}");
    format!("{whole}.{} BTC", frac.trim_end_matches('0'))
}

/// `staking_value − unbonding_fee`, which must be positive.
pub fn unbonding_value(
    staking_value: Amount,
    terms: &UnbondingTerms,
) -> Result<Amount, UnbondingError> {
    match staking_value.checked_sub(terms.unbonding_fee) {
        Some(value) if value > Amount::ZERO => Ok(value),
        _ => Err(UnbondingError::ValueTooLow {
            staking_value,
            fee: terms.unbonding_fee,
        }),
    }
}

/// The unbonding output (timelock with `unbonding_time`, slashing) for the staking keys.
pub fn unbonding_output(
    keys: &StakingKeys,
    terms: &UnbondingTerms,
) -> Result<UnbondingOutput, ScriptError> {
    UnbondingOutput::new(keys, terms.unbonding_time)
}

/// The canonical unbonding tx (`docs/formats.md#canonical-unbonding-transaction`): version 2, one
/// input spending the staking output with an empty scriptSig and final sequence, one output (the
/// unbonding output worth `staking_value − unbonding_fee`), lock time 0, no witness.
pub fn canonical_unbonding_tx(
    staking: &StakingOutput,
    staking_outpoint: OutPoint,
    staking_value: Amount,
    terms: &UnbondingTerms,
) -> Result<Transaction, UnbondingError> {
    let value = unbonding_value(staking_value, terms)?;
    let output = unbonding_output(staking.keys(), terms)?;
    Ok(Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: staking_outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value,
            script_pubkey: output.script_pubkey().clone(),
        }],
    })
}

/// The sighash that the staker and every covenant member sign for an unbonding tx: input 0,
/// the staking output as prevout, the staking output's unbonding leaf, `SIGHASH_DEFAULT`.
pub fn unbonding_sighash(
    unbonding_tx: &Transaction,
    staking: &StakingOutput,
    staking_value: Amount,
) -> Result<TapSighash, SighashError> {
    let prevout = TxOut {
        value: staking_value,
        script_pubkey: staking.script_pubkey().clone(),
    };
    leaf_sighash(
        unbonding_tx,
        0,
        &[prevout],
        staking.leaf_hash(StakingLeaf::Unbonding),
    )
}

/// Outcome of the indexer's unbonding rules for a confirmed tx spending a stored staking output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnbondingCheck {
    /// Not an unbonding tx at all; examine it as a possible withdrawal
    /// (`docs/rules.md#withdrawal-classification`).
    NotUnbonding(NotUnbonding),
    /// Spends the staking output through the unbonding leaf but breaks a rule: counted as an
    /// invalid unbonding, nothing stored, no event.
    Invalid(InvalidUnbonding),
    /// A valid unbonding tx.
    Valid,
}

/// Why a tx is not an unbonding tx (`docs/rules.md#unbonding-classification`, checks 1–3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotUnbonding {
    /// Rule 1: not exactly one input and one output.
    #[error("not a transfer tx: {inputs} inputs and {outputs} outputs, expected 1 and 1")]
    NotOneInOneOut { inputs: usize, outputs: usize },
    /// Rule 2: input 0 spends another outpoint.
    #[error("input 0 spends {got}, not the staking output {expected}")]
    OtherOutpoint { expected: OutPoint, got: OutPoint },
    /// The witness has fewer than two items, so no script is revealed (the reference panics).
    #[error("witness of input 0 has {0} items, a script-path spend has at least 2")]
    ShortWitness(usize),
    /// Rule 3: the revealed script is not the staking output's unbonding leaf.
    #[error("the revealed script is not the staking output's unbonding leaf")]
    OtherLeaf,
}

/// Why an unbonding tx is invalid (`docs/rules.md#unbonding-classification`, checks 4–6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUnbonding {
    /// Rule 4: sequence is not final.
    #[error("unbonding tx should not enable rbf (sequence {0:#010x})")]
    Replaceable(u32),
    /// Rule 4: lock time is set.
    #[error("unbonding tx should not set lock time (lock time {0})")]
    LockTime(u32),
    /// Rule 5: the params leave nothing for the unbonding output.
    #[error("staking output value is too low, got {}, unbonding fee: {}", go_btc(*staking_value), go_btc(*fee))]
    ValueTooLow { staking_value: Amount, fee: Amount },
    /// Rule 6: the output script is not the expected unbonding output.
    #[error("the unbonding output is not expected (script {0})")]
    OutputScript(ScriptBuf),
    /// Rule 6: the output value is not `staking_value − unbonding_fee`.
    #[error("the unbonding output value is not expected: got {got} sat, expected {expected} sat", got = got.to_sat(), expected = expected.to_sat())]
    OutputValue { expected: Amount, got: Amount },
    /// The unbonding output cannot be built from the stored keys (bad params).
    #[error("cannot rebuild the unbonding output: {0}")]
    Script(ScriptError),
}

/// The indexer's rules (`docs/rules.md#unbonding-classification`), in the reference's order. Cheap
/// until the revealed script has matched the unbonding leaf (a byte comparison); only a real
/// unbonding tx pays for rebuilding the unbonding output. The tx version is not checked (on-chain
/// fact). Never panics.
pub fn check_unbonding_on_chain(tx: &Transaction, known: &KnownStaking) -> UnbondingCheck {
    let (input, output) = match (tx.input.as_slice(), tx.output.as_slice()) {
        ([input], [output]) => (input, output),
        _ => {
            return UnbondingCheck::NotUnbonding(NotUnbonding::NotOneInOneOut {
                inputs: tx.input.len(),
                outputs: tx.output.len(),
            })
        }
    };
    if input.previous_output != known.outpoint() {
        return UnbondingCheck::NotUnbonding(NotUnbonding::OtherOutpoint {
            expected: known.outpoint(),
            got: input.previous_output,
        });
    }
    let items = input.witness.len();
    if items < 2 {
        return UnbondingCheck::NotUnbonding(NotUnbonding::ShortWitness(items));
    }
    if input.witness.nth(items - 2) != Some(known.unbonding_leaf().as_bytes()) {
        return UnbondingCheck::NotUnbonding(NotUnbonding::OtherLeaf);
    }
    match check_rules_4_to_6(tx, input, output, known) {
        Ok(()) => UnbondingCheck::Valid,
        Err(reason) => UnbondingCheck::Invalid(reason),
    }
}

fn check_rules_4_to_6(
    tx: &Transaction,
    input: &TxIn,
    output: &TxOut,
    known: &KnownStaking,
) -> Result<(), InvalidUnbonding> {
    if input.sequence != Sequence::MAX {
        return Err(InvalidUnbonding::Replaceable(
            input.sequence.to_consensus_u32(),
        ));
    }
    if tx.lock_time != LockTime::ZERO {
        return Err(InvalidUnbonding::LockTime(tx.lock_time.to_consensus_u32()));
    }
    let terms = known.terms();
    let expected =
        unbonding_value(known.value(), terms).map_err(|_| InvalidUnbonding::ValueTooLow {
            staking_value: known.value(),
            fee: terms.unbonding_fee,
        })?;
    let unbonding = unbonding_output(known.keys(), terms).map_err(InvalidUnbonding::Script)?;
    if output.script_pubkey != *unbonding.script_pubkey() {
        return Err(InvalidUnbonding::OutputScript(output.script_pubkey.clone()));
    }
    if output.value != expected {
        return Err(InvalidUnbonding::OutputValue {
            expected,
            got: output.value,
        });
    }
    Ok(())
}

/// Maximum standard tx weight (`MaxStandardTxWeight`).
pub const MAX_STANDARD_TX_WEIGHT: u64 = 400_000;
const MAX_BLOCK_BASE_SIZE: usize = 1_000_000;
const MAX_SATOSHI: i64 = 21_000_000 * 100_000_000;

/// btcd `CheckTransactionSanity` failures, with btcd's texts. Values are read as Go's `int64`,
/// so an output above `i64::MAX` sat is "negative", as on the reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SanityError {
    #[error("transaction has no inputs")]
    NoInputs,
    #[error("transaction has no outputs")]
    NoOutputs,
    #[error("serialized transaction is too big - got {0}, max 1000000")]
    TooBig(usize),
    #[error("transaction output has negative value of {0}")]
    NegativeOutput(i64),
    #[error("transaction output value is higher than max allowed value: {0} > 2.1e+15 ")]
    OutputTooLarge(i64),
    #[error("total value of all transaction outputs exceeds max allowed value of 2.1e+15")]
    TotalOverflow,
    #[error("total value of all transaction outputs is {0} which is higher than max allowed value of 2.1e+15")]
    TotalTooLarge(i64),
    #[error("transaction contains duplicate inputs")]
    DuplicateInputs,
    #[error("coinbase transaction script length of {0} is out of range (min: 2, max: 100)")]
    CoinbaseScriptLength(usize),
    #[error("transaction input refers to previous output that is null")]
    NullPrevout,
}

/// btcd `CheckTransactionSanity`.
pub fn check_sanity(tx: &Transaction) -> Result<(), SanityError> {
    if tx.input.is_empty() {
        return Err(SanityError::NoInputs);
    }
    if tx.output.is_empty() {
        return Err(SanityError::NoOutputs);
    }
    let stripped = tx.base_size();
    if stripped > MAX_BLOCK_BASE_SIZE {
        return Err(SanityError::TooBig(stripped));
    }
    let mut total: i64 = 0;
    for output in &tx.output {
        // Go reads the value as int64: reinterpret, do not saturate.
        let sat = output.value.to_sat() as i64;
        if sat < 0 {
            return Err(SanityError::NegativeOutput(sat));
        }
        if sat > MAX_SATOSHI {
            return Err(SanityError::OutputTooLarge(sat));
        }
        total = total.wrapping_add(sat);
        if total < 0 {
            return Err(SanityError::TotalOverflow);
        }
        if total > MAX_SATOSHI {
            return Err(SanityError::TotalTooLarge(total));
        }
    }
    let mut seen: Vec<OutPoint> = Vec::with_capacity(tx.input.len());
    for input in &tx.input {
        if seen.contains(&input.previous_output) {
            return Err(SanityError::DuplicateInputs);
        }
        seen.push(input.previous_output);
    }
    if tx.is_coinbase() {
        let len = tx.input[0].script_sig.len();
        if !(2..=100).contains(&len) {
            return Err(SanityError::CoinbaseScriptLength(len));
        }
    } else if tx.input.iter().any(|i| i.previous_output.is_null()) {
        return Err(SanityError::NullPrevout);
    }
    Ok(())
}

/// `CheckPreSignedUnbondingTxSanity` of babylon ≥ v0.17
/// (`docs/rules.md#pre-signed-unbonding-rules`), with the reference's texts and order: btcd sanity,
/// one input, one output, lock time 0, version 2, weight, then per input the final sequence and the
/// empty scriptSig. The witness may be present.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreSignedError {
    #[error("btc transaction do not obey BTC rules: {0}")]
    Sanity(#[from] SanityError),
    #[error("tx must have exactly 1 inputs")]
    InputCount(usize),
    #[error("tx must have exactly 1 outputs")]
    OutputCount(usize),
    #[error("pre-signed tx must not have locktime")]
    LockTime(u32),
    #[error("tx version must be between 2 and 2")]
    Version(i32),
    #[error("tx weight must not exceed 400000")]
    Weight(u64),
    #[error("pre-signed tx must not be replaceable")]
    Replaceable(u32),
    #[error("pre-signed tx must not have signature script")]
    SignatureScript(ScriptBuf),
}

/// The pre-signed rules used by the API, the unbonding pipeline and the covenant signer.
pub fn check_pre_signed(tx: &Transaction) -> Result<(), PreSignedError> {
    check_sanity(tx)?;
    if tx.input.len() != 1 {
        return Err(PreSignedError::InputCount(tx.input.len()));
    }
    if tx.output.len() != 1 {
        return Err(PreSignedError::OutputCount(tx.output.len()));
    }
    if tx.lock_time != LockTime::ZERO {
        return Err(PreSignedError::LockTime(tx.lock_time.to_consensus_u32()));
    }
    if tx.version != Version::TWO {
        return Err(PreSignedError::Version(tx.version.0));
    }
    let weight = tx.weight().to_wu();
    if weight > MAX_STANDARD_TX_WEIGHT {
        return Err(PreSignedError::Weight(weight));
    }
    for input in &tx.input {
        if input.sequence != Sequence::MAX {
            return Err(PreSignedError::Replaceable(
                input.sequence.to_consensus_u32(),
            ));
        }
        if !input.script_sig.is_empty() {
            return Err(PreSignedError::SignatureScript(input.script_sig.clone()));
        }
    }
    Ok(())
}

/// Why the API refuses an unbonding request (`docs/reference.md#unbonding-request`, checks 9–13,
/// texts as the reference; all are 403 `VALIDATION_ERROR`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnbondingRequestError {
    #[error(
        "invalid unbonding tx hex: the unbonding tx is not a valid pre-signed unbonding tx: {0}"
    )]
    PreSigned(#[from] PreSignedError),
    #[error("unbonding_tx_hash_hex must match the hash calculated from the provided unbonding tx")]
    TxidMismatch { claimed: Txid, computed: Txid },
    #[error("the unbonding tx input must match the previous staking tx hash, expected: {expected}, got: {got}")]
    OtherStakingTx { expected: Txid, got: Txid },
    #[error("the unbonding tx input must match the previous staking tx output index, expected: {expected}, got: {got}")]
    OtherStakingIndex { expected: u32, got: u32 },
    #[error(transparent)]
    Unbonding(#[from] UnbondingError),
    #[error("unbonding output does not match expected output")]
    OutputMismatch,
    #[error("invalid unbonding signature")]
    BadSignature,
}

/// Everything the API checks about a submitted unbonding tx and staker signature once the
/// delegation and its params are known: pre-signed rules, txid, the spent outpoint, the exact
/// unbonding output, and the staker's signature over the unbonding-leaf sighash.
pub fn verify_unbonding_request(
    tx: &Transaction,
    claimed_txid: Txid,
    staker_signature: &[u8],
    staking: &StakingOutput,
    staking_outpoint: OutPoint,
    staking_value: Amount,
    terms: &UnbondingTerms,
) -> Result<(), UnbondingRequestError> {
    check_pre_signed(tx)?;
    let computed = tx.compute_txid();
    if computed != claimed_txid {
        return Err(UnbondingRequestError::TxidMismatch {
            claimed: claimed_txid,
            computed,
        });
    }
    let spent = tx.input[0].previous_output;
    if spent.txid != staking_outpoint.txid {
        return Err(UnbondingRequestError::OtherStakingTx {
            expected: staking_outpoint.txid,
            got: spent.txid,
        });
    }
    if spent.vout != staking_outpoint.vout {
        return Err(UnbondingRequestError::OtherStakingIndex {
            expected: staking_outpoint.vout,
            got: spent.vout,
        });
    }
    let value = unbonding_value(staking_value, terms)?;
    let expected = unbonding_output(staking.keys(), terms).map_err(UnbondingError::Script)?;
    let output = &tx.output[0];
    if output.value != value || output.script_pubkey != *expected.script_pubkey() {
        return Err(UnbondingRequestError::OutputMismatch);
    }
    let sighash = unbonding_sighash(tx, staking, staking_value)
        .map_err(|_| UnbondingRequestError::BadSignature)?;
    crate::signing::verify(&sighash, staker_signature, &staking.keys().staker)
        .map_err(|_| UnbondingRequestError::BadSignature)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_formatted_like_btcutil() {
        assert_eq!(go_btc(Amount::from_sat(50_000)), "0.0005 BTC");
        assert_eq!(go_btc(Amount::from_sat(100_000_000)), "1 BTC");
        assert_eq!(go_btc(Amount::from_sat(123_456_789)), "1.23456789 BTC");
        assert_eq!(go_btc(Amount::ZERO), "0 BTC");
    }

    #[test]
    fn unbonding_value_must_stay_positive() {
        let terms = UnbondingTerms {
            unbonding_time: 10,
            unbonding_fee: Amount::from_sat(1000),
        };
        assert_eq!(
            unbonding_value(Amount::from_sat(1001), &terms),
            Ok(Amount::from_sat(1))
        );
        let err = unbonding_value(Amount::from_sat(1000), &terms).unwrap_err();
        assert_eq!(
            err.to_string(),
            "staking output value is too low, got 0.00001 BTC, unbonding fee: 0.00001 BTC"
        );
        assert!(unbonding_value(Amount::from_sat(10), &terms).is_err());
    }
}
