//! `staker stake`: build a staking tx from the staker's UTXOs, sign it with the key file (or
//! export a PSBT for another wallet), broadcast it and say when it counts as confirmed.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;
use staking_core::bitcoin::absolute::LockTime;
use staking_core::bitcoin::secp256k1::XOnlyPublicKey;
use staking_core::bitcoin::{consensus, Amount, Network, TxOut};
use staking_core::builder::{staking_tx, StakingTxRequest};
use staking_core::op_return::V0OpReturn;
use staking_core::params::BlockHeight;
use staking_core::psbt::staking_psbt;
use staking_core::script::StakingOutput;
use staking_core::staking_tx::{classify, StakingTxClass};

use crate::chain::{self, UtxoArg};
use crate::common::{parse_x_only, Output};
use crate::context::{runtime, KeyArgs, ParamsArgs, RpcArgs};
use crate::exit::{not_yet, refused, usage};
use crate::pace;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    params: ParamsArgs,
    #[command(flatten)]
    keys: KeyArgs,
    #[command(flatten)]
    rpc: RpcArgs,
    /// The finality provider's x-only public key (64 hex).
    #[arg(long, value_name = "HEX", value_parser = parse_x_only)]
    fp_pk: XOnlyPublicKey,
    /// Amount to stake, in satoshi.
    #[arg(long, value_name = "SAT")]
    amount: u64,
    /// Staking time in blocks (within the params version's min and max).
    #[arg(long, value_name = "BLOCKS")]
    staking_time: u16,
    /// Fee rate in sat/vB (default: the node's estimate for 6 blocks).
    #[arg(long, value_name = "SAT_PER_VB")]
    fee_rate: Option<u64>,
    /// Fund from these outputs (txid:vout or txid:vout:sat, repeatable) instead of scanning
    /// the node with `scantxoutset` for the key's P2TR and P2WPKH addresses.
    #[arg(long = "utxo", value_name = "TXID:VOUT[:SAT]")]
    utxos: Vec<UtxoArg>,
    /// Fund from the unspent outputs of these addresses (repeatable; found with the node's
    /// `scantxoutset`) instead of the key file's P2TR and P2WPKH addresses. For an external
    /// wallet with --psbt-out / --staker-pk.
    #[arg(long = "from", value_name = "ADDRESS", conflicts_with = "utxos")]
    from: Vec<String>,
    /// Do not sign: print a BIP371 PSBT for an external wallet (with --staker-pk, no key file
    /// is needed).
    #[arg(long)]
    psbt: bool,
    /// Do not sign: write the BIP371 PSBT (base64) to FILE for an external wallet, e.g.
    /// `bitcoin-cli walletprocesspsbt "$(cat FILE)"`, then broadcast the signed tx yourself.
    /// Implies --psbt.
    #[arg(long, value_name = "FILE")]
    psbt_out: Option<std::path::PathBuf>,
    /// With --psbt or --psbt-out: the staker key when no key file is used.
    #[arg(long, value_name = "HEX", value_parser = parse_x_only)]
    staker_pk: Option<XOnlyPublicKey>,
    /// With --psbt and --staker-pk: where change goes.
    #[arg(long, value_name = "ADDRESS", requires = "staker_pk")]
    change_address: Option<String>,
    /// Sign but do not broadcast: print the signed tx.
    #[arg(long)]
    no_broadcast: bool,
    /// After broadcasting, wait until the tx has the params' confirmation depth (progress on
    /// stderr).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit 1; the tx stays broadcast).
    #[arg(long, value_name = "SECS", default_value_t = 6 * 3600)]
    wait_timeout: u64,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    runtime()?.block_on(run_async(args, out))
}

async fn run_async(args: &Args, out: Output) -> Result<ExitCode> {
    let source = args.params.source();
    let params = args.params.load()?;
    let psbt_only = args.psbt || args.psbt_out.is_some();
    if args.staker_pk.is_some() && !psbt_only {
        return Err(usage("--staker-pk is for PSBT export: add --psbt or --psbt-out FILE, or drop --staker-pk to sign with the key file"));
    }
    let network = if args.staker_pk.is_some() {
        // No key file is touched, so mainnet needs no extra flag here.
        crate::common::network_for(&source, args.keys.network)?
    } else {
        args.keys.network(Some(&source))?
    };
    let rpc = args.rpc.client()?;

    let (staker, key, change_script) = match (args.staker_pk, psbt_only) {
        (Some(pk), true) => {
            let Some(change) = &args.change_address else {
                return Err(usage(
                    "with --staker-pk, give --change-address for the change",
                ));
            };
            (pk, None, parse_address(change, network)?.script_pubkey())
        }
        _ => {
            let key = args.keys.load_key(network)?;
            let change = key.p2tr_address().script_pubkey();
            (key.x_only(), Some(key), change)
        }
    };

    let tip = rpc
        .get_block_count()
        .await
        .context("cannot reach the node")?;
    let height = BlockHeight(u64::from(tip) + 1);
    let version = params.for_height(height).ok_or_else(|| {
        not_yet(format!(
            "no params version is active at height {height}: wait for the first activation height {}",
            params.first_activation_height()
        ))
    })?;
    check_terms(version, args.amount, args.staking_time)?;

    let keys = version
        .staking_keys(staker, args.fp_pk)
        .context("the staker, finality provider and covenant keys cannot form a staking output")?;
    let staking =
        StakingOutput::new(keys, args.staking_time).context("cannot build the staking output")?;
    let op_return = V0OpReturn {
        tag: version.tag,
        staker,
        finality_provider: args.fp_pk,
        staking_time: args.staking_time,
    }
    .script();
    let utxos = if !args.utxos.is_empty() {
        chain::given_utxos(&rpc, &args.utxos).await?
    } else if !args.from.is_empty() {
        let addresses = args
            .from
            .iter()
            .map(|a| parse_address(a, network))
            .collect::<Result<Vec<_>>>()?;
        chain::scan_utxos(&rpc, &addresses).await?
    } else {
        let Some(key) = &key else {
            return Err(usage(
                "with --staker-pk, say what funds the stake: --from ADDRESS or --utxo TXID:VOUT",
            ));
        };
        chain::scan_utxos(&rpc, &[key.p2tr_address(), key.p2wpkh_address()]).await?
    };
    if utxos.is_empty() {
        bail!(
            "no confirmed unspent outputs to fund the stake; fund the address first (`staker keys show` prints it) \
             and wait for one confirmation, or give --utxo / --from"
        );
    }
    let fee_rate = chain::fee_rate(&rpc, args.fee_rate).await?;
    let activation = u32::try_from(version.activation_height.0.saturating_sub(1))
        .context("activation height too large for a lock time")?;
    let lock_time = LockTime::from_height(activation)
        .with_context(|| format!("activation height {activation} cannot be a lock time"))?;
    let built = staking_tx(&StakingTxRequest {
        staking: &staking,
        amount: Amount::from_sat(args.amount),
        op_return,
        utxos: &utxos,
        change_script,
        fee_rate,
        lock_time,
    })
    .context("cannot build the staking tx")?;

    // The tx must be what the indexer counts; refuse anything else before money moves.
    match classify(&built.tx, &params, height) {
        StakingTxClass::Valid(_) => {}
        StakingTxClass::Invalid { reason, .. } => {
            return Err(refused(format!(
                "the built tx would be an invalid staking tx: {reason}"
            )));
        }
        StakingTxClass::NotStaking(reason) => {
            return Err(refused(format!(
                "the built tx would not be a staking tx: {reason}"
            )));
        }
    }
    let txid = built.tx.compute_txid();
    let mut value = json!({
        "txid": txid.to_string(),
        "params_version": version.version,
        "staking_address": staking.address(network).to_string(),
        "staking_value": args.amount,
        "staking_time": args.staking_time,
        "fee": built.fee.to_sat(),
        "fee_rate": fee_rate,
        "inputs": built.inputs.iter().map(|u| u.outpoint.to_string()).collect::<Vec<_>>(),
    });

    let Some(key) = key.filter(|_| !psbt_only) else {
        let psbt =
            staking_psbt(&built, Some(staker), None).context("cannot make the staking PSBT")?;
        let text = psbt.to_string();
        if let Some(path) = &args.psbt_out {
            std::fs::write(path, format!("{text}\n")).with_context(|| {
                format!(
                    "cannot write the PSBT to {} (is the directory writable?)",
                    path.display()
                )
            })?;
            value["psbt_file"] = json!(path.display().to_string());
        }
        value["psbt_base64"] = json!(text);
        value["next"] = json!(
            "sign the PSBT with the wallet that owns the inputs (e.g. `bitcoin-cli walletprocesspsbt`), \
             then broadcast the final tx (`bitcoin-cli sendrawtransaction`); it counts once it has the \
             params' confirmation depth"
        );
        value["confirmation_depth"] = json!(params.confirmation_depth());
        out.print(&value);
        return Ok(ExitCode::SUCCESS);
    };
    let prevouts: Vec<TxOut> = built
        .inputs
        .iter()
        .map(|u| TxOut {
            value: u.value,
            script_pubkey: u.script_pubkey.clone(),
        })
        .collect();
    let mut tx = built.tx.clone();
    for index in 0..tx.input.len() {
        let witness = key.sign_wallet_input(&built.tx, index, &prevouts)?;
        tx.input[index].witness = witness;
    }
    value["signed_tx_hex"] = json!(consensus::encode::serialize_hex(&tx));
    if args.no_broadcast {
        out.print(&value);
        return Ok(ExitCode::SUCCESS);
    }
    chain::broadcast(&rpc, &tx).await?;
    let depth = params.confirmation_depth();
    value["broadcast"] = json!(true);
    value["confirmation_depth"] = json!(depth);
    // The earliest it can count: mined in the next block, then `depth - 1` more on top.
    let next = u64::from(tip) + 1;
    let counted_at = next + u64::from(depth).saturating_sub(1);
    let interval = pace::recent_interval(&rpc).await.unwrap_or(None);
    let blocks = counted_at - u64::from(tip);
    value["counted_at_tip"] = json!(counted_at);
    value["confirmed_when"] = json!(format!(
        "the indexer counts it once it has {depth} confirmation(s): if it is mined in the next block \
         ({next}), when the tip reaches {counted_at} ({blocks} block(s) from now: {})",
        pace::estimate(blocks, interval)
    ));
    if args.wait {
        let confirmations =
            chain::wait_confirmations(&rpc, &txid, u32::from(depth), args.wait_timeout).await?;
        value["confirmations"] = json!(confirmations);
        if let (_, Some(mined_at)) = chain::tx_with_height(&rpc, &txid).await? {
            value["mined_at"] = json!(mined_at.0);
            value["counted_at_tip"] = json!(mined_at.0 + u64::from(depth).saturating_sub(1));
        }
    }
    out.print(&value);
    Ok(ExitCode::SUCCESS)
}

fn check_terms(
    version: &staking_core::params::ParamsVersion,
    amount: u64,
    staking_time: u16,
) -> Result<()> {
    let (min, max) = (
        version.min_staking_amount.to_sat(),
        version.max_staking_amount.to_sat(),
    );
    if amount < min || amount > max {
        return Err(refused(format!(
            "--amount {amount} sat is outside params version {}'s range {min}..={max} sat",
            version.version
        )));
    }
    let (min, max) = (version.min_staking_time, version.max_staking_time);
    if staking_time < min || staking_time > max {
        return Err(refused(format!(
            "--staking-time {staking_time} is outside params version {}'s range {min}..={max} blocks",
            version.version
        )));
    }
    Ok(())
}

/// An address for `network`.
pub fn parse_address(text: &str, network: Network) -> Result<staking_core::bitcoin::Address> {
    text.parse::<staking_core::bitcoin::Address<_>>()
        .with_context(|| format!("`{text}` is not an address"))?
        .require_network(network)
        .with_context(|| format!("`{text}` is not an address for {network}"))
}
