//! Prometheus metrics with the reference names (`docs/reference.md#indexer-metrics`) plus
//! ours: invalid txs by reason, minor reorgs, node tip, lag and confirmed TVL. Registered in a
//! registry owned by the caller (no globals), served at `/metrics`.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::outcome::BlockCounts;
use crate::unconfirmed::UnconfirmedInfo;

/// Every indexer metric.
#[derive(Debug, Clone)]
pub struct IndexerMetrics {
    pub start_height: IntGauge,
    pub last_processed_height: IntGauge,
    pub last_calculated_active_tvl: IntGauge,
    pub last_found_staking_height: IntGauge,
    pub last_found_unbonding_height: IntGauge,
    pub last_found_withdraw_from_staking_height: IntGauge,
    pub last_found_withdraw_from_unbonding_height: IntGauge,
    pub staking_txs: IntCounterVec,
    pub unbonding_txs: IntCounter,
    pub withdraw_from_staking: IntCounter,
    pub withdraw_from_unbonding: IntCounter,
    pub invalid_txs: IntCounterVec,
    pub invalid_by_reason: IntCounterVec,
    pub failed_unconfirmed: IntCounter,
    pub major_reorgs: IntCounter,
    pub minor_reorgs: IntCounter,
    pub node_tip_height: IntGauge,
    pub lag_blocks: IntGauge,
    pub confirmed_tvl: IntGauge,
    /// Failed node calls and database operations, by [`Operation`] (retried or fatal).
    pub failed_operations: IntCounterVec,
}

/// What failed, the `operation` label of `si_failed_operations_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A node call at start (`getblockchaininfo`).
    NodeRpc,
    /// Fetching blocks from the node while following it.
    BlockFetch,
    /// Reading the stored state for a block.
    DatabaseRead,
    /// Writing blocks (state, tip and outbox in one transaction).
    DatabaseWrite,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::NodeRpc,
        Operation::BlockFetch,
        Operation::DatabaseRead,
        Operation::DatabaseWrite,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Operation::NodeRpc => "node_rpc",
            Operation::BlockFetch => "block_fetch",
            Operation::DatabaseRead => "database_read",
            Operation::DatabaseWrite => "database_write",
        }
    }
}

fn gauge(name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    IntGauge::new(name, help)
}

fn counter(name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    IntCounter::new(name, help)
}

impl IndexerMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            start_height: gauge("si_start_btc_height", "first height processed by this run")?,
            last_processed_height: gauge(
                "si_last_processed_btc_height",
                "last confirmed block processed",
            )?,
            last_calculated_active_tvl: gauge(
                "si_last_calculated_active_tvl",
                "unconfirmed TVL in satoshi",
            )?,
            last_found_staking_height: gauge(
                "si_last_found_staking_tx_height",
                "height of the last staking tx",
            )?,
            last_found_unbonding_height: gauge(
                "si_last_found_unbonding_tx_height",
                "height of the last unbonding tx",
            )?,
            last_found_withdraw_from_staking_height: gauge(
                "si_last_found_withdraw_tx_from_staking_height",
                "height of the last withdrawal from a staking output",
            )?,
            last_found_withdraw_from_unbonding_height: gauge(
                "si_last_found_withdraw_tx_from_unbonding_height",
                "height of the last withdrawal from an unbonding output",
            )?,
            staking_txs: IntCounterVec::new(
                Opts::new(
                    "si_total_staking_txs",
                    "valid staking txs by active / overflow",
                ),
                &["tx_type"],
            )?,
            unbonding_txs: counter("si_total_unbonding_txs", "valid unbonding txs")?,
            withdraw_from_staking: counter(
                "si_total_withdraw_txs_from_staking",
                "withdrawals from staking outputs",
            )?,
            withdraw_from_unbonding: counter(
                "si_total_withdraw_txs_from_unbonding",
                "withdrawals from unbonding outputs",
            )?,
            invalid_txs: IntCounterVec::new(
                Opts::new(
                    "si_invalid_txs_counter",
                    "invalid txs by the reference's tx_type",
                ),
                &["tx_type"],
            )?,
            invalid_by_reason: IntCounterVec::new(
                Opts::new(
                    "si_invalid_txs_by_reason_total",
                    "invalid confirmed txs by reason",
                ),
                &["reason"],
            )?,
            failed_unconfirmed: counter(
                "si_failed_processing_unconfirmed_block_counter",
                "failed unconfirmed TVL computations",
            )?,
            major_reorgs: counter(
                "si_major_reorgs_counter",
                "reorgs deeper than the confirmation window",
            )?,
            minor_reorgs: counter(
                "si_minor_reorgs_total",
                "unconfirmed blocks dropped by reorgs inside the window",
            )?,
            node_tip_height: gauge("si_btc_tip_height", "the node's tip height")?,
            lag_blocks: gauge("si_lag_blocks", "node tip minus last processed height")?,
            confirmed_tvl: gauge("si_confirmed_tvl", "confirmed TVL in satoshi")?,
            failed_operations: IntCounterVec::new(
                Opts::new(
                    "si_failed_operations_total",
                    "failed node calls and database operations by operation (retried or fatal)",
                ),
                &["operation"],
            )?,
        };
        registry.register(Box::new(m.start_height.clone()))?;
        registry.register(Box::new(m.last_processed_height.clone()))?;
        registry.register(Box::new(m.last_calculated_active_tvl.clone()))?;
        registry.register(Box::new(m.last_found_staking_height.clone()))?;
        registry.register(Box::new(m.last_found_unbonding_height.clone()))?;
        registry.register(Box::new(m.last_found_withdraw_from_staking_height.clone()))?;
        registry.register(Box::new(
            m.last_found_withdraw_from_unbonding_height.clone(),
        ))?;
        registry.register(Box::new(m.staking_txs.clone()))?;
        registry.register(Box::new(m.unbonding_txs.clone()))?;
        registry.register(Box::new(m.withdraw_from_staking.clone()))?;
        registry.register(Box::new(m.withdraw_from_unbonding.clone()))?;
        registry.register(Box::new(m.invalid_txs.clone()))?;
        registry.register(Box::new(m.invalid_by_reason.clone()))?;
        registry.register(Box::new(m.failed_unconfirmed.clone()))?;
        registry.register(Box::new(m.major_reorgs.clone()))?;
        registry.register(Box::new(m.minor_reorgs.clone()))?;
        registry.register(Box::new(m.node_tip_height.clone()))?;
        registry.register(Box::new(m.lag_blocks.clone()))?;
        registry.register(Box::new(m.confirmed_tvl.clone()))?;
        registry.register(Box::new(m.failed_operations.clone()))?;
        // Every series exists from the start, so `increase()` sees the first failure.
        for op in Operation::ALL {
            m.failed(op);
        }
        for reorgs in [&m.major_reorgs, &m.minor_reorgs] {
            reorgs.inc_by(0);
        }
        Ok(m)
    }

    /// The failure counter of `op`.
    pub fn failed(&self, op: Operation) -> IntCounter {
        self.failed_operations.with_label_values(&[op.label()])
    }

    /// Counts what a committed block contained.
    pub fn record_block(&self, height: u32, counts: &BlockCounts, tvl: u64) {
        let h = i64::from(height);
        self.last_processed_height.set(h);
        self.confirmed_tvl
            .set(i64::try_from(tvl).unwrap_or(i64::MAX));
        if counts.active_stakings > 0 || counts.overflow_stakings > 0 {
            self.last_found_staking_height.set(h);
        }
        self.staking_txs
            .with_label_values(&["active"])
            .inc_by(counts.active_stakings);
        self.staking_txs
            .with_label_values(&["overflow"])
            .inc_by(counts.overflow_stakings);
        if counts.unbondings > 0 {
            self.last_found_unbonding_height.set(h);
            self.unbonding_txs.inc_by(counts.unbondings);
        }
        if counts.withdrawals_from_staking > 0 {
            self.last_found_withdraw_from_staking_height.set(h);
            self.withdraw_from_staking
                .inc_by(counts.withdrawals_from_staking);
        }
        if counts.withdrawals_from_unbonding > 0 {
            self.last_found_withdraw_from_unbonding_height.set(h);
            self.withdraw_from_unbonding
                .inc_by(counts.withdrawals_from_unbonding);
        }
        for reason in &counts.invalid {
            self.invalid_txs
                .with_label_values(&[reason.reference_tx_type()])
                .inc();
            self.invalid_by_reason
                .with_label_values(&[reason.as_str()])
                .inc();
        }
    }

    /// Counts an unconfirmed-window pass.
    pub fn record_unconfirmed(&self, info: &UnconfirmedInfo) {
        self.last_calculated_active_tvl
            .set(i64::try_from(info.unconfirmed_tvl.to_sat()).unwrap_or(i64::MAX));
        self.invalid_txs
            .with_label_values(&["unconfirmed_staking_transaction"])
            .inc_by(info.invalid_stakings);
        self.invalid_txs
            .with_label_values(&["unconfirmed_unbonding_transactions"])
            .inc_by(info.invalid_unbondings);
        self.invalid_txs
            .with_label_values(&["unconfirmed_unknown_transaction"])
            .inc_by(info.unknown_spends);
    }

    /// Updates the node tip and the lag behind it.
    pub fn record_tip(&self, node_tip: u32, last_processed: Option<u32>) {
        self.node_tip_height.set(i64::from(node_tip));
        let lag = i64::from(node_tip) - last_processed.map_or(0, i64::from);
        self.lag_blocks.set(lag.max(0));
    }
}
