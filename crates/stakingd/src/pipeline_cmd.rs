//! `stakingd unbonding-pipeline`: turns accepted unbonding requests into broadcast unbonding
//! transactions. Configuration from a TOML file, `STAKINGD_…` variables and flags (later ones
//! win), then `unbonding_pipeline::run` (daemon), `run_once` (`--once`, for cron) or
//! `retry_failed` (`retry-failed`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use unbonding_pipeline::config::{RawConfig, RawSigner};

#[derive(Debug, Args)]
#[command(after_long_help = "\
For each request the staking API accepted, independently of the others: claim it with a lease \
(several pipelines may share one database), check it again (staking tx in a block of this \
node's chain, the staking output rebuilt from params, canonical unbonding tx, staker signature, \
staking output unspent), ask every covenant committee member at once, verify each signature, \
assemble the witness with exactly `quorum` signatures, testmempoolaccept and sendrawtransaction \
with a fee cap equal to the unbonding fee, and record the outcome: `sent`, a retry after a \
backoff (signers down, node down), or `failed` with its reason.\n\n\
Runs as a daemon until SIGINT/SIGTERM; `--once` processes what is there and exits (non-zero on \
a fatal error such as an unreachable database or node). `retry-failed` puts failed requests \
back in the queue.\n\n\
Example config (TOML):\n\
  params = \"bbn-test-4\"\n\
  database_url = \"postgres://stakingd@127.0.0.1/staking\"   # the API's database\n\
  metrics_addr = \"127.0.0.1:2114\"\n\
  [bitcoind]\n\
  url = \"http://127.0.0.1:38332\"\n\
  cookie_file = \"/var/lib/bitcoind/signet/.cookie\"\n\
  [[signers]]\n\
  public_key = \"03…\"          # as listed in the params file\n\
  url = \"http://signer-1:9791\"\n\
  hmac_key_env = \"SIGNER_1_HMAC\"\n\
  # or the reference form: url = \"http://<key hex>@signer-1:9791\"\n\n\
See crates/unbonding-pipeline/README.md for every key, its default and the failure reasons.")]
pub struct PipelineArgs {
    /// TOML config file (keys: params, network, database_url, metrics_addr, lease_secs,
    /// signer_timeout_ms, poll_interval_ms, batch_size, concurrency, max_attempts,
    /// backoff_base_ms, backoff_max_ms, [bitcoind], [[signers]]).
    #[arg(
        long,
        value_name = "FILE",
        env = "STAKINGD_PIPELINE_CONFIG",
        global = true
    )]
    config: Option<PathBuf>,
    /// Process the requests that are claimable now, print a summary and exit (for cron).
    #[arg(long)]
    once: bool,
    /// Params preset (bbn-test-4, bbn-1) or a global-params JSON file.
    #[arg(long)]
    params: Option<String>,
    /// Only checks that a params preset is for this network (mainnet, signet, regtest, …).
    #[arg(long)]
    network: Option<String>,
    /// The API's database: sqlite:PATH or postgres://user@host/db.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// bitcoind RPC URL (the node needs -txindex), e.g. http://127.0.0.1:38332.
    #[arg(long)]
    bitcoind_url: Option<String>,
    #[arg(long)]
    bitcoind_user: Option<String>,
    /// Prefer STAKINGD_BITCOIND_PASSWORD or the config file: flags show up in `ps`.
    #[arg(long)]
    bitcoind_password: Option<String>,
    #[arg(long)]
    bitcoind_cookie_file: Option<PathBuf>,
    /// A committee member in the reference form http://<33-byte key hex>@host:port; repeat
    /// once per member (replaces the config file's [[signers]]).
    #[arg(long = "signer", value_name = "URL")]
    signers: Vec<String>,
    /// host:port of /metrics and /health, or `off` (default 127.0.0.1:2114).
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Seconds a claim lasts before another pipeline may take the request over (default 60).
    #[arg(long)]
    lease_secs: Option<u64>,
    /// Timeout of one signer call in milliseconds (default 2000).
    #[arg(long)]
    signer_timeout_ms: Option<u64>,
    /// Requests processed at once (default 64).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Attempts before a request that keeps failing transiently is `failed` (default 5).
    #[arg(long)]
    max_attempts: Option<u32>,
    #[command(subcommand)]
    action: Option<PipelineAction>,
}

#[derive(Debug, Subcommand)]
enum PipelineAction {
    /// Put `failed` requests back to `accepted` with a fresh attempt budget (their old reason
    /// stays visible as last_error) and exit. The running pipeline picks them up.
    RetryFailed {
        /// Only this request id (default: every failed request).
        #[arg(long)]
        id: Option<i64>,
    },
}

impl PipelineArgs {
    fn raw(&self) -> anyhow::Result<RawConfig> {
        let file = match &self.config {
            Some(path) => RawConfig::from_file(path)?,
            None => RawConfig::default(),
        };
        let env = RawConfig::from_env(std::env::vars())?;
        let mut flags = RawConfig {
            params: self.params.clone(),
            network: self.network.clone(),
            database_url: self.database_url.clone(),
            metrics_addr: self.metrics_addr.clone(),
            lease_secs: self.lease_secs,
            signer_timeout_ms: self.signer_timeout_ms,
            concurrency: self.concurrency,
            max_attempts: self.max_attempts,
            signers: self
                .signers
                .iter()
                .map(|url| RawSigner {
                    url: url.clone(),
                    ..RawSigner::default()
                })
                .collect(),
            ..RawConfig::default()
        };
        flags.bitcoind.url = self.bitcoind_url.clone();
        flags.bitcoind.user = self.bitcoind_user.clone();
        flags.bitcoind.password = self.bitcoind_password.clone();
        flags.bitcoind.cookie_file = self.bitcoind_cookie_file.clone();
        Ok(file.overridden_by(env).overridden_by(flags))
    }
}

pub async fn run(args: PipelineArgs) -> anyhow::Result<ExitCode> {
    let raw = args.raw()?;
    if let Some(PipelineAction::RetryFailed { id }) = args.action {
        // Re-queueing needs only the database: do not insist on node and signer settings.
        let url = raw
            .database_url
            .unwrap_or_else(|| "sqlite:stakingd-api.db".to_owned());
        let n = unbonding_pipeline::retry_failed(&url, id)
            .await
            .context("re-queueing failed unbonding requests")?;
        match id {
            Some(id) if n == 0 => {
                eprintln!("error: request {id} is not in state failed; nothing re-queued");
                return Ok(ExitCode::FAILURE);
            }
            _ => println!("re-queued {n} failed unbonding request(s)"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut config = raw.validate()?;
    let shutdown = super::shutdown_on_signal();
    if args.once {
        config.metrics_addr = None;
        let summary = unbonding_pipeline::run_once(&config, shutdown)
            .await
            .context("unbonding pipeline run failed")?;
        println!(
            "claimed {}, sent {}, already sent {}, failed {}, retry later {}, lease lost {}",
            summary.claimed,
            summary.sent,
            summary.already_sent,
            summary.failed,
            summary.retried,
            summary.lease_lost
        );
        return Ok(ExitCode::SUCCESS);
    }
    unbonding_pipeline::run(config, shutdown)
        .await
        .context("unbonding pipeline stopped")?;
    Ok(ExitCode::SUCCESS)
}
