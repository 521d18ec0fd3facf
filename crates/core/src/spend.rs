//! Recognising spends of known staking and unbonding outputs
//! (`docs/rules.md#unbonding-classification`, `docs/rules.md#withdrawal-classification`).
//!
//! The indexer runs this on every input that spends a stored output, so the common path is a
//! byte comparison of the revealed script (`witness[len−2]`) with leaf scripts built once per
//! stored output; the Taproot tree of the unbonding output is rebuilt only for a tx that reveals
//! the unbonding leaf. Chain data never makes it panic: a witness with fewer than two items is
//! simply not an unbonding and not a withdrawal.

use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction};

use crate::script::{timelock_script, unbonding_script, ScriptError, StakingKeys, StakingOutput};
use crate::unbonding::{
    check_unbonding_on_chain, InvalidUnbonding, UnbondingCheck, UnbondingTerms,
};

/// A stored staking output with what its spends are checked against: the keys, staking time,
/// outpoint and value from the staking tx, and the unbonding terms of the params version of the
/// staking tx's inclusion height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownStaking {
    keys: StakingKeys,
    staking_time: u16,
    outpoint: OutPoint,
    value: Amount,
    terms: UnbondingTerms,
    timelock_leaf: ScriptBuf,
    unbonding_leaf: ScriptBuf,
    unbonding_timelock_leaf: ScriptBuf,
}

impl KnownStaking {
    /// Builds the leaf scripts (cheap: no hashing, no curve operations).
    pub fn new(
        keys: StakingKeys,
        staking_time: u16,
        outpoint: OutPoint,
        value: Amount,
        terms: UnbondingTerms,
    ) -> Result<Self, ScriptError> {
        let timelock_leaf = timelock_script(&keys.staker, staking_time)?;
        let unbonding_leaf = unbonding_script(&keys.staker, &keys.covenants, keys.quorum)?;
        let unbonding_timelock_leaf = timelock_script(&keys.staker, terms.unbonding_time)?;
        Ok(Self {
            keys,
            staking_time,
            outpoint,
            value,
            terms,
            timelock_leaf,
            unbonding_leaf,
            unbonding_timelock_leaf,
        })
    }

    /// The same, from an already built staking output.
    pub fn from_output(
        staking: &StakingOutput,
        outpoint: OutPoint,
        value: Amount,
        terms: UnbondingTerms,
    ) -> Result<Self, ScriptError> {
        Self::new(
            staking.keys().clone(),
            staking.staking_time(),
            outpoint,
            value,
            terms,
        )
    }

    /// The staking keys.
    pub fn keys(&self) -> &StakingKeys {
        &self.keys
    }

    /// The staking time in blocks.
    pub fn staking_time(&self) -> u16 {
        self.staking_time
    }

    /// The staking output's outpoint.
    pub fn outpoint(&self) -> OutPoint {
        self.outpoint
    }

    /// The staking output's value.
    pub fn value(&self) -> Amount {
        self.value
    }

    /// The unbonding terms in force for this staking output.
    pub fn terms(&self) -> &UnbondingTerms {
        &self.terms
    }

    /// The staking output's unbonding leaf.
    pub fn unbonding_leaf(&self) -> &ScriptBuf {
        &self.unbonding_leaf
    }

    /// The staking output's timelock leaf.
    pub fn timelock_leaf(&self) -> &ScriptBuf {
        &self.timelock_leaf
    }

    /// The unbonding output's timelock leaf.
    pub fn unbonding_timelock_leaf(&self) -> &ScriptBuf {
        &self.unbonding_timelock_leaf
    }
}

/// What a tx spending a known staking output is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StakingSpend {
    /// A valid unbonding tx (`docs/rules.md#unbonding-classification`).
    Unbonding,
    /// Reveals the unbonding leaf in a 1-in/1-out tx but breaks a rule of
    /// `docs/rules.md#unbonding-classification`.
    InvalidUnbonding(InvalidUnbonding),
    /// Reveals the staking timelock leaf: a withdrawal (`docs/rules.md#withdrawal-classification`).
    Withdrawal,
    /// Anything else (slashing path, covenant path in a multi-input tx, not a script-path
    /// spend): an invalid withdrawal for the indexer, no event.
    Other,
}

/// What a tx spending a known unbonding output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnbondingSpend {
    /// Reveals the unbonding output's timelock leaf: a withdrawal
    /// (`docs/rules.md#withdrawal-classification`).
    Withdrawal,
    /// Anything else (slashing path): an invalid withdrawal for the indexer, no event.
    Other,
}

fn revealed_script(tx: &Transaction, input_index: usize) -> Option<&[u8]> {
    let witness = &tx.input.get(input_index)?.witness;
    let items = witness.len();
    if items < 2 {
        return None;
    }
    witness.nth(items - 2)
}

/// Classifies input `input_index` of `tx`, which spends `known`'s staking output: unbonding
/// (valid or invalid), withdrawal, or other. An input that does not spend the staking output
/// (or does not exist) is `Other`.
pub fn recognise_staking_spend(
    tx: &Transaction,
    input_index: usize,
    known: &KnownStaking,
) -> StakingSpend {
    match tx.input.get(input_index) {
        Some(input) if input.previous_output == known.outpoint => {}
        _ => return StakingSpend::Other,
    }
    match check_unbonding_on_chain(tx, known) {
        UnbondingCheck::Valid => return StakingSpend::Unbonding,
        UnbondingCheck::Invalid(reason) => return StakingSpend::InvalidUnbonding(reason),
        UnbondingCheck::NotUnbonding(_) => {}
    }
    if revealed_script(tx, input_index) == Some(known.timelock_leaf.as_bytes()) {
        StakingSpend::Withdrawal
    } else {
        StakingSpend::Other
    }
}

/// Classifies input `input_index` of `tx`, whose prevout is the unbonding tx of `known` (the
/// caller matched the prevout txid; the index is not checked since an unbonding tx has one
/// output).
pub fn recognise_unbonding_spend(
    tx: &Transaction,
    input_index: usize,
    known: &KnownStaking,
) -> UnbondingSpend {
    if revealed_script(tx, input_index) == Some(known.unbonding_timelock_leaf.as_bytes()) {
        UnbondingSpend::Withdrawal
    } else {
        UnbondingSpend::Other
    }
}
