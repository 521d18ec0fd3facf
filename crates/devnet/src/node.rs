//! The in-process devnet: chain, mempool and block store behind one mutex, with the operations
//! tests, benches and the RPC server use.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::{Amount, Block, BlockHash, OutPoint, ScriptBuf, Sequence, Transaction, TxOut, Txid};

use crate::chain::{ChainState, Reorg};
use crate::error::{BlockReject, DevnetError, TxReject};
use crate::mempool::{AcceptOptions, Accepted, Mempool};
use crate::miner;
use crate::params;
use crate::store::{BlockStore, Record};
use crate::wallet::Wallet;

/// Weight kept free for the coinbase when filling a block from the mempool.
const COINBASE_RESERVE: u64 = 4_000;

/// Fee rate the faucet pays, in sat/vB.
const FAUCET_FEE_RATE: u64 = 2;

/// The chain tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Block hash.
    pub hash: BlockHash,
    /// Height.
    pub height: u32,
}

/// Chain, mempool and store, locked together.
#[derive(Debug)]
pub struct NodeState {
    /// Blocks, active chain, UTXO set, tx index.
    pub chain: ChainState,
    /// Unconfirmed transactions.
    pub mempool: Mempool,
    store: Option<BlockStore>,
    extra_nonce: u64,
}

/// The devnet node. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Node {
    state: Mutex<NodeState>,
    faucet: Wallet,
}

/// Current Unix time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Node {
    /// A chain that lives in memory only.
    pub fn in_memory() -> Self {
        let faucet = Wallet::faucet();
        let chain = ChainState::new(faucet.script_pubkey().clone());
        // Seeded from the clock so blocks mined after a restart differ from earlier ones too.
        let extra_nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos().into())
            .unwrap_or(0);
        Self {
            state: Mutex::new(NodeState {
                chain,
                mempool: Mempool::default(),
                store: None,
                extra_nonce,
            }),
            faucet,
        }
    }

    /// A chain persisted in `datadir` (replayed from its block file).
    pub fn open(datadir: &Path) -> Result<Self, DevnetError> {
        let (store, records) = BlockStore::open(datadir)?;
        let node = Self::in_memory();
        {
            let mut guard = node.lock();
            let state = &mut *guard;
            let count = records.len();
            for record in records {
                match record {
                    Record::Block(block) => {
                        let hash = block.block_hash();
                        let parent = block.header.prev_blockhash;
                        state
                            .chain
                            .accept_block(block, u32::MAX - params::MAX_FUTURE_BLOCK_TIME)
                            .map_err(|reject| DevnetError::StoredBlockInvalid { hash, reject })?;
                        if parent == state.chain.tip().hash {
                            // Stored blocks passed every check when they were written: assume
                            // their scripts valid (like Core's -assumevalid) to replay fast.
                            state
                                .chain
                                .connect_tip(&hash, &|_| true)
                                .map_err(|reject| DevnetError::StoredBlockInvalid {
                                    hash,
                                    reject,
                                })?;
                        }
                    }
                    Record::Invalidate(hash) => {
                        state.chain.invalidate(&hash);
                    }
                    Record::Reconsider(hash) => {
                        state.chain.reconsider(&hash);
                    }
                }
            }
            tracing::info!(path = %store.path().display(), records = count, height = state.chain.height(), "devnet chain loaded");
            state.store = Some(store);
        }
        Ok(node)
    }

    /// Locks the state. A panic while holding the lock cannot leave the chain half-updated
    /// (connects are validated before any change), so a poisoned lock is taken over.
    pub fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The faucet's wallet.
    pub fn faucet_wallet(&self) -> &Wallet {
        &self.faucet
    }

    /// The active tip.
    pub fn tip(&self) -> Tip {
        let state = self.lock();
        let tip = state.chain.tip();
        Tip {
            hash: tip.hash,
            height: tip.height,
        }
    }

    /// Accepts `tx` into the mempool (as `sendrawtransaction` without a fee-rate cap).
    pub fn submit_tx(&self, tx: Transaction) -> Result<Accepted, TxReject> {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.mempool.accept(
            &state.chain,
            tx,
            AcceptOptions {
                test_only: false,
                bypass_fee_checks: false,
                max_fee_rate: None,
                now: unix_now(),
            },
        )
    }

    /// Checks `tx` as `testmempoolaccept` does, without adding it.
    pub fn test_accept(&self, tx: Transaction) -> Result<Accepted, TxReject> {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.mempool.accept(
            &state.chain,
            tx,
            AcceptOptions {
                test_only: true,
                bypass_fee_checks: false,
                max_fee_rate: None,
                now: unix_now(),
            },
        )
    }

    /// Mines `n` blocks on the tip from the mempool, paying to `payout`.
    pub fn mine_blocks(&self, n: u32, payout: &ScriptBuf) -> Result<Vec<BlockHash>, DevnetError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut hashes = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (txs, fees) = state
                .mempool
                .block_template(params::MAX_BLOCK_WEIGHT - COINBASE_RESERVE);
            let block = state.next_block(payout, fees, txs, None);
            hashes.push(state.connect_new(block)?);
        }
        state.sync()?;
        Ok(hashes)
    }

    /// Mines one block with exactly `txs` (not the mempool), paying the subsidy to `payout`,
    /// like `generateblock`. `time` overrides the block time (it must be after the
    /// median-time-past). The block must be valid; transactions are taken out of the mempool.
    pub fn mine_block_with(
        &self,
        txs: Vec<Transaction>,
        payout: &ScriptBuf,
        time: Option<u32>,
    ) -> Result<BlockHash, DevnetError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let block = state.next_block(payout, Amount::ZERO, txs, time);
        let hash = state.connect_new(block)?;
        state.sync()?;
        Ok(hash)
    }

    /// Builds (does not submit) a block on the tip with exactly `txs`.
    pub fn build_block(
        &self,
        txs: Vec<Transaction>,
        payout: &ScriptBuf,
        time: Option<u32>,
    ) -> Block {
        let mut state = self.lock();
        state.next_block(payout, Amount::ZERO, txs, time)
    }

    /// Submits a complete block (must extend the tip).
    pub fn submit_block(&self, block: Block) -> Result<BlockHash, DevnetError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let hash = state.connect_new(block)?;
        state.sync()?;
        Ok(hash)
    }

    /// `invalidateblock`. Returns `None` if the block is unknown.
    pub fn invalidate(&self, hash: &BlockHash) -> Result<Option<()>, DevnetError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(reorg) = state.chain.invalidate(hash) else {
            return Ok(None);
        };
        state.append(&Record::Invalidate(*hash))?;
        state.after_reorg(reorg);
        state.sync()?;
        Ok(Some(()))
    }

    /// `reconsiderblock`. Returns `None` if the block is unknown.
    pub fn reconsider(&self, hash: &BlockHash) -> Result<Option<()>, DevnetError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(reorg) = state.chain.reconsider(hash) else {
            return Ok(None);
        };
        state.append(&Record::Reconsider(*hash))?;
        state.after_reorg(reorg);
        state.sync()?;
        Ok(Some(()))
    }

    /// Pays `amount` to `script_pubkey` from the faucet's mature coins, mining blocks to the
    /// faucet first if it has too little. The payment enters the mempool; with `confirm` one
    /// block is mined so it is confirmed when this returns.
    pub fn faucet(
        &self,
        script_pubkey: &ScriptBuf,
        amount: Amount,
        confirm: bool,
    ) -> Result<Txid, DevnetError> {
        let dust = script_pubkey.minimal_non_dust_custom(params::DUST_RELAY_FEE);
        if amount < dust {
            return Err(DevnetError::Faucet(format!(
                "amount {amount} is below the dust limit {dust}"
            )));
        }
        let max_single = Amount::from_btc(1_000.0).unwrap_or(Amount::MAX_MONEY);
        if amount > max_single {
            return Err(DevnetError::Faucet(format!(
                "amount {amount} is above the faucet's limit {max_single}"
            )));
        }
        let faucet_script = self.faucet.script_pubkey().clone();
        for _attempt in 0..5 {
            // Coin selection and acceptance under one lock: concurrent faucet calls never pick
            // the same coins.
            let paid = {
                let mut guard = self.lock();
                let state = &mut *guard;
                match faucet_inputs(state, amount) {
                    Some(inputs) => {
                        let tx = self.faucet_payment(&inputs, script_pubkey, amount);
                        let opts = AcceptOptions {
                            test_only: false,
                            bypass_fee_checks: false,
                            max_fee_rate: None,
                            now: unix_now(),
                        };
                        let accepted = state
                            .mempool
                            .accept(&state.chain, tx, opts)
                            .map_err(|r| DevnetError::Faucet(format!("payment refused: {r}")))?;
                        Some(accepted.txid)
                    }
                    None => None,
                }
            };
            if let Some(txid) = paid {
                if confirm {
                    self.mine_blocks(1, &faucet_script)?;
                }
                return Ok(txid);
            }
            // Too little: mine coinbases to the faucet (on a fresh chain, enough to mature one).
            let blocks = if self.tip().height < params::COINBASE_MATURITY {
                params::COINBASE_MATURITY + 1
            } else {
                10
            };
            self.mine_blocks(blocks, &faucet_script)?;
        }
        Err(DevnetError::Faucet(
            "no spendable faucet coins after mining".to_owned(),
        ))
    }

    /// The faucet's payment of `amount` to `script_pubkey` from `inputs`, change back to the
    /// faucet, at `FAUCET_FEE_RATE`, signalling RBF.
    fn faucet_payment(
        &self,
        inputs: &[(OutPoint, TxOut)],
        script_pubkey: &ScriptBuf,
        amount: Amount,
    ) -> Transaction {
        let faucet_script = self.faucet.script_pubkey().clone();
        let total: Amount = inputs.iter().map(|(_, o)| o.value).sum();
        let mut outputs = vec![
            TxOut {
                value: amount,
                script_pubkey: script_pubkey.clone(),
            },
            TxOut {
                value: Amount::ZERO,
                script_pubkey: faucet_script.clone(),
            },
        ];
        let draft = self
            .faucet
            .spend(inputs, outputs.clone(), Sequence::ENABLE_RBF_NO_LOCKTIME);
        let fee = Amount::from_sat(draft.vsize() as u64 * FAUCET_FEE_RATE);
        let change = total.checked_sub(amount + fee).unwrap_or(Amount::ZERO);
        if change >= faucet_script.minimal_non_dust_custom(params::DUST_RELAY_FEE) {
            outputs[1].value = change;
        } else {
            outputs.pop();
        }
        self.faucet
            .spend(inputs, outputs, Sequence::ENABLE_RBF_NO_LOCKTIME)
    }
}

/// Mature faucet coins not spent in the mempool covering `amount` plus a generous fee.
fn faucet_inputs(state: &NodeState, amount: Amount) -> Option<Vec<(OutPoint, TxOut)>> {
    let spend_height = state.chain.height() + 1;
    let mut coins: Vec<(OutPoint, TxOut, u32)> = state
        .chain
        .watched_coins()
        .filter(|(op, c)| {
            (!c.is_coinbase || spend_height - c.height >= params::COINBASE_MATURITY)
                && state.mempool.spender(op).is_none()
        })
        .map(|(op, c)| (*op, c.output.clone(), c.height))
        .collect();
    // Largest first keeps transactions small; ties by outpoint for determinism.
    coins.sort_by(|a, b| b.1.value.cmp(&a.1.value).then(a.0.cmp(&b.0)));
    let need = amount + Amount::from_sat(10_000);
    let mut picked = Vec::new();
    let mut sum = Amount::ZERO;
    for (op, out, _) in coins {
        if sum >= need || picked.len() >= 50 {
            break;
        }
        sum += out.value;
        picked.push((op, out));
    }
    (sum >= need).then_some(picked)
}

impl NodeState {
    fn next_block(
        &mut self,
        payout: &ScriptBuf,
        fees: Amount,
        txs: Vec<Transaction>,
        time: Option<u32>,
    ) -> Block {
        let tip = self.chain.tip();
        let (hash, height) = (tip.hash, tip.height);
        let mtp = self.chain.mtp(height);
        let now = u32::try_from(unix_now()).unwrap_or(u32::MAX);
        let time = time.unwrap_or(now).max(mtp + 1);
        self.extra_nonce = self.extra_nonce.wrapping_add(1);
        miner::assemble(self.extra_nonce, hash, height + 1, time, payout, fees, txs)
    }

    /// Validates and connects a block on the tip, stores it, updates the mempool.
    fn connect_new(&mut self, block: Block) -> Result<BlockHash, BlockReject> {
        let txs = block.txdata.clone();
        let now = u32::try_from(unix_now()).unwrap_or(u32::MAX);
        if let Some(known) = self.chain.entry(&block.block_hash()) {
            let reason = if known.invalid {
                "duplicate-invalid"
            } else {
                "duplicate"
            };
            return Err(BlockReject::new(reason));
        }
        let hash = self.chain.accept_block(block.clone(), now)?;
        let mempool = &self.mempool;
        self.chain
            .connect_tip(&hash, &|w| mempool.contains_wtxid(w))
            .inspect_err(|_| self.chain.forget(&hash))?;
        if let Err(e) = self.append(&Record::Block(block)) {
            tracing::error!(error = %e, "could not store block; it stays in memory only");
        }
        self.mempool.remove_for_block(&txs);
        Ok(hash)
    }

    fn append(&mut self, record: &Record) -> Result<(), DevnetError> {
        match &mut self.store {
            Some(store) => store.append(record),
            None => Ok(()),
        }
    }

    fn sync(&mut self) -> Result<(), DevnetError> {
        match &mut self.store {
            Some(store) => store.sync(),
            None => Ok(()),
        }
    }

    /// After a chain switch: disconnected transactions go back to the mempool first, then the
    /// old mempool; whatever no longer fits the new chain is dropped (as Core's
    /// `MaybeUpdateMempoolForReorg`).
    fn after_reorg(&mut self, reorg: Reorg) {
        let old = self.mempool.drain();
        let now = unix_now();
        let opts = AcceptOptions {
            test_only: false,
            bypass_fee_checks: true,
            max_fee_rate: None,
            now,
        };
        for tx in reorg.disconnected_txs.into_iter().chain(old) {
            let _dropped_if_invalid_now = self.mempool.accept(&self.chain, tx, opts);
        }
    }
}
