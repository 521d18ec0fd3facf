//! `staker withdraw`: take the funds back through the timelock path of an expired staking
//! output or of an unbonding output, once the timelock allows it; before that, say how many
//! blocks remain.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;
use staking_core::bitcoin::{consensus, OutPoint, Transaction, Txid};
use staking_core::builder::withdrawal_tx;
use staking_core::params::BlockHeight;
use staking_core::psbt::{script_path_psbt, LeafSpend};
use staking_core::script::{StakingLeaf, StakingOutput, UnbondingLeaf, UnbondingOutput};
use staking_core::signing::{leaf_sighash, sign};
use staking_core::witness::{staking_timelock_witness, unbonding_timelock_witness};

use crate::chain;
use crate::common::Output;
use crate::context::{runtime, KeyArgs, ParamsArgs, RpcArgs};
use crate::exit::{not_yet, refused, usage, Kind};
use crate::pace;
use crate::stake::parse_address;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["staking_txid", "unbonding_txid"])))]
pub struct Args {
    #[command(flatten)]
    params: ParamsArgs,
    #[command(flatten)]
    keys: KeyArgs,
    #[command(flatten)]
    rpc: RpcArgs,
    /// Withdraw from the staking output of this tx after its staking time.
    #[arg(long, value_name = "TXID")]
    staking_txid: Option<Txid>,
    /// Withdraw from the output of this unbonding tx after the unbonding time.
    #[arg(long, value_name = "TXID")]
    unbonding_txid: Option<Txid>,
    /// Where the funds go (default: the key's P2TR address).
    #[arg(long, value_name = "ADDRESS")]
    to: Option<String>,
    /// Fee rate in sat/vB (default: the node's estimate for 6 blocks).
    #[arg(long, value_name = "SAT_PER_VB")]
    fee_rate: Option<u64>,
    /// Do not sign: print a BIP371 PSBT of the timelock-path spend for an external wallet.
    #[arg(long)]
    psbt: bool,
    /// Sign but do not broadcast.
    #[arg(long)]
    no_broadcast: bool,
}

/// The output to withdraw and how to spend it.
struct Locked {
    outpoint: OutPoint,
    spend: LeafSpend,
    timelock: u16,
    confirmed_at: BlockHeight,
    kind: &'static str,
    /// Builds the witness from the staker's signature.
    witness: Box<
        dyn Fn(
            &staking_core::bitcoin::secp256k1::schnorr::Signature,
        ) -> staking_core::bitcoin::Witness,
    >,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    runtime()?.block_on(run_async(args, out))
}

async fn run_async(args: &Args, out: Output) -> Result<ExitCode> {
    let source = args.params.source();
    let params = args.params.load()?;
    let network = args.keys.network(Some(&source))?;
    let rpc = args.rpc.client()?;
    let key = if args.psbt && args.to.is_some() {
        None
    } else {
        Some(args.keys.load_key(network)?)
    };

    let locked = match (args.staking_txid, args.unbonding_txid) {
        (Some(txid), _) => staking_locked(&rpc, &params, &txid).await?,
        (None, Some(txid)) => unbonding_locked(&rpc, &params, &txid).await?,
        (None, None) => bail!("give --staking-txid or --unbonding-txid"),
    };
    if let Some(k) = &key {
        if !args.psbt
            && !locked
                .spend
                .leaf_script
                .as_bytes()
                .windows(32)
                .any(|w| w == k.x_only().serialize())
        {
            return Err(refused(
                "the key file's key is not the staker key of this output; use the staker's key file or --psbt",
            ));
        }
    }
    if rpc
        .get_tx_out(&locked.outpoint.txid, locked.outpoint.vout, true)
        .await
        .context("gettxout failed")?
        .is_none()
    {
        let hint = if locked.kind == "staking" {
            " (if it was unbonded, withdraw with --unbonding-txid)"
        } else {
            ""
        };
        return Err(refused(format!(
            "the {} output {} is already spent{hint}",
            locked.kind, locked.outpoint
        )));
    }

    let tip = rpc
        .get_block_count()
        .await
        .context("cannot reach the node")?;
    let next = u64::from(tip) + 1;
    let unlock = locked.confirmed_at.0 + u64::from(locked.timelock);
    if next < unlock {
        let remaining = unlock - next;
        // The estimate is a courtesy: a node that cannot serve headers still gets the answer.
        let interval = pace::recent_interval(&rpc).await.unwrap_or(None);
        let estimate = pace::estimate(remaining, interval);
        let value = json!({
            "allowed": false,
            "kind": locked.kind,
            "outpoint": locked.outpoint.to_string(),
            "confirmed_at": locked.confirmed_at.0,
            "timelock": locked.timelock,
            "unlock_height": unlock,
            "tip": tip,
            "blocks_remaining": remaining,
            "block_interval_secs": interval.map(|d| d.as_secs_f64()),
            "estimated_wait_secs": interval.map(|d| d.as_secs_f64() * remaining as f64),
        });
        if out.json {
            out.print(&value);
        }
        eprintln!(
            "not yet: the {} output {} unlocks in block {unlock} (mined at {} + timelock {}); \
             the tip is {tip}, so {remaining} more block(s) must be mined ({estimate}). \
             Run this again then.",
            locked.kind, locked.outpoint, locked.confirmed_at, locked.timelock,
        );
        return Ok(Kind::NotYet.exit());
    }

    let destination = match (&args.to, &key) {
        (Some(to), _) => parse_address(to, network)?.script_pubkey(),
        (None, Some(k)) => k.p2tr_address().script_pubkey(),
        (None, None) => return Err(usage("give --to ADDRESS (no key file is read with --psbt)")),
    };
    let fee_rate = chain::fee_rate(&rpc, args.fee_rate).await?;
    let mut tx = withdrawal_tx(
        locked.outpoint,
        locked.spend.prevout.value,
        locked.timelock,
        destination,
        fee_rate,
    )
    .context("cannot build the withdrawal tx")?;
    let mut value = json!({
        "allowed": true,
        "kind": locked.kind,
        "outpoint": locked.outpoint.to_string(),
        "txid": tx.compute_txid().to_string(),
        "value": tx.output[0].value.to_sat(),
        "fee": (locked.spend.prevout.value - tx.output[0].value).to_sat(),
    });
    let Some(key) = key.filter(|_| !args.psbt) else {
        let psbt =
            script_path_psbt(tx, &locked.spend, &[]).context("cannot make the withdrawal PSBT")?;
        value["psbt_base64"] = json!(psbt.to_string());
        out.print(&value);
        return Ok(ExitCode::SUCCESS);
    };
    let sighash = leaf_sighash(
        &tx,
        0,
        std::slice::from_ref(&locked.spend.prevout),
        locked.spend.leaf_hash(),
    )
    .context("cannot compute the withdrawal sighash")?;
    let signature = sign(&sighash, &key.keypair());
    tx.input[0].witness = (locked.witness)(&signature);
    value["signed_tx_hex"] = json!(consensus::encode::serialize_hex(&tx));
    if !args.no_broadcast {
        chain::broadcast(&rpc, &tx).await?;
        value["broadcast"] = json!(true);
    }
    out.print(&value);
    Ok(ExitCode::SUCCESS)
}

async fn staking_locked(
    rpc: &bitcoin_rpc::RpcClient,
    params: &staking_core::params::GlobalParams,
    txid: &Txid,
) -> Result<Locked> {
    let (_, height, parsed) = chain::confirmed_staking(rpc, params, txid).await?;
    let staking = rebuild_staking(params, &parsed)?;
    let spend = LeafSpend::staking(&staking, parsed.staking_value, StakingLeaf::Timelock);
    Ok(Locked {
        outpoint: OutPoint::new(*txid, parsed.staking_output_index),
        spend,
        timelock: parsed.staking_time,
        confirmed_at: height,
        kind: "staking",
        witness: Box::new(move |sig| staking_timelock_witness(&staking, sig)),
    })
}

async fn unbonding_locked(
    rpc: &bitcoin_rpc::RpcClient,
    params: &staking_core::params::GlobalParams,
    txid: &Txid,
) -> Result<Locked> {
    let (tx, height) = chain::tx_with_height(rpc, txid).await?;
    let Some(height) = height else {
        return Err(not_yet(format!(
            "unbonding tx {txid} is not confirmed yet; wait for it to be mined"
        )));
    };
    let staking_txid = first_prevout(&tx)?;
    let (_, _, parsed) = chain::confirmed_staking(rpc, params, &staking_txid)
        .await
        .with_context(|| format!("{txid} does not spend a staking tx"))?;
    let version = params
        .version(parsed.params_version)
        .context("the staking tx's params version is missing")?;
    let keys = version
        .staking_keys(parsed.staker, parsed.finality_provider)
        .context("cannot rebuild the staking keys")?;
    let unbonding = UnbondingOutput::new(&keys, version.unbonding_time)
        .context("cannot build the unbonding output")?;
    let out = tx
        .output
        .first()
        .context("the unbonding tx has no output")?;
    if out.script_pubkey != *unbonding.script_pubkey() {
        return Err(refused(format!(
            "output 0 of {txid} is not the unbonding output of staking tx {staking_txid}"
        )));
    }
    let value = out.value;
    let spend = LeafSpend::unbonding(&unbonding, value, UnbondingLeaf::Timelock);
    Ok(Locked {
        outpoint: OutPoint::new(*txid, 0),
        spend,
        timelock: version.unbonding_time,
        confirmed_at: height,
        kind: "unbonding",
        witness: Box::new(move |sig| unbonding_timelock_witness(&unbonding, sig)),
    })
}

fn first_prevout(tx: &Transaction) -> Result<Txid> {
    let input = tx.input.first().context("the tx has no input")?;
    Ok(input.previous_output.txid)
}

/// The staking output of a parsed staking tx.
pub fn rebuild_staking(
    params: &staking_core::params::GlobalParams,
    parsed: &staking_core::staking_tx::ParsedStaking,
) -> Result<StakingOutput> {
    let version = params
        .version(parsed.params_version)
        .context("the staking tx's params version is missing")?;
    let keys = version
        .staking_keys(parsed.staker, parsed.finality_provider)
        .context("cannot rebuild the staking keys")?;
    StakingOutput::new(keys, parsed.staking_time).context("cannot rebuild the staking output")
}
