//! The unbonding pipeline (`docs/rules.md#unbonding-pipeline`,
//! `docs/decisions.md#unbonding-pipeline`): turns the staking API's accepted unbonding requests
//! into broadcast unbonding transactions.
//!
//! For each request, independently of the others: claim it with a lease (several pipelines
//! can run), re-check it before asking anyone ([`check`]), ask every covenant committee member
//! at once and verify each signature ([`signers`]), assemble the witness with exactly `quorum`
//! signatures and broadcast with a fee cap equal to the unbonding fee ([`broadcast`]), record
//! the outcome: `sent`, a retry after a backoff, or terminal `failed` with its reason.
//!
//! [`run`] is the daemon (its `/metrics` and `/health/ready` from [`Pipeline::ops`]), [`run_once`] the cron form, [`retry_failed`] re-queues failures.

pub mod broadcast;
pub mod check;
pub mod config;
pub mod error;
pub mod metrics;
pub mod outcome;
pub mod pipeline;
pub mod signers;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use config::{Backoff, Config, RawConfig, SignerEndpoint};
pub use error::PipelineError;
pub use outcome::{FailureKind, Outcome, RetryKind};
pub use pipeline::{Pipeline, Summary};

/// Runs until `shutdown`: serves metrics (if configured), waits for the node, then claims and
/// processes requests as they arrive. Returns an error only for fatal problems (configuration,
/// database, metrics port).
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), PipelineError> {
    run_with(config, metrics::Metrics::new()?, shutdown).await
}

/// [`run`] recording into `metrics` (which the caller may also serve).
pub async fn run_with(
    config: Config,
    metrics: metrics::Metrics,
    shutdown: CancellationToken,
) -> Result<(), PipelineError> {
    let pipeline = Pipeline::connect_with(config, metrics).await?;
    let metrics_task = match pipeline.config().metrics_addr {
        Some(addr) => {
            let (bound, task) = pipeline
                .ops()
                .spawn(addr, shutdown.clone())
                .await
                .map_err(|e| PipelineError::Metrics(e.to_string()))?;
            tracing::info!(%bound, "unbonding pipeline metrics on /metrics, readiness on /health/ready");
            Some(task)
        }
        None => None,
    };
    wait_for_node(&pipeline, &shutdown).await;
    tracing::info!(
        signers = pipeline.config().signers.len(),
        concurrency = pipeline.config().concurrency,
        "unbonding pipeline running"
    );
    let result = pipeline.run_forever(&shutdown).await;
    shutdown.cancel();
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    result
}

/// Processes what is claimable now and returns (`--once`, for cron). The node must answer.
pub async fn run_once(
    config: &Config,
    shutdown: CancellationToken,
) -> Result<Summary, PipelineError> {
    let pipeline = Pipeline::connect(config.clone()).await?;
    pipeline.probe_node().await?;
    pipeline.run_pass(&shutdown).await
}

/// Moves `failed` requests (all, or only `only`) back to `accepted` with a fresh attempt
/// budget; returns how many. Their old reason is kept as `last_error`. Needs only the
/// database (`sqlite:PATH` or `postgres://…`), which it migrates.
pub async fn retry_failed(database_url: &str, only: Option<i64>) -> Result<u64, PipelineError> {
    let db = store::Db::connect(&store::DbOptions::new(database_url).max_connections(1)).await?;
    db.migrate().await?;
    Ok(db.unbonding().requeue_failed(only).await?)
}

async fn wait_for_node(pipeline: &Pipeline, shutdown: &CancellationToken) {
    let mut delay = Duration::from_secs(1);
    loop {
        match pipeline.probe_node().await {
            Ok(height) => {
                tracing::info!(height, url = %net::redact_url(&pipeline.config().rpc.url), "bitcoin node reachable");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "bitcoin node not usable yet");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}
