//! The pipeline: claim a batch, process its requests concurrently (each one independently:
//! checks → committee → witness → broadcast), record each outcome under the claim, repeat.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin_rpc::RpcClient;
use store::unbonding::{ClaimedUnbonding, Recorded};
use store::{Db, DbOptions, UnbondingStore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::broadcast;
use crate::check;
use crate::config::Config;
use crate::error::PipelineError;
use crate::metrics::Metrics;
use crate::outcome::{FailureKind, Outcome};
use crate::signers::Committee;

/// What one pass (or one `run_once`) did. Counts attempts, not distinct requests: a request
/// retried twice within a pass counts twice in `retried`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Requests claimed.
    pub claimed: u64,
    /// Broadcast by this pipeline and recorded `sent`.
    pub sent: u64,
    /// Found already broadcast (mempool or chain) and recorded `sent`.
    pub already_sent: u64,
    /// Recorded terminally `failed`.
    pub failed: u64,
    /// Put back for a later attempt after a transient failure.
    pub retried: u64,
    /// Outcomes not recorded because another pipeline had taken the request over.
    pub lease_lost: u64,
}

impl Summary {
    fn add(&mut self, other: &Summary) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.already_sent += other.already_sent;
        self.failed += other.failed;
        self.retried += other.retried;
        self.lease_lost += other.lease_lost;
    }
}

/// The non-zero counts in words, e.g. `1 claimed, 1 sent` (`nothing` when all are zero): what
/// the progress log line shows an operator.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts = [
            (self.claimed, "claimed"),
            (self.sent, "sent"),
            (self.already_sent, "found already sent"),
            (self.failed, "failed"),
            (self.retried, "to retry"),
            (self.lease_lost, "taken over by another pipeline"),
        ];
        let said: Vec<String> = counts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if said.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&said.join(", "))
        }
    }
}

/// A connected pipeline: database, node, committee client and metrics. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    db: Db,
    store: UnbondingStore,
    rpc: RpcClient,
    committee: Committee,
    heights: check::Heights,
    metrics: Metrics,
    /// Identifies this pipeline's claims (random per start).
    token: String,
}

impl Pipeline {
    /// Checks the config, connects the database (migrating it if `config.migrate`) and builds
    /// the clients. Does not contact the node or the signers.
    pub async fn connect(config: Config) -> Result<Self, PipelineError> {
        Self::connect_with(config, Metrics::new()?).await
    }

    /// [`Pipeline::connect`] recording into `metrics` (an embedding process that serves them
    /// itself, e.g. `stakingd devnet`).
    pub async fn connect_with(config: Config, metrics: Metrics) -> Result<Self, PipelineError> {
        config.check()?;
        let db = Db::connect(&DbOptions {
            url: config.database_url.clone(),
            max_connections: config.db_max_connections,
        })
        .await?;
        if config.migrate {
            db.migrate().await?;
        }
        let store = db.unbonding();
        let rpc = RpcClient::new(config.rpc.clone()).map_err(|source| PipelineError::Node {
            url: config.rpc.url.clone(),
            source: Box::new(source),
        })?;
        let committee =
            Committee::with_tls(&config.signers, config.signer_timeout, &config.signer_tls)?;
        let token = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                db,
                store,
                rpc,
                committee,
                heights: check::Heights::default(),
                metrics,
                token,
            }),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The operations endpoint: the metrics, and readiness of the database and the node.
    pub fn ops(&self) -> net::Ops {
        let (db, rpc) = (self.inner.db.clone(), self.inner.rpc.clone());
        net::Ops::builder()
            .registry(self.inner.metrics.registry())
            .check("database", move || {
                let db = db.clone();
                async move { db.ping().await.map_err(|e| e.to_string()) }
            })
            .check("node", move || {
                let rpc = rpc.clone();
                async move {
                    rpc.get_block_count()
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            })
            .build()
    }

    pub fn store(&self) -> &UnbondingStore {
        &self.inner.store
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// `getblockchaininfo`, so a wrong URL or credentials show at start.
    pub async fn probe_node(&self) -> Result<u32, PipelineError> {
        self.inner
            .rpc
            .get_blockchain_info()
            .await
            .map(|info| info.blocks)
            .map_err(|source| PipelineError::Node {
                url: self.inner.config.rpc.url.clone(),
                source: Box::new(source),
            })
    }

    /// Processes every request that is claimable now (accepted and past its backoff, or with
    /// an expired lease) and those that arrive meanwhile, until none is claimable or
    /// `shutdown`; requests put back with a backoff wait for a later pass. Per-request problems are recorded on
    /// the request; only database failures end the pass with an error.
    pub async fn run_pass(&self, shutdown: &CancellationToken) -> Result<Summary, PipelineError> {
        let inner = &self.inner;
        let concurrency = inner.config.concurrency;
        let mut summary = Summary::default();
        let mut queue: VecDeque<ClaimedUnbonding> = VecDeque::new();
        let mut tasks: JoinSet<Result<Summary, PipelineError>> = JoinSet::new();
        let mut exhausted = false;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            // Keep enough claimed work to fill the free slots, without holding leases on more
            // than about one batch that is not yet being worked on.
            if !exhausted && queue.len() < concurrency {
                let want = inner.config.batch_size.max(1);
                let claimed = inner
                    .store
                    .claim(&inner.token, inner.config.lease, want)
                    .await?;
                summary.claimed += claimed.len() as u64;
                exhausted = claimed.is_empty();
                queue.extend(claimed);
            }
            while tasks.len() < concurrency {
                let Some(item) = queue.pop_front() else { break };
                let this = self.clone();
                tasks.spawn(async move { this.process(item).await });
            }
            if tasks.is_empty() {
                if queue.is_empty() && exhausted {
                    break;
                }
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                done = tasks.join_next() => {
                    if let Some(done) = done {
                        summary.add(&joined(done)?);
                        // Something finished: more may be claimable (a retry whose short
                        // backoff passed, or new requests).
                        exhausted = false;
                    }
                }
            }
        }
        // Let the requests in flight finish and record their outcomes: an abandoned attempt
        // would only wait for its lease to expire.
        while let Some(done) = tasks.join_next().await {
            summary.add(&joined(done)?);
        }
        if let Ok(counts) = inner.store.state_counts().await {
            inner.metrics.set_state_counts(&counts);
        }
        Ok(summary)
    }

    /// One attempt at one claimed request, recorded.
    async fn process(&self, item: ClaimedUnbonding) -> Result<Summary, PipelineError> {
        let started = Instant::now();
        let outcome = match &item.request {
            Err(reason) => Outcome::failed(
                FailureKind::InvalidRequest,
                format!("stored request does not decode: {reason}"),
            ),
            Ok(request) => self.attempt(request).await,
        };
        let summary = self.record(&item, outcome).await?;
        self.inner.metrics.attempt_latency(started.elapsed());
        Ok(summary)
    }

    async fn attempt(&self, request: &store::api::NewUnbondingRequest) -> Outcome {
        let inner = &self.inner;
        let prepared =
            match check::prepare_with(&inner.rpc, &inner.config.params, request, &inner.heights)
                .await
            {
                Ok(p) => p,
                Err(outcome) => return outcome,
            };
        let collected = inner.committee.collect(&prepared, &inner.metrics).await;
        let quorum = prepared.version.covenant_quorum as usize;
        if collected.signatures.len() < quorum {
            return Outcome::retry(
                crate::outcome::RetryKind::NoQuorum,
                format!(
                    "only {} of the {quorum} covenant signatures needed (committee of {}): {}",
                    collected.signatures.len(),
                    prepared.version.covenant_pks.len(),
                    collected.describe_failures()
                ),
            );
        }
        let tx = match broadcast::assemble(&prepared, &collected.signatures) {
            Ok(tx) => tx,
            Err(outcome) => return outcome,
        };
        broadcast::broadcast(&inner.rpc, &prepared, &tx).await
    }

    async fn record(
        &self,
        item: &ClaimedUnbonding,
        outcome: Outcome,
    ) -> Result<Summary, PipelineError> {
        let inner = &self.inner;
        let store = &inner.store;
        let token = inner.token.as_str();
        let mut summary = Summary::default();
        let (recorded, label) = match &outcome {
            Outcome::Sent(txid) => {
                tracing::info!(id = item.id, %txid, "unbonding tx broadcast");
                summary.sent = 1;
                (
                    store.record_sent(item.id, token, txid).await?,
                    "sent".to_owned(),
                )
            }
            Outcome::AlreadySent(txid) => {
                tracing::info!(id = item.id, %txid, "unbonding tx was already broadcast");
                summary.already_sent = 1;
                (
                    store.record_sent(item.id, token, txid).await?,
                    "already_sent".to_owned(),
                )
            }
            Outcome::Failed { kind, reason } => {
                tracing::warn!(id = item.id, kind = kind.label(), %reason, "unbonding request failed");
                summary.failed = 1;
                (
                    store.record_failed(item.id, token, reason).await?,
                    format!("failed_{}", kind.label()),
                )
            }
            Outcome::Retry { kind, error } => {
                let attempts = if kind.counts_as_attempt() {
                    item.attempts
                } else {
                    // Not this request's fault: do not use up its budget.
                    0
                };
                if kind.counts_as_attempt() && attempts >= inner.config.max_attempts {
                    let reason = format!("gave up after {attempts} attempts: {error}");
                    let kind = kind.exhausted();
                    tracing::warn!(id = item.id, kind = kind.label(), %reason, "unbonding request failed");
                    summary.failed = 1;
                    (
                        store.record_failed(item.id, token, &reason).await?,
                        format!("failed_{}", kind.label()),
                    )
                } else {
                    let delay = inner.config.backoff.delay(item.attempts.max(1));
                    let not_before = chrono::Utc::now().timestamp_millis()
                        + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 4);
                    tracing::info!(id = item.id, kind = kind.label(), %error, retry_in = ?delay, "unbonding request will be retried");
                    summary.retried = 1;
                    (
                        store
                            .release_for_retry(
                                item.id,
                                token,
                                not_before,
                                error,
                                !kind.counts_as_attempt(),
                            )
                            .await?,
                        format!("retry_{}", kind.label()),
                    )
                }
            }
        };
        if recorded == Recorded::LeaseLost {
            tracing::warn!(
                id = item.id,
                "lease lost before the outcome was recorded: another pipeline has the request"
            );
            inner.metrics.outcome("lease_lost");
            return Ok(Summary {
                lease_lost: 1,
                ..Summary::default()
            });
        }
        inner.metrics.outcome(&label);
        Ok(summary)
    }

    /// Daemon loop: passes until `shutdown`, pausing `poll_interval` when idle.
    pub async fn run_forever(&self, shutdown: &CancellationToken) -> Result<(), PipelineError> {
        let mut last_report = Instant::now();
        let mut total = Summary::default();
        while !shutdown.is_cancelled() {
            let pass = self.run_pass(shutdown).await?;
            total.add(&pass);
            if last_report.elapsed() >= Duration::from_secs(60) && total != Summary::default() {
                tracing::info!("unbonding pipeline, last minute: {total}");
                total = Summary::default();
                last_report = Instant::now();
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(self.inner.config.poll_interval) => {}
            }
        }
        Ok(())
    }
}

fn joined(
    done: Result<Result<Summary, PipelineError>, tokio::task::JoinError>,
) -> Result<Summary, PipelineError> {
    match done {
        Ok(result) => result,
        Err(e) => {
            // A panic in one request's task is a bug; the request keeps its claim until the
            // lease expires and is then retried. The others go on.
            tracing::error!(error = %e, "an unbonding request task panicked");
            Ok(Summary::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn a_summary_reads_as_words_without_its_zero_counts() {
        let summary = Summary {
            claimed: 2,
            sent: 1,
            retried: 1,
            ..Summary::default()
        };
        assert_eq!(summary.to_string(), "2 claimed, 1 sent, 1 to retry");
        assert_eq!(Summary::default().to_string(), "nothing");
    }
}
