//! PSBTs (BIP174/BIP371) for the staking, unbonding and withdrawal txs, with the Taproot fields a
//! hardware or software wallet needs to sign a script-path spend: `witness_utxo`,
//! `tap_internal_key`, `tap_leaf_script` (control block → leaf) and, where the caller knows
//! them, `tap_key_origins` (BIP32 origin of a key, with the leaves it signs in).
//!
//! [`script_path_psbt`] and [`staking_psbt`] choose their fields as btc-staking-ts 0.2.x does, so
//! the PSBTs of its vectors reproduce byte for byte. [`unbonding_psbt`] is the staker's unbonding
//! PSBT for an external signer (hardware wallet, Bitcoin Core, a custodian's signer): it adds the
//! merkle root, the staker key's origin and the sighash type, so a wallet can check the output it
//! spends and find its key without knowing anything about staking.

use std::collections::BTreeMap;
use std::str::FromStr;

use bitcoin::bip32::{DerivationPath, Fingerprint, KeySource};
use bitcoin::psbt::{self, Psbt, PsbtSighashType};
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::taproot::{ControlBlock, LeafVersion, TapLeafHash};
use bitcoin::{Amount, ScriptBuf, TapSighashType, Transaction, TxOut};

use crate::builder::BuiltStakingTx;
use crate::keys::nums_key;
use crate::script::{StakingLeaf, StakingOutput, UnbondingLeaf, UnbondingOutput};

/// Why a PSBT cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PsbtError {
    /// The tx already carries a scriptSig or witness.
    #[error("the tx must be unsigned to become a PSBT: {0}")]
    NotUnsigned(#[from] psbt::Error),
    /// The tx has not exactly one input for a script-path PSBT.
    #[error("a script-path PSBT needs a tx with exactly 1 input, got {0}")]
    InputCount(usize),
}

/// One script-path spend: the output spent and the leaf revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpend {
    /// The output being spent (script and value; the sighash commits to both).
    pub prevout: TxOut,
    /// The revealed leaf script.
    pub leaf_script: ScriptBuf,
    /// Its control block.
    pub control_block: ControlBlock,
}

impl LeafSpend {
    /// A leaf of a staking output worth `value`.
    pub fn staking(staking: &StakingOutput, value: Amount, leaf: StakingLeaf) -> Self {
        Self {
            prevout: TxOut {
                value,
                script_pubkey: staking.script_pubkey().clone(),
            },
            leaf_script: staking.leaf_script(leaf).clone(),
            control_block: staking.control_block(leaf),
        }
    }

    /// A leaf of an unbonding output worth `value`.
    pub fn unbonding(unbonding: &UnbondingOutput, value: Amount, leaf: UnbondingLeaf) -> Self {
        Self {
            prevout: TxOut {
                value,
                script_pubkey: unbonding.script_pubkey().clone(),
            },
            leaf_script: unbonding.leaf_script(leaf).clone(),
            control_block: unbonding.control_block(leaf),
        }
    }

    /// The TapLeaf hash of the revealed leaf.
    pub fn leaf_hash(&self) -> TapLeafHash {
        TapLeafHash::from_script(&self.leaf_script, LeafVersion::TapScript)
    }
}

/// A PSBT for a 1-input script-path spend (the unbonding tx through the staking unbonding
/// leaf, or a withdrawal through a timelock leaf). `key_origins` lists the BIP32 origins of
/// keys that sign in this leaf (e.g. the staker's wallet key); each gets `tap_key_origins`
/// with the leaf hash.
pub fn script_path_psbt(
    tx: Transaction,
    spend: &LeafSpend,
    key_origins: &[(XOnlyPublicKey, KeySource)],
) -> Result<Psbt, PsbtError> {
    if tx.input.len() != 1 {
        return Err(PsbtError::InputCount(tx.input.len()));
    }
    let mut psbt = Psbt::from_unsigned_tx(tx)?;
    let leaf_hash = spend.leaf_hash();
    for input in &mut psbt.inputs {
        input.witness_utxo = Some(spend.prevout.clone());
        input.tap_scripts = BTreeMap::from([(
            spend.control_block.clone(),
            (spend.leaf_script.clone(), LeafVersion::TapScript),
        )]);
        input.tap_internal_key = Some(nums_key());
        input.tap_key_origins = key_origins
            .iter()
            .map(|(key, source)| (*key, (vec![leaf_hash], source.clone())))
            .collect();
    }
    Ok(psbt)
}

/// A PSBT for a staking tx: each input carries its `witness_utxo`; P2TR inputs also carry
/// `tap_internal_key` when the wallet's key is given (key-path spend), and its origin in
/// `tap_key_origins` when known.
pub fn staking_psbt(
    built: &BuiltStakingTx,
    wallet_key: Option<XOnlyPublicKey>,
    wallet_key_origin: Option<KeySource>,
) -> Result<Psbt, PsbtError> {
    let mut psbt = Psbt::from_unsigned_tx(built.tx.clone())?;
    for (input, utxo) in psbt.inputs.iter_mut().zip(&built.inputs) {
        input.witness_utxo = Some(TxOut {
            value: utxo.value,
            script_pubkey: utxo.script_pubkey.clone(),
        });
        if utxo.script_pubkey.is_p2tr() {
            if let Some(key) = wallet_key {
                input.tap_internal_key = Some(key);
                if let Some(origin) = &wallet_key_origin {
                    input.tap_key_origins = BTreeMap::from([(key, (Vec::new(), origin.clone()))]);
                }
            }
        }
    }
    Ok(psbt)
}

/// The origin written for the staker key when the caller gives none: fingerprint `00000000` and
/// the empty path `m`. Bitcoin Core's descriptor wallets find their key by the public key alone
/// (the reference's own PSBTs carry no origin); hardware wallets need the real origin.
pub fn unknown_key_origin() -> KeySource {
    (Fingerprint::default(), DerivationPath::master())
}

/// The staker's unbonding PSBT: the canonical unbonding tx `tx` spending `staking` (worth
/// `staking_value`) through its unbonding leaf, with everything BIP371 gives a signer of a
/// script-path input: `witness_utxo`, `tap_scripts` (control block → unbonding leaf),
/// `tap_internal_key` (NUMS) and `tap_merkle_root` (so the wallet can recompute the output key),
/// `tap_key_origins` for the staker key with the unbonding leaf's hash and `staker_origin`
/// (or [`unknown_key_origin`]), and `SIGHASH_DEFAULT` as the input's sighash type.
pub fn unbonding_psbt(
    tx: Transaction,
    staking: &StakingOutput,
    staking_value: Amount,
    staker_origin: Option<KeySource>,
) -> Result<Psbt, PsbtError> {
    let spend = LeafSpend::staking(staking, staking_value, StakingLeaf::Unbonding);
    let origin = staker_origin.unwrap_or_else(unknown_key_origin);
    let mut psbt = script_path_psbt(tx, &spend, &[(staking.keys().staker, origin)])?;
    for input in &mut psbt.inputs {
        input.tap_merkle_root = Some(staking.merkle_root());
        input.sighash_type = Some(PsbtSighashType::from(TapSighashType::Default));
    }
    Ok(psbt)
}

/// Why a key origin (`[fingerprint/path]`) does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyOriginError {
    /// The fingerprint is not 8 hex characters.
    #[error("`{origin}`: the fingerprint `{fingerprint}` is not 8 hex characters (e.g. `[d34db33f/86'/1'/0'/0/0]`)")]
    Fingerprint { origin: String, fingerprint: String },
    /// The path is not a BIP32 derivation path.
    #[error("`{origin}`: `{path}` is not a BIP32 derivation path (steps like 86' or 86h and 0, separated by /)")]
    Path { origin: String, path: String },
}

/// Parses a key origin as descriptors write it, `[d34db33f/86'/1'/0'/0/0]` (brackets optional,
/// `h` or `'` for hardened steps, a bare fingerprint for the master key).
pub fn parse_key_origin(text: &str) -> Result<KeySource, KeyOriginError> {
    let origin = text.trim();
    let inner = origin
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(origin);
    let (fingerprint, path) = inner.split_once('/').unwrap_or((inner, ""));
    let fingerprint_error = || KeyOriginError::Fingerprint {
        origin: origin.to_owned(),
        fingerprint: fingerprint.to_owned(),
    };
    if fingerprint.len() != 8 {
        return Err(fingerprint_error());
    }
    let fingerprint = Fingerprint::from_str(fingerprint).map_err(|_| fingerprint_error())?;
    let path = if path.is_empty() {
        DerivationPath::master()
    } else {
        DerivationPath::from_str(&format!("m/{path}")).map_err(|_| KeyOriginError::Path {
            origin: origin.to_owned(),
            path: path.to_owned(),
        })?
    };
    Ok((fingerprint, path))
}

/// A key origin as descriptors write it: `[d34db33f/86'/1'/0'/0/0]`, `[00000000]` for the
/// master key of an unknown wallet.
pub fn format_key_origin((fingerprint, path): &KeySource) -> String {
    let mut text = format!("[{fingerprint}");
    for step in path {
        text.push('/');
        text.push_str(&step.to_string());
    }
    text.push(']');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_origins_parse_as_descriptors_write_them() {
        let (fp, path) = parse_key_origin("[d34db33f/86'/1'/0'/0/5]").unwrap();
        assert_eq!(fp.to_string(), "d34db33f");
        assert_eq!(path, DerivationPath::from_str("m/86'/1'/0'/0/5").unwrap());
        assert_eq!(
            format_key_origin(&(fp, path.clone())),
            "[d34db33f/86'/1'/0'/0/5]"
        );
        let (_, hardened_h) = parse_key_origin("d34db33f/86h/1h/0h/0/5").unwrap();
        assert_eq!(hardened_h, path);
        let (fp, path) = parse_key_origin("[0badc0de]").unwrap();
        assert_eq!(fp.to_string(), "0badc0de");
        assert_eq!(path, DerivationPath::master());
        assert_eq!(format_key_origin(&unknown_key_origin()), "[00000000]");
    }

    #[test]
    fn a_bad_fingerprint_or_path_is_named_in_the_error() {
        let e = parse_key_origin("[d34db3/86'/0]").unwrap_err();
        assert!(e.to_string().contains("`d34db3` is not 8 hex"), "{e}");
        let e = parse_key_origin("[zzzzzzzz/0]").unwrap_err();
        assert!(matches!(e, KeyOriginError::Fingerprint { .. }), "{e}");
        let e = parse_key_origin("[d34db33f/86'/x]").unwrap_err();
        assert!(e.to_string().contains("`86'/x` is not a BIP32"), "{e}");
    }
}
