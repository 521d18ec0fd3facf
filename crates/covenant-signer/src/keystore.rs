//! The two key backends: an encrypted key file unlocked at start, or a bitcoind wallet that
//! signs a PSBT (`walletprocesspsbt`, as the reference's `PsbtSigner`).
//!
//! Both receive everything about the spend in [`SigningInput`] after every check passed; both
//! return a BIP340 signature over the unbonding leaf's `SIGHASH_DEFAULT` sighash.

use bitcoin::secp256k1::{schnorr, PublicKey};
use bitcoin::taproot::ControlBlock;
use bitcoin::{ScriptBuf, TapSighash, Transaction, TxOut};

use crate::keyfile::CovenantKey;
use crate::wallet::WalletSigner;

/// Everything a backend needs to sign the unbonding tx's only input.
#[derive(Debug, Clone)]
pub struct SigningInput<'a> {
    /// The unbonding tx as requested (already checked to be canonical).
    pub unbonding_tx: &'a Transaction,
    /// The staking output it spends, as found on chain.
    pub staking_output: TxOut,
    /// The staking output's unbonding leaf.
    pub leaf_script: &'a ScriptBuf,
    /// The control block revealing that leaf.
    pub control_block: ControlBlock,
    /// The BIP341 script-path sighash of input 0 for that leaf.
    pub sighash: TapSighash,
    /// The committee key to sign with.
    pub covenant_key: PublicKey,
}

/// Why the backend produced no signature (always our failure: 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The wallet RPC failed (locked wallet, node down, …).
    #[error("wallet: {0}")]
    Wallet(String),
    /// The wallet answered without a signature for the key.
    #[error("no signature found in PSBT packet. Wallet does not maintain covenant public key {0}")]
    NoSignature(PublicKey),
    /// The backend returned a signature that does not verify (never sent to a client).
    #[error("backend produced a signature that does not verify for key {0}")]
    BadSignature(PublicKey),
}

/// Where the covenant key lives.
#[derive(Debug)]
pub enum KeyBackend {
    /// A key unlocked from an encrypted key file.
    File(CovenantKey),
    /// A bitcoind wallet reached over RPC.
    Wallet(WalletSigner),
}

impl KeyBackend {
    /// Whether this backend can sign for `key`. The wallet backend cannot tell without asking,
    /// so it claims every key and fails at signing time (as the reference does).
    pub fn may_hold(&self, key: &PublicKey) -> bool {
        match self {
            Self::File(file) => file.public_key() == *key,
            Self::Wallet(_) => true,
        }
    }

    /// The key(s) this backend is known to hold, for start-up logs and checks.
    pub fn known_key(&self) -> Option<PublicKey> {
        match self {
            Self::File(file) => Some(file.public_key()),
            Self::Wallet(_) => None,
        }
    }

    /// Signs. A wallet's answer is verified before it can leave the process (the wallet is
    /// another program); the file key signs in-process with libsecp256k1 over the sighash we
    /// computed, which a unit test checks, so it is not verified twice on the hot path.
    pub async fn sign(&self, input: &SigningInput<'_>) -> Result<schnorr::Signature, SigningError> {
        match self {
            Self::File(file) => {
                if file.public_key() != input.covenant_key {
                    return Err(SigningError::NoSignature(input.covenant_key));
                }
                Ok(staking_core::signing::sign(&input.sighash, file.keypair()))
            }
            Self::Wallet(wallet) => {
                let signature = wallet.sign(input).await?;
                let x_only = input.covenant_key.x_only_public_key().0;
                staking_core::signing::verify_parsed(&input.sighash, &signature, &x_only)
                    .map_err(|_| SigningError::BadSignature(input.covenant_key))?;
                Ok(signature)
            }
        }
    }
}
