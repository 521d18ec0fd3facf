//! The mempool and Core-like acceptance (`MemPoolAccept::PreChecks`, BIP125 replacement,
//! package limits, script checks), in Core's order so the first failing rule names the reason.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid, Wtxid};

use crate::chain::ChainState;
use crate::checks::{self, format_money};
use crate::coins::Coin;
use crate::error::{RejectReason, TxReject};
use crate::params;

/// A transaction in the mempool.
#[derive(Debug, Clone)]
pub struct MempoolEntry {
    /// The transaction.
    pub tx: Arc<Transaction>,
    /// Its txid.
    pub txid: Txid,
    /// Its wtxid.
    pub wtxid: Wtxid,
    /// Fee paid.
    pub fee: Amount,
    /// Virtual size.
    pub vsize: u64,
    /// Weight units.
    pub weight: u64,
    /// Unix time it entered.
    pub time: u64,
    /// Chain height when it entered.
    pub height: u32,
    /// Arrival order (parents always arrive before children).
    pub seq: u64,
}

impl MempoolEntry {
    /// Whether it signals BIP125 replaceability itself.
    pub fn signals_rbf(&self) -> bool {
        self.tx
            .input
            .iter()
            .any(|i| i.sequence.to_consensus_u32() < 0xffff_fffe)
    }
}

/// How a transaction is checked.
#[derive(Debug, Clone, Copy)]
pub struct AcceptOptions {
    /// Only test; do not add.
    pub test_only: bool,
    /// Skip the fee floor (used when transactions of disconnected blocks come back).
    pub bypass_fee_checks: bool,
    /// Wall-clock time in Unix seconds.
    pub now: u64,
    /// Refuse fees above this rate, in sat per 1000 vB (`maxfeerate`; `None` or 0: no cap).
    /// Checked after the scripts, as Core checks it after a full test acceptance.
    pub max_fee_rate: Option<u64>,
}

/// An accepted (or acceptable) transaction.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its txid.
    pub txid: Txid,
    /// Its wtxid.
    pub wtxid: Wtxid,
    /// Fee paid.
    pub fee: Amount,
    /// Virtual size.
    pub vsize: u64,
    /// Transactions it replaced.
    pub replaced: Vec<Txid>,
}

/// Unconfirmed transactions.
#[derive(Debug, Default, Clone)]
pub struct Mempool {
    entries: HashMap<Txid, MempoolEntry>,
    wtxids: HashMap<Wtxid, Txid>,
    spenders: HashMap<OutPoint, Txid>,
    next_seq: u64,
}

impl Mempool {
    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An entry by txid.
    pub fn get(&self, txid: &Txid) -> Option<&MempoolEntry> {
        self.entries.get(txid)
    }

    /// Whether a transaction with this wtxid is in the mempool (its scripts passed).
    pub fn contains_wtxid(&self, wtxid: &Wtxid) -> bool {
        self.wtxids.contains_key(wtxid)
    }

    /// The mempool transaction spending `outpoint`.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spenders.get(outpoint).copied()
    }

    /// All entries in arrival order (parents before children).
    pub fn entries_in_order(&self) -> Vec<&MempoolEntry> {
        let mut v: Vec<&MempoolEntry> = self.entries.values().collect();
        v.sort_by_key(|e| e.seq);
        v
    }

    /// Mempool parents of `txid`.
    pub fn parents(&self, txid: &Txid) -> Vec<Txid> {
        let Some(e) = self.entries.get(txid) else {
            return Vec::new();
        };
        let mut v: Vec<Txid> =
            e.tx.input
                .iter()
                .map(|i| i.previous_output.txid)
                .filter(|p| self.entries.contains_key(p))
                .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Mempool children of `txid`.
    pub fn children(&self, txid: &Txid) -> Vec<Txid> {
        let Some(e) = self.entries.get(txid) else {
            return Vec::new();
        };
        let mut v: Vec<Txid> = (0..e.tx.output.len() as u32)
            .filter_map(|vout| self.spenders.get(&OutPoint { txid: *txid, vout }).copied())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// All in-mempool ancestors (not including `txid`).
    pub fn ancestors(&self, txid: &Txid) -> HashSet<Txid> {
        self.walk(self.parents(txid), |t| self.parents(t))
    }

    /// All in-mempool descendants (not including `txid`).
    pub fn descendants(&self, txid: &Txid) -> HashSet<Txid> {
        self.walk(self.children(txid), |t| self.children(t))
    }

    fn walk(&self, start: Vec<Txid>, next: impl Fn(&Txid) -> Vec<Txid>) -> HashSet<Txid> {
        let mut seen: HashSet<Txid> = HashSet::new();
        let mut stack = start;
        while let Some(t) = stack.pop() {
            if seen.insert(t) {
                stack.extend(next(&t));
            }
        }
        seen
    }

    /// The output `outpoint` as the mempool sees it: created by a mempool transaction.
    fn mempool_output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.entries
            .get(&outpoint.txid)
            .and_then(|e| e.tx.output.get(outpoint.vout as usize))
    }

    /// Checks `tx` against the chain tip and this mempool, and adds it unless `test_only`.
    pub fn accept(
        &mut self,
        chain: &ChainState,
        tx: Transaction,
        opts: AcceptOptions,
    ) -> Result<Accepted, TxReject> {
        checks::check_transaction(&tx)?;
        if tx.is_coinbase() {
            return Err(TxReject::new(RejectReason::Coinbase));
        }
        checks::check_standard(&tx)?;
        let tip_height = chain.height();
        let next_height = tip_height + 1;
        let tip_mtp = chain.mtp(tip_height);
        if !checks::is_final(&tx, next_height, tip_mtp) {
            return Err(TxReject::new(RejectReason::NonFinal));
        }
        let txid = tx.compute_txid();
        let wtxid = tx.compute_wtxid();
        if self.wtxids.contains_key(&wtxid) {
            return Err(TxReject::new(RejectReason::AlreadyInMempool));
        }
        if self.entries.contains_key(&txid) {
            return Err(TxReject::new(RejectReason::SameNonwitnessDataInMempool));
        }

        // Conflicts (BIP125: every directly conflicting transaction must signal).
        let mut conflicts: Vec<Txid> = Vec::new();
        for input in &tx.input {
            if let Some(other) = self.spenders.get(&input.previous_output) {
                let signals = self
                    .entries
                    .get(other)
                    .is_some_and(MempoolEntry::signals_rbf);
                if !signals {
                    return Err(TxReject::new(RejectReason::MempoolConflict));
                }
                if !conflicts.contains(other) {
                    conflicts.push(*other);
                }
            }
        }

        // Inputs.
        let mut coins: Vec<Coin> = Vec::with_capacity(tx.input.len());
        for input in &tx.input {
            let op = &input.previous_output;
            if let Some(coin) = chain.coin(op) {
                coins.push(coin.clone());
            } else if let Some(out) = self.mempool_output(op) {
                coins.push(Coin {
                    output: out.clone(),
                    height: next_height,
                    is_coinbase: false,
                });
            } else {
                let known = (0..tx.output.len() as u32)
                    .any(|vout| chain.coin(&OutPoint { txid, vout }).is_some());
                return Err(TxReject::new(if known {
                    RejectReason::AlreadyKnown
                } else {
                    RejectReason::MissingInputs
                }));
            }
        }
        let heights: Vec<u32> = coins.iter().map(|c| c.height).collect();
        if !checks::sequence_locks_ok(&tx, &heights, next_height, tip_mtp, |h| chain.mtp(h)) {
            return Err(TxReject::new(RejectReason::NonBip68Final));
        }
        let fee = checks::check_tx_inputs(&tx, &coins, next_height)?;
        let weight = tx.weight().to_wu();
        let vsize = weight.div_ceil(4);
        if !opts.bypass_fee_checks {
            let min_fee = params::fee_for_vsize(params::MIN_RELAY_FEE.to_sat_per_kwu() * 4, vsize);
            if fee < min_fee {
                return Err(TxReject::with(
                    RejectReason::MinRelayFeeNotMet,
                    format!("{} < {}", fee.to_sat(), min_fee.to_sat()),
                ));
            }
        }

        // Package limits.
        let mut ancestors: HashSet<Txid> = HashSet::new();
        for input in &tx.input {
            let p = input.previous_output.txid;
            if self.entries.contains_key(&p) && ancestors.insert(p) {
                ancestors.extend(self.ancestors(&p));
            }
        }
        if ancestors.len() + 1 > params::ANCESTOR_LIMIT {
            return Err(TxReject::with(
                RejectReason::TooLongMempoolChain,
                format!(
                    "too many unconfirmed ancestors [limit: {}]",
                    params::ANCESTOR_LIMIT
                ),
            ));
        }
        for a in &ancestors {
            if self.descendants(a).len() + 2 > params::DESCENDANT_LIMIT {
                return Err(TxReject::with(
                    RejectReason::TooLongMempoolChain,
                    format!(
                        "too many descendants for tx {a} [limit: {}]",
                        params::DESCENDANT_LIMIT
                    ),
                ));
            }
        }

        // Replacement rules.
        let mut replaced: Vec<Txid> = Vec::new();
        if !conflicts.is_empty() {
            for c in &conflicts {
                if ancestors.contains(c) {
                    return Err(TxReject::with(
                        RejectReason::SpendsConflictingTx,
                        format!("{txid} spends conflicting transaction {c}"),
                    ));
                }
                let old = &self.entries[c];
                // new feerate > old feerate, compared as fee * other_size.
                if u128::from(fee.to_sat()) * u128::from(old.vsize)
                    <= u128::from(old.fee.to_sat()) * u128::from(vsize)
                {
                    return Err(TxReject::with(
                        RejectReason::InsufficientFee,
                        format!(
                            "rejecting replacement {txid}; new feerate {} <= old feerate {}",
                            feerate_string(fee, vsize),
                            feerate_string(old.fee, old.vsize)
                        ),
                    ));
                }
            }
            let mut all: HashSet<Txid> = HashSet::new();
            for c in &conflicts {
                all.insert(*c);
                all.extend(self.descendants(c));
            }
            if all.len() > params::MAX_REPLACEMENT_CANDIDATES {
                return Err(TxReject::with(
                    RejectReason::TooManyPotentialReplacements,
                    format!(
                        "rejecting replacement {txid}; too many potential replacements ({} > {})",
                        all.len(),
                        params::MAX_REPLACEMENT_CANDIDATES
                    ),
                ));
            }
            let old_fees: Amount = all
                .iter()
                .filter_map(|t| self.entries.get(t))
                .map(|e| e.fee)
                .sum();
            if fee < old_fees {
                return Err(TxReject::with(
                    RejectReason::InsufficientFee,
                    format!(
                        "rejecting replacement {txid}, less fees than conflicting txs; {} < {}",
                        format_money(fee),
                        format_money(old_fees)
                    ),
                ));
            }
            let relay =
                params::fee_for_vsize(params::INCREMENTAL_RELAY_FEE.to_sat_per_kwu() * 4, vsize);
            if fee - old_fees < relay {
                return Err(TxReject::with(
                    RejectReason::InsufficientFee,
                    format!(
                        "rejecting replacement {txid}, not enough additional fees to relay; {} < {}",
                        format_money(fee - old_fees),
                        format_money(relay)
                    ),
                ));
            }
            replaced = all.into_iter().collect();
        }

        let spent: Vec<TxOut> = coins.into_iter().map(|c| c.output).collect();
        checks::verify_scripts(&tx, &spent)?;
        if let Some(rate) = opts.max_fee_rate.filter(|r| *r > 0) {
            if fee > params::fee_for_vsize(rate, vsize) {
                return Err(TxReject::new(RejectReason::MaxFeeExceeded));
            }
        }

        let accepted = Accepted {
            txid,
            wtxid,
            fee,
            vsize,
            replaced,
        };
        if !opts.test_only {
            for r in &accepted.replaced {
                self.remove_one(r);
            }
            self.insert(MempoolEntry {
                tx: Arc::new(tx),
                txid,
                wtxid,
                fee,
                vsize,
                weight,
                time: opts.now,
                height: tip_height,
                seq: 0,
            });
        }
        Ok(accepted)
    }

    fn insert(&mut self, mut entry: MempoolEntry) {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        for input in &entry.tx.input {
            self.spenders.insert(input.previous_output, entry.txid);
        }
        self.wtxids.insert(entry.wtxid, entry.txid);
        self.entries.insert(entry.txid, entry);
    }

    /// Removes one transaction (not its descendants).
    fn remove_one(&mut self, txid: &Txid) -> Option<MempoolEntry> {
        let entry = self.entries.remove(txid)?;
        for input in &entry.tx.input {
            if self.spenders.get(&input.previous_output) == Some(txid) {
                self.spenders.remove(&input.previous_output);
            }
        }
        self.wtxids.remove(&entry.wtxid);
        Some(entry)
    }

    /// Removes a transaction and all its descendants.
    pub fn remove_recursive(&mut self, txid: &Txid) {
        let mut all = self.descendants(txid);
        all.insert(*txid);
        for t in all {
            self.remove_one(&t);
        }
    }

    /// After a block is connected: drop its transactions, and anything that conflicts with them.
    pub fn remove_for_block(&mut self, txs: &[Transaction]) {
        for tx in txs.iter().filter(|t| !t.is_coinbase()) {
            let txid = tx.compute_txid();
            if self.remove_one(&txid).is_none() {
                for input in &tx.input {
                    if let Some(conflict) = self.spenders.get(&input.previous_output).copied() {
                        self.remove_recursive(&conflict);
                    }
                }
            }
        }
    }

    /// Empties the mempool, returning its transactions in arrival order.
    pub fn drain(&mut self) -> Vec<Transaction> {
        let txs = self
            .entries_in_order()
            .into_iter()
            .map(|e| (*e.tx).clone())
            .collect();
        self.entries.clear();
        self.wtxids.clear();
        self.spenders.clear();
        txs
    }

    /// Transactions for the next block: arrival order (parents first), skipping what does not
    /// fit in `max_weight` and everything that depends on a skipped transaction. Returns them
    /// with their total fee.
    pub fn block_template(&self, max_weight: u64) -> (Vec<Transaction>, Amount) {
        let mut weight = 0;
        let mut fees = Amount::ZERO;
        let mut skipped: HashSet<Txid> = HashSet::new();
        let mut txs = Vec::new();
        for e in self.entries_in_order() {
            let depends_on_skipped =
                e.tx.input
                    .iter()
                    .any(|i| skipped.contains(&i.previous_output.txid));
            if depends_on_skipped || weight + e.weight > max_weight {
                skipped.insert(e.txid);
                continue;
            }
            weight += e.weight;
            fees += e.fee;
            txs.push((*e.tx).clone());
        }
        (txs, fees)
    }
}

/// Core's `CFeeRate::ToString()`: `"0.00001000 BTC/kvB"`.
pub fn feerate_string(fee: Amount, vsize: u64) -> String {
    let per_kvb = (fee.to_sat() * 1000).checked_div(vsize).unwrap_or(0);
    format!(
        "{}.{:08} BTC/kvB",
        per_kvb / 100_000_000,
        per_kvb % 100_000_000
    )
}
