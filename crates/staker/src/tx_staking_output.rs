//! `staker tx staking-output`: every script and derived value of one staking output.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use staking_core::bitcoin::secp256k1::XOnlyPublicKey;
use staking_core::bitcoin::Network;
use staking_core::op_return::V0OpReturn;
use staking_core::params::BlockHeight;
use staking_core::script::{StakingLeaf, StakingOutput, UnbondingOutput};

use crate::common::{network_for, parse_network, parse_x_only, Output, ParamsSource};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Params file or preset (bbn-test-4, bbn-1).
    #[arg(long, value_name = "FILE|PRESET")]
    params: String,
    /// Height at which the staking tx will be mined: selects the params version.
    #[arg(long, value_name = "H")]
    height: u64,
    /// Staker public key, 32-byte x-only hex.
    #[arg(long, value_name = "XONLY", value_parser = parse_x_only)]
    staker_pk: XOnlyPublicKey,
    /// Finality-provider public key, 32-byte x-only hex.
    #[arg(long, value_name = "XONLY", value_parser = parse_x_only)]
    fp_pk: XOnlyPublicKey,
    /// Staking time in blocks (must be within the version's bounds).
    #[arg(long, value_name = "T")]
    staking_time: u16,
    /// Network for the addresses; defaults to the preset's (required with a params file).
    #[arg(long, value_name = "N", value_parser = parse_network)]
    network: Option<Network>,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let source = ParamsSource::parse(&args.params);
    let network = network_for(&source, args.network)?;
    let params = source.load_valid()?;
    let height = BlockHeight(args.height);
    let version = params.for_height(height).with_context(|| {
        format!(
            "no params version is active at height {height}: the first activates at {}",
            params.first_activation_height()
        )
    })?;
    if !(version.min_staking_time..=version.max_staking_time).contains(&args.staking_time) {
        anyhow::bail!(
            "staking time {} is outside params version {}'s bounds {}..={} blocks: a tx with it would be an invalid staking tx",
            args.staking_time,
            version.version,
            version.min_staking_time,
            version.max_staking_time
        );
    }
    let keys = version
        .staking_keys(args.staker_pk, args.fp_pk)
        .context("the keys cannot form a staking output")?;
    let staking = StakingOutput::new(keys.clone(), args.staking_time)
        .context("cannot build the staking output")?;
    let unbonding = UnbondingOutput::new(&keys, version.unbonding_time)
        .context("cannot build the unbonding output")?;
    let op_return = V0OpReturn {
        tag: version.tag,
        staker: args.staker_pk,
        finality_provider: args.fp_pk,
        staking_time: args.staking_time,
    };
    let cb = |leaf| {
        staking
            .control_block(leaf)
            .serialize()
            .to_lower_hex_string()
    };
    use staking_core::bitcoin::hex::DisplayHex;
    let value = json!({
        "params_version": version.version,
        "network": crate::common::network_name(network),
        "timelock_script": staking.leaf_script(StakingLeaf::Timelock).to_hex_string(),
        "unbonding_script": staking.leaf_script(StakingLeaf::Unbonding).to_hex_string(),
        "slashing_script": staking.leaf_script(StakingLeaf::Slashing).to_hex_string(),
        "merkle_root": staking.merkle_root().to_string(),
        "script_pubkey": staking.script_pubkey().to_hex_string(),
        "address": staking.address(network).to_string(),
        "control_blocks": {
            "timelock": cb(StakingLeaf::Timelock),
            "unbonding": cb(StakingLeaf::Unbonding),
            "slashing": cb(StakingLeaf::Slashing),
        },
        "op_return_script": op_return.script().to_hex_string(),
        "unbonding_output": {
            "script_pubkey": unbonding.script_pubkey().to_hex_string(),
            "address": unbonding.address(network).to_string(),
            "merkle_root": unbonding.merkle_root().to_string(),
            "unbonding_time": version.unbonding_time,
        },
        "min_staking_amount": version.min_staking_amount.to_sat(),
        "max_staking_amount": version.max_staking_amount.to_sat(),
    });
    out.print(&value);
    Ok(ExitCode::SUCCESS)
}
