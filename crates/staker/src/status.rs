//! `staker status`: the staker's delegations as the API reports them.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use staking_core::bitcoin::secp256k1::XOnlyPublicKey;

use crate::api_client::ApiClient;
use crate::common::{parse_x_only, Output};
use crate::context::runtime;
use crate::context::KeyArgs;
use crate::unbond::ApiArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    keys: KeyArgs,
    #[command(flatten)]
    api: ApiArgs,
    /// The staker key to list (default: the key file's).
    #[arg(long, value_name = "HEX", value_parser = parse_x_only)]
    staker_pk: Option<XOnlyPublicKey>,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    runtime()?.block_on(run_async(args, out))
}

async fn run_async(args: &Args, out: Output) -> Result<ExitCode> {
    let staker = match args.staker_pk {
        Some(pk) => pk,
        None => {
            let network = args.keys.network(None)?;
            args.keys.load_key(network)?.x_only()
        }
    };
    let api = ApiClient::new(&args.api.api_url, args.api.api_ca_file.as_deref())?;
    let delegations = api.delegations(&staker.to_string()).await?;
    if out.json {
        let value = json!({
            "staker_pk_hex": staker.to_string(),
            "delegations": serde_json::to_value(&delegations).context("cannot encode")?,
        });
        out.print(&value);
        return Ok(ExitCode::SUCCESS);
    }
    println!("staker {staker}: {} delegation(s)", delegations.len());
    if !delegations.is_empty() {
        println!(
            "{:<64}  {:<20}  {:>14}  {:>8}  {:>8}  overflow",
            "staking tx", "state", "value (sat)", "height", "timelock"
        );
    }
    for d in &delegations {
        println!(
            "{:<64}  {:<20}  {:>14}  {:>8}  {:>8}  {}",
            d.staking_tx_hash_hex,
            d.state,
            d.staking_value,
            d.staking_tx.start_height,
            d.staking_tx.timelock,
            if d.is_overflow { "yes" } else { "no" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
