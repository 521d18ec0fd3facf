//! Unconfirmed TVL (`docs/rules.md#unconfirmed-tvl`): a read-only pass over the unconfirmed
//! window, computed for the `btc_info` event. Nothing about unconfirmed blocks is written.

use std::collections::HashMap;

use bitcoin::{Amount, OutPoint};
use staking_core::params::{BlockHeight, GlobalParams};
use staking_core::spend::{recognise_staking_spend, KnownStaking, StakingSpend};
use staking_core::staking_tx::{classify_under, StakingTxClass};
use staking_core::unbonding::UnbondingTerms;
use store::StakingTx;

use crate::processor::Stake;
use crate::window::HeightBlock;

/// The result of one pass, with the reference's counters for unconfirmed txs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnconfirmedInfo {
    /// Height of the window's tip.
    pub height: u32,
    pub confirmed_tvl: Amount,
    pub unconfirmed_tvl: Amount,
    pub invalid_stakings: u64,
    pub invalid_unbondings: u64,
    pub unknown_spends: u64,
}

/// Why the pass failed (not fatal: the reference counts it and goes on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnconfirmedError {
    #[error("unconfirmed TVL would be negative: confirmed {confirmed} sat, delta {delta} sat")]
    Negative { confirmed: u64, delta: i128 },
    #[error("stored staking tx {0} has a params version the loaded params lack")]
    UnknownVersion(bitcoin::Txid),
    #[error("cannot rebuild the scripts of staking tx {0}")]
    Script(bitcoin::Txid),
}

struct Entry {
    value: Amount,
    overflow: bool,
    known: KnownStaking,
}

fn entry(
    params: &GlobalParams,
    version: u64,
    stake: Stake,
    overflow: bool,
) -> Result<Entry, UnconfirmedError> {
    let outpoint = OutPoint::new(stake.txid, stake.output_index);
    let value = stake.value;
    let v = params
        .version(version)
        .ok_or(UnconfirmedError::UnknownVersion(outpoint.txid))?;
    let keys = v
        .staking_keys(stake.staker, stake.finality_provider)
        .map_err(|_| UnconfirmedError::Script(outpoint.txid))?;
    let terms = UnbondingTerms {
        unbonding_time: v.unbonding_time,
        unbonding_fee: v.unbonding_fee,
    };
    let known = KnownStaking::new(keys, stake.staking_time, outpoint, value, terms)
        .map_err(|_| UnconfirmedError::Script(outpoint.txid))?;
    Ok(Entry {
        value,
        overflow,
        known,
    })
}

/// Computes the unconfirmed TVL over `blocks` (oldest first). `stored` are the stored staking
/// txs whose staking outputs the window's txs spend.
pub fn unconfirmed_info<'a>(
    blocks: impl IntoIterator<Item = &'a HeightBlock>,
    params: &GlobalParams,
    stored: &[StakingTx],
    confirmed_tvl: Amount,
) -> Result<Option<UnconfirmedInfo>, UnconfirmedError> {
    let mut stored_by_outpoint = HashMap::with_capacity(stored.len());
    for s in stored {
        let e = entry(
            params,
            u64::from(s.params_version),
            Stake::of_stored(s),
            s.is_overflow,
        )?;
        stored_by_outpoint.insert(s.staking_outpoint(), e);
    }
    let mut fresh: HashMap<OutPoint, Entry> = HashMap::new();
    let mut delta: i128 = 0;
    let mut info = UnconfirmedInfo {
        height: 0,
        confirmed_tvl,
        unconfirmed_tvl: confirmed_tvl,
        invalid_stakings: 0,
        invalid_unbondings: 0,
        unknown_spends: 0,
    };
    let mut any = false;
    for hb in blocks {
        any = true;
        info.height = hb.height;
        let version = params.for_height(BlockHeight::from(hb.height));
        for tx in &hb.block.txdata {
            if let Some(version) = version {
                match classify_under(tx, version) {
                    StakingTxClass::Valid(p) => {
                        delta += i128::from(p.staking_value.to_sat());
                        let txid = tx.compute_txid();
                        let outpoint = OutPoint::new(txid, p.staking_output_index);
                        let e = entry(params, version.version, Stake::of_parsed(txid, &p), false)?;
                        fresh.insert(outpoint, e);
                        continue;
                    }
                    StakingTxClass::Invalid { .. } => {
                        info.invalid_stakings += 1;
                        continue;
                    }
                    StakingTxClass::NotStaking(_) => {}
                }
            }
            let spent = tx.input.iter().enumerate().find_map(|(i, input)| {
                stored_by_outpoint
                    .get(&input.previous_output)
                    .map(|e| (i, e))
            });
            let spent = spent.or_else(|| {
                tx.input
                    .iter()
                    .enumerate()
                    .find_map(|(i, input)| fresh.get(&input.previous_output).map(|e| (i, e)))
            });
            let Some((index, e)) = spent else { continue };
            match recognise_staking_spend(tx, index, &e.known) {
                StakingSpend::Unbonding => {
                    if !e.overflow {
                        delta -= i128::from(e.value.to_sat());
                    }
                }
                StakingSpend::InvalidUnbonding(_) => info.invalid_unbondings += 1,
                StakingSpend::Withdrawal | StakingSpend::Other => info.unknown_spends += 1,
            }
        }
    }
    if !any {
        return Ok(None);
    }
    let total = i128::from(confirmed_tvl.to_sat()) + delta;
    let total = u64::try_from(total).map_err(|_| UnconfirmedError::Negative {
        confirmed: confirmed_tvl.to_sat(),
        delta,
    })?;
    info.unconfirmed_tvl = Amount::from_sat(total);
    Ok(Some(info))
}
