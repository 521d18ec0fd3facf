//! `stakingd indexer`: configuration from a TOML file, `STAKINGD_…` variables and these flags
//! (later ones win), then `indexer::run`; `stakingd indexer rollback --to-height H` recovers
//! from a reorg deeper than the confirmation window without wiping the database.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use indexer::{IndexerError, RawConfig};

#[derive(Debug, Args)]
pub struct IndexerArgs {
    /// TOML config file (keys: network, params, database_url, start_height,
    /// extra_event_enabled, metrics_addr, max_lag_blocks, [bitcoind] url/user/password/cookie_file/
    /// timeout_secs/poll_interval_ms, [queue] url/queue_type/queue_prefix).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// mainnet, signet, testnet, testnet4 or regtest.
    #[arg(long)]
    network: Option<String>,
    /// Params preset (bbn-test-4, bbn-1) or a global-params JSON file.
    #[arg(long)]
    params: Option<String>,
    /// sqlite:PATH or postgres://user@host/db.
    #[arg(long)]
    database_url: Option<String>,
    /// First height to process (see the start-height rules).
    #[arg(long)]
    start_height: Option<u32>,
    /// Also publish a confirmed_info event after every block.
    #[arg(long)]
    extra_event_enabled: bool,
    /// host:port of /metrics, /health, /health/live and /health/ready, or `off`.
    #[arg(long)]
    metrics_addr: Option<String>,
    /// /health/ready answers 503 when the indexer is more than this many blocks behind the
    /// node's tip beyond the confirmation window [default: 6].
    #[arg(long, value_name = "BLOCKS")]
    max_lag_blocks: Option<u32>,
    /// bitcoind RPC URL, e.g. http://127.0.0.1:38332.
    #[arg(long)]
    bitcoind_url: Option<String>,
    #[arg(long)]
    bitcoind_user: Option<String>,
    /// Prefer STAKINGD_BITCOIND_PASSWORD or the config file: flags show up in `ps`.
    #[arg(long)]
    bitcoind_password: Option<String>,
    #[arg(long)]
    bitcoind_cookie_file: Option<PathBuf>,
    /// RabbitMQ broker the outbox is relayed to: amqp://user:password@host:port (required:
    /// `inprocess` only works inside `stakingd devnet`, which consumes its own queues).
    #[arg(long)]
    queue_url: Option<String>,
    /// quorum or classic.
    #[arg(long)]
    queue_type: Option<String>,
    #[command(subcommand)]
    action: Option<IndexerAction>,
}

#[derive(Debug, Subcommand)]
enum IndexerAction {
    /// Remove every block, staking, unbonding and invalid row above H (TVL recomputed, outbox
    /// history kept). Run it with the indexer stopped, H at or below the fork point.
    Rollback {
        #[arg(long, value_name = "H")]
        to_height: u32,
    },
}

impl IndexerArgs {
    fn raw(&self) -> anyhow::Result<RawConfig> {
        let file = match &self.config {
            Some(path) => RawConfig::from_file(path)?,
            None => RawConfig::default(),
        };
        let env = RawConfig::from_env(std::env::vars())?;
        let mut flags = RawConfig {
            network: self.network.clone(),
            params: self.params.clone(),
            database_url: self.database_url.clone(),
            start_height: self.start_height,
            extra_event_enabled: self.extra_event_enabled.then_some(true),
            metrics_addr: self.metrics_addr.clone(),
            max_lag_blocks: self.max_lag_blocks,
            ..RawConfig::default()
        };
        flags.bitcoind.url = self.bitcoind_url.clone();
        flags.bitcoind.user = self.bitcoind_user.clone();
        flags.bitcoind.password = self.bitcoind_password.clone();
        flags.bitcoind.cookie_file = self.bitcoind_cookie_file.clone();
        flags.queue.url = self.queue_url.clone();
        flags.queue.queue_type = self.queue_type.clone();
        Ok(file.overridden_by(env).overridden_by(flags))
    }
}

pub async fn run(args: IndexerArgs) -> anyhow::Result<ExitCode> {
    let raw = args.raw()?;
    if let Some(IndexerAction::Rollback { to_height }) = args.action {
        let url = raw
            .database_url
            .unwrap_or_else(|| "sqlite:stakingd-indexer.db".to_owned());
        let report = indexer::rollback(&url, to_height)
            .await
            .with_context(|| format!("rolling back to height {to_height}"))?;
        println!(
            "rolled back to height {to_height}: tip {}, removed {} blocks, {} staking, {} unbonding, {} invalid txs; confirmed TVL {} sat",
            report.tip.map_or("none".to_owned(), |t| format!("{} ({})", t.height, t.hash)),
            report.blocks_removed,
            report.stakings_removed,
            report.unbondings_removed,
            report.invalids_removed,
            report.confirmed_tvl.to_sat()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let config = raw.validate().context("invalid indexer configuration")?;
    if matches!(config.queue, indexer::QueueConfig::InProcess) {
        anyhow::bail!(
            "invalid indexer configuration: {}",
            indexer::IN_PROCESS_REFUSED
        );
    }
    let shutdown = super::shutdown_on_signal();
    match indexer::run(config, shutdown).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ IndexerError::MajorReorg { .. }) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(e).context("indexer stopped"),
    }
}
