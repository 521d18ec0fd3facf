//! `staker tx inspect`: the indexer's verdict on one transaction, with the reason.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use staking_core::bitcoin::Network;
use staking_core::params::BlockHeight;
use staking_core::staking_tx::{classify, decode_transaction_hex, ParsedStaking, StakingTxClass};

use crate::common::{parse_network, Output, ParamsSource};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Params file or preset (bbn-test-4, bbn-1).
    #[arg(long, value_name = "FILE|PRESET")]
    params: String,
    /// Height of the block the tx is (or will be) mined in: selects the params version.
    #[arg(long, value_name = "H")]
    height: u64,
    /// Network for the staking address; defaults to the preset's. Without it, no address.
    #[arg(long, value_name = "N", value_parser = parse_network)]
    network: Option<Network>,
    /// The raw transaction, hex (segwit or legacy serialization).
    #[arg(value_name = "TX_HEX")]
    tx_hex: String,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let source = ParamsSource::parse(&args.params);
    let network = args.network.or(source.network());
    let params = source.load_valid()?;
    let tx = decode_transaction_hex(&args.tx_hex).context(
        "TX_HEX must be a whole raw transaction in hex, as `getrawtransaction` prints it",
    )?;
    let height = BlockHeight(args.height);
    let class = classify(&tx, &params, height);
    let mut value = json!({
        "txid": tx.compute_txid().to_string(),
        "kind": class.kind(),
        "height": height.0,
    });
    match &class {
        StakingTxClass::Valid(s) => add_staking(&mut value, s, &tx, network),
        StakingTxClass::Invalid { staking, reason } => {
            add_staking(&mut value, staking, &tx, network);
            value["reason"] = json!(reason.to_string());
            value["reason_code"] = json!(reason.code());
        }
        StakingTxClass::NotStaking(reason) => {
            value["reason"] = json!(reason.to_string());
            value["reason_code"] = json!(reason.code());
        }
    }
    out.print(&value);
    Ok(ExitCode::SUCCESS)
}

fn add_staking(
    value: &mut Value,
    s: &ParsedStaking,
    tx: &staking_core::bitcoin::Transaction,
    network: Option<Network>,
) {
    value["params_version"] = json!(s.params_version);
    value["staking_output_index"] = json!(s.staking_output_index);
    value["staking_value"] = json!(s.staking_value.to_sat());
    value["staker_pk"] = json!(s.staker.to_string());
    value["finality_provider_pk"] = json!(s.finality_provider.to_string());
    value["staking_time"] = json!(s.staking_time);
    value["op_return_index"] = json!(s.op_return_index);
    let address = network.and_then(|n| {
        let out = tx.output.get(s.staking_output_index as usize)?;
        staking_core::bitcoin::Address::from_script(&out.script_pubkey, n).ok()
    });
    if let Some(address) = address {
        value["staking_address"] = json!(address.to_string());
    }
}
