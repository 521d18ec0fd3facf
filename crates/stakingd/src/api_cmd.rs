//! `stakingd api`: the v1 staking API and its queue consumers, configured from a TOML file,
//! `STAKINGD_API_…` environment variables and flags (later ones win);
//! `stakingd api replay-unprocessable` puts messages that kept failing back on their queues.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

/// Shown after the flags by `--help`.
const API_HELP: &str = "\
Settings come from a TOML file (--config), then STAKINGD_API_* environment variables, then\n\
flags; later ones win. Every key can be set in each place: the variable is STAKINGD_API_ +\n\
the key in upper case with `.` as `_`, the flag is a dedicated one above or --set KEY=VALUE.\n\
\n\
Required: params, finality_providers, server.listen, server.network, db.url, queue.url.\n\
Other keys (defaults): server.metrics_listen (off), server.allowed_origins (*),\n\
server.max_content_length (4096), server.request_timeout_secs (60),\n\
server.rate_limit_per_second (off), server.page_size (10), db.max_connections (16),\n\
queue.queue_type (quorum), queue.queue_prefix (\"\"), queue.processing_timeout_secs (30),\n\
queue.max_retry_attempts (10), queue.requeue_delay_secs (60),\n\
terms_acceptance_logging.enabled (false), ordinals.url / timeout_ms / max_utxos (off).\n\
\n\
Example (no file):\n\
\x20\x20STAKINGD_API_DB_URL=postgres://api@db/staking stakingd api --params bbn-test-4 \\\n\
\x20\x20\x20\x20--finality-providers fps.json --listen 0.0.0.0:8090 --network signet \\\n\
\x20\x20\x20\x20--queue-url amqp://user:pass@127.0.0.1:5672 --set server.page_size=20";

#[derive(Debug, Args)]
#[command(after_help = API_HELP)]
pub struct ApiArgs {
    /// TOML config file (sections [server], [db], [queue], [terms_acceptance_logging],
    /// [ordinals]; see crates/api/src/config.rs).
    #[arg(long, value_name = "FILE", env = "STAKINGD_API_CONFIG")]
    config: Option<PathBuf>,
    /// Global params: a preset (bbn-test-4, bbn-1) or a global-params JSON file.
    #[arg(long)]
    params: Option<String>,
    /// Finality-providers metadata JSON file.
    #[arg(long, value_name = "FILE")]
    finality_providers: Option<String>,
    /// HTTP address, e.g. 0.0.0.0:8090.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Prometheus /metrics address, e.g. 127.0.0.1:2112.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_listen: Option<String>,
    /// bitcoin, testnet, signet or regtest (address formats of pubkey lookup).
    #[arg(long)]
    network: Option<String>,
    /// Database: postgres://user@host/db or sqlite:PATH.
    #[arg(long, value_name = "URL")]
    db_url: Option<String>,
    /// amqp://user:password@host:port, or in-process.
    #[arg(long, value_name = "URL")]
    queue_url: Option<String>,
    /// Prefix of every queue name (tests sharing a broker); empty gives the reference names.
    #[arg(long)]
    queue_prefix: Option<String>,
    /// Any other setting, e.g. --set server.page_size=20 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[command(subcommand)]
    action: Option<ApiAction>,
}

#[derive(Debug, Subcommand)]
enum ApiAction {
    /// Re-publish every stored unprocessable message to its queue, delete the records, exit.
    ReplayUnprocessable,
}

impl ApiArgs {
    fn flags(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut flags = Vec::new();
        let named = [
            ("params", &self.params),
            ("finality_providers", &self.finality_providers),
            ("server.listen", &self.listen),
            ("server.metrics_listen", &self.metrics_listen),
            ("server.network", &self.network),
            ("db.url", &self.db_url),
            ("queue.url", &self.queue_url),
            ("queue.queue_prefix", &self.queue_prefix),
        ];
        for (key, value) in named {
            if let Some(v) = value {
                flags.push((key.to_owned(), v.clone()));
            }
        }
        for pair in &self.set {
            let (key, value) = pair.split_once('=').with_context(|| {
                format!("--set {pair:?} is not KEY=VALUE (e.g. --set server.page_size=20)")
            })?;
            flags.push((key.trim().to_owned(), value.to_owned()));
        }
        Ok(flags)
    }
}

fn load(args: &ApiArgs) -> anyhow::Result<api::Config> {
    let flags = args.flags()?;
    Ok(api::Config::load(
        args.config.as_deref(),
        std::env::vars(),
        &flags,
    )?)
}

pub async fn run(args: ApiArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args)?;
    if let Some(ApiAction::ReplayUnprocessable) = args.action {
        let service = api::Service::build(&config).await?;
        let transport = api::connect_transport(&config).await?;
        let replayed = api::consumer::replay_unprocessable(&service.store, &transport)
            .await
            .context("replaying unprocessable messages")?;
        println!("replayed {replayed} unprocessable message(s)");
        return Ok(ExitCode::SUCCESS);
    }
    let shutdown = super::shutdown_on_signal();
    api::run(config, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
