//! A demo staker's key and wallet signing (P2TR key path), as a staker's wallet would sign the
//! inputs of its staking tx.

use anyhow::Context;
use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::secp256k1::{Message, SecretKey, XOnlyPublicKey};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::{taproot, Address, Network, Transaction, TxOut};
use staking_core::keys::SECP;

/// A demo staker: one key, its P2TR (key-path) address for funds and change.
pub struct Staker {
    pub name: &'static str,
    pub keypair: Keypair,
    pub address: Address,
}

impl Staker {
    /// A fresh random key.
    pub fn new(name: &'static str) -> Self {
        let secret = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
        let keypair = Keypair::from_secret_key(&SECP, &secret);
        let address = Address::p2tr(&SECP, keypair.x_only_public_key().0, None, Network::Regtest);
        Self {
            name,
            keypair,
            address,
        }
    }

    pub fn x_only(&self) -> XOnlyPublicKey {
        self.keypair.x_only_public_key().0
    }

    /// Key-path signature of input `index` (a P2TR output of this key).
    pub fn sign_key_path(
        &self,
        tx: &Transaction,
        index: usize,
        prevouts: &[TxOut],
    ) -> anyhow::Result<bitcoin::Witness> {
        let sighash = SighashCache::new(tx)
            .taproot_key_spend_signature_hash(
                index,
                &Prevouts::All(prevouts),
                TapSighashType::Default,
            )
            .context("cannot compute the key-path sighash")?;
        let tweaked = self.keypair.tap_tweak(&SECP, None).to_keypair();
        let signature = SECP.sign_schnorr(&Message::from_digest(sighash.to_byte_array()), &tweaked);
        Ok(bitcoin::Witness::p2tr_key_spend(&taproot::Signature {
            signature,
            sighash_type: TapSighashType::Default,
        }))
    }
}
