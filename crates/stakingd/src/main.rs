//! `stakingd`: the staking back-end's binary: one subcommand per service, and `stakingd devnet`,
//! everything in one process on an embedded regtest chain.
#![allow(
    rustdoc::broken_intra_doc_links,
    reason = "the arguments' doc comments are their --help text, where `[db]`, `[queue]`, \
              `[[signers]]` are TOML sections, not links"
)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

mod api_cmd;
mod devnet_banner;
mod devnet_cmd;
mod devnet_committee;
mod devnet_demo;
mod devnet_demo_staker;
mod devnet_lock;
mod devnet_mempool;
mod devnet_ops;
mod devnet_redelivery;
mod devnet_services;
mod devnet_stack;
mod expiry_cmd;
mod indexer_cmd;
mod logs;
mod migrate_cmd;
mod pipeline_cmd;

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
    /// Run everything on an embedded regtest chain: covenant committee, indexer, API, expiry
    /// checker, unbonding pipeline (`--demo` walks stakers through it; `--chain-only`: the chain).
    Devnet(devnet_cmd::DevnetArgs),
    /// Follow Bitcoin and index staking, unbonding and withdrawal transactions.
    Indexer(indexer_cmd::IndexerArgs),
    /// Serve the v1 staking API and consume the indexer's and expiry checker's queues.
    Api(api_cmd::ApiArgs),
    /// Emit expired events for delegations whose staking or unbonding timelock has passed.
    ExpiryChecker(expiry_cmd::ExpiryArgs),
    /// Apply every database migration (indexer, outbox, API tables) and print what was applied.
    Migrate(migrate_cmd::MigrateArgs),
    /// Turn accepted unbonding requests into broadcast unbonding transactions (covenant quorum).
    UnbondingPipeline(pipeline_cmd::PipelineArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logs::init();
    // Every connection is a descriptor: the servers' connection caps need more than a default
    // soft limit of 1024.
    net::raise_fd_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Devnet(args) => runtime.block_on(devnet_cmd::run(args)),
        Command::Indexer(args) => runtime.block_on(indexer_cmd::run(args)),
        Command::Api(args) => runtime.block_on(api_cmd::run(args)),
        Command::ExpiryChecker(args) => runtime.block_on(expiry_cmd::run(args)),
        Command::Migrate(args) => runtime.block_on(migrate_cmd::run(args)),
        Command::UnbondingPipeline(args) => runtime.block_on(pipeline_cmd::run(args)),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
