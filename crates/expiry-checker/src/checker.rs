//! The service: every `poll_interval` read the tip once, then claim expired timelock rows batch
//! by batch (each batch one transaction that writes the events to the expiry outbox) until none
//! is left; a relay task publishes the outbox. Transient database, node and broker failures are
//! logged and retried; permanent ones stop the service with the reason.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bitcoin_rpc::{RpcClient, RpcError};
use events::{EventsError, Publish, QueueName, Relay, RelayConfig, RelayWaker, Transport};
use prometheus::Registry;
use store::expiry::ExpiryOutbox;
use store::{Db, DbOptions, ExpiryStore, StoreError};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, QueueConfig, TipSource};
use crate::error::ExpiryError;
use crate::metrics::ExpiryMetrics;

const MAX_BACKOFF: Duration = Duration::from_secs(30);
const STATUS_EVERY: Duration = Duration::from_secs(60);

/// What one [`poll_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// The tip the poll compared against.
    pub tip: u64,
    /// Events written to the outbox.
    pub emitted: usize,
    /// Timelock rows removed as duplicates of an earlier emission.
    pub duplicates: usize,
}

/// Claims every timelock row expired at `tip` (`expire_height ≤ tip`), `batch` rows per
/// transaction, and wakes `waker` after each batch that emitted something.
pub async fn poll_once(
    store: &ExpiryStore,
    tip: u64,
    batch: u32,
    metrics: Option<&ExpiryMetrics>,
    waker: Option<&RelayWaker>,
) -> Result<PollReport, StoreError> {
    let mut report = PollReport {
        tip,
        ..PollReport::default()
    };
    loop {
        let claim = store.claim_expired(tip, batch).await?;
        report.emitted += claim.emitted.len();
        report.duplicates += claim.duplicates();
        if let Some(m) = metrics {
            for e in &claim.emitted {
                m.emitted.with_label_values(&[e.tx_type.as_str()]).inc();
                tracing::debug!(staking_tx = %e.staking_tx_hash, tx_type = e.tx_type.as_str(),
                    expire_height = e.expire_height, tip, "timelock expired");
            }
            m.duplicate_rows.inc_by(claim.duplicates() as u64);
        }
        if !claim.emitted.is_empty() {
            if let Some(w) = waker {
                w.wake();
            }
        }
        if claim.rows_taken < batch as usize {
            return Ok(report);
        }
    }
}

/// The checker's operations endpoint: `registry`, and readiness of the database (once
/// connected), the node (when the tip comes from one) and the broker (RabbitMQ).
fn ops(
    registry: &Registry,
    db: &Arc<OnceLock<Db>>,
    tip: &Tip,
    transport: Option<&Transport>,
) -> net::Ops {
    let db = Arc::clone(db);
    let mut ops = net::Ops::builder()
        .registry(registry)
        .check("database", move || {
            let db = db.get().cloned();
            async move {
                match db {
                    Some(db) => db.ping().await.map_err(|e| e.to_string()),
                    None => Err("not connected yet (the connection is being retried)".to_owned()),
                }
            }
        });
    if let Tip::Rpc(rpc) = tip {
        let rpc = rpc.clone();
        ops = ops.check("node", move || {
            let rpc = rpc.clone();
            async move {
                rpc.get_block_count()
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        });
    }
    if let Some(t @ Transport::RabbitMq(_)) = transport {
        let t = t.clone();
        ops = ops.check("broker", move || {
            let t = t.clone();
            async move { t.ping().await.map_err(|e| e.to_string()) }
        });
    }
    ops.build()
}

/// Where the tip comes from, with timing metrics for the node calls.
#[derive(Debug)]
enum Tip {
    Rpc(RpcClient),
    Manual(crate::config::ManualTip),
}

impl Tip {
    async fn height(&self, metrics: &ExpiryMetrics) -> Result<u64, RpcError> {
        match self {
            Tip::Manual(t) => Ok(t.get()),
            Tip::Rpc(rpc) => {
                let started = Instant::now();
                let result = rpc.get_block_count().await;
                let status = if result.is_ok() { "success" } else { "failure" };
                metrics
                    .btcclient_duration
                    .with_label_values(&["getblockcount", status])
                    .observe(started.elapsed().as_secs_f64());
                result.map(u64::from)
            }
        }
    }
}

/// Counts failed publishes (`queue_send_error_count`) around the relay's transport.
#[derive(Debug)]
struct CountingPublisher {
    transport: Transport,
    errors: prometheus::IntCounter,
}

impl Publish for CountingPublisher {
    async fn publish(&self, queue: QueueName, payload: &[u8]) -> Result<(), EventsError> {
        let result = self.transport.publish(queue, payload).await;
        if result.is_err() {
            self.errors.inc();
        }
        result
    }

    /// Keeps the transport's pipelined batch publish (many confirms in flight on RabbitMQ).
    async fn publish_all(&self, messages: &[(QueueName, &[u8])]) -> (usize, Option<EventsError>) {
        let (done, error) = self.transport.publish_all(messages).await;
        if error.is_some() {
            self.errors.inc();
        }
        (done, error)
    }
}

/// Runs the checker until `shutdown` (then `Ok`) or a permanent failure. Events go to RabbitMQ
/// when configured; with the in-process queue setting they stay in the expiry outbox (use
/// [`run_with`] to hand in the process's transport).
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), ExpiryError> {
    run_with(config, None, &Registry::new(), shutdown).await
}

/// [`run`] with an explicit transport (e.g. `stakingd devnet`'s in-process queues) and a
/// registry the caller may also expose.
pub async fn run_with(
    config: Config,
    transport: Option<Transport>,
    registry: &Registry,
    shutdown: CancellationToken,
) -> Result<(), ExpiryError> {
    let metrics =
        ExpiryMetrics::register(registry).map_err(|e| ExpiryError::Metrics(e.to_string()))?;
    let tasks = shutdown.child_token();
    let result = run_inner(&config, transport, registry, &metrics, &shutdown, &tasks).await;
    tasks.cancel();
    result
}

/// Waits `delay` unless `shutdown` fires first (then `false`).
async fn sleep_or_stop(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

async fn connect(config: &Config, shutdown: &CancellationToken) -> Result<Option<Db>, ExpiryError> {
    let mut delay = Duration::from_millis(200);
    loop {
        let options = DbOptions {
            url: config.database_url.clone(),
            max_connections: config.max_connections,
        };
        match Db::connect(&options).await {
            Ok(store) => return Ok(Some(store)),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, ?delay, "database not reachable; retrying");
                if !sleep_or_stop(delay, shutdown).await {
                    return Ok(None);
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn run_inner(
    config: &Config,
    transport: Option<Transport>,
    registry: &Registry,
    metrics: &ExpiryMetrics,
    shutdown: &CancellationToken,
    tasks: &CancellationToken,
) -> Result<(), ExpiryError> {
    let transport = match (transport, &config.queue) {
        (Some(t), _) => Some(t),
        (None, QueueConfig::RabbitMq(c)) => {
            let events_metrics = events::EventsMetrics::new();
            events_metrics
                .register(registry)
                .map_err(|e| ExpiryError::Metrics(e.to_string()))?;
            Some(Transport::RabbitMq(events::RabbitMqTransport::lazy(
                c.clone(),
                events_metrics,
            )))
        }
        (None, QueueConfig::InProcess) => {
            tracing::warn!(
                "queue is `inprocess` and no transport was handed in: expired events stay in \
                 the api_expiry_outbox table (set queue.url to amqp://… to deliver them)"
            );
            None
        }
    };
    // The reference topology at start-up, before the database or the first expiry.
    if let Some(t) = &transport {
        let (t, token) = (t.clone(), tasks.clone());
        tokio::spawn(async move { t.declare_topology_until_done(token).await });
    }
    let tip = match &config.tip {
        TipSource::Rpc(rpc) => Tip::Rpc(RpcClient::new(rpc.clone())?),
        TipSource::Manual(t) => Tip::Manual(t.clone()),
    };
    // Filled once the database is connected (the connection is retried while it is away).
    let connected: Arc<OnceLock<Db>> = Arc::new(OnceLock::new());
    if let Some(addr) = config.metrics_addr {
        let ops = ops(registry, &connected, &tip, transport.as_ref());
        let (local, _) = ops
            .spawn(addr, tasks.clone())
            .await
            .map_err(|e| ExpiryError::Metrics(e.to_string()))?;
        tracing::info!(%local, "metrics at /metrics, readiness at /health/ready");
    }
    let Some(db) = connect(config, shutdown).await? else {
        return Ok(());
    };
    db.migrate().await?;
    let _first = connected.set(db.clone());
    let store = db.expiry();

    let waker = RelayWaker::new();
    let outbox = ExpiryOutbox::new(store.clone(), config.relay_lease);
    let mut relay_task = transport.map(|t| {
        let outbox = outbox.clone();
        let publisher = CountingPublisher {
            transport: t,
            errors: metrics.queue_send_errors.clone(),
        };
        let relay_config = RelayConfig {
            batch_size: config.batch_size as usize,
            poll_interval: config.poll_interval.min(Duration::from_secs(1)),
            ..RelayConfig::default()
        };
        let relay_metrics = publisher.transport.metrics().clone();
        let relay = Relay::new(outbox, publisher, relay_config)
            .with_waker(waker.clone())
            .with_metrics(relay_metrics, "api_expiry_outbox");
        tokio::spawn(relay.run(tasks.clone()))
    });
    tracing::info!(
        backend = %db.backend(),
        poll_interval = ?config.poll_interval,
        batch_size = config.batch_size,
        "expiry checker started"
    );

    let mut backoff = Duration::from_millis(200);
    let mut last_status = Instant::now();
    let mut emitted_total = 0usize;
    let mut last_tip = None;
    loop {
        let started = Instant::now();
        let outcome = poll(&store, &tip, config.batch_size, metrics, &waker).await;
        let status = if outcome.is_ok() {
            "success"
        } else {
            "failure"
        };
        metrics
            .poll_duration
            .with_label_values(&[status])
            .observe(started.elapsed().as_secs_f64());
        let wait = match outcome {
            Ok(report) => {
                backoff = Duration::from_millis(200);
                emitted_total += report.emitted;
                if report.emitted > 0 || report.duplicates > 0 {
                    tracing::info!(
                        tip = report.tip,
                        emitted = report.emitted,
                        duplicates = report.duplicates,
                        "expired timelocks moved to the outbox"
                    );
                }
                if last_tip != Some(report.tip) || last_status.elapsed() >= STATUS_EVERY {
                    let waiting = store.timelock_counts(report.tip).await.map(|c| c.0);
                    if let Ok(w) = waiting {
                        metrics
                            .timelock_rows
                            .set(i64::try_from(w).unwrap_or(i64::MAX));
                    }
                    if last_status.elapsed() >= STATUS_EVERY {
                        let waiting =
                            waiting.map_or_else(|_| "unknown".to_owned(), |w| w.to_string());
                        tracing::info!(tip = report.tip, %waiting, emitted_total,
                            "expiry checker status");
                        last_status = Instant::now();
                    }
                    last_tip = Some(report.tip);
                }
                config.poll_interval
            }
            Err(PollError::Store(e)) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in = ?backoff, "database unavailable; poll retried");
                next_backoff(&mut backoff)
            }
            Err(PollError::Rpc(e)) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in = ?backoff, "bitcoind unavailable; poll retried");
                next_backoff(&mut backoff)
            }
            Err(PollError::Store(e)) => return Err(e.into()),
            Err(PollError::Rpc(e)) => return Err(e.into()),
        };
        let relay_done = async {
            match relay_task.as_mut() {
                Some(handle) => handle.await,
                None => std::future::pending().await,
            }
        };
        // `biased`: a stop (which also ends the relay, whose token is a child of it) is seen as
        // a stop, not as the relay ending on its own.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                tasks.cancel();
                if let Some(relay) = relay_task {
                    let _stopped = relay.await;
                }
                release(&outbox).await;
                return Ok(());
            }
            done = relay_done => {
                match done {
                    Ok(Ok(())) if shutdown.is_cancelled() => {
                        release(&outbox).await;
                        return Ok(());
                    }
                    Ok(Ok(())) => return Err(ExpiryError::RelayStopped("it ended without being asked to".into())),
                    Ok(Err(e)) => return Err(e.into()),
                    Err(join) => return Err(ExpiryError::RelayStopped(format!("it panicked: {join}"))),
                }
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Gives back the outbox rows this checker's stopped relay still holds, so the next checker
/// publishes them at once rather than when the lease ends.
async fn release(outbox: &ExpiryOutbox) {
    match outbox.release().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "unsent expiry outbox rows released"),
        Err(e) => tracing::warn!(
            error = %e,
            "could not release expiry outbox rows; another checker takes them over when the lease ends"
        ),
    }
}

fn next_backoff(backoff: &mut Duration) -> Duration {
    let now = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    now
}

enum PollError {
    Store(StoreError),
    Rpc(RpcError),
}

async fn poll(
    store: &ExpiryStore,
    tip: &Tip,
    batch: u32,
    metrics: &ExpiryMetrics,
    waker: &RelayWaker,
) -> Result<PollReport, PollError> {
    let height = tip.height(metrics).await.map_err(PollError::Rpc)?;
    metrics
        .tip_height
        .set(i64::try_from(height).unwrap_or(i64::MAX));
    poll_once(store, height, batch, Some(metrics), Some(waker))
        .await
        .map_err(PollError::Store)
}
