//! `covenant-signer`: the thin binary around [`covenant_signer::run`].
//!
//! `covenant-signer start --config signer.toml --params bbn-1|<file>` serves;
//! `covenant-signer keygen --out key.json` creates an encrypted key file and prints its public
//! key. Passphrases come from a file or the environment, never from the command line.
//!
//! `start` reads the secrets its config names from the environment (passphrase, HMAC key, RPC
//! passwords) and removes them from it before any thread exists
//! ([`covenant_signer::config::Config::take_env_secrets`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use covenant_signer::config::{Config, DEFAULT_PASSPHRASE_ENV};
use covenant_signer::keyfile::{CovenantKey, KdfCost, PassphraseSource};
use staking_core::params::GlobalParams;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "covenant-signer",
    version,
    about = "Covenant committee member's signing server"
)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value = "pretty", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve POST /v1/sign-unbonding-tx.
    #[command(alias = "serve")]
    Start {
        /// TOML config file.
        #[arg(long, env = "COVENANT_SIGNER_CONFIG")]
        config: PathBuf,
        /// Global params: a file path, or a preset name (bbn-test-4, bbn-1).
        #[arg(long, env = "COVENANT_SIGNER_PARAMS")]
        params: String,
    },
    /// Create an encrypted key file and print its 33-byte compressed public key.
    Keygen {
        #[command(flatten)]
        new: NewKeyFile,
    },
    /// Re-encrypt a key file at the default (minimum) Argon2id cost or more, with the same
    /// passphrase and key; prints the public key. For files made below the minimum.
    Rekey {
        /// The key file to open.
        #[arg(long)]
        key_file: PathBuf,
        #[command(flatten)]
        new: NewKeyFile,
    },
    /// Check a config and params file and print what the server would use.
    Check {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        params: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    // Every connection is a descriptor: the connection caps need more than a default 1024.
    net::raise_fd_limit();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "covenant-signer failed");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_params(arg: &str) -> anyhow::Result<GlobalParams> {
    if let Some(params) = GlobalParams::preset(arg) {
        return Ok(params);
    }
    let path = Path::new(arg);
    let bytes = std::fs::read(path).with_context(|| {
        format!("--params {arg:?} is neither a preset (bbn-test-4, bbn-1) nor a readable file")
    })?;
    let (params, warnings) = GlobalParams::from_json_bytes(&bytes)
        .with_context(|| format!("params file {} is not valid", path.display()))?;
    for warning in warnings {
        tracing::warn!(%warning, "params file");
    }
    Ok(params)
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Start { config, params } => {
            let mut config = Config::from_file(&config)?;
            // Still the only thread: the runtime below starts the others.
            let taken = config.take_env_secrets();
            if !taken.names.is_empty() {
                tracing::info!(variables = ?taken.names, "secrets read and removed from the environment");
            }
            if let Err(why) = &taken.original_wiped {
                tracing::warn!(
                    variables = ?taken.names,
                    reason = %why,
                    "the secrets are gone from the environment but not from the process's original environment block (/proc/<pid>/environ)"
                );
            }
            let params = load_params(&params)?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                let signals = tokio::spawn(cancel_on_signal(shutdown.clone()));
                let result = covenant_signer::run(config, params, shutdown.clone()).await;
                shutdown.cancel();
                signals.abort();
                result
            })
        }
        Command::Keygen { new } => {
            let (cost, passphrase) = new.cost_and_passphrase()?;
            new.write(&CovenantKey::generate(), &passphrase, cost)
        }
        Command::Rekey { key_file, new } => {
            let (cost, passphrase) = new.cost_and_passphrase()?;
            let key = CovenantKey::load(&key_file, &passphrase)
                .with_context(|| format!("cannot unlock key file {}", key_file.display()))?;
            new.write(&key, &passphrase, cost)
        }
        Command::Check { config, params } => {
            let config = Config::from_file(&config)?;
            let params = load_params(&params)?;
            println!(
                "config ok: api {}, metrics {:?}, backend {:?}, {} params versions",
                config.server_addr(),
                config.metrics_addr(),
                config.signer.backend,
                params.versions().len()
            );
            Ok(())
        }
    }
}

/// The new key file of `keygen` and `rekey`: where it goes, its passphrase and its cost.
#[derive(Debug, clap::Args)]
struct NewKeyFile {
    /// Where to write the key file (never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Read the passphrase from this file.
    #[arg(long, conflicts_with = "passphrase_env")]
    passphrase_file: Option<PathBuf>,
    /// Read the passphrase from this environment variable.
    #[arg(long, default_value = DEFAULT_PASSPHRASE_ENV)]
    passphrase_env: String,
    /// Argon2id memory in KiB; at least 19456 (19 MiB, OWASP's minimum for Argon2id), the
    /// default.
    #[arg(long, default_value_t = KdfCost::MINIMUM.memory_kib)]
    kdf_memory_kib: u32,
    /// Argon2id passes; at least 2 (OWASP's minimum with 19 MiB), the default.
    #[arg(long, default_value_t = KdfCost::MINIMUM.iterations)]
    kdf_iterations: u32,
}

impl NewKeyFile {
    /// The cost, refused below the minimum before the passphrase is read; then the passphrase.
    fn cost_and_passphrase(
        &self,
    ) -> anyhow::Result<(KdfCost, covenant_signer::keyfile::Passphrase)> {
        let cost = checked_cost(&self.out, self.kdf_memory_kib, self.kdf_iterations)?;
        let passphrase =
            passphrase_source(self.passphrase_file.clone(), self.passphrase_env.clone()).read()?;
        Ok((cost, passphrase))
    }

    /// Writes `key` to [`Self::out`] and prints its public key.
    fn write(
        &self,
        key: &CovenantKey,
        passphrase: &covenant_signer::keyfile::Passphrase,
        cost: KdfCost,
    ) -> anyhow::Result<()> {
        key.save(&self.out, passphrase, cost)
            .with_context(|| format!("cannot create key file {}", self.out.display()))?;
        println!("{}", hex::encode(key.public_key().serialize()));
        Ok(())
    }
}

fn passphrase_source(file: Option<PathBuf>, env: String) -> PassphraseSource {
    match file {
        Some(path) => PassphraseSource::File(path),
        None => PassphraseSource::Env(env),
    }
}

/// The cost of a new key file at `out`, refused below the minimum before the passphrase is
/// read or anything is written.
fn checked_cost(out: &Path, memory_kib: u32, iterations: u32) -> anyhow::Result<KdfCost> {
    let cost = KdfCost {
        memory_kib,
        iterations,
        ..KdfCost::MINIMUM
    };
    match cost.weakness() {
        Some(weakness) => anyhow::bail!("refusing to create {}: {weakness}", out.display()),
        None => Ok(cost),
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
