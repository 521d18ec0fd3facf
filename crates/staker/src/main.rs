//! `staker`: the command-line tool for stakers, operators and tests.
//!
//! One module per command group; each has an `Args` (clap) and a `run`. Everything that decides
//! anything lives in `staking-core`; this binary parses arguments, loads files and prints.

mod common;
mod params_check;
mod tx_inspect;
mod tx_staking_output;
mod tx_unbonding;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Build, check and inspect Babylon phase-1 staking transactions.
///
/// Params are given as a file in the reference `global-params.json` format or as a shipped
/// preset: `bbn-test-4` (signet) or `bbn-1` (mainnet phase-1).
#[derive(Debug, Parser)]
#[command(
    name = "staker",
    version,
    propagate_version = true,
    after_help = "Examples:\n  \
        staker params check bbn-1\n  \
        staker tx staking-output --params bbn-1 --height 874088 --staker-pk <64 hex> \\\n      \
        --fp-pk <64 hex> --staking-time 64000\n  \
        staker --json tx inspect --params bbn-test-4 --height 200665 <TX_HEX>"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Global parameters.
    #[command(subcommand)]
    Params(ParamsCommand),
    /// Staking transactions.
    #[command(subcommand)]
    Tx(TxCommand),
}

#[derive(Debug, Subcommand)]
enum ParamsCommand {
    /// Validate a params file (or preset) with every rule of the reference parser and print
    /// its versions. Exits 1 with the reference's exact error text when the file is invalid.
    Check(params_check::Args),
}

#[derive(Debug, Subcommand)]
enum TxCommand {
    /// Build the staking output (scripts, merkle root, address, control blocks) for a staker,
    /// a finality provider and a staking time under the params version active at a height.
    StakingOutput(tx_staking_output::Args),
    /// Classify a raw transaction as the indexer would at a height: staking, invalid staking
    /// (with the reason) or not staking (with the reason).
    Inspect(tx_inspect::Args),
    /// Build the one canonical unbonding tx of a staking tx, with the sighash to sign and a PSBT.
    Unbonding(tx_unbonding::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = common::Output { json: cli.json };
    let result = match cli.command {
        Command::Params(ParamsCommand::Check(args)) => params_check::run(&args, out),
        Command::Tx(TxCommand::StakingOutput(args)) => tx_staking_output::run(&args, out),
        Command::Tx(TxCommand::Inspect(args)) => tx_inspect::run(&args, out),
        Command::Tx(TxCommand::Unbonding(args)) => tx_unbonding::run(&args, out),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
