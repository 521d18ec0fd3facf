//! What the signer needs to know about the chain, behind a small trait.
//!
//! Production uses [`crate::rpc_chain::RpcChain`] (the signer's own full node over JSON-RPC);
//! [`MemoryChain`] serves unit tests and benchmarks; [`CachedChain`] keeps the staking-tx lookup
//! per txid so repeated or hostile requests naming the same staking tx cost the node one
//! lookup per TTL (`docs/decisions.md#covenant-signer`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bitcoin::{OutPoint, Transaction, Txid};
use futures::future::BoxFuture;

/// Where the node sees a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxLookup {
    /// Unknown to the node (or no `txindex`).
    NotFound,
    /// Known, but only in the mempool.
    InMempool(Arc<Transaction>),
    /// Included in the active chain at `height`.
    InBlock { tx: Arc<Transaction>, height: u32 },
}

/// A failure to ask the node, classified so callers know whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// Connection refused, timeout, node warming up: may work later.
    #[error("transient: {0}")]
    Transient(String),
    /// Authentication, unexpected answers, bad data: will not fix itself.
    #[error("{0}")]
    Permanent(String),
}

/// The signer's view of its own full node.
pub trait ChainView: Send + Sync + 'static {
    /// Finds a transaction and the height of the block that includes it.
    fn transaction(&self, txid: Txid) -> BoxFuture<'_, Result<TxLookup, ChainError>>;
    /// The height of the best block.
    fn tip_height(&self) -> BoxFuture<'_, Result<u32, ChainError>>;
    /// Whether `outpoint` is unspent, mempool spends included.
    fn is_unspent(&self, outpoint: OutPoint) -> BoxFuture<'_, Result<bool, ChainError>>;
}

impl<T: ChainView + ?Sized> ChainView for Arc<T> {
    fn transaction(&self, txid: Txid) -> BoxFuture<'_, Result<TxLookup, ChainError>> {
        (**self).transaction(txid)
    }
    fn tip_height(&self) -> BoxFuture<'_, Result<u32, ChainError>> {
        (**self).tip_height()
    }
    fn is_unspent(&self, outpoint: OutPoint) -> BoxFuture<'_, Result<bool, ChainError>> {
        (**self).is_unspent(outpoint)
    }
}

#[derive(Debug, Default)]
struct MemoryState {
    txs: HashMap<Txid, (Arc<Transaction>, Option<u32>)>,
    spent: HashSet<OutPoint>,
    tip: u32,
    failing: Option<ChainError>,
}

/// An in-memory chain: tests and benchmarks set exactly the facts they need.
#[derive(Debug, Default)]
pub struct MemoryChain {
    state: Mutex<MemoryState>,
    lookups: AtomicU64,
}

impl MemoryChain {
    /// An empty chain with its tip at `tip`.
    pub fn new(tip: u32) -> Self {
        let chain = Self::default();
        chain.set_tip(tip);
        chain
    }

    fn with<R>(&self, f: impl FnOnce(&mut MemoryState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts `tx` in a block at `height`.
    pub fn confirm(&self, tx: Transaction, height: u32) {
        self.with(|s| {
            s.txs
                .insert(tx.compute_txid(), (Arc::new(tx), Some(height)))
        });
    }

    /// Puts `tx` in the mempool only.
    pub fn add_to_mempool(&self, tx: Transaction) {
        self.with(|s| s.txs.insert(tx.compute_txid(), (Arc::new(tx), None)));
    }

    /// Moves the tip.
    pub fn set_tip(&self, tip: u32) {
        self.with(|s| s.tip = tip);
    }

    /// Marks `outpoint` as spent.
    pub fn spend(&self, outpoint: OutPoint) {
        self.with(|s| s.spent.insert(outpoint));
    }

    /// Makes every later call fail with `error` (`None` heals the node).
    pub fn fail_with(&self, error: Option<ChainError>) {
        self.with(|s| s.failing = error);
    }

    /// How many transaction lookups reached this chain.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }
}

impl ChainView for MemoryChain {
    fn transaction(&self, txid: Txid) -> BoxFuture<'_, Result<TxLookup, ChainError>> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let answer = self.with(|s| {
            if let Some(e) = &s.failing {
                return Err(e.clone());
            }
            Ok(match s.txs.get(&txid) {
                None => TxLookup::NotFound,
                Some((tx, None)) => TxLookup::InMempool(Arc::clone(tx)),
                Some((tx, Some(height))) => TxLookup::InBlock {
                    tx: Arc::clone(tx),
                    height: *height,
                },
            })
        });
        Box::pin(async move { answer })
    }

    fn tip_height(&self) -> BoxFuture<'_, Result<u32, ChainError>> {
        let answer = self.with(|s| s.failing.clone().map_or(Ok(s.tip), Err));
        Box::pin(async move { answer })
    }

    fn is_unspent(&self, outpoint: OutPoint) -> BoxFuture<'_, Result<bool, ChainError>> {
        let answer = self.with(|s| {
            if let Some(e) = &s.failing {
                return Err(e.clone());
            }
            let exists = s
                .txs
                .get(&outpoint.txid)
                .is_some_and(|(tx, _)| (outpoint.vout as usize) < tx.output.len());
            Ok(exists && !s.spent.contains(&outpoint))
        });
        Box::pin(async move { answer })
    }
}

/// Remembers confirmed staking-tx lookups per txid for `ttl`. Tip and spentness are always
/// asked fresh: they change with every block and every unbonding.
#[derive(Debug)]
pub struct CachedChain<C> {
    inner: C,
    ttl: Duration,
    entries: Mutex<HashMap<Txid, (Instant, TxLookup)>>,
    max_entries: usize,
}

impl<C: ChainView> CachedChain<C> {
    /// Wraps `inner`, keeping at most `max_entries` lookups for `ttl` each.
    pub fn new(inner: C, ttl: Duration, max_entries: usize) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    /// The wrapped chain.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    fn cached(&self, txid: &Txid) -> Option<TxLookup> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(txid)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, lookup)| lookup.clone())
    }

    fn remember(&self, txid: Txid, lookup: &TxLookup) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.max_entries {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(txid, (Instant::now(), lookup.clone()));
    }
}

impl<C: ChainView> ChainView for CachedChain<C> {
    fn transaction(&self, txid: Txid) -> BoxFuture<'_, Result<TxLookup, ChainError>> {
        Box::pin(async move {
            if let Some(hit) = self.cached(&txid) {
                return Ok(hit);
            }
            let lookup = self.inner.transaction(txid).await?;
            // Only block inclusion is stable enough to keep; mempool and not-found change soon.
            if matches!(lookup, TxLookup::InBlock { .. }) {
                self.remember(txid, &lookup);
            }
            Ok(lookup)
        })
    }

    fn tip_height(&self) -> BoxFuture<'_, Result<u32, ChainError>> {
        self.inner.tip_height()
    }

    fn is_unspent(&self, outpoint: OutPoint) -> BoxFuture<'_, Result<bool, ChainError>> {
        self.inner.is_unspent(outpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, ScriptBuf, TxOut};

    fn tx(value: u64) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![],
            output: vec![TxOut {
                value: Amount::from_sat(value),
                script_pubkey: ScriptBuf::new(),
            }],
        }
    }

    #[tokio::test]
    async fn confirmed_lookups_are_cached_and_others_are_not() {
        let chain = Arc::new(MemoryChain::new(100));
        let cached = CachedChain::new(Arc::clone(&chain), Duration::from_secs(60), 10);
        let pending = tx(1);
        chain.add_to_mempool(pending.clone());
        for _ in 0..3 {
            let got = cached.transaction(pending.compute_txid()).await.unwrap();
            assert!(matches!(got, TxLookup::InMempool(_)));
        }
        assert_eq!(chain.lookups(), 3);

        chain.confirm(pending.clone(), 90);
        for _ in 0..3 {
            let got = cached.transaction(pending.compute_txid()).await.unwrap();
            assert!(matches!(got, TxLookup::InBlock { height: 90, .. }));
        }
        assert_eq!(chain.lookups(), 4);
    }

    #[tokio::test]
    async fn cached_entries_expire_after_the_ttl() {
        let chain = Arc::new(MemoryChain::new(100));
        let cached = CachedChain::new(Arc::clone(&chain), Duration::ZERO, 10);
        let confirmed = tx(2);
        chain.confirm(confirmed.clone(), 90);
        cached.transaction(confirmed.compute_txid()).await.unwrap();
        cached.transaction(confirmed.compute_txid()).await.unwrap();
        assert_eq!(chain.lookups(), 2);
    }

    #[tokio::test]
    async fn the_cache_never_grows_past_its_bound() {
        let chain = Arc::new(MemoryChain::new(100));
        let cached = CachedChain::new(Arc::clone(&chain), Duration::from_secs(60), 4);
        for value in 0..10 {
            let t = tx(value);
            chain.confirm(t.clone(), 90);
            cached.transaction(t.compute_txid()).await.unwrap();
        }
        assert!(cached.entries.lock().unwrap().len() <= 4);
    }

    #[tokio::test]
    async fn spent_and_missing_outputs_are_not_unspent() {
        let chain = MemoryChain::new(100);
        let t = tx(3);
        chain.confirm(t.clone(), 90);
        let outpoint = OutPoint::new(t.compute_txid(), 0);
        assert!(chain.is_unspent(outpoint).await.unwrap());
        assert!(!chain
            .is_unspent(OutPoint::new(t.compute_txid(), 1))
            .await
            .unwrap());
        chain.spend(outpoint);
        assert!(!chain.is_unspent(outpoint).await.unwrap());
    }
}
