//! The pure block processor: one confirmed block, the params and a read view of the stored state
//! in, everything the block implies (rows, TVL, outbox events, counts) out. No I/O, so every rule
//! of `docs/rules.md#block-processing` (with `docs/rules.md#cap-boundary` and
//! `docs/rules.md#indexer-tvl`) is unit-testable.
//!
//! Order inside a block is the reference's: for each transaction in block order (coinbase
//! included) first the staking parse, then spends of staking outputs in input order, then spends
//! of unbonding transactions in input order. Later transactions see earlier ones (a stake and its
//! unbonding in the same block both count).

use std::collections::{HashMap, HashSet};

use bitcoin::{Amount, Block, BlockHash, OutPoint, Transaction, Txid};
use events::{
    ActiveStakingEvent, ConfirmedInfoEvent, Event, UnbondingStakingEvent, WithdrawStakingEvent,
    WithdrawTx,
};
use staking_core::params::{BlockHeight, GlobalParams, ParamsVersion, StakingCap};
use staking_core::spend::{
    recognise_staking_spend, recognise_unbonding_spend, KnownStaking, StakingSpend, UnbondingSpend,
};
use staking_core::staking_tx::{classify_under, ParsedStaking, StakingTxClass};
use staking_core::unbonding::{InvalidUnbonding, UnbondingTerms};
use store::{BlockWrite, InvalidTx, InvalidTxKind, OutboxEvent, StakingTx, UnbondingTx};

use crate::error::ProcessError;
use crate::outcome::{BlockCounts, InvalidReason};

/// What the store already knows that this block may touch, fetched in one batch before the
/// block is processed (see `driver`).
#[derive(Debug, Clone, Default)]
pub struct StoredView {
    /// Stored staking txs whose staking output a tx of the block spends, and the staking txs of
    /// the stored unbonding txs below.
    pub stakings: Vec<StakingTx>,
    /// Stored unbonding txs that a tx of the block spends.
    pub unbondings: Vec<UnbondingTx>,
    /// Replay only: `is_overflow` of staking txs of this very block that are already stored
    /// (the reference reuses the stored flag and does not count TVL twice).
    pub already_stored: HashMap<Txid, bool>,
    /// Replay only: staking txids whose unbonding is already stored (TVL not lowered twice).
    pub already_unbonded: HashSet<Txid>,
}

/// The block and what the processor needs besides it.
#[derive(Debug, Clone, Copy)]
pub struct BlockInput<'a> {
    pub height: u32,
    pub block: &'a Block,
    /// The block's hash (computed once by the caller).
    pub hash: BlockHash,
    pub params: &'a GlobalParams,
    /// Confirmed TVL before this block.
    pub confirmed_tvl: Amount,
    /// Emit a `ConfirmedInfoEvent` after the block (reference `ExtraEventEnabled`).
    pub extra_event_enabled: bool,
}

/// Everything the block implies, ready for `IndexerStore::apply_block`.
#[derive(Debug, Clone)]
pub struct ProcessedBlock {
    pub write: BlockWrite,
    pub counts: BlockCounts,
    /// Confirmed TVL after the block.
    pub confirmed_tvl: Amount,
}

/// A staking output the block may spend: stored, or created earlier in this block.
#[derive(Debug)]
struct Known {
    txid: Txid,
    is_overflow: bool,
    value: Amount,
    unbonding_time: u16,
    spend: KnownStaking,
}

/// The facts of a staking output that its spends are checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stake {
    pub txid: Txid,
    pub output_index: u32,
    pub staker: bitcoin::XOnlyPublicKey,
    pub finality_provider: bitcoin::XOnlyPublicKey,
    pub staking_time: u16,
    pub value: Amount,
}

impl Stake {
    pub(crate) fn of_stored(s: &StakingTx) -> Stake {
        Stake {
            txid: s.txid,
            output_index: s.staking_output_index,
            staker: s.staker_pk,
            finality_provider: s.finality_provider_pk,
            staking_time: s.staking_time,
            value: s.value,
        }
    }

    pub(crate) fn of_parsed(txid: Txid, p: &ParsedStaking) -> Stake {
        Stake {
            txid,
            output_index: p.staking_output_index,
            staker: p.staker,
            finality_provider: p.finality_provider,
            staking_time: p.staking_time,
            value: p.staking_value,
        }
    }
}

fn known_of(
    stake: Stake,
    is_overflow: bool,
    version: &ParamsVersion,
) -> Result<Known, ProcessError> {
    let Stake {
        txid,
        output_index,
        staker,
        finality_provider,
        staking_time,
        value,
    } = stake;
    let keys = version
        .staking_keys(staker, finality_provider)
        .map_err(|e| ProcessError::Script {
            txid,
            reason: e.to_string(),
        })?;
    let terms = UnbondingTerms {
        unbonding_time: version.unbonding_time,
        unbonding_fee: version.unbonding_fee,
    };
    let spend = KnownStaking::new(
        keys,
        staking_time,
        OutPoint::new(txid, output_index),
        value,
        terms,
    )
    .map_err(|e| ProcessError::Script {
        txid,
        reason: e.to_string(),
    })?;
    Ok(Known {
        txid,
        is_overflow,
        value,
        unbonding_time: version.unbonding_time,
        spend,
    })
}

fn known_of_stored(s: &StakingTx, params: &GlobalParams) -> Result<Known, ProcessError> {
    let version =
        params
            .version(u64::from(s.params_version))
            .ok_or(ProcessError::UnknownParamsVersion {
                txid: s.txid,
                version: s.params_version,
            })?;
    known_of(Stake::of_stored(s), s.is_overflow, version)
}

/// Stable snake_case reason of an invalid unbonding (stored with the tx, used as metric label).
pub fn invalid_unbonding_reason(reason: &InvalidUnbonding) -> InvalidReason {
    match reason {
        InvalidUnbonding::Replaceable(_) => InvalidReason::UnbondingReplaceable,
        InvalidUnbonding::LockTime(_) => InvalidReason::UnbondingLockTime,
        InvalidUnbonding::ValueTooLow { .. } => InvalidReason::UnbondingStakingValueTooLow,
        InvalidUnbonding::OutputScript(_) => InvalidReason::UnbondingWrongOutputScript,
        InvalidUnbonding::OutputValue { .. } => InvalidReason::UnbondingWrongOutputValue,
        InvalidUnbonding::Script(_) => InvalidReason::UnbondingUnbuildableOutput,
    }
}

/// The overflow rule (`docs/rules.md#cap-boundary`) for a new (not yet stored) valid staking tx.
pub fn is_overflow(version: &ParamsVersion, height: u32, tvl_before: Amount) -> bool {
    match version.cap {
        StakingCap::Height(cap_height) => BlockHeight::from(height) > cap_height,
        StakingCap::Amount(cap) => tvl_before >= cap,
    }
}

/// Mutable state while walking one block.
struct Walk<'a> {
    input: BlockInput<'a>,
    view_overflow: &'a HashMap<Txid, bool>,
    already_unbonded: &'a HashSet<Txid>,
    by_outpoint: HashMap<OutPoint, Known>,
    /// Unbonding txid → staking outpoint of the stake it unbonded.
    unbondings: HashMap<Txid, OutPoint>,
    tvl: Amount,
    write: BlockWrite,
    counts: BlockCounts,
    seen_invalid: HashSet<(Txid, InvalidTxKind)>,
    timestamp: i64,
}

/// Processes one confirmed block. Fails only on inconsistent stored state (a stored row whose
/// params version is gone, TVL going negative), never on chain data.
pub fn process_block(
    input: BlockInput<'_>,
    view: &StoredView,
) -> Result<ProcessedBlock, ProcessError> {
    let block = input.block;
    let version = input.params.for_height(BlockHeight::from(input.height));
    let mut by_outpoint = HashMap::with_capacity(view.stakings.len());
    for s in &view.stakings {
        by_outpoint.insert(s.staking_outpoint(), known_of_stored(s, input.params)?);
    }
    let mut unbondings = HashMap::with_capacity(view.unbondings.len());
    for u in &view.unbondings {
        let staking = view
            .stakings
            .iter()
            .find(|s| s.txid == u.staking_txid)
            .ok_or(ProcessError::MissingStakingOfUnbonding {
                unbonding: u.txid,
                staking: u.staking_txid,
            })?;
        unbondings.insert(u.txid, staking.staking_outpoint());
    }
    let mut walk = Walk {
        input,
        view_overflow: &view.already_stored,
        already_unbonded: &view.already_unbonded,
        by_outpoint,
        unbondings,
        tvl: input.confirmed_tvl,
        write: BlockWrite {
            height: input.height,
            hash: input.hash,
            prev_hash: block.header.prev_blockhash,
            stakings: Vec::new(),
            unbondings: Vec::new(),
            invalids: Vec::new(),
            events: Vec::new(),
        },
        counts: BlockCounts::default(),
        seen_invalid: HashSet::new(),
        timestamp: i64::from(block.header.time),
    };
    for (position, tx) in block.txdata.iter().enumerate() {
        let txid = tx.compute_txid();
        if let Some(version) = version {
            walk.staking_step(tx, txid, position, version)?;
        }
        if walk.by_outpoint.is_empty() && walk.unbondings.is_empty() {
            continue;
        }
        walk.staking_spends(tx, txid)?;
        walk.unbonding_spends(tx, txid);
    }
    if input.extra_event_enabled {
        walk.push_event(Event::ConfirmedInfo(ConfirmedInfoEvent {
            height: u64::from(input.height),
            tvl: walk.tvl,
        }));
    }
    Ok(ProcessedBlock {
        write: walk.write,
        counts: walk.counts,
        confirmed_tvl: walk.tvl,
    })
}

impl Walk<'_> {
    fn push_event(&mut self, event: Event) {
        self.write.events.push(OutboxEvent {
            queue: event.queue().as_str().to_owned(),
            payload: event.to_json(),
        });
    }

    fn invalid(
        &mut self,
        tx: &Transaction,
        txid: Txid,
        kind: InvalidTxKind,
        reason: InvalidReason,
    ) {
        self.counts.count_invalid(reason);
        if self.seen_invalid.insert((txid, kind)) {
            self.write.invalids.push(InvalidTx {
                txid,
                kind,
                height: self.input.height,
                block_hash: self.input.hash,
                reason: reason.as_str().to_owned(),
                tx: Some(tx.clone()),
            });
        }
    }

    fn staking_step(
        &mut self,
        tx: &Transaction,
        txid: Txid,
        position: usize,
        version: &ParamsVersion,
    ) -> Result<(), ProcessError> {
        match classify_under(tx, version) {
            StakingTxClass::NotStaking(_) => Ok(()),
            StakingTxClass::Invalid { reason, .. } => {
                tracing::warn!(%txid, height = self.input.height, %reason, "invalid staking tx: recorded, not emitted");
                self.invalid(
                    tx,
                    txid,
                    InvalidTxKind::Staking,
                    InvalidReason::Staking(reason.code()),
                );
                Ok(())
            }
            StakingTxClass::Valid(parsed) => {
                self.valid_staking(tx, txid, position, version, &parsed)
            }
        }
    }

    fn valid_staking(
        &mut self,
        tx: &Transaction,
        txid: Txid,
        position: usize,
        version: &ParamsVersion,
        parsed: &ParsedStaking,
    ) -> Result<(), ProcessError> {
        let height = self.input.height;
        let stored = self.view_overflow.get(&txid).copied();
        let overflow = match stored {
            Some(flag) => flag,
            None => {
                let flag = is_overflow(version, height, self.tvl);
                if !flag {
                    self.tvl = self
                        .tvl
                        .checked_add(parsed.staking_value)
                        .ok_or(ProcessError::TvlOverflow { txid })?;
                }
                flag
            }
        };
        if overflow {
            self.counts.overflow_stakings += 1;
        } else {
            self.counts.active_stakings += 1;
        }
        let known = known_of(Stake::of_parsed(txid, parsed), overflow, version)?;
        self.by_outpoint.insert(known.spend.outpoint(), known);
        let params_version = u32::try_from(version.version)
            .map_err(|_| ProcessError::VersionTooLarge(version.version))?;
        self.write.stakings.push(StakingTx {
            txid,
            tx: tx.clone(),
            staking_output_index: parsed.staking_output_index,
            inclusion_height: height,
            block_hash: self.input.hash,
            position_in_block: u32::try_from(position).unwrap_or(u32::MAX),
            staker_pk: parsed.staker,
            finality_provider_pk: parsed.finality_provider,
            staking_time: parsed.staking_time,
            value: parsed.staking_value,
            is_overflow: overflow,
            params_version,
        });
        self.push_event(Event::ActiveStaking(ActiveStakingEvent {
            staking_tx_hash: txid,
            staker_pk: parsed.staker,
            finality_provider_pk: parsed.finality_provider,
            staking_value: parsed.staking_value,
            staking_start_height: u64::from(height),
            staking_start_timestamp: self.timestamp,
            staking_timelock: u64::from(parsed.staking_time),
            staking_output_index: u64::from(parsed.staking_output_index),
            staking_tx: tx.clone(),
            is_overflow: overflow,
        }));
        Ok(())
    }

    fn staking_spends(&mut self, tx: &Transaction, txid: Txid) -> Result<(), ProcessError> {
        if self.by_outpoint.is_empty() {
            return Ok(());
        }
        for (index, input) in tx.input.iter().enumerate() {
            let Some(known) = self.by_outpoint.get(&input.previous_output) else {
                continue;
            };
            let verdict = recognise_staking_spend(tx, index, &known.spend);
            let staking_txid = known.txid;
            let (value, overflow, unbonding_time) =
                (known.value, known.is_overflow, known.unbonding_time);
            let outpoint = known.spend.outpoint();
            let covenant_path =
                revealed(tx, index) == Some(known.spend.unbonding_leaf().as_bytes());
            match verdict {
                StakingSpend::Unbonding => {
                    self.counts.unbondings += 1;
                    if !overflow && !self.already_unbonded.contains(&staking_txid) {
                        self.tvl =
                            self.tvl
                                .checked_sub(value)
                                .ok_or(ProcessError::NegativeTvl {
                                    tvl: self.tvl,
                                    value,
                                    unbonding: txid,
                                })?;
                    }
                    self.unbondings.insert(txid, outpoint);
                    self.write.unbondings.push(UnbondingTx {
                        txid,
                        tx: tx.clone(),
                        staking_txid,
                        height: self.input.height,
                        block_hash: self.input.hash,
                    });
                    self.push_event(Event::UnbondingStaking(UnbondingStakingEvent {
                        staking_tx_hash: staking_txid,
                        unbonding_start_height: u64::from(self.input.height),
                        unbonding_start_timestamp: self.timestamp,
                        unbonding_timelock: u64::from(unbonding_time),
                        unbonding_output_index: 0,
                        unbonding_tx: tx.clone(),
                        unbonding_tx_hash: txid,
                    }));
                }
                StakingSpend::InvalidUnbonding(reason) => {
                    tracing::warn!(%txid, staking = %staking_txid, %reason, "invalid unbonding tx: recorded, not emitted");
                    self.invalid(
                        tx,
                        txid,
                        InvalidTxKind::Unbonding,
                        invalid_unbonding_reason(&reason),
                    );
                }
                StakingSpend::Withdrawal => {
                    self.counts.withdrawals_from_staking += 1;
                    self.withdraw_event(tx, txid, staking_txid);
                }
                StakingSpend::Other => {
                    let reason = if covenant_path {
                        // The reference's classification, plus its own label
                        // (`docs/decisions.md#kept-reference-behaviours`).
                        tracing::warn!(%txid, staking = %staking_txid, "covenant-path spend of a staking output in a tx that is not 1-in/1-out");
                        InvalidReason::CovenantPathNotUnbonding
                    } else {
                        tracing::warn!(%txid, staking = %staking_txid, "spend of a staking output that is neither unbonding nor withdrawal");
                        InvalidReason::UnrecognisedStakingSpend
                    };
                    self.invalid(tx, txid, InvalidTxKind::WithdrawStaking, reason);
                }
            }
        }
        Ok(())
    }

    fn unbonding_spends(&mut self, tx: &Transaction, txid: Txid) {
        if self.unbondings.is_empty() {
            return;
        }
        for (index, input) in tx.input.iter().enumerate() {
            let Some(outpoint) = self.unbondings.get(&input.previous_output.txid) else {
                continue;
            };
            let Some(known) = self.by_outpoint.get(outpoint) else {
                continue;
            };
            let staking_txid = known.txid;
            match recognise_unbonding_spend(tx, index, &known.spend) {
                UnbondingSpend::Withdrawal => {
                    self.counts.withdrawals_from_unbonding += 1;
                    self.withdraw_event(tx, txid, staking_txid);
                }
                UnbondingSpend::Other => {
                    tracing::warn!(%txid, staking = %staking_txid, "spend of an unbonding output that is not a withdrawal");
                    self.invalid(
                        tx,
                        txid,
                        InvalidTxKind::WithdrawUnbonding,
                        InvalidReason::UnrecognisedUnbondingSpend,
                    );
                }
            }
        }
    }

    fn withdraw_event(&mut self, tx: &Transaction, txid: Txid, staking_txid: Txid) {
        self.push_event(Event::WithdrawStaking(WithdrawStakingEvent {
            staking_tx_hash: staking_txid,
            withdraw: Some(WithdrawTx {
                txid,
                btc_height: u64::from(self.input.height),
                tx: tx.clone(),
            }),
        }));
    }
}

fn revealed(tx: &Transaction, index: usize) -> Option<&[u8]> {
    let witness = &tx.input.get(index)?.witness;
    let n = witness.len();
    if n < 2 {
        return None;
    }
    witness.nth(n - 2)
}

/// Every prevout the block's transactions spend (coinbase excluded), for the batch lookup.
pub fn prevouts(block: &Block) -> Vec<OutPoint> {
    let count = block.txdata.iter().skip(1).map(|tx| tx.input.len()).sum();
    let mut out = Vec::with_capacity(count);
    for tx in block.txdata.iter().skip(1) {
        out.extend(tx.input.iter().map(|i| i.previous_output));
    }
    out
}
