//! The staker's key for test networks: one secret in a JSON file, with the network it is for.
//!
//! The same key is the staker key of the staking scripts (x-only) and the wallet key of the
//! funding outputs (P2TR key path, BIP86 tweak, or P2WPKH).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use staking_core::bitcoin::hashes::Hash;
use staking_core::bitcoin::key::{CompressedPublicKey, Keypair, TapTweak};
use staking_core::bitcoin::secp256k1::{rand, SecretKey, XOnlyPublicKey};
use staking_core::bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use staking_core::bitcoin::{
    ecdsa, taproot, Address, Network, NetworkKind, PrivateKey, Transaction, TxOut, Witness,
};
use staking_core::keys::SECP;

use crate::common::{network_name, parse_network};

/// What the file holds.
#[derive(Debug, Serialize, Deserialize)]
struct KeyFileJson {
    network: String,
    wif: String,
    staker_pk_hex: String,
}

/// A loaded staker key.
#[derive(Debug, Clone)]
pub struct StakerKey {
    pub private: PrivateKey,
    pub network: Network,
}

impl StakerKey {
    /// A fresh random key.
    pub fn generate(network: Network) -> Self {
        let secret = SecretKey::new(&mut rand::thread_rng());
        Self {
            private: PrivateKey::new(secret, network),
            network,
        }
    }

    /// From WIF or 64 hex characters. A WIF for the other kind of network is refused.
    pub fn import(secret: &str, network: Network) -> Result<Self> {
        let secret = secret.trim();
        let private = if secret.len() == 64 && secret.chars().all(|c| c.is_ascii_hexdigit()) {
            let bytes: Vec<u8> = staking_core::bitcoin::hex::FromHex::from_hex(secret)
                .context("the secret is not hex")?;
            let key = SecretKey::from_slice(&bytes).context(
                "the 32 bytes are not a valid secp256k1 secret (zero or ≥ the group order)",
            )?;
            PrivateKey::new(key, network)
        } else {
            let key = PrivateKey::from_wif(secret)
                .context("the secret is neither WIF nor 64 hex characters")?;
            if key.network != NetworkKind::from(network) {
                bail!(
                    "the WIF key is for {:?} but the network is {}: import it with the matching --network",
                    key.network,
                    network_name(network)
                );
            }
            if !key.compressed {
                bail!("the WIF key is uncompressed; taproot and P2WPKH need a compressed key");
            }
            PrivateKey::new(key.inner, network)
        };
        Ok(Self { private, network })
    }

    pub fn keypair(&self) -> Keypair {
        Keypair::from_secret_key(&SECP, &self.private.inner)
    }

    /// The staker public key of the scripts and the API.
    pub fn x_only(&self) -> XOnlyPublicKey {
        self.keypair().x_only_public_key().0
    }

    fn compressed(&self) -> CompressedPublicKey {
        CompressedPublicKey(self.private.inner.public_key(&SECP))
    }

    /// The key-path P2TR address (BIP86: no script tree).
    pub fn p2tr_address(&self) -> Address {
        Address::p2tr(&SECP, self.x_only(), None, self.network)
    }

    pub fn p2wpkh_address(&self) -> Address {
        Address::p2wpkh(&self.compressed(), self.network)
    }

    /// Signs input `index` of `tx` (a P2TR key-path or P2WPKH output of this key), given the
    /// outputs every input spends.
    pub fn sign_wallet_input(
        &self,
        tx: &Transaction,
        index: usize,
        prevouts: &[TxOut],
    ) -> Result<Witness> {
        let prevout = prevouts.get(index).context("no prevout for the input")?;
        let mut cache = SighashCache::new(tx);
        if prevout.script_pubkey == self.p2tr_address().script_pubkey() {
            let sighash = cache
                .taproot_key_spend_signature_hash(
                    index,
                    &Prevouts::All(prevouts),
                    TapSighashType::Default,
                )
                .context("cannot compute the taproot key-path sighash")?;
            let tweaked = self.keypair().tap_tweak(&SECP, None);
            let msg =
                staking_core::bitcoin::secp256k1::Message::from_digest(sighash.to_byte_array());
            let signature = SECP.sign_schnorr(&msg, &tweaked.to_keypair());
            let sig = taproot::Signature {
                signature,
                sighash_type: TapSighashType::Default,
            };
            Ok(Witness::p2tr_key_spend(&sig))
        } else if prevout.script_pubkey == self.p2wpkh_address().script_pubkey() {
            let sighash = cache
                .p2wpkh_signature_hash(
                    index,
                    &prevout.script_pubkey,
                    prevout.value,
                    EcdsaSighashType::All,
                )
                .context("cannot compute the P2WPKH sighash")?;
            let msg =
                staking_core::bitcoin::secp256k1::Message::from_digest(sighash.to_byte_array());
            let signature = SECP.sign_ecdsa(&msg, &self.private.inner);
            let sig = ecdsa::Signature {
                signature,
                sighash_type: EcdsaSighashType::All,
            };
            Ok(Witness::p2wpkh(&sig, &self.compressed().0))
        } else {
            bail!(
                "input {index} spends {}, which is not this key's P2TR or P2WPKH output; \
                 use --psbt and sign with the wallet that owns it",
                prevout.script_pubkey
            )
        }
    }

    /// Writes the key file (mode 0600 on Unix), refusing to overwrite.
    pub fn save(&self, path: &Path) -> Result<()> {
        if path.exists() {
            bail!(
                "{} already exists; move it away first (keys are never overwritten)",
                path.display()
            );
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let json = KeyFileJson {
            network: network_name(self.network).to_owned(),
            wif: self.private.to_wif(),
            staker_pk_hex: self.x_only().to_string(),
        };
        let text = serde_json::to_string_pretty(&json).context("cannot encode the key file")?;
        write_private(path, &text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Reads a key file and checks it is for `network`.
    pub fn load(path: &Path, network: Network) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the key file {} (create one with `staker keys generate` or `staker keys import`)",
                path.display()
            )
        })?;
        let json: KeyFileJson = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a staker key file", path.display()))?;
        let file_network = parse_network(&json.network).map_err(anyhow::Error::msg)?;
        if file_network != network {
            bail!(
                "the key file {} is for {} but the network is {}",
                path.display(),
                json.network,
                network_name(network)
            );
        }
        Self::import(&json.wif, network)
            .with_context(|| format!("the key in {} is damaged", path.display()))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}
