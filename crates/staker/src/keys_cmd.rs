//! `staker keys generate|import|show`: the key file for test networks.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::common::{network_name, Output};
use crate::context::KeyArgs;
use crate::keyfile::StakerKey;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Make a new random key and write the key file (never overwrites one).
    Generate(KeyArgs),
    /// Write the key file from a secret: WIF or 64 hex characters.
    Import {
        #[command(flatten)]
        keys: KeyArgs,
        /// The secret (WIF or hex). Prefer the STAKER_IMPORT_SECRET variable over the command line.
        #[arg(
            env = "STAKER_IMPORT_SECRET",
            hide_env_values = true,
            value_name = "SECRET"
        )]
        secret: String,
    },
    /// Print the staker public key and the addresses of the key file.
    Show(KeyArgs),
}

pub fn run(command: &Command, out: Output) -> Result<ExitCode> {
    let (args, key, created) = match command {
        Command::Generate(args) => {
            let network = args.network(None)?;
            let key = StakerKey::generate(network);
            key.save(&args.key_path(network)?)?;
            (args, key, true)
        }
        Command::Import { keys, secret } => {
            let network = keys.network(None)?;
            let key = StakerKey::import(secret, network)?;
            key.save(&keys.key_path(network)?)?;
            (keys, key, true)
        }
        Command::Show(args) => {
            let network = args.network(None)?;
            (args, args.load_key(network)?, false)
        }
    };
    let value = json!({
        "key_file": args.key_path(key.network)?.display().to_string(),
        "network": network_name(key.network),
        "staker_pk_hex": key.x_only().to_string(),
        "p2tr_address": key.p2tr_address().to_string(),
        "p2wpkh_address": key.p2wpkh_address().to_string(),
        "created": created,
    });
    out.print(&value);
    Ok(ExitCode::SUCCESS)
}
