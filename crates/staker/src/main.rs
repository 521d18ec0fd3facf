//! `staker`: the command-line tool for stakers, operators and tests.
//!
//! One module per command group; each has an `Args` (clap) and a `run`. Everything that decides
//! anything lives in `staking-core`; this binary parses arguments, loads files and prints.

mod api_client;
mod chain;
mod common;
mod context;
#[macro_use]
mod exit;
mod keyfile;
mod keys_cmd;
mod pace;
mod params_check;
mod stake;
mod status;
mod tx_inspect;
mod tx_staking_output;
mod tx_unbonding;
mod unbond;
mod withdraw;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Examples, the environment variables and the exit statuses, after the flags in `--help`.
const AFTER_HELP: &str = concat!(
    "Examples:\n  \
    staker params check bbn-1\n  \
    staker tx staking-output --params bbn-1 --height 874088 --staker-pk <64 hex> \\\n      \
    --fp-pk <64 hex> --staking-time 64000\n  \
    staker --json tx inspect --params bbn-test-4 --height 200665 <TX_HEX>\n  \
    staker keys generate --network signet\n  \
    staker stake --params bbn-test-4 --rpc-url http://127.0.0.1:38332 --rpc-cookie ~/.bitcoin/signet/.cookie \\\n      \
    --fp-pk <64 hex> --amount 50000 --staking-time 64000 --wait\n  \
    staker stake --params bbn-1 --rpc-url ... --staker-pk <64 hex> --from <ADDRESS> --change-address <ADDRESS> \\\n      \
    --fp-pk <64 hex> --amount 500000 --staking-time 64000 --psbt-out stake.psbt   # sign with your wallet\n  \
    staker withdraw --params bbn-test-4 --rpc-url ... --staking-txid <TXID>\n  \
    staker unbond --params bbn-test-4 --api-url http://127.0.0.1:8090 --staking-txid <TXID> --wait\n  \
    staker unbond --params bbn-1 --api-url ... --staking-txid <TXID> --psbt-out unbond.psbt \\\n      \
    --key-origin '[d34db33f/86h/0h/0h/0/0]'        # sign with your wallet, then:\n  \
    staker unbond --params bbn-1 --api-url ... --staking-txid <TXID> --psbt-in unbond-signed.psbt --wait\n  \
    staker status --network signet --api-url http://127.0.0.1:8090\n\n\
    Every connection flag has an environment variable: STAKER_NETWORK, STAKER_PARAMS, STAKER_RPC_URL,\n\
    STAKER_RPC_USER, STAKER_RPC_PASSWORD, STAKER_RPC_COOKIE, STAKER_API_URL, STAKER_DATA_DIR, STAKER_KEY_FILE.\n\n",
    exit_help!()
);

/// Build, check and inspect Babylon phase-1 staking transactions.
///
/// Params are given as a file in the reference `global-params.json` format or as a shipped
/// preset: `bbn-test-4` (signet) or `bbn-1` (mainnet phase-1).
#[derive(Debug, Parser)]
#[command(
    name = "staker",
    version,
    propagate_version = true,
    after_help = AFTER_HELP
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
    /// The staker key file for test networks: generate, import, show.
    #[command(subcommand)]
    Keys(keys_cmd::Command),
    /// Build, sign (or export as a PSBT) and broadcast a staking tx.
    Stake(stake::Args),
    /// Sign the canonical unbonding tx of an active delegation and submit it to the API, or
    /// write it as a PSBT for an external signer (--psbt-out) and submit what it signed
    /// (--psbt-in, --signature).
    Unbond(unbond::Args),
    /// Withdraw an expired staking output or an unbonding output (says how long to wait).
    Withdraw(withdraw::Args),
    /// The staker's delegations from the API.
    Status(status::Args),
}

#[derive(Debug, Subcommand)]
enum ParamsCommand {
    /// Validate a params file (or preset) with every rule of the reference parser and print
    /// its versions. Exits 4 with the reference's exact error text when the file is invalid.
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
        Command::Keys(command) => keys_cmd::run(&command, out),
        Command::Stake(args) => stake::run(&args, out),
        Command::Unbond(args) => unbond::run(&args, out),
        Command::Withdraw(args) => withdraw::run(&args, out),
        Command::Status(args) => status::run(&args, out),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::code_of(&error)
        }
    }
}
