//! The service around the pure processor: takes the writer lock (a second instance waits as a
//! hot standby), follows the node with a prefetching block source, keeps the unconfirmed window
//! in memory, hands each confirmed block to the [`crate::writer`] (one database transaction per
//! block, or per group of blocks while far behind: [`crate::group`]), wakes the outbox relay,
//! and publishes `btc_info` when caught up.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin_rpc::{ChainEvent, FollowerConfig, RpcClient, StartPoint, TipFollower};
use events::{Relay, RelayConfig, RelayWaker, Transport};
use prometheus::{IntCounter, Registry};
use store::{Db, DbOptions, INDEXER_LOCK};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{IndexerConfig, QueueConfig};
use crate::error::{ConfigError, IndexerError};
use crate::group::Group;
use crate::known::KnownTxids;
use crate::metrics::{IndexerMetrics, Operation};
use crate::progress::Progress;
use crate::retry::{retry, rpc_transient, MAX_BACKOFF};
use crate::start::start_height;
use crate::window::{Disconnect, HeightBlock, Window};
use crate::writer::BlockWriter;

/// Blocks the follower fetches at once while catching up (each `getblockhash` + `getblock` and
/// its decoding in a task of its own), so fetching overlaps with processing and with itself.
const PREFETCH: usize = 6;
/// Fetched blocks queued between the follower and the processing loop. Memory bound: about
/// `PREFETCH + QUEUED` blocks besides the window's `k − 1` (≈ 3 MB each decoded at mainnet size).
const QUEUED: usize = 2;
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// While catching up, a `btc_info` event every this many blocks (the reference's scanner emits a
/// chain update, hence a `btc_info`, every 100 confirmed blocks during its bootstrap).
const BTC_INFO_EVERY: u32 = 100;
/// Why a standalone indexer refuses the in-process queue setting.
pub const IN_PROCESS_REFUSED: &str = "queue.url is `inprocess`, but a standalone indexer has no \
in-process consumer: its events would pile up in the outbox and never reach the API. Set queue.url \
(--queue-url, STAKINGD_QUEUE_URL or [queue] url in the config file) to the RabbitMQ broker, e.g. \
amqp://user:password@127.0.0.1:5672, or run `stakingd devnet`, which hands the indexer its \
in-process queues";

/// Runs the indexer until `shutdown` (then `Ok`) or a fatal error, relaying its events to
/// RabbitMQ. The in-process queue setting is refused ([`IN_PROCESS_REFUSED`]): nothing in a
/// standalone process would consume it. Use [`run_with`] to hand in a transport.
pub async fn run(config: IndexerConfig, shutdown: CancellationToken) -> Result<(), IndexerError> {
    if matches!(config.queue, QueueConfig::InProcess) {
        return Err(ConfigError(IN_PROCESS_REFUSED.to_owned()).into());
    }
    run_with(config, None, &Registry::new(), shutdown).await
}

/// [`run`] with an explicit transport (e.g. `stakingd devnet`'s in-process queues) and a
/// registry the caller may also expose. With no transport and the in-process setting, events
/// stay in the outbox table (tests read them there).
pub async fn run_with(
    config: IndexerConfig,
    transport: Option<Transport>,
    registry: &Registry,
    shutdown: CancellationToken,
) -> Result<(), IndexerError> {
    let metrics =
        IndexerMetrics::register(registry).map_err(|e| IndexerError::Metrics(e.to_string()))?;
    let tasks = shutdown.child_token();
    let result = run_inner(&config, transport, registry, metrics, &shutdown, &tasks).await;
    tasks.cancel();
    result
}

async fn run_inner(
    config: &IndexerConfig,
    transport: Option<Transport>,
    registry: &Registry,
    metrics: IndexerMetrics,
    shutdown: &CancellationToken,
    tasks: &CancellationToken,
) -> Result<(), IndexerError> {
    let db = Db::connect(&DbOptions::new(config.database_url.as_str())).await?;
    db.migrate().await?;
    let rpc = RpcClient::new(config.rpc.clone())?;
    let relay = match (transport, &config.queue) {
        (Some(t), _) => Some(t),
        (None, QueueConfig::RabbitMq(c)) => {
            let metrics = events::EventsMetrics::new();
            metrics
                .register(registry)
                .map_err(|e| IndexerError::Metrics(e.to_string()))?;
            Some(Transport::RabbitMq(events::RabbitMqTransport::lazy(
                c.clone(),
                metrics,
            )))
        }
        (None, QueueConfig::InProcess) => {
            tracing::warn!("queue is `inprocess` and no transport was handed in: events stay in the outbox table");
            None
        }
    };
    // The reference topology now, before waiting for the writer lock, the node or the
    // activation height: a consumer that only binds finds its queues at once.
    if let Some(t) = &relay {
        let (t, token) = (t.clone(), tasks.clone());
        tokio::spawn(async move { t.declare_topology_until_done(token).await });
    }
    if let Some(addr) = config.metrics_addr {
        let ops = crate::health::ops(registry, &db, &rpc, relay.as_ref(), config);
        let (local, _) = ops
            .spawn(addr, tasks.clone())
            .await
            .map_err(|e| IndexerError::Metrics(e.to_string()))?;
        tracing::info!(%local, "metrics at /metrics, readiness at /health/ready");
    }
    let lock = match db.try_writer_lock(INDEXER_LOCK).await? {
        Some(lock) => lock,
        None => {
            tracing::info!("another indexer holds the writer lock; waiting as hot standby");
            match db
                .wait_for_writer_lock(INDEXER_LOCK, Duration::from_secs(1), shutdown)
                .await?
            {
                Some(lock) => lock,
                None => return Ok(()),
            }
        }
    };
    tracing::info!(backend = %db.backend(), "writer lock taken");
    let (store, outbox) = (db.indexer(), db.outbox());
    let failures = metrics.failed(Operation::NodeRpc);
    let Some(info) = retry(
        "getblockchaininfo",
        shutdown,
        rpc_transient,
        &failures,
        || rpc.get_blockchain_info(),
    )
    .await?
    else {
        return Ok(());
    };
    if info.chain != config.network {
        return Err(ConfigError(format!(
            "bitcoind at {} is on the {} chain but network is {}: point bitcoind.url at a {} node or fix network",
            config.rpc.url, info.chain, config.network, config.network
        ))
        .into());
    }
    let tip = store.tip().await?;
    let first = u32::try_from(config.params.first_activation_height().0).unwrap_or(u32::MAX);
    let start = start_height(config.start_height, tip.map(|t| t.height), first)
        .map_err(IndexerError::StartHeight)?;
    metrics.start_height.set(i64::from(start));
    let start_point = match tip {
        Some(t) if start == t.height.saturating_add(1) => StartPoint::After {
            height: t.height,
            hash: t.hash,
        },
        _ => StartPoint::FromHeight(start),
    };
    tracing::info!(
        start,
        params = %config.params_source,
        depth = config.params.confirmation_depth(),
        stored_tip = ?tip.map(|t| t.height),
        "indexer starting"
    );

    let waker = RelayWaker::new();
    let mut relay_task = relay.map(|t| {
        let relay_metrics = t.metrics().clone();
        let relay = Relay::new(outbox.clone(), t, RelayConfig::default())
            .with_waker(waker.clone())
            .with_metrics(relay_metrics, "outbox");
        tokio::spawn(relay.run(tasks.clone()))
    });

    let node_tip = Arc::new(AtomicU32::new(info.blocks));
    tokio::spawn(watch_tip(
        rpc.clone(),
        Arc::clone(&node_tip),
        config.poll_interval,
        tasks.clone(),
    ));
    let (tx, mut rx) = mpsc::channel(QUEUED);
    let follower = TipFollower::new(
        rpc.clone(),
        FollowerConfig {
            poll_interval: config.poll_interval,
            zmq_endpoint: None,
            start: start_point,
            prefetch: PREFETCH,
        },
    );
    tokio::spawn(source(
        follower,
        tx,
        metrics.failed(Operation::BlockFetch),
        tasks.clone(),
    ));

    let confirmed_tvl = store.confirmed_tvl().await?;
    let known = KnownTxids::new(store.spendable_txids().await?);
    tracing::debug!(
        txids = known.len(),
        "stored staking and unbonding txids loaded"
    );
    let mut ix = BlockWriter {
        config,
        store,
        outbox,
        lock,
        metrics,
        waker,
        window: Window::new(config.params.confirmation_depth()),
        tip,
        confirmed_tvl,
        known,
        group: Group::default(),
        reported_window_tip: None,
        progress: Progress::new(PROGRESS_EVERY, Instant::now(), start.saturating_sub(1)),
    };
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => break,
            done = relay_done(&mut relay_task) => {
                relay_task = None;
                match done {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => return Err(e.into()),
                    Err(e) => return Err(IndexerError::SourceStopped(format!("relay task: {e}"))),
                }
            }
            event = rx.recv() => event,
        };
        let Some(event) = event else {
            if shutdown.is_cancelled() {
                break;
            }
            return Err(IndexerError::SourceStopped("the block source ended".into()));
        };
        let stop = match event? {
            ChainEvent::Connected { height, block } => {
                let hash = block.block_hash();
                match ix.window.push(HeightBlock {
                    height,
                    hash,
                    block,
                }) {
                    Some(confirmed) => {
                        // Far behind: more blocks are queued or the node has more.
                        let behind = !rx.is_empty() || height < node_tip.load(Ordering::Relaxed);
                        ix.commit(confirmed, behind, shutdown).await?
                    }
                    None => false,
                }
            }
            ChainEvent::Disconnected { height, hash } => match ix.window.disconnect(height, hash) {
                Disconnect::Dropped => {
                    ix.metrics.minor_reorgs.inc();
                    ix.reported_window_tip = None;
                    tracing::info!(height, %hash, "unconfirmed block left the active chain (reorg inside the window)");
                    false
                }
                Disconnect::BelowWindow => {
                    ix.metrics.major_reorgs.inc();
                    let err = IndexerError::MajorReorg {
                        height,
                        hash,
                        depth: config.params.confirmation_depth(),
                    };
                    tracing::error!("{err}");
                    return Err(err);
                }
            },
        };
        if stop {
            break;
        }
        let tip_now = node_tip.load(Ordering::Relaxed);
        ix.metrics.record_tip(tip_now, ix.tip.map(|t| t.height));
        if let Some(r) = ix
            .progress
            .tick(Instant::now(), ix.tip.map_or(0, |t| t.height), tip_now)
        {
            if r.tip
                > r.height
                    .saturating_add(u32::from(config.params.confirmation_depth()))
            {
                tracing::info!(
                    height = r.height,
                    tip = r.tip,
                    blocks_per_sec = format!("{:.1}", r.blocks_per_sec),
                    eta_secs = r.eta.map(|d| d.as_secs()),
                    "catching up"
                );
            }
        }
        let caught_up = ix.window.tip_height().is_some_and(|h| h >= tip_now) && rx.is_empty();
        let info_due = ix.window.tip_height().is_some_and(|h| {
            ix.reported_window_tip
                .is_none_or(|r| h >= r.saturating_add(BTC_INFO_EVERY))
        });
        if caught_up || info_due {
            // The event's confirmed TVL is that of the written blocks, queued after their rows.
            if ix.flush(shutdown).await? {
                break;
            }
            ix.publish_btc_info().await;
        }
    }
    ix.lock.release().await?;
    Ok(())
}

type RelayHandle = tokio::task::JoinHandle<Result<(), events::RelayError>>;

/// Resolves when the relay task ends; never when there is none.
async fn relay_done(
    task: &mut Option<RelayHandle>,
) -> Result<Result<(), events::RelayError>, tokio::task::JoinError> {
    match task {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// Feeds chain events into the channel, fetching ahead while the consumer processes.
async fn source(
    mut follower: TipFollower,
    tx: mpsc::Sender<Result<ChainEvent, IndexerError>>,
    failures: IntCounter,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        match follower.next_until(&shutdown).await {
            None => return,
            Some(Ok(event)) => {
                delay = Duration::from_millis(100);
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            Some(Err(e)) if e.is_transient() => {
                failures.inc();
                tracing::warn!(error = %e, ?delay, "fetching blocks failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
            Some(Err(e)) => {
                failures.inc();
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        }
    }
}

/// Keeps the node's tip height fresh for lag, progress and "caught up".
async fn watch_tip(
    rpc: RpcClient,
    tip: Arc<AtomicU32>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        if let Ok(height) = rpc.get_block_count().await {
            tip.store(height, Ordering::Relaxed);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// `stakingd indexer rollback --to-height H`: removes everything above `H` (state, TVL
/// recomputed from the rows, tip) in one transaction, keeping the outbox history. Refuses while
/// an indexer holds the writer lock.
pub async fn rollback(
    database_url: &str,
    to_height: u32,
) -> Result<store::RollbackReport, IndexerError> {
    let db = Db::connect(&DbOptions::new(database_url)).await?;
    db.migrate().await?;
    let Some(lock) = db.try_writer_lock(INDEXER_LOCK).await? else {
        return Err(IndexerError::Config(ConfigError(
            "an indexer is running against this database (it holds the writer lock): stop it first"
                .into(),
        )));
    };
    let report = db.indexer().rollback_to(to_height).await?;
    lock.release().await?;
    Ok(report)
}
