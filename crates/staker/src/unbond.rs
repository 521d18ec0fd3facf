//! `staker unbond`: the one canonical unbonding tx of an active delegation, signed by the staker
//! and submitted to the API; `--wait` follows the delegation's state.
//!
//! Four ways to get the staker's signature:
//! * the key file (test networks; mainnet only with `--i-know-this-is-mainnet`);
//! * `--psbt-out FILE`: write a BIP174/BIP371 PSBT for an external signer (hardware wallet,
//!   Bitcoin Core, a custodian) and stop;
//! * `--psbt-in FILE`: the PSBT that signer returned;
//! * `--signature HEX`: a bare 64-byte signature of the unbonding sighash.
//!
//! The last three read no key file, so they work on every network. What comes back from a
//! signer is checked (`staking_core::signed_unbonding`) before the API sees it: a PSBT for
//! another tx, signed by another key or tampered is refused with the reason.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use staking_core::bitcoin::bip32::KeySource;
use staking_core::bitcoin::hex::{DisplayHex, FromHex};
use staking_core::bitcoin::psbt::Psbt;
use staking_core::bitcoin::secp256k1::schnorr;
use staking_core::bitcoin::{consensus, OutPoint, Txid};
use staking_core::params::BlockHeight;
use staking_core::psbt::{format_key_origin, parse_key_origin, unknown_key_origin};
use staking_core::signed_unbonding::{SignedUnbondingError, UnbondingToSign};
use staking_core::signing::sign;
use staking_core::staking_tx::{classify, decode_transaction_hex, StakingTxClass};
use staking_core::unbonding::UnbondingTerms;

use crate::api_client::{ApiClient, DelegationPublic, UnbondingRequest};
use crate::common::Output;
use crate::context::{runtime, KeyArgs, ParamsArgs};
use crate::exit::{not_yet, refused};
use crate::withdraw::rebuild_staking;

/// A signed PSBT larger than this is not read (a 1-input unbonding PSBT is under 1 kB; wallets
/// may add a few fields).
const MAX_PSBT_FILE: u64 = 1 << 20;

/// The API connection.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// The staking API, e.g. http://127.0.0.1:8090.
    #[arg(
        long,
        env = "STAKER_API_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub api_url: String,
    /// For an https:// API with a certificate of a private CA: that CA (PEM), trusted besides
    /// the system's roots.
    #[arg(long, env = "STAKER_API_CA_FILE", value_name = "FILE")]
    pub api_ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("external").args(["psbt_out", "psbt_in", "signature"])))]
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
    /// Do not sign: write the unbonding tx as a BIP174/BIP371 PSBT (base64) to FILE for the
    /// wallet that holds the staker key, and stop. It carries the witness UTXO, the unbonding
    /// leaf with its control block, the internal key and merkle root, the staker key's origin
    /// and SIGHASH_DEFAULT. No key file is read; then submit with --psbt-in.
    #[arg(long, value_name = "FILE")]
    psbt_out: Option<PathBuf>,
    /// With --psbt-out: the staker key's BIP32 origin as a descriptor writes it,
    /// `[fingerprint/path]` (e.g. `[d34db33f/86'/1'/0'/0/0]`). Hardware wallets (HWI) need it to
    /// find their key. Without it the PSBT carries fingerprint 00000000 and path m: Bitcoin
    /// Core's descriptor wallets still sign (they match the public key), hardware wallets do not.
    #[arg(long, value_name = "[FP/PATH]", requires = "psbt_out", value_parser = parse_origin)]
    key_origin: Option<KeySource>,
    /// Submit the staker's signature from FILE: the PSBT of --psbt-out after an external signer
    /// signed it (base64, hex or binary). It must be this delegation's unbonding tx, unchanged,
    /// signed by its staker key. No key file is read.
    #[arg(long, value_name = "FILE")]
    psbt_in: Option<PathBuf>,
    /// Submit this 64-byte BIP340 signature (128 hex) of the unbonding sighash by the staker key
    /// (`staker tx unbonding` prints the sighash). No key file is read.
    #[arg(long, value_name = "HEX")]
    signature: Option<String>,
    /// Check and print the request, but do not submit it.
    #[arg(long, conflicts_with = "psbt_out")]
    no_submit: bool,
    /// After submitting, follow the delegation until the unbonding tx is on chain.
    #[arg(long, conflicts_with = "psbt_out")]
    wait: bool,
    /// With --wait: give up after this many seconds (exit 3; the request stays submitted).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    wait_timeout: u64,
}

fn parse_origin(text: &str) -> Result<KeySource, String> {
    parse_key_origin(text).map_err(|e| e.to_string())
}

/// Where the staker's signature comes from.
enum Signer<'a> {
    KeyFile,
    PsbtOut(&'a Path),
    PsbtIn(&'a Path),
    Signature(&'a str),
}

impl Args {
    fn signer(&self) -> Signer<'_> {
        match (&self.psbt_out, &self.psbt_in, &self.signature) {
            (Some(path), _, _) => Signer::PsbtOut(path),
            (None, Some(path), _) => Signer::PsbtIn(path),
            (None, None, Some(hex)) => Signer::Signature(hex),
            (None, None, None) => Signer::KeyFile,
        }
    }
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    runtime()?.block_on(run_async(args, out))
}

async fn run_async(args: &Args, out: Output) -> Result<ExitCode> {
    let source = args.params.source();
    let params = args.params.load()?;
    let api = ApiClient::new(&args.api.api_url, args.api.api_ca_file.as_deref())?;
    let txid = args.staking_txid.to_string();
    let delegation = api.delegation(&txid).await?.ok_or_else(|| {
        not_yet(format!(
            "the API does not know staking tx {txid}: it appears once the tx has the params' confirmation depth"
        ))
    })?;
    if delegation.state != "active" {
        return Err(refused(format!(
            "the delegation of {txid} is `{}`; only an `active` delegation can be unbonded",
            delegation.state
        )));
    }
    let unbonding = canonical(args, &params, &delegation)?;
    let mut value = json!({
        "staking_tx_hash_hex": txid,
        "unbonding_tx_hash_hex": unbonding.tx().compute_txid().to_string(),
        "unbonding_value": unbonding.tx().output[0].value.to_sat(),
        "staker_pk_hex": unbonding.staker().to_string(),
        "staker_sighash": unbonding.sighash().to_string(),
    });

    let signature = match args.signer() {
        Signer::PsbtOut(path) => {
            write_psbt(args, &unbonding, path, &mut value)?;
            out.print(&value);
            return Ok(ExitCode::SUCCESS);
        }
        Signer::PsbtIn(path) => {
            value["signed_with"] = json!("psbt");
            let psbt = read_psbt(path)?;
            unbonding
                .signature_from_psbt(&psbt)
                .map_err(|e| refused_signature(&format!("the PSBT in {}", path.display()), &e))?
        }
        Signer::Signature(hex) => {
            value["signed_with"] = json!("signature");
            let bytes = Vec::<u8>::from_hex(hex.trim()).map_err(|e| {
                refused(format!("--signature `{hex}` is not hex ({e}): give the 64-byte signature as 128 hex characters"))
            })?;
            unbonding
                .check_signature(&bytes)
                .map_err(|e| refused_signature("--signature", &e))?
        }
        Signer::KeyFile => {
            value["signed_with"] = json!("key file");
            key_file_signature(args, &source, &unbonding)?
        }
    };
    let request = UnbondingRequest {
        staker_signed_signature_hex: signature.as_ref().to_lower_hex_string(),
        staking_tx_hash_hex: txid.clone(),
        unbonding_tx_hash_hex: unbonding.tx().compute_txid().to_string(),
        unbonding_tx_hex: consensus::encode::serialize_hex(unbonding.tx()),
    };
    value["request"] = serde_json::to_value(&request).context("cannot encode the request")?;
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

/// The canonical unbonding tx of the delegation, from the staking tx the API holds, parsed
/// under the given params at its inclusion height.
fn canonical(
    args: &Args,
    params: &staking_core::params::GlobalParams,
    delegation: &DelegationPublic,
) -> Result<UnbondingToSign> {
    let txid = &args.staking_txid;
    let staking_tx = decode_transaction_hex(&delegation.staking_tx.tx_hex)
        .context("the API's staking tx_hex is not a transaction")?;
    if staking_tx.compute_txid() != *txid {
        anyhow::bail!(
            "the API's staking tx has txid {}, not {txid}",
            staking_tx.compute_txid()
        );
    }
    let height = BlockHeight(delegation.staking_tx.start_height);
    let parsed = match classify(&staking_tx, params, height) {
        StakingTxClass::Valid(parsed) => parsed,
        StakingTxClass::Invalid { reason, .. } => return Err(refused(format!(
            "under these params the staking tx is invalid at height {height} ({reason}); are they the API's params?"
        ))),
        StakingTxClass::NotStaking(reason) => return Err(refused(format!(
            "under these params the tx is not a staking tx at height {height} ({reason}); are they the API's params?"
        ))),
    };
    let version = params
        .version(parsed.params_version)
        .context("the staking tx's params version is missing")?;
    let terms = UnbondingTerms {
        unbonding_time: version.unbonding_time,
        unbonding_fee: version.unbonding_fee,
    };
    let staking = rebuild_staking(params, &parsed)?;
    let outpoint = OutPoint::new(*txid, parsed.staking_output_index);
    UnbondingToSign::new(staking, outpoint, parsed.staking_value, &terms)
        .context("cannot build the unbonding tx")
}

fn write_psbt(
    args: &Args,
    unbonding: &UnbondingToSign,
    path: &Path,
    value: &mut Value,
) -> Result<()> {
    let origin = args.key_origin.clone();
    let written_origin = origin.clone().unwrap_or_else(unknown_key_origin);
    let psbt = unbonding
        .psbt(origin)
        .context("cannot make the unbonding PSBT")?;
    let text = psbt.to_string();
    std::fs::write(path, format!("{text}\n")).with_context(|| {
        format!(
            "cannot write the PSBT to {} (is the directory writable?)",
            path.display()
        )
    })?;
    value["unbonding_leaf_hash"] = json!(unbonding.leaf_hash().to_string());
    value["key_origin"] = json!(format_key_origin(&written_origin));
    if args.key_origin.is_none() {
        value["key_origin_note"] = json!(
            "no --key-origin: Bitcoin Core's descriptor wallets find the key by itself; a hardware wallet needs --key-origin [fingerprint/path]"
        );
    }
    value["psbt_file"] = json!(path.display().to_string());
    value["psbt_base64"] = json!(text);
    value["next"] = json!(format!(
        "sign input 0 with the wallet that holds the staker key (script path, unbonding leaf, \
         SIGHASH_DEFAULT; e.g. `bitcoin-cli walletprocesspsbt \"$(cat {file})\" true DEFAULT`), \
         save the signed PSBT, then: staker unbond --staking-txid {txid} --psbt-in SIGNED_FILE",
        file = path.display(),
        txid = args.staking_txid,
    ));
    Ok(())
}

/// Reads a PSBT file: base64 (as wallets and `bitcoin-cli` write it), hex, or binary.
fn read_psbt(path: &Path) -> Result<Psbt> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the signed PSBT {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PSBT_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the signed PSBT {}", path.display()))?;
    if bytes.len() as u64 > MAX_PSBT_FILE {
        return Err(refused(format!(
            "{} is larger than {MAX_PSBT_FILE} bytes: not an unbonding PSBT",
            path.display()
        )));
    }
    let not_a_psbt = |e: &dyn std::error::Error| {
        // rust-bitcoin's PSBT errors name the field; their sources say what is wrong with it.
        let mut reason = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            reason.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        refused(format!(
            "{} is not a valid PSBT ({reason}); give the file the signer wrote (base64, hex or binary)",
            path.display()
        ))
    };
    if bytes.starts_with(b"psbt\xff") {
        return Psbt::deserialize(&bytes).map_err(|e| not_a_psbt(&e));
    }
    let text = String::from_utf8(bytes).map_err(|e| not_a_psbt(&e))?;
    let text = text.trim();
    if text.starts_with("70736274ff") {
        let raw = Vec::<u8>::from_hex(text).map_err(|e| not_a_psbt(&e))?;
        return Psbt::deserialize(&raw).map_err(|e| not_a_psbt(&e));
    }
    text.parse::<Psbt>().map_err(|e| not_a_psbt(&e))
}

/// The refusal of what an external signer returned, with what to do about it.
fn refused_signature(what: &str, e: &SignedUnbondingError) -> anyhow::Error {
    use SignedUnbondingError as E;
    let hint = match e {
        E::OtherTx { .. } => "export this delegation's PSBT with --psbt-out and sign that one",
        E::TxChanged { .. } | E::WitnessUtxoChanged { .. } | E::LeafChanged | E::NoInputMap => {
            "export a fresh PSBT with --psbt-out and have it signed unchanged"
        }
        E::NotSigned { .. } | E::OtherKey { .. } | E::OtherLeaf { .. } => {
            "sign with the wallet that holds the delegation's staker key (with --key-origin so a hardware wallet finds it)"
        }
        E::SighashType(_) => "sign with SIGHASH_DEFAULT",
        E::Length(_) | E::Malformed(_) => {
            "give the whole 64-byte signature (128 hex characters)"
        }
        E::DoesNotVerify { .. } => {
            "sign the staker sighash of this delegation's unbonding tx with its staker key (or use --psbt-out)"
        }
    };
    refused(format!("{what} is refused: {e}; {hint}"))
}

/// The key file's signature, after checking the key is the delegation's.
fn key_file_signature(
    args: &Args,
    source: &crate::common::ParamsSource,
    unbonding: &UnbondingToSign,
) -> Result<schnorr::Signature> {
    let network = args.keys.network(Some(source))?;
    let key = args.keys.load_key(network)?;
    if unbonding.staker() != key.x_only() {
        return Err(refused(format!(
            "the delegation's staker key is {}, the key file's is {}: use the staker's key file, \
             or sign elsewhere with --psbt-out / --psbt-in",
            unbonding.staker(),
            key.x_only()
        )));
    }
    let signature = sign(&unbonding.sighash(), &key.keypair());
    unbonding
        .check_signature(signature.as_ref())
        .context("the fresh signature does not verify")?;
    Ok(signature)
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
            return Err(not_yet(format!(
                "still `{state}` after {timeout_secs} s; the request stays submitted, check later with `staker status`"
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
