//! `staker tx unbonding`: the one canonical unbonding tx of a staking tx, with the sighash the
//! staker (and every covenant member) signs and a PSBT for a wallet.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;
use staking_core::bitcoin::hex::DisplayHex;
use staking_core::bitcoin::{consensus, Network, OutPoint};
use staking_core::params::BlockHeight;
use staking_core::psbt::unbonding_psbt;
use staking_core::script::{StakingLeaf, StakingOutput};
use staking_core::staking_tx::{classify, decode_transaction_hex, StakingTxClass};
use staking_core::unbonding::{
    canonical_unbonding_tx, unbonding_output, unbonding_sighash, UnbondingTerms,
};

use crate::common::{parse_network, Output, ParamsSource};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Params file or preset (bbn-test-4, bbn-1).
    #[arg(long, value_name = "FILE|PRESET")]
    params: String,
    /// Height of the block the staking tx was mined in: selects the params version whose
    /// unbonding time and fee apply.
    #[arg(long, value_name = "H")]
    height: u64,
    /// Network for the unbonding address; defaults to the preset's. Without it, no address.
    #[arg(long, value_name = "N", value_parser = parse_network)]
    network: Option<Network>,
    /// The staking transaction, raw hex.
    #[arg(value_name = "STAKING_TX_HEX")]
    staking_tx_hex: String,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let source = ParamsSource::parse(&args.params);
    let network = args.network.or(source.network());
    let params = source.load_valid()?;
    let staking_tx = decode_transaction_hex(&args.staking_tx_hex).context(
        "STAKING_TX_HEX must be a whole raw transaction in hex, as `getrawtransaction` prints it",
    )?;
    let height = BlockHeight(args.height);
    let parsed = match classify(&staking_tx, &params, height) {
        StakingTxClass::Valid(parsed) => parsed,
        StakingTxClass::Invalid { reason, .. } => bail!(
            "the tx is an invalid staking tx at height {height} ({reason}); the indexer ignores it, so it has no unbonding"
        ),
        StakingTxClass::NotStaking(reason) => bail!(
            "the tx is not a staking tx at height {height}: {reason} (run `staker tx inspect` for details)"
        ),
    };
    let version = params
        .version(parsed.params_version)
        .context("the params version the tx was parsed under has disappeared")?;
    let keys = version
        .staking_keys(parsed.staker, parsed.finality_provider)
        .context("the keys cannot form a staking output")?;
    let staking =
        StakingOutput::new(keys, parsed.staking_time).context("cannot build the staking output")?;
    let terms = UnbondingTerms {
        unbonding_time: version.unbonding_time,
        unbonding_fee: version.unbonding_fee,
    };
    let outpoint = OutPoint::new(staking_tx.compute_txid(), parsed.staking_output_index);
    let unbonding_tx = canonical_unbonding_tx(&staking, outpoint, parsed.staking_value, &terms)
        .context("cannot build the unbonding tx")?;
    let sighash = unbonding_sighash(&unbonding_tx, &staking, parsed.staking_value)
        .context("cannot compute the unbonding sighash")?;
    let unbonding =
        unbonding_output(staking.keys(), &terms).context("cannot build the unbonding output")?;
    let psbt = unbonding_psbt(unbonding_tx.clone(), &staking, parsed.staking_value, None)
        .context("cannot make the unbonding PSBT")?;

    let mut value = json!({
        "params_version": parsed.params_version,
        "staking_txid": outpoint.txid.to_string(),
        "staking_output_index": outpoint.vout,
        "staking_value": parsed.staking_value.to_sat(),
        "unsigned_tx_hex": consensus::encode::serialize_hex(&unbonding_tx),
        "txid": unbonding_tx.compute_txid().to_string(),
        "staker_sighash": sighash.to_string(),
        "unbonding_value": unbonding_tx.output[0].value.to_sat(),
        "fee": terms.unbonding_fee.to_sat(),
        "unbonding_time": terms.unbonding_time,
        "unbonding_script_pubkey": unbonding.script_pubkey().to_hex_string(),
        "unbonding_leaf_script": staking.leaf_script(StakingLeaf::Unbonding).to_hex_string(),
        "control_block": staking
            .control_block(StakingLeaf::Unbonding)
            .serialize()
            .to_lower_hex_string(),
        "psbt_base64": psbt.to_string(),
    });
    if let Some(network) = network {
        value["unbonding_address"] = json!(unbonding.address(network).to_string());
    }
    out.print(&value);
    Ok(ExitCode::SUCCESS)
}
