//! `staker unbond`: build the one canonical unbonding tx of an active delegation, sign the
//! staker's part, submit it to the API and (with `--wait`) follow the delegation's state.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;
use staking_core::bitcoin::hex::DisplayHex;
use staking_core::bitcoin::{consensus, OutPoint, Txid};
use staking_core::params::BlockHeight;
use staking_core::signing::{sign, verify_parsed};
use staking_core::staking_tx::{classify, decode_transaction_hex, StakingTxClass};
use staking_core::unbonding::{canonical_unbonding_tx, unbonding_sighash, UnbondingTerms};

use crate::api_client::{ApiClient, UnbondingRequest};
use crate::common::Output;
use crate::context::{runtime, KeyArgs, ParamsArgs};
use crate::withdraw::rebuild_staking;

/// The API connection.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// The staking API, e.g. http://127.0.0.1:8090.
    #[arg(long, env = "STAKER_API_URL", value_name = "URL")]
    pub api_url: String,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    params: ParamsArgs,
    #[command(flatten)]
    keys: KeyArgs,
    #[command(flatten)]
    api: ApiArgs,
    /// The staking tx of the delegation to unbond.
    #[arg(long, value_name = "TXID")]
    staking_txid: Txid,
    /// Build and sign, print the request, but do not submit it.
    #[arg(long)]
    no_submit: bool,
    /// After submitting, follow the delegation until the unbonding tx is on chain.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit 1; the request stays submitted).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    wait_timeout: u64,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    runtime()?.block_on(run_async(args, out))
}

async fn run_async(args: &Args, out: Output) -> Result<ExitCode> {
    let source = args.params.source();
    let params = args.params.load()?;
    let network = args.keys.network(Some(&source))?;
    let key = args.keys.load_key(network)?;
    let api = ApiClient::new(&args.api.api_url)?;
    let txid = args.staking_txid.to_string();

    let delegation = api.delegation(&txid).await?.with_context(|| {
        format!("the API does not know staking tx {txid}: it appears once the tx has the params' confirmation depth")
    })?;
    if delegation.state != "active" {
        bail!(
            "the delegation of {txid} is `{}`; only an `active` delegation can be unbonded",
            delegation.state
        );
    }
    let staking_tx = decode_transaction_hex(&delegation.staking_tx.tx_hex)
        .context("the API's staking tx_hex is not a transaction")?;
    if staking_tx.compute_txid() != args.staking_txid {
        bail!(
            "the API's staking tx has txid {}, not {txid}",
            staking_tx.compute_txid()
        );
    }
    let height = BlockHeight(delegation.staking_tx.start_height);
    let parsed = match classify(&staking_tx, &params, height) {
        StakingTxClass::Valid(parsed) => parsed,
        StakingTxClass::Invalid { reason, .. } => bail!(
            "under these params the staking tx is invalid at height {height} ({reason}); are they the API's params?"
        ),
        StakingTxClass::NotStaking(reason) => bail!(
            "under these params the tx is not a staking tx at height {height} ({reason}); are they the API's params?"
        ),
    };
    if parsed.staker != key.x_only() {
        bail!(
            "the delegation's staker key is {}, the key file's is {}: use the staker's key file",
            parsed.staker,
            key.x_only()
        );
    }
    let version = params
        .version(parsed.params_version)
        .context("the staking tx's params version is missing")?;
    let staking = rebuild_staking(&params, &parsed)?;
    let terms = UnbondingTerms {
        unbonding_time: version.unbonding_time,
        unbonding_fee: version.unbonding_fee,
    };
    let outpoint = OutPoint::new(args.staking_txid, parsed.staking_output_index);
    let unbonding_tx = canonical_unbonding_tx(&staking, outpoint, parsed.staking_value, &terms)
        .context("cannot build the unbonding tx")?;
    let sighash = unbonding_sighash(&unbonding_tx, &staking, parsed.staking_value)
        .context("cannot compute the unbonding sighash")?;
    let signature = sign(&sighash, &key.keypair());
    verify_parsed(&sighash, &signature, &key.x_only())
        .context("the fresh signature does not verify")?;
    let request = UnbondingRequest {
        staker_signed_signature_hex: signature.as_ref().to_lower_hex_string(),
        staking_tx_hash_hex: txid.clone(),
        unbonding_tx_hash_hex: unbonding_tx.compute_txid().to_string(),
        unbonding_tx_hex: consensus::encode::serialize_hex(&unbonding_tx),
    };
    let mut value = json!({
        "staking_tx_hash_hex": request.staking_tx_hash_hex,
        "unbonding_tx_hash_hex": request.unbonding_tx_hash_hex,
        "unbonding_value": unbonding_tx.output[0].value.to_sat(),
        "unbonding_time": terms.unbonding_time,
        "request": serde_json::to_value(&request).context("cannot encode the request")?,
    });
    if args.no_submit {
        out.print(&value);
        return Ok(ExitCode::SUCCESS);
    }
    api.request_unbonding(&request).await?;
    value["submitted"] = json!(true);
    if args.wait {
        value["state"] = json!(follow(&api, &txid, args.wait_timeout).await?);
    }
    out.print(&value);
    Ok(ExitCode::SUCCESS)
}

/// Polls the delegation until it leaves `active` / `unbonding_requested`, printing each state.
async fn follow(api: &ApiClient, txid: &str, timeout_secs: u64) -> Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_secs);
    let mut last = String::new();
    loop {
        let state = api
            .delegation(txid)
            .await?
            .map(|d| d.state)
            .unwrap_or_else(|| "unknown".to_owned());
        if state != last {
            eprintln!("delegation {txid}: {state}");
            last.clone_from(&state);
        }
        if !matches!(state.as_str(), "active" | "unbonding_requested") {
            return Ok(state);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("still `{state}` after {timeout_secs} s; the request stays submitted, check later with `staker status`");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
