//! What a processed block contained, as counts (for metrics and progress logs) and the stable
//! reasons recorded with invalid transactions.

use std::fmt;

/// Why a transaction that looked like staking, unbonding or withdrawal does not count. The
/// string form is stored with the invalid tx and used as the `reason` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// A parsed staking tx outside the amount / time bounds; the code is core's
    /// (`below_min_staking_amount`, …).
    Staking(&'static str),
    /// Unbonding tx with a non-final sequence (RBF).
    UnbondingReplaceable,
    /// Unbonding tx with a lock time.
    UnbondingLockTime,
    /// The staking value does not cover the unbonding fee.
    UnbondingStakingValueTooLow,
    /// The unbonding output is not the expected script.
    UnbondingWrongOutputScript,
    /// The unbonding output value is not `staking_value − unbonding_fee` (wrong fee).
    UnbondingWrongOutputValue,
    /// The expected unbonding output cannot be built from the stored keys.
    UnbondingUnbuildableOutput,
    /// A spend of a staking output through the covenant (unbonding) leaf in a tx that is not
    /// 1-in/1-out: the reference calls it an invalid withdrawal.
    CovenantPathNotUnbonding,
    /// Any other spend of a staking output (slashing path, key path, …).
    UnrecognisedStakingSpend,
    /// A spend of an unbonding output that is not through its timelock leaf.
    UnrecognisedUnbondingSpend,
}

impl InvalidReason {
    /// The snake_case form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staking(code) => code,
            Self::UnbondingReplaceable => "unbonding_replaceable",
            Self::UnbondingLockTime => "unbonding_lock_time_set",
            Self::UnbondingStakingValueTooLow => "unbonding_staking_value_too_low",
            Self::UnbondingWrongOutputScript => "unbonding_wrong_output_script",
            Self::UnbondingWrongOutputValue => "unbonding_wrong_output_value",
            Self::UnbondingUnbuildableOutput => "unbonding_unbuildable_output",
            Self::CovenantPathNotUnbonding => "covenant_path_spend_not_unbonding",
            Self::UnrecognisedStakingSpend => "unrecognised_staking_output_spend",
            Self::UnrecognisedUnbondingSpend => "unrecognised_unbonding_output_spend",
        }
    }

    /// The reference's `si_invalid_txs_counter{tx_type=…}` label for a confirmed tx.
    pub fn reference_tx_type(self) -> &'static str {
        match self {
            Self::Staking(_) => "confirmed_staking_transaction",
            Self::UnbondingReplaceable
            | Self::UnbondingLockTime
            | Self::UnbondingStakingValueTooLow
            | Self::UnbondingWrongOutputScript
            | Self::UnbondingWrongOutputValue
            | Self::UnbondingUnbuildableOutput => "confirmed_unbonding_transactions",
            Self::CovenantPathNotUnbonding | Self::UnrecognisedStakingSpend => {
                "confirmed_withdraw_staking_transactions"
            }
            Self::UnrecognisedUnbondingSpend => "confirmed_withdraw_unbonding_transactions",
        }
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one block contained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockCounts {
    pub active_stakings: u64,
    pub overflow_stakings: u64,
    pub unbondings: u64,
    pub withdrawals_from_staking: u64,
    pub withdrawals_from_unbonding: u64,
    /// Every invalid occurrence (one tx may count once per offending input).
    pub invalid: Vec<InvalidReason>,
}

impl BlockCounts {
    pub(crate) fn count_invalid(&mut self, reason: InvalidReason) {
        self.invalid.push(reason);
    }

    /// How many of the block's occurrences had this reason.
    pub fn invalid_count(&self, reason: InvalidReason) -> usize {
        self.invalid.iter().filter(|r| **r == reason).count()
    }
}
