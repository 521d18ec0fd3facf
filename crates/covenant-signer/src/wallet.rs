//! The bitcoind-wallet key backend: the server never holds the key; the wallet node signs a
//! PSBT shaped as the reference's `PsbtSigner` builds it (`docs/reference.md#signer-psbt`).

use std::sync::Arc;

use bitcoin::base64::engine::general_purpose::STANDARD;
use bitcoin::base64::Engine as _;
use bitcoin::bip32::{DerivationPath, Fingerprint};
use bitcoin::psbt::{Psbt, PsbtSighashType};
use bitcoin::secp256k1::schnorr;
use bitcoin::taproot::{LeafVersion, TapLeafHash};
use bitcoin::{ScriptBuf, Sequence, TapSighashType, Witness};
use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::keystore::{SigningError, SigningInput};

/// A JSON-RPC endpoint: one method call, its `result` or an error text.
pub trait JsonRpc: Send + Sync + 'static {
    /// Calls `method` with positional `params`.
    fn call(&self, method: &str, params: Vec<Value>) -> BoxFuture<'_, Result<Value, String>>;
}

/// Signs through `walletprocesspsbt` on the wallet node.
#[derive(Clone)]
pub struct WalletSigner {
    rpc: Arc<dyn JsonRpc>,
}

impl std::fmt::Debug for WalletSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WalletSigner")
    }
}

impl WalletSigner {
    /// A signer over the wallet node reached by `rpc`.
    pub fn new(rpc: Arc<dyn JsonRpc>) -> Self {
        Self { rpc }
    }

    /// Builds the PSBT, asks the wallet to sign it and extracts the script-path signature.
    pub async fn sign(&self, input: &SigningInput<'_>) -> Result<schnorr::Signature, SigningError> {
        let psbt = build_psbt(input)?;
        let answer = self
            .rpc
            .call(
                "walletprocesspsbt",
                vec![
                    json!(STANDARD.encode(psbt.serialize())),
                    json!(true),
                    json!("DEFAULT"),
                ],
            )
            .await
            .map_err(SigningError::Wallet)?;
        let signed = answer.get("psbt").and_then(Value::as_str).ok_or_else(|| {
            SigningError::Wallet("walletprocesspsbt answered without a psbt".into())
        })?;
        let bytes = STANDARD
            .decode(signed)
            .map_err(|e| SigningError::Wallet(format!("signed psbt is not base64: {e}")))?;
        let signed = Psbt::deserialize(&bytes)
            .map_err(|e| SigningError::Wallet(format!("signed psbt does not parse: {e}")))?;
        extract_signature(&signed, input)
    }
}

/// PSBTv0 of the unbonding tx (scriptSig and witness cleared, sequence final): input 0 with
/// `SIGHASH_DEFAULT`, the staking output as witness UTXO, the covenant key as a BIP32
/// derivation without fingerprint or path (so a descriptor wallet finds its key), and the
/// unbonding leaf with its control block.
pub(crate) fn build_psbt(input: &SigningInput<'_>) -> Result<Psbt, SigningError> {
    let mut unsigned = input.unbonding_tx.clone();
    for txin in &mut unsigned.input {
        txin.script_sig = ScriptBuf::new();
        txin.witness = Witness::new();
        txin.sequence = Sequence::MAX;
    }
    let mut psbt = Psbt::from_unsigned_tx(unsigned)
        .map_err(|e| SigningError::Wallet(format!("cannot build psbt: {e}")))?;
    let Some(psbt_input) = psbt.inputs.first_mut() else {
        return Err(SigningError::Wallet("unbonding tx has no input".into()));
    };
    psbt_input.sighash_type = Some(PsbtSighashType::from(TapSighashType::Default));
    psbt_input.witness_utxo = Some(input.staking_output.clone());
    psbt_input.bip32_derivation.insert(
        input.covenant_key,
        (Fingerprint::default(), DerivationPath::default()),
    );
    psbt_input.tap_scripts.insert(
        input.control_block.clone(),
        (input.leaf_script.clone(), LeafVersion::TapScript),
    );
    Ok(psbt)
}

/// The signature for exactly (covenant key, unbonding leaf); any other entry is ignored.
pub(crate) fn extract_signature(
    signed: &Psbt,
    input: &SigningInput<'_>,
) -> Result<schnorr::Signature, SigningError> {
    let x_only = input.covenant_key.x_only_public_key().0;
    let leaf = TapLeafHash::from_script(input.leaf_script, LeafVersion::TapScript);
    let found = signed
        .inputs
        .first()
        .and_then(|i| i.tap_script_sigs.get(&(x_only, leaf)))
        .ok_or(SigningError::NoSignature(input.covenant_key))?;
    if found.sighash_type != TapSighashType::Default {
        return Err(SigningError::BadSignature(input.covenant_key));
    }
    Ok(found.signature)
}
