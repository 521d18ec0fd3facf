//! The API under test: `api::run` from a config file on a default multi-thread tokio runtime,
//! exactly what `stakingd api --config FILE` runs, without the rest of the `stakingd` binary,
//! so the benchmark does not depend on every other subcommand compiling. Stops on SIGINT or
//! SIGTERM.

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "the staking API (api::run) from a TOML config, for bench/run")]
struct Args {
    /// The same TOML file `stakingd api --config` takes.
    #[arg(long)]
    config: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let config = api::Config::from_toml(&text)
        .with_context(|| format!("{} is not a valid API config", args.config.display()))?;
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("cannot install the SIGTERM handler: {e}");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        token.cancel();
    });
    api::run(config, shutdown).await
}
