//! The PSBTs carry what a BIP371 software wallet needs: rust-bitcoin's own PSBT signer, given
//! only a BIP32 master key, signs the staking tx (key path), the unbonding tx (unbonding leaf)
//! and a withdrawal (timelock leaf), and the resulting txs pass Bitcoin Core's interpreter.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::str::FromStr;

use bitcoin::absolute::LockTime;
use bitcoin::bip32::{DerivationPath, Xpriv};
use bitcoin::hashes::Hash;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Keypair, SecretKey, XOnlyPublicKey};
use bitcoin::{Amount, Network, OutPoint, ScriptBuf, Transaction, TxOut, Txid, Witness};
use staking_core::builder::{staking_tx, withdrawal_tx, StakingTxRequest, Utxo};
use staking_core::keys::{nums_key, SECP};
use staking_core::psbt::{script_path_psbt, staking_psbt, LeafSpend};
use staking_core::script::{StakingKeys, StakingLeaf, StakingOutput};
use staking_core::signing::{sign, verify};
use staking_core::unbonding::{canonical_unbonding_tx, unbonding_sighash, UnbondingTerms};
use staking_core::witness::unbonding_witness;

fn consensus_verifies(tx: &Transaction, prevouts: &[TxOut], input: usize) -> bool {
    let bytes = bitcoin::consensus::serialize(tx);
    let utxos: Vec<bitcoinconsensus::Utxo> = prevouts
        .iter()
        .map(|p| bitcoinconsensus::Utxo {
            script_pubkey: p.script_pubkey.as_bytes().as_ptr(),
            script_pubkey_len: p.script_pubkey.len() as u32,
            value: p.value.to_sat() as i64,
        })
        .collect();
    bitcoinconsensus::verify_with_flags(
        prevouts[input].script_pubkey.as_bytes(),
        prevouts[input].value.to_sat(),
        &bytes,
        Some(&utxos),
        input,
        bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT,
    )
    .is_ok()
}

struct Wallet {
    master: Xpriv,
    path: DerivationPath,
    key: XOnlyPublicKey,
}

fn wallet() -> Wallet {
    let master = Xpriv::new_master(Network::Signet, &[7u8; 32]).unwrap();
    let path = DerivationPath::from_str("m/86'/1'/0'/0/0").unwrap();
    let key = master
        .derive_priv(&SECP, &path)
        .unwrap()
        .to_keypair(&SECP)
        .x_only_public_key()
        .0;
    Wallet { master, path, key }
}

impl Wallet {
    fn origin(&self) -> (XOnlyPublicKey, bitcoin::bip32::KeySource) {
        (
            self.key,
            (self.master.fingerprint(&SECP), self.path.clone()),
        )
    }
}

fn covenant(n: u8) -> Keypair {
    Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&[n; 32]).unwrap())
}

fn staking(w: &Wallet) -> StakingOutput {
    let keys = StakingKeys::new(
        w.key,
        vec![covenant(2).x_only_public_key().0],
        (3..6).map(|n| covenant(n).x_only_public_key().0).collect(),
        2,
    )
    .unwrap();
    StakingOutput::new(keys, 150).unwrap()
}

#[test]
fn a_software_wallet_signs_the_staking_psbt_through_the_key_path() {
    let w = wallet();
    let staking = staking(&w);
    let wallet_spk = ScriptBuf::new_p2tr(&SECP, w.key, None);
    let utxos = [Utxo {
        outpoint: OutPoint::new(Txid::from_byte_array([1; 32]), 0),
        value: Amount::from_sat(300_000),
        script_pubkey: wallet_spk.clone(),
    }];
    let mut op_return = vec![0x6a, 0x47];
    op_return.extend_from_slice(&[0u8; 71]);
    let built = staking_tx(&StakingTxRequest {
        staking: &staking,
        amount: Amount::from_sat(100_000),
        op_return: ScriptBuf::from_bytes(op_return),
        utxos: &utxos,
        change_script: wallet_spk,
        fee_rate: 2,
        lock_time: LockTime::ZERO,
    })
    .unwrap();
    let (key, source) = w.origin();
    let psbt = staking_psbt(&built, Some(key), Some(source)).unwrap();
    assert_eq!(psbt.inputs[0].tap_internal_key, Some(w.key));
    assert!(psbt.inputs[0].tap_key_origins[&w.key].0.is_empty());

    // Through base64 and back, as it would travel to a wallet.
    let mut psbt: Psbt = psbt.to_string().parse().unwrap();
    psbt.sign(&w.master, &SECP).unwrap();
    let sig = psbt.inputs[0].tap_key_sig.unwrap();
    let mut tx = psbt.unsigned_tx.clone();
    tx.input[0].witness = Witness::from_slice(&[sig.to_vec()]);
    let prevout = TxOut {
        value: utxos[0].value,
        script_pubkey: utxos[0].script_pubkey.clone(),
    };
    assert!(consensus_verifies(&tx, &[prevout], 0));
}

#[test]
fn a_software_wallet_signs_the_unbonding_psbt_through_the_unbonding_leaf() {
    let w = wallet();
    let staking = staking(&w);
    let value = Amount::from_sat(100_000);
    let outpoint = OutPoint::new(Txid::from_byte_array([2; 32]), 0);
    let terms = UnbondingTerms {
        unbonding_time: 20,
        unbonding_fee: Amount::from_sat(1_000),
    };
    let unsigned = canonical_unbonding_tx(&staking, outpoint, value, &terms).unwrap();
    let spend = LeafSpend::staking(&staking, value, StakingLeaf::Unbonding);
    let psbt = script_path_psbt(unsigned.clone(), &spend, &[w.origin()]).unwrap();
    let input = &psbt.inputs[0];
    assert_eq!(input.tap_internal_key, Some(nums_key()));
    assert_eq!(input.witness_utxo.as_ref(), Some(&spend.prevout));
    assert_eq!(
        input.tap_scripts.get(&spend.control_block).map(|(s, _)| s),
        Some(staking.leaf_script(StakingLeaf::Unbonding))
    );
    assert_eq!(input.tap_key_origins[&w.key].0, vec![spend.leaf_hash()]);

    let mut psbt: Psbt = psbt.to_string().parse().unwrap();
    psbt.sign(&w.master, &SECP).unwrap();
    let staker_sig = psbt.inputs[0].tap_script_sigs[&(w.key, spend.leaf_hash())];
    let sighash = unbonding_sighash(&unsigned, &staking, value).unwrap();
    verify(&sighash, &staker_sig.to_vec(), &w.key).unwrap();

    let cov_sigs: Vec<_> = (3..6)
        .map(|n| {
            let k = covenant(n);
            (k.x_only_public_key().0, sign(&sighash, &k))
        })
        .collect();
    let mut tx = unsigned;
    tx.input[0].witness = unbonding_witness(&staking, &staker_sig.signature, &cov_sigs).unwrap();
    assert!(consensus_verifies(&tx, &[spend.prevout], 0));
}

#[test]
fn a_software_wallet_signs_the_withdrawal_psbt_through_the_timelock_leaf() {
    let w = wallet();
    let staking = staking(&w);
    let value = Amount::from_sat(100_000);
    let outpoint = OutPoint::new(Txid::from_byte_array([3; 32]), 1);
    let unsigned = withdrawal_tx(
        outpoint,
        value,
        staking.staking_time(),
        ScriptBuf::new_p2tr(&SECP, w.key, None),
        4,
    )
    .unwrap();
    let spend = LeafSpend::staking(&staking, value, StakingLeaf::Timelock);
    let mut psbt = script_path_psbt(unsigned.clone(), &spend, &[w.origin()]).unwrap();
    psbt.sign(&w.master, &SECP).unwrap();
    let sig = psbt.inputs[0].tap_script_sigs[&(w.key, spend.leaf_hash())];
    let mut tx = unsigned;
    tx.input[0].witness = Witness::from_slice(&[
        sig.to_vec(),
        spend.leaf_script.to_bytes(),
        spend.control_block.serialize(),
    ]);
    assert!(consensus_verifies(&tx, &[spend.prevout], 0));
}

#[test]
fn a_psbt_needs_an_unsigned_one_input_tx() {
    let w = wallet();
    let staking = staking(&w);
    let spend = LeafSpend::staking(&staking, Amount::from_sat(1000), StakingLeaf::Timelock);
    let mut tx = withdrawal_tx(
        OutPoint::null(),
        Amount::from_sat(100_000),
        1,
        ScriptBuf::new(),
        1,
    )
    .unwrap();
    tx.input[0].witness = Witness::from_slice(&[[1u8; 64]]);
    assert!(script_path_psbt(tx.clone(), &spend, &[]).is_err());
    tx.input[0].witness = Witness::new();
    tx.input.push(tx.input[0].clone());
    assert!(script_path_psbt(tx, &spend, &[]).is_err());
}
