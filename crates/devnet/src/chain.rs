//! The block tree, the active chain and its UTXO set: Core's `CheckBlock`, `ContextualCheckBlock`
//! and `ConnectBlock`, block disconnection with undo data, `invalidateblock` / `reconsiderblock`
//! and best-chain activation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bitcoin::blockdata::constants::genesis_block;
use bitcoin::hashes::Hash;
use bitcoin::{
    Amount, Block, BlockHash, Network, OutPoint, ScriptBuf, Target, Transaction, TxOut, Txid, Wtxid,
};

use crate::checks;
use crate::coins::Coin;
use crate::error::{BlockReject, RejectReason, TxReject};
use crate::params;
use crate::script_index::{ScriptIndex, TxPos};

/// A block the devnet knows, on the active chain or not.
#[derive(Debug)]
pub struct BlockEntry {
    /// The block.
    pub block: Arc<Block>,
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// Marked invalid (by `invalidateblock` or by failing validation).
    pub invalid: bool,
    /// Order of arrival; the first-seen block wins a tie.
    seq: u64,
    /// Coins spent by the block, in input order, while it is connected.
    undo: Option<Vec<Coin>>,
}

impl BlockEntry {
    /// Fee of every transaction in the block (coinbase: `None`), known while the block is on the
    /// active chain.
    pub fn tx_fees(&self) -> Option<Vec<Option<Amount>>> {
        let undo = self.undo.as_ref()?;
        let mut spent = undo.iter();
        let fees = self
            .block
            .txdata
            .iter()
            .map(|tx| {
                if tx.is_coinbase() {
                    return None;
                }
                let value_in: Amount = spent
                    .by_ref()
                    .take(tx.input.len())
                    .map(|c| c.output.value)
                    .sum();
                let value_out: Amount = tx.output.iter().map(|o| o.value).sum();
                value_in.checked_sub(value_out)
            })
            .collect();
        Some(fees)
    }

    /// The coins this block's inputs spent, in input order, while it is connected.
    pub fn spent_coins(&self) -> Option<&[Coin]> {
        self.undo.as_deref()
    }
}

/// Where a confirmed transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// The block.
    pub block: BlockHash,
    /// Position in the block.
    pub index: usize,
}

/// What a chain switch did.
#[derive(Debug, Default)]
pub struct Reorg {
    /// Non-coinbase transactions of disconnected blocks, oldest block first, in block order.
    pub disconnected_txs: Vec<Transaction>,
    /// Blocks connected, in order.
    pub connected: Vec<BlockHash>,
}

/// The chain: all known blocks, the active chain, its UTXO set and transaction index.
#[derive(Debug)]
pub struct ChainState {
    entries: HashMap<BlockHash, BlockEntry>,
    active: Vec<BlockHash>,
    utxo: HashMap<OutPoint, Coin>,
    tx_index: HashMap<Txid, TxLocation>,
    next_seq: u64,
    watch: ScriptBuf,
    watched: HashSet<OutPoint>,
    scripts: ScriptIndex,
}

impl ChainState {
    /// A chain holding only the regtest genesis block. Outputs paying `watch` are tracked so the
    /// faucet finds its coins without scanning the UTXO set.
    pub fn new(watch: ScriptBuf) -> Self {
        let genesis = genesis_block(Network::Regtest);
        let hash = genesis.block_hash();
        let mut entries = HashMap::new();
        entries.insert(
            hash,
            BlockEntry {
                block: Arc::new(genesis),
                hash,
                height: 0,
                invalid: false,
                seq: 0,
                undo: Some(Vec::new()),
            },
        );
        Self {
            entries,
            active: vec![hash],
            utxo: HashMap::new(),
            tx_index: HashMap::new(),
            next_seq: 1,
            watch,
            watched: HashSet::new(),
            scripts: ScriptIndex::default(),
        }
    }

    /// The active tip.
    pub fn tip(&self) -> &BlockEntry {
        self.active
            .last()
            .and_then(|h| self.entries.get(h))
            .unwrap_or_else(|| unreachable_entry())
    }

    /// Height of the active tip.
    pub fn height(&self) -> u32 {
        (self.active.len() - 1) as u32
    }

    /// Hash of the active block at `height`.
    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        self.active.get(height as usize).copied()
    }

    /// Any known block.
    pub fn entry(&self, hash: &BlockHash) -> Option<&BlockEntry> {
        self.entries.get(hash)
    }

    /// Whether `hash` is on the active chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.entries
            .get(hash)
            .is_some_and(|e| self.hash_at(e.height) == Some(*hash))
    }

    /// Every known block (for `getchaintips`-like views and tests).
    pub fn entries(&self) -> impl Iterator<Item = &BlockEntry> {
        self.entries.values()
    }

    /// Median-time-past of the active block at `height` (median of it and its 10 predecessors).
    pub fn mtp(&self, height: u32) -> u32 {
        let end = (height as usize).min(self.active.len() - 1);
        let start = end.saturating_sub(10);
        let mut times: Vec<u32> = self.active[start..=end]
            .iter()
            .filter_map(|h| self.entries.get(h))
            .map(|e| e.block.header.time)
            .collect();
        times.sort_unstable();
        times[times.len() / 2]
    }

    /// Median-time-past of block `hash` on any branch (median of it and its 10 predecessors);
    /// a block's own timestamp must be above its parent's.
    pub fn median_time_past(&self, hash: &BlockHash) -> u32 {
        let mut times = Vec::with_capacity(11);
        let mut cursor = self.entries.get(hash);
        while let Some(e) = cursor {
            times.push(e.block.header.time);
            if times.len() == 11 || e.height == 0 {
                break;
            }
            cursor = self.entries.get(&e.block.header.prev_blockhash);
        }
        times.sort_unstable();
        times.get(times.len() / 2).copied().unwrap_or(0)
    }

    /// An unspent confirmed output.
    pub fn coin(&self, outpoint: &OutPoint) -> Option<&Coin> {
        self.utxo.get(outpoint)
    }

    /// Every unspent confirmed output (for `scantxoutset`).
    pub fn utxos(&self) -> impl Iterator<Item = (&OutPoint, &Coin)> {
        self.utxo.iter()
    }

    /// Number of unspent outputs.
    pub fn utxo_count(&self) -> usize {
        self.utxo.len()
    }

    /// Where a confirmed transaction is (full transaction index over the active chain).
    pub fn tx_location(&self, txid: &Txid) -> Option<TxLocation> {
        self.tx_index.get(txid).copied()
    }

    /// The address index: confirmed transactions paying or spending scripts with this key
    /// ([`crate::script_index::key_of`]), oldest first.
    pub fn script_history(&self, key: u64) -> &[TxPos] {
        self.scripts.history(key)
    }

    /// The active block at `height`.
    pub fn active_entry(&self, height: u32) -> Option<&BlockEntry> {
        self.hash_at(height).and_then(|h| self.entries.get(&h))
    }

    /// A confirmed transaction by its position on the active chain.
    pub fn tx_at(&self, pos: TxPos) -> Option<(&BlockEntry, &Transaction)> {
        let entry = self.active_entry(pos.height)?;
        let tx = entry.block.txdata.get(pos.index as usize)?;
        Some((entry, tx))
    }

    /// Unspent outputs paying the watched script (the faucet's).
    pub fn watched_coins(&self) -> impl Iterator<Item = (&OutPoint, &Coin)> {
        self.watched
            .iter()
            .filter_map(|o| self.utxo.get(o).map(|c| (o, c)))
    }

    /// `CheckBlock` plus the header checks against its parent; on success the block is stored
    /// (not connected). Returns its hash; a block already known is not an error.
    pub fn accept_block(&mut self, block: Block, now: u32) -> Result<BlockHash, BlockReject> {
        let hash = block.block_hash();
        if self.entries.contains_key(&hash) {
            return Ok(hash);
        }
        let parent = self
            .entries
            .get(&block.header.prev_blockhash)
            .ok_or_else(|| {
                BlockReject::with(
                    "prev-blk-not-found",
                    block.header.prev_blockhash.to_string(),
                )
            })?;
        if parent.invalid {
            return Err(BlockReject::new("bad-prevblk"));
        }
        let height = parent.height + 1;
        check_block(&block)?;
        if block.header.bits != params::pow_bits() {
            return Err(BlockReject::with("bad-diffbits", "incorrect proof of work"));
        }
        if block.header.time <= self.median_time_past(&block.header.prev_blockhash) {
            return Err(BlockReject::with(
                "time-too-old",
                "block's timestamp is too early",
            ));
        }
        if block.header.time > now.saturating_add(params::MAX_FUTURE_BLOCK_TIME) {
            return Err(BlockReject::with(
                "time-too-new",
                "block timestamp too far in the future",
            ));
        }
        if block.header.version.to_consensus() < 4 {
            return Err(BlockReject::with(
                &format!("bad-version(0x{:08x})", block.header.version.to_consensus()),
                "rejected nVersion block",
            ));
        }
        contextual_check_block(&block, height)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(
            hash,
            BlockEntry {
                block: Arc::new(block),
                hash,
                height,
                invalid: false,
                seq,
                undo: None,
            },
        );
        Ok(hash)
    }

    /// Drops a stored block that is not on the active chain (one that failed to connect when
    /// submitted, so `generateblock` leaves no trace of a refused block, as Core's
    /// `TestBlockValidity`).
    pub fn forget(&mut self, hash: &BlockHash) {
        if !self.is_active(hash) {
            self.entries.remove(hash);
        }
    }

    /// `ConnectBlock` for a stored block whose parent is the tip. Scripts of transactions for
    /// which `scripts_verified` answers true are not re-run (Core's script cache). On failure
    /// nothing changes.
    pub fn connect_tip(
        &mut self,
        hash: &BlockHash,
        scripts_verified: &dyn Fn(&Wtxid) -> bool,
    ) -> Result<(), BlockReject> {
        let entry = self
            .entries
            .get(hash)
            .ok_or_else(|| BlockReject::with("block-not-found", hash.to_string()))?;
        if entry.invalid {
            return Err(BlockReject::with("duplicate-invalid", hash.to_string()));
        }
        if entry.block.header.prev_blockhash != self.tip().hash {
            return Err(BlockReject::new("bad-prevblk"));
        }
        let block = Arc::clone(&entry.block);
        let height = entry.height;
        let prev_mtp = self.mtp(height - 1);

        let mut created: HashMap<OutPoint, Coin> = HashMap::new();
        let mut spent: HashSet<OutPoint> = HashSet::new();
        let mut undo: Vec<Coin> = Vec::new();
        let mut fees = Amount::ZERO;
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            for vout in 0..tx.output.len() as u32 {
                let op = OutPoint { txid, vout };
                if self.utxo.contains_key(&op) && !spent.contains(&op) {
                    return Err(BlockReject::with(
                        "bad-txns-BIP30",
                        "tried to overwrite transaction",
                    ));
                }
            }
            if !tx.is_coinbase() {
                if !checks::is_final(tx, height, prev_mtp) {
                    return Err(BlockReject::from_tx(
                        &TxReject::new(RejectReason::NonFinal),
                        txid,
                    ));
                }
                let mut coins = Vec::with_capacity(tx.input.len());
                for input in &tx.input {
                    let op = input.previous_output;
                    let coin = if spent.contains(&op) {
                        None
                    } else {
                        created.get(&op).or_else(|| self.utxo.get(&op))
                    };
                    let Some(coin) = coin else {
                        return Err(BlockReject::with(
                            "bad-txns-inputs-missingorspent",
                            format!("tx {txid} input {op}"),
                        ));
                    };
                    coins.push(coin.clone());
                }
                let fee = checks::check_tx_inputs(tx, &coins, height)
                    .map_err(|r| BlockReject::from_tx(&r, txid))?;
                let heights: Vec<u32> = coins.iter().map(|c| c.height).collect();
                if !checks::sequence_locks_ok(tx, &heights, height, prev_mtp, |h| self.mtp(h)) {
                    return Err(BlockReject::from_tx(
                        &TxReject::new(RejectReason::NonBip68Final),
                        txid,
                    ));
                }
                if !scripts_verified(&tx.compute_wtxid()) {
                    let outs: Vec<TxOut> = coins.iter().map(|c| c.output.clone()).collect();
                    checks::verify_scripts(tx, &outs)
                        .map_err(|r| BlockReject::from_tx(&r, txid))?;
                }
                fees += fee;
                for input in &tx.input {
                    spent.insert(input.previous_output);
                }
                undo.extend(coins);
            }
            for (vout, out) in tx.output.iter().enumerate() {
                if is_unspendable(out) {
                    continue;
                }
                created.insert(
                    OutPoint {
                        txid,
                        vout: vout as u32,
                    },
                    Coin {
                        output: out.clone(),
                        height,
                        is_coinbase: tx.is_coinbase(),
                    },
                );
            }
        }
        let limit = params::block_subsidy(height) + fees;
        let paid: Amount = block.txdata[0].output.iter().map(|o| o.value).sum();
        if paid > limit {
            return Err(BlockReject::with(
                "bad-cb-amount",
                format!(
                    "coinbase pays too much (actual={} vs limit={})",
                    paid.to_sat(),
                    limit.to_sat()
                ),
            ));
        }

        // Apply: nothing below can fail.
        for op in &spent {
            if self.utxo.remove(op).is_some() {
                self.watched.remove(op);
            }
        }
        for (op, coin) in created {
            if spent.contains(&op) {
                continue;
            }
            if coin.output.script_pubkey == self.watch {
                self.watched.insert(op);
            }
            self.utxo.insert(op, coin);
        }
        for (index, tx) in block.txdata.iter().enumerate() {
            self.tx_index.insert(
                tx.compute_txid(),
                TxLocation {
                    block: *hash,
                    index,
                },
            );
        }
        self.scripts.connect(height, &block, &undo);
        if let Some(e) = self.entries.get_mut(hash) {
            e.undo = Some(undo);
        }
        self.active.push(*hash);
        Ok(())
    }

    /// Disconnects the tip; returns its non-coinbase transactions.
    pub fn disconnect_tip(&mut self) -> Vec<Transaction> {
        if self.active.len() <= 1 {
            return Vec::new();
        }
        let hash = self.tip().hash;
        let height = self.height();
        let Some(entry) = self.entries.get_mut(&hash) else {
            return Vec::new();
        };
        let block = Arc::clone(&entry.block);
        let undo = entry.undo.take().unwrap_or_default();
        self.scripts.disconnect(height, &block, &undo);
        let mut restore = undo.into_iter();
        let mut spent_coins: Vec<(OutPoint, Coin)> = Vec::new();
        for tx in &block.txdata {
            if tx.is_coinbase() {
                continue;
            }
            for input in &tx.input {
                if let Some(coin) = restore.next() {
                    spent_coins.push((input.previous_output, coin));
                }
            }
        }
        for tx in block.txdata.iter().rev() {
            let txid = tx.compute_txid();
            for vout in 0..tx.output.len() as u32 {
                let op = OutPoint { txid, vout };
                self.utxo.remove(&op);
                self.watched.remove(&op);
            }
            if self.tx_index.get(&txid).is_some_and(|l| l.block == hash) {
                self.tx_index.remove(&txid);
            }
        }
        // A coin created and spent inside this block is gone with the block: restoring it would
        // leave an output of a disconnected tx in the UTXO set (and BIP30 would then refuse
        // that tx when a new branch mines it again).
        let block_txids: HashSet<Txid> =
            block.txdata.iter().map(Transaction::compute_txid).collect();
        for (op, coin) in spent_coins {
            if block_txids.contains(&op.txid) {
                continue;
            }
            if coin.output.script_pubkey == self.watch {
                self.watched.insert(op);
            }
            self.utxo.insert(op, coin);
        }
        self.active.pop();
        block
            .txdata
            .iter()
            .filter(|t| !t.is_coinbase())
            .cloned()
            .collect()
    }

    /// `invalidateblock`: marks `hash` invalid, leaves every chain through it, and activates the
    /// best remaining chain.
    pub fn invalidate(&mut self, hash: &BlockHash) -> Option<Reorg> {
        let entry = self.entries.get_mut(hash)?;
        if entry.height == 0 {
            return Some(Reorg::default());
        }
        entry.invalid = true;
        let mut reorg = Reorg::default();
        let mut disconnected = Vec::new();
        while self.active.contains(hash) {
            disconnected.push(self.disconnect_tip());
        }
        reorg.disconnected_txs = disconnected.into_iter().rev().flatten().collect();
        let more = self.activate_best();
        reorg.disconnected_txs.extend(more.disconnected_txs);
        reorg.connected = more.connected;
        Some(reorg)
    }

    /// `reconsiderblock`: clears the invalid mark of `hash`, its ancestors and descendants, and
    /// activates the best chain.
    pub fn reconsider(&mut self, hash: &BlockHash) -> Option<Reorg> {
        let target = self.entries.get(hash)?.hash;
        let mut cursor = Some(target);
        while let Some(h) = cursor {
            let Some(e) = self.entries.get_mut(&h) else {
                break;
            };
            e.invalid = false;
            cursor = (e.height > 0).then_some(e.block.header.prev_blockhash);
        }
        let descendants: Vec<BlockHash> = self
            .entries
            .values()
            .filter(|e| self.descends_from(e, &target))
            .map(|e| e.hash)
            .collect();
        for h in descendants {
            if let Some(e) = self.entries.get_mut(&h) {
                e.invalid = false;
            }
        }
        Some(self.activate_best())
    }

    fn descends_from(&self, entry: &BlockEntry, ancestor: &BlockHash) -> bool {
        let Some(anc) = self.entries.get(ancestor) else {
            return false;
        };
        let mut cursor = Some(entry);
        while let Some(e) = cursor {
            if e.height < anc.height {
                return false;
            }
            if e.hash == *ancestor {
                return true;
            }
            cursor = self.entries.get(&e.block.header.prev_blockhash);
        }
        false
    }

    /// The valid block with the most work (height on regtest); the current tip wins a tie,
    /// then the first seen.
    fn best_candidate(&self) -> BlockHash {
        let tip = self.tip();
        let mut best = (tip.height, u64::MAX, tip.hash);
        let parents: HashSet<BlockHash> = self
            .entries
            .values()
            .map(|e| e.block.header.prev_blockhash)
            .collect();
        for leaf in self.entries.values().filter(|e| !parents.contains(&e.hash)) {
            // Walk down to genesis; the candidate is the highest block below which nothing is
            // invalid.
            let mut path = Vec::new();
            let mut cursor = Some(leaf);
            while let Some(e) = cursor {
                path.push(e);
                if e.height == 0 {
                    break;
                }
                cursor = self.entries.get(&e.block.header.prev_blockhash);
            }
            let mut candidate = None;
            for e in path.iter().rev() {
                if e.invalid {
                    break;
                }
                candidate = Some(*e);
            }
            if let Some(c) = candidate {
                let priority = if c.hash == tip.hash {
                    u64::MAX
                } else {
                    u64::MAX - 1 - c.seq
                };
                let key = (c.height, priority, c.hash);
                if (key.0, key.1) > (best.0, best.1) {
                    best = key;
                }
            }
        }
        best.2
    }

    /// Switches to the best valid chain, marking blocks that fail to connect invalid.
    pub fn activate_best(&mut self) -> Reorg {
        let mut reorg = Reorg::default();
        let mut disconnected_blocks: Vec<Vec<Transaction>> = Vec::new();
        loop {
            let target = self.best_candidate();
            if target == self.tip().hash {
                break;
            }
            let mut path = Vec::new();
            let mut cursor = target;
            while !self.is_active(&cursor) {
                path.push(cursor);
                match self.entries.get(&cursor) {
                    Some(e) => cursor = e.block.header.prev_blockhash,
                    None => break,
                }
            }
            let fork = cursor;
            while self.tip().hash != fork && self.active.len() > 1 {
                disconnected_blocks.push(self.disconnect_tip());
            }
            for hash in path.into_iter().rev() {
                match self.connect_tip(&hash, &|_| false) {
                    Ok(()) => reorg.connected.push(hash),
                    Err(reject) => {
                        tracing::warn!(%hash, %reject, "block failed to connect during reorg; marked invalid");
                        if let Some(e) = self.entries.get_mut(&hash) {
                            e.invalid = true;
                        }
                        break;
                    }
                }
            }
        }
        reorg.disconnected_txs = disconnected_blocks.into_iter().rev().flatten().collect();
        reorg
    }
}

#[allow(
    clippy::panic,
    reason = "the active chain always holds genesis, so its tip entry exists"
)]
fn unreachable_entry() -> &'static BlockEntry {
    panic!("active chain is never empty")
}

/// Core's `CScript::IsUnspendable`: never enters the UTXO set.
fn is_unspendable(out: &TxOut) -> bool {
    out.script_pubkey.is_op_return() || out.script_pubkey.len() > 10_000
}

/// `CheckBlock`: proof of work, merkle root, coinbase placement, size, transaction checks.
pub fn check_block(block: &Block) -> Result<(), BlockReject> {
    let target = Target::from_compact(params::pow_bits());
    if block.header.validate_pow(target).is_err() {
        return Err(BlockReject::with("high-hash", "proof of work failed"));
    }
    if !block.check_merkle_root() {
        return Err(BlockReject::with(
            "bad-txnmrklroot",
            "hashMerkleRoot mismatch",
        ));
    }
    let mut txids = HashSet::with_capacity(block.txdata.len());
    if !block.txdata.iter().all(|t| txids.insert(t.compute_txid())) {
        return Err(BlockReject::with(
            "bad-txns-duplicate",
            "duplicate transaction",
        ));
    }
    if block.txdata.is_empty() || block.txdata.len() as u64 * 60 > params::MAX_BLOCK_WEIGHT {
        return Err(BlockReject::with("bad-blk-length", "size limits failed"));
    }
    if !block.txdata[0].is_coinbase() {
        return Err(BlockReject::with(
            "bad-cb-missing",
            "first tx is not coinbase",
        ));
    }
    if block.txdata.iter().skip(1).any(|t| t.is_coinbase()) {
        return Err(BlockReject::with(
            "bad-cb-multiple",
            "more than one coinbase",
        ));
    }
    for tx in &block.txdata {
        checks::check_transaction(tx).map_err(|r| {
            BlockReject::with(
                r.reason.as_str(),
                format!("Transaction check failed (tx hash {}) ", tx.compute_txid()),
            )
        })?;
    }
    Ok(())
}

/// `ContextualCheckBlock`: BIP34 height, witness commitment, weight.
fn contextual_check_block(block: &Block, height: u32) -> Result<(), BlockReject> {
    let expected = bitcoin::script::Builder::new()
        .push_int(i64::from(height))
        .into_script();
    if !block.txdata[0].input[0]
        .script_sig
        .as_bytes()
        .starts_with(expected.as_bytes())
    {
        return Err(BlockReject::with(
            "bad-cb-height",
            "block height mismatch in coinbase",
        ));
    }
    let has_witness = block
        .txdata
        .iter()
        .any(|t| t.input.iter().any(|i| !i.witness.is_empty()));
    let has_commitment = block.txdata[0].output.iter().any(|o| {
        let b = o.script_pubkey.as_bytes();
        b.len() >= 38 && b[..6] == [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed]
    });
    if has_commitment {
        let nonce = &block.txdata[0].input[0].witness;
        if nonce.len() != 1 || nonce.iter().next().map(<[u8]>::len) != Some(32) {
            return Err(BlockReject::with(
                "bad-witness-nonce-size",
                "invalid witness reserved value size",
            ));
        }
        if !commitment_matches(block) {
            return Err(BlockReject::with(
                "bad-witness-merkle-match",
                "witness merkle commitment mismatch",
            ));
        }
    } else if has_witness {
        return Err(BlockReject::with(
            "unexpected-witness",
            "unexpected witness data found",
        ));
    }
    if block.weight().to_wu() > params::MAX_BLOCK_WEIGHT {
        return Err(BlockReject::with("bad-blk-weight", "weight limit failed"));
    }
    Ok(())
}

/// The witness commitment (Core uses the last coinbase output carrying the magic) matches the
/// witness merkle root and the coinbase's reserved value.
fn commitment_matches(block: &Block) -> bool {
    let Some(root) = block.witness_root() else {
        return false;
    };
    let Some(nonce) = block.txdata[0].input[0].witness.iter().next() else {
        return false;
    };
    let commitment = Block::compute_witness_commitment(&root, nonce);
    block.txdata[0]
        .output
        .iter()
        .rev()
        .map(|o| o.script_pubkey.as_bytes())
        .find(|b| b.len() >= 38 && b[..6] == [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed])
        .is_some_and(|b| b[6..38] == commitment.to_byte_array())
}
