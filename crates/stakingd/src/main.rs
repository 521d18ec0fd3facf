//! `stakingd`: the staking back-end's all-in-one binary. Today it runs the devnet chain alone
//! (`stakingd devnet --chain-only`); the indexer, API and signers join it later.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

mod api_cmd;
mod indexer_cmd;

#[derive(Debug, Parser)]
#[command(
    name = "stakingd",
    version,
    about = "Bitcoin staking back-end (Babylon phase-1 style)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an embedded regtest chain with a bitcoind-compatible RPC server.
    Devnet(DevnetArgs),
    /// Follow Bitcoin and index staking, unbonding and withdrawal transactions.
    Indexer(indexer_cmd::IndexerArgs),
    /// Serve the v1 staking API and consume the indexer's and expiry checker's queues.
    Api(api_cmd::ApiArgs),
}

#[derive(Debug, Args)]
struct DevnetArgs {
    /// Run only the chain and its RPC server (the only mode built so far).
    #[arg(long)]
    chain_only: bool,
    /// RPC port (0 picks a free one).
    #[arg(long, default_value_t = 18443, env = "STAKINGD_DEVNET_RPC_PORT")]
    rpc_port: u16,
    /// RPC bind address. Keep it on loopback: the devnet is for local tools and tests.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST), env = "STAKINGD_DEVNET_RPC_BIND")]
    rpc_bind: IpAddr,
    /// RPC user.
    #[arg(long, default_value = "devnet", env = "STAKINGD_DEVNET_RPC_USER")]
    rpc_user: String,
    /// RPC password.
    #[arg(
        long,
        default_value = "devnet",
        env = "STAKINGD_DEVNET_RPC_PASSWORD",
        hide_env_values = true
    )]
    rpc_password: String,
    /// Data directory; without it the chain lives in memory and is gone on exit.
    #[arg(long, env = "STAKINGD_DEVNET_DATADIR")]
    datadir: Option<PathBuf>,
    /// Mine one block every this many seconds (to the faucet).
    #[arg(long, value_name = "SECS")]
    block_interval: Option<u64>,
    /// Before serving, append this many mainnet-sized blocks (≈2,500 txs, ≈1.5 MB each).
    #[arg(long, value_name = "N", default_value_t = 0)]
    generate_blocks: u32,
    /// Transactions per generated block.
    #[arg(long, default_value_t = 2_500)]
    generate_txs_per_block: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Devnet(args) => runtime.block_on(devnet(args)),
        Command::Indexer(args) => runtime.block_on(indexer_cmd::run(args)),
        Command::Api(args) => runtime.block_on(api_cmd::run(args)),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn devnet(args: DevnetArgs) -> anyhow::Result<ExitCode> {
    if !args.chain_only {
        eprintln!(
            "error: the all-in-one devnet (chain + indexer + API + covenant signers) is not built yet.\n\
             Run `stakingd devnet --chain-only` for the chain and its RPC server alone."
        );
        return Ok(ExitCode::from(2));
    }
    if !args.rpc_bind.is_loopback() {
        tracing::warn!(bind = %args.rpc_bind, "devnet RPC is listening beyond loopback");
    }
    let config = devnet::DevnetConfig {
        rpc_addr: SocketAddr::new(args.rpc_bind, args.rpc_port),
        rpc_user: args.rpc_user,
        rpc_password: args.rpc_password,
        datadir: args.datadir.clone(),
        block_interval: args.block_interval.map(Duration::from_secs),
    };
    let shutdown = shutdown_on_signal();
    let handle = devnet::spawn(config, shutdown.clone())
        .await
        .context("starting the devnet")?;
    if args.generate_blocks > 0 {
        let node = std::sync::Arc::clone(&handle.chain);
        let gen_config = devnet::generator::GeneratorConfig {
            blocks: args.generate_blocks,
            txs_per_block: args.generate_txs_per_block,
        };
        let started = std::time::Instant::now();
        let generated =
            tokio::task::spawn_blocking(move || devnet::generator::generate(&node, gen_config))
                .await
                .context("block generator panicked")?
                .context("generating blocks")?;
        tracing::info!(
            blocks = generated.blocks.len(),
            txs = generated.txs,
            mb = generated.bytes as f64 / 1e6,
            secs = started.elapsed().as_secs_f64(),
            "generated mainnet-sized blocks"
        );
    }
    let tip = handle.chain.tip();
    println!(
        "devnet (regtest) chain at height {} ({})",
        tip.height, tip.hash
    );
    println!("RPC URL:      {}", handle.rpc_url);
    println!("RPC user:     {}", handle.rpc_user);
    println!("RPC password: {}", handle.rpc_password);
    println!(
        "try: curl -s --user {}:{} -d '{{\"method\":\"getblockchaininfo\",\"params\":[],\"id\":1}}' {}",
        handle.rpc_user, handle.rpc_password, handle.rpc_url
    );
    match &args.datadir {
        Some(d) => println!("data directory: {}", d.display()),
        None => println!("no --datadir: the chain lives in memory and is gone on exit"),
    }
    println!("faucet: {{\"method\":\"faucet\",\"params\":[\"<bcrt1 address>\", <BTC amount>, <confirm=true>]}}");
    shutdown.cancelled().await;
    handle.stopped().await;
    Ok(ExitCode::SUCCESS)
}

/// A token cancelled on Ctrl-C or SIGTERM. The handlers are installed before this returns, so
/// a signal that arrives right after start-up stops the service cleanly instead of killing it
/// with the default action. Must be called inside the runtime.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        tokio::spawn(async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM/SIGINT; stop with SIGKILL");
                    std::future::pending::<()>().await;
                }
            }
            tracing::info!("shutting down");
            cancel.cancel();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ignored = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        cancel.cancel();
    });
    token
}
