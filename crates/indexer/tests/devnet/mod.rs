//! The scenario harness: a devnet chain with its RPC server, a fresh database (SQLite file or
//! a PostgreSQL database of its own), the staker funded with mature coinbases, and the indexer
//! running in-process against the RPC server exactly as `stakingd indexer` would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    reason = "test code: a panic is a failed test; each test binary uses part of the harness"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::{BlockHash, OutPoint, ScriptBuf, Transaction, TxOut};
use bitcoin_rpc::{RpcAuth, RpcClient, RpcConfig};
use devnet::{DevnetConfig, DevnetHandle, Node};
use indexer::{IndexerError, RawConfig};
use prometheus::Registry;
use serde_json::Value;
use store::{Db, DbOptions, IndexerStore, OutboxStore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::Fx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test; `None` (skip, with a message) when PostgreSQL is unreachable
/// outside CI. With `CI=true` an unreachable server fails the test. The PostgreSQL database is
/// dropped with the returned handle.
async fn database(
    backend: Backend,
    dir: &std::path::Path,
) -> Option<(String, Option<testkit::PgTestDb>)> {
    match backend {
        Backend::Sqlite => Some((
            format!("sqlite://{}", dir.join("indexer.db").display()),
            None,
        )),
        Backend::Postgres => {
            let pg = testkit::PgTestDb::create_or_skip("indexer_test").await?;
            Some((pg.url.clone(), Some(pg)))
        }
    }
}

pub struct Harness {
    pub fx: Fx,
    pub devnet: DevnetHandle,
    pub node: Arc<Node>,
    pub rpc: RpcClient,
    pub db_url: String,
    pub store: IndexerStore,
    pub outbox: OutboxStore,
    pub depth: u32,
    pub activation: u32,
    funding: Vec<(OutPoint, TxOut)>,
    pub registry: Registry,
    running: Option<(CancellationToken, JoinHandle<Result<(), IndexerError>>)>,
    params_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    /// Declared last: dropped after everything that uses it.
    _db: Option<testkit::PgTestDb>,
}

/// Where the fork blocks' coinbases pay, so they differ from the originals.
fn other_payout() -> ScriptBuf {
    devnet::wallet::Wallet::from_seed(b"fork miner")
        .script_pubkey()
        .clone()
}

impl Harness {
    /// `fx` must have its first activation height above 110 (funding coinbases mature first).
    pub async fn start(backend: Backend, fx: Fx) -> Option<Harness> {
        let dir = tempfile::tempdir().unwrap();
        let (db_url, db) = database(backend, dir.path()).await?;
        let devnet = devnet::spawn(DevnetConfig::default(), CancellationToken::new())
            .await
            .unwrap();
        let node = Arc::clone(&devnet.chain);
        let rpc = RpcClient::new(RpcConfig::new(
            devnet.rpc_url.clone(),
            RpcAuth::UserPass {
                user: devnet.rpc_user.clone(),
                password: devnet.rpc_password.clone(),
            },
        ))
        .unwrap();
        node.mine_blocks(10, fx.staker.script_pubkey()).unwrap();
        node.mine_blocks(100, node.faucet_wallet().script_pubkey())
            .unwrap();
        let mut funding = Vec::new();
        for h in 1..=10 {
            let hash = rpc.get_block_hash(h).await.unwrap();
            let block = rpc.get_block(&hash).await.unwrap();
            let cb = &block.txdata[0];
            funding.push((OutPoint::new(cb.compute_txid(), 0), cb.output[0].clone()));
        }
        let params_path = dir.path().join("params.json");
        std::fs::write(&params_path, fx.params_json()).unwrap();
        let handle = Db::connect(&DbOptions::new(db_url.as_str())).await.unwrap();
        handle.migrate().await.unwrap();
        let (store, outbox) = (handle.indexer(), handle.outbox());
        let depth = u32::from(fx.params.confirmation_depth());
        let activation = u32::try_from(fx.params.first_activation_height().0).unwrap();
        Some(Harness {
            fx,
            devnet,
            node,
            rpc,
            db_url,
            store,
            outbox,
            depth,
            activation,
            funding,
            registry: Registry::new(),
            running: None,
            params_path,
            _dir: dir,
            _db: db,
        })
    }

    pub fn raw_config(&self) -> RawConfig {
        RawConfig::from_toml(&format!(
            r#"
            network = "regtest"
            params = "{}"
            database_url = "{}"
            metrics_addr = "off"
            [bitcoind]
            url = "{}"
            user = "{}"
            password = "{}"
            poll_interval_ms = 20
            "#,
            self.params_path.display(),
            self.db_url,
            self.devnet.rpc_url,
            self.devnet.rpc_user,
            self.devnet.rpc_password
        ))
        .unwrap()
    }

    /// Starts the indexer (events stay in the outbox, where the tests read them).
    pub fn start_indexer(&mut self) {
        self.start_indexer_with(self.raw_config());
    }

    pub fn start_indexer_with(&mut self, raw: RawConfig) {
        assert!(self.running.is_none());
        let config = raw.validate().unwrap();
        let token = CancellationToken::new();
        self.registry = Registry::new();
        let registry = self.registry.clone();
        let t = token.clone();
        let handle =
            tokio::spawn(async move { indexer::run_with(config, None, &registry, t).await });
        self.running = Some((token, handle));
    }

    /// Stops the indexer and returns how it ended.
    pub async fn stop_indexer(&mut self) -> Result<(), IndexerError> {
        let (token, handle) = self.running.take().unwrap();
        token.cancel();
        handle.await.unwrap()
    }

    /// Waits until the indexer task ends by itself (e.g. a major reorg).
    pub async fn indexer_exit(&mut self) -> Result<(), IndexerError> {
        let (_, handle) = self.running.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .unwrap()
            .unwrap()
    }

    /// The next mature coinbase of the staker.
    pub fn funding(&mut self) -> (OutPoint, TxOut) {
        self.funding.remove(0)
    }

    /// A signed staking tx for inclusion at `height`, funded by the next coinbase.
    pub fn stake(&mut self, height: u32, value: u64, time: u16) -> Transaction {
        let funding = self.funding();
        self.fx.staking_tx(height, &funding, value, time)
    }

    pub fn tip(&self) -> u32 {
        self.node.tip().height
    }

    /// Mines one block with exactly `txs`.
    pub fn mine(&self, txs: Vec<Transaction>) -> BlockHash {
        self.node
            .mine_block_with(txs, self.node.faucet_wallet().script_pubkey(), None)
            .unwrap()
    }

    pub fn mine_empty(&self, n: u32) {
        for _ in 0..n {
            self.mine(vec![]);
        }
    }

    /// Mines one block on a fork (other coinbase payout, so hashes differ).
    pub fn mine_fork(&self, txs: Vec<Transaction>) -> BlockHash {
        self.node
            .mine_block_with(txs, &other_payout(), None)
            .unwrap()
    }

    /// Mines empty blocks until the block at `height` is confirmed.
    pub fn confirm(&self, height: u32) {
        while self.tip() < height + self.depth - 1 {
            self.mine(vec![]);
        }
    }

    /// Waits until the indexer has processed everything confirmed at the node's tip and, when it
    /// is caught up, queued a `btc_info` for the tip.
    pub async fn settle(&self) {
        let tip = self.tip();
        let want = (tip + 1).saturating_sub(self.depth);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stored = self.store.tip().await.unwrap().map_or(0, |t| t.height);
            let info_at_tip = self
                .events("btc_info_queue")
                .await
                .last()
                .is_some_and(|e| e["height"] == u64::from(tip));
            let confirmed_done = want < self.activation || stored >= want;
            if confirmed_done && (info_at_tip || tip < self.activation) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "indexer did not reach {want} (stored {stored}, tip {tip})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the indexer has stored every block confirmed at the node's tip, without
    /// looking at the outbox: [`Self::settle`] looks for the tip's `btc_info` among the unsent
    /// rows, which a running relay sends (and so takes out of that list) as they come.
    pub async fn settle_stored(&self) {
        let want = (self.tip() + 1).saturating_sub(self.depth);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stored = self.store.tip().await.unwrap().map_or(0, |t| t.height);
            if stored >= want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "indexer did not store height {want} (stored {stored})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every queued event body of `queue`, in order.
    pub async fn events(&self, queue: &str) -> Vec<Value> {
        self.outbox
            .fetch_unsent(1_000_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.queue == queue)
            .map(|r| serde_json::from_str(&r.payload).unwrap())
            .collect()
    }

    /// Every queued event except `btc_info`, as (queue, body).
    pub async fn chain_events(&self) -> Vec<(String, String)> {
        self.outbox
            .fetch_unsent(1_000_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.queue != "btc_info_queue")
            .map(|r| (r.queue, r.payload))
            .collect()
    }

    /// (confirmed, unconfirmed) of each `btc_info`, consecutive duplicates removed.
    pub async fn tvl_history(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for e in self.events("btc_info_queue").await {
            let pair = (
                e["confirmed_tvl"].as_u64().unwrap(),
                e["unconfirmed_tvl"].as_u64().unwrap(),
            );
            if out.last() != Some(&pair) {
                out.push(pair);
            }
        }
        out
    }

    pub fn metric(&self, name: &str, label: Option<(&str, &str)>) -> f64 {
        for family in self.registry.gather() {
            if family.get_name() != name {
                continue;
            }
            for m in family.get_metric() {
                let matches = label.is_none_or(|(k, v)| {
                    m.get_label()
                        .iter()
                        .any(|l| l.get_name() == k && l.get_value() == v)
                });
                if matches {
                    if family.get_field_type() == prometheus::proto::MetricType::COUNTER {
                        return m.get_counter().get_value();
                    }
                    return m.get_gauge().get_value();
                }
            }
        }
        0.0
    }
}
