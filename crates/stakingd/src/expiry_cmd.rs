//! `stakingd expiry-checker`: configuration from a TOML file, `STAKINGD_…` variables and these
//! flags (later ones win), then `expiry_checker::run`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use expiry_checker::RawConfig;

/// Shown after the flags by `--help`.
const EXPIRY_HELP: &str = "\
Reads the timelock rows the API writes (`api_timelock_queue`, same database as\n\
`stakingd api`), compares them with the tip of a Bitcoin node (`getblockcount`) every poll\n\
and, in one transaction per batch, moves each due row into the checker's own outbox\n\
(`api_expiry_outbox`), exactly once per delegation and path. A relay inside the checker\n\
publishes that outbox to `expired_staking_queue` on RabbitMQ. Several checkers may run\n\
against one PostgreSQL database (rows are claimed with FOR UPDATE SKIP LOCKED).\n\
\n\
Example:\n\
\x20\x20stakingd expiry-checker --database-url postgres://api@db/staking \\\n\
\x20\x20\x20\x20--bitcoind-url http://127.0.0.1:38332 --bitcoind-cookie-file ~/.bitcoin/signet/.cookie \\\n\
\x20\x20\x20\x20--queue-url amqp://user:pass@127.0.0.1:5672\n\
\n\
Environment: STAKINGD_DATABASE_URL, STAKINGD_NETWORK, STAKINGD_EXPIRY_POLL_INTERVAL_MS,\n\
STAKINGD_EXPIRY_BATCH_SIZE, STAKINGD_METRICS_ADDR, STAKINGD_BITCOIND_URL / _USER /\n\
_PASSWORD / _COOKIE_FILE / _TIMEOUT_SECS, STAKINGD_QUEUE_URL / _TYPE / _PREFIX.";

#[derive(Debug, Args)]
#[command(after_help = EXPIRY_HELP)]
pub struct ExpiryArgs {
    /// TOML config file (keys: database_url, max_connections, network, poll_interval_ms,
    /// batch_size, metrics_addr, [bitcoind] url/user/password/cookie_file/timeout_secs,
    /// [queue] url/queue_type/queue_prefix).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The API's database: sqlite:PATH or postgres://user@host/db.
    #[arg(long)]
    database_url: Option<String>,
    /// mainnet, signet, testnet, testnet4 or regtest (only picks the default RPC port).
    #[arg(long)]
    network: Option<String>,
    /// Milliseconds between polls [default: 5000, as the reference].
    #[arg(long, value_name = "MS")]
    poll_interval_ms: Option<u64>,
    /// Timelock rows claimed per database transaction [default: 100].
    #[arg(long, value_name = "ROWS")]
    batch_size: Option<u32>,
    /// host:port of /metrics and /health, or `off` [default: 127.0.0.1:2113].
    #[arg(long)]
    metrics_addr: Option<String>,
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
    /// amqp://user:password@host:port; `inprocess` keeps events in the outbox table.
    #[arg(long)]
    queue_url: Option<String>,
    /// quorum or classic [default: quorum].
    #[arg(long)]
    queue_type: Option<String>,
    /// Prefix of every queue name (tests sharing a broker); empty gives the reference names.
    #[arg(long)]
    queue_prefix: Option<String>,
}

impl ExpiryArgs {
    fn raw(&self) -> anyhow::Result<RawConfig> {
        let file = match &self.config {
            Some(path) => RawConfig::from_file(path)?,
            None => RawConfig::default(),
        };
        let env = RawConfig::from_env(std::env::vars())?;
        let mut flags = RawConfig {
            database_url: self.database_url.clone(),
            network: self.network.clone(),
            poll_interval_ms: self.poll_interval_ms,
            batch_size: self.batch_size,
            metrics_addr: self.metrics_addr.clone(),
            ..RawConfig::default()
        };
        flags.bitcoind.url = self.bitcoind_url.clone();
        flags.bitcoind.user = self.bitcoind_user.clone();
        flags.bitcoind.password = self.bitcoind_password.clone();
        flags.bitcoind.cookie_file = self.bitcoind_cookie_file.clone();
        flags.queue.url = self.queue_url.clone();
        flags.queue.queue_type = self.queue_type.clone();
        flags.queue.queue_prefix = self.queue_prefix.clone();
        Ok(file.overridden_by(env).overridden_by(flags))
    }
}

pub async fn run(args: ExpiryArgs) -> anyhow::Result<ExitCode> {
    let config = args.raw()?.validate()?;
    let shutdown = super::shutdown_on_signal();
    expiry_checker::run(config, shutdown)
        .await
        .context("expiry checker stopped")?;
    Ok(ExitCode::SUCCESS)
}
