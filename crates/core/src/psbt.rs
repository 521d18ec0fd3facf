//! PSBTs (BIP174/BIP371) for the staking, unbonding and withdrawal txs, with the Taproot fields a
//! hardware or software wallet needs to sign a script-path spend: `witness_utxo`,
//! `tap_internal_key`, `tap_leaf_script` (control block → leaf) and, where the caller knows
//! them, `tap_key_origins` (BIP32 origin of a key, with the leaves it signs in).
//!
//! Field choice follows btc-staking-ts 0.2.x, so the PSBTs of its vectors reproduce byte for byte.

use std::collections::BTreeMap;

use bitcoin::bip32::KeySource;
use bitcoin::psbt::{self, Psbt};
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::taproot::{ControlBlock, LeafVersion, TapLeafHash};
use bitcoin::{Amount, ScriptBuf, Transaction, TxOut};

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
