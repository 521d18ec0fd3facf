//! The per-block writer of the indexer: loads what a confirmed block may touch, runs the pure
//! processor, and writes the block's state, tip and outbox rows in one database transaction (or
//! with the next blocks while far behind, see [`crate::group`]); keeps the unconfirmed window's
//! report and the catch-up `btc_info` events. [`crate::driver`] feeds it blocks in order.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use bitcoin::Amount;
use events::{BtcInfoEvent, Event, RelayWaker};
use store::{
    BlockApplied, BlockRef, IndexerStore, OutboxEvent, OutboxStore, StoreError, WriterLock,
};
use tokio_util::sync::CancellationToken;

use crate::config::IndexerConfig;
use crate::error::IndexerError;
use crate::group::Group;
use crate::known::KnownTxids;
use crate::metrics::{IndexerMetrics, Operation};
use crate::processor::{prevouts, process_block, BlockInput, StoredView};
use crate::progress::Progress;
use crate::retry::{retry, store_transient};
use crate::unconfirmed::unconfirmed_info;
use crate::window::{HeightBlock, Window};

pub(crate) struct BlockWriter<'a> {
    pub(crate) config: &'a IndexerConfig,
    pub(crate) store: IndexerStore,
    pub(crate) outbox: OutboxStore,
    pub(crate) lock: WriterLock,
    pub(crate) metrics: IndexerMetrics,
    pub(crate) waker: RelayWaker,
    pub(crate) window: Window,
    pub(crate) tip: Option<BlockRef>,
    pub(crate) confirmed_tvl: Amount,
    /// Txids of the stored staking and unbonding txs: which prevouts need a lookup.
    pub(crate) known: KnownTxids,
    /// Processed blocks not yet written (only while far behind the node's tip).
    pub(crate) group: Group,
    pub(crate) reported_window_tip: Option<u32>,
    pub(crate) progress: Progress,
}

impl BlockWriter<'_> {
    /// Loads what the block may touch and processes it; writes it at once, or with the next
    /// blocks while `behind` (see [`crate::group`]). `Ok(true)` = shutting down.
    pub(crate) async fn commit(
        &mut self,
        hb: HeightBlock,
        behind: bool,
        shutdown: &CancellationToken,
    ) -> Result<bool, IndexerError> {
        let prevs = self.known.relevant(prevouts(&hb.block));
        // The view is read from the database: write the group first if the block spends from it.
        if self.group.spends_from(&prevs) && self.flush(shutdown).await? {
            return Ok(true);
        }
        let replay = self.tip.is_some_and(|t| hb.height <= t.height);
        let Some(view) = self.view(&hb, &prevs, replay, shutdown).await? else {
            return Ok(true);
        };
        let processed = process_block(
            BlockInput {
                height: hb.height,
                block: &hb.block,
                hash: hb.hash,
                params: &self.config.params,
                confirmed_tvl: self.confirmed_tvl,
                extra_event_enabled: self.config.extra_event_enabled,
            },
            &view,
        )?;
        let write = processed.write;
        self.known.extend(write.stored_txids());
        self.confirmed_tvl = processed.confirmed_tvl;
        let now = Instant::now();
        self.group.push(write, processed.counts, now);
        if replay || !behind || self.group.due(now) {
            return self.flush(shutdown).await;
        }
        Ok(false)
    }

    /// Writes the group's blocks in one transaction. `Ok(true)` = shutting down.
    pub(crate) async fn flush(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Result<bool, IndexerError> {
        if self.group.is_empty() {
            return Ok(false);
        }
        self.lock.check().await?;
        let store = &self.store;
        let writes = self.group.writes();
        let failures = self.metrics.failed(Operation::DatabaseWrite);
        let outcomes = match retry(
            "writing blocks",
            shutdown,
            store_transient,
            &failures,
            || store.apply_blocks(writes),
        )
        .await
        {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(true),
            Err(e @ (StoreError::NotConnected { .. } | StoreError::ConflictingBlock { .. })) => {
                self.metrics.major_reorgs.inc();
                tracing::error!(error = %e, "major reorg detected by the store");
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let (writes, counts) = self.group.take();
        let mut events = 0;
        for ((write, counts), outcome) in writes.iter().zip(&counts).zip(&outcomes) {
            if outcome.applied == BlockApplied::Extended {
                self.tip = Some(BlockRef {
                    height: write.height,
                    hash: write.hash,
                });
            }
            self.metrics
                .record_block(write.height, counts, outcome.confirmed_tvl.to_sat());
            events += outcome.events_queued;
        }
        if let Some(last) = outcomes.last() {
            if last.confirmed_tvl != self.confirmed_tvl {
                tracing::error!(
                    stored = %last.confirmed_tvl,
                    processed = %self.confirmed_tvl,
                    "the store and the processor disagree on the confirmed TVL; using the store's"
                );
            }
            self.confirmed_tvl = last.confirmed_tvl;
        }
        if events > 0 {
            self.waker.wake();
        }
        Ok(false)
    }

    /// The stored rows this block's spends refer to (one batch query, none when the block spends
    /// no output of a stored tx), plus replay facts.
    pub(crate) async fn view(
        &self,
        hb: &HeightBlock,
        prevs: &[bitcoin::OutPoint],
        replay: bool,
        shutdown: &CancellationToken,
    ) -> Result<Option<StoredView>, IndexerError> {
        let store = &self.store;
        let Some(lookup) = retry(
            "looking up spent outputs",
            shutdown,
            store_transient,
            &self.metrics.failed(Operation::DatabaseRead),
            || store.lookup_spent(prevs),
        )
        .await?
        else {
            return Ok(None);
        };
        let mut stakings = lookup.stakings;
        for u in &lookup.unbondings {
            if !stakings.iter().any(|s| s.txid == u.staking_txid) {
                if let Some(s) = store.staking_tx(u.staking_txid).await? {
                    stakings.push(s);
                }
            }
        }
        let mut view = StoredView {
            stakings,
            unbondings: lookup.unbondings,
            already_stored: HashMap::new(),
            already_unbonded: HashSet::new(),
        };
        if replay {
            let here = store
                .staking_txs_in_range(hb.height, hb.height.saturating_add(1))
                .await?;
            let candidates: Vec<_> = here
                .iter()
                .chain(view.stakings.iter())
                .map(|s| s.txid)
                .collect();
            for txid in candidates {
                if store.unbonding_of(txid).await?.is_some() {
                    view.already_unbonded.insert(txid);
                }
            }
            view.already_stored = here.into_iter().map(|s| (s.txid, s.is_overflow)).collect();
        }
        Ok(Some(view))
    }

    /// Computes the unconfirmed TVL over the window and queues a `btc_info` event, once per new
    /// window tip. Failures are counted and logged, not fatal (as the reference).
    pub(crate) async fn publish_btc_info(&mut self) {
        let Some(window_tip) = self.window.tip_height() else {
            return;
        };
        if self.reported_window_tip == Some(window_tip) {
            return;
        }
        let prevs = self
            .known
            .relevant(self.window.blocks().flat_map(|b| prevouts(&b.block)));
        let stored = match self.store.lookup_spent(&prevs).await {
            Ok(l) => l.stakings,
            Err(e) => {
                self.metrics.failed_unconfirmed.inc();
                tracing::warn!(error = %e, "unconfirmed TVL: lookup failed");
                return;
            }
        };
        let info = match unconfirmed_info(
            self.window.blocks(),
            &self.config.params,
            &stored,
            self.confirmed_tvl,
        ) {
            Ok(Some(info)) => info,
            Ok(None) => return,
            Err(e) => {
                self.metrics.failed_unconfirmed.inc();
                tracing::warn!(error = %e, "unconfirmed TVL not computed");
                return;
            }
        };
        self.metrics.record_unconfirmed(&info);
        let event = Event::BtcInfo(BtcInfoEvent {
            height: u64::from(info.height),
            confirmed_tvl: info.confirmed_tvl,
            unconfirmed_tvl: info.unconfirmed_tvl,
        });
        let row = OutboxEvent {
            queue: event.queue().as_str().to_owned(),
            payload: event.to_json(),
        };
        match self.outbox.enqueue(&[row]).await {
            Ok(_) => {
                self.reported_window_tip = Some(window_tip);
                self.waker.wake();
            }
            Err(e) => {
                self.metrics.failed_unconfirmed.inc();
                tracing::warn!(error = %e, "btc_info event not queued");
            }
        }
    }
}
