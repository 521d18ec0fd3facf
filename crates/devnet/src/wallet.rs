//! A tiny single-key wallet for the devnet: the faucet pays from it, and tests and benches use
//! it to build real, signed transactions (taproot key path, tapscript leaves, P2WSH scripts).

use bitcoin::hashes::{sha256, Hash};
use bitcoin::key::{Keypair, Secp256k1, TapTweak, UntweakedPublicKey};
use bitcoin::secp256k1::{All, Message, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{LeafVersion, TaprootBuilder, TaprootSpendInfo};
use bitcoin::{
    absolute, transaction, Address, Amount, Network, OutPoint, PublicKey, ScriptBuf, Sequence,
    TapLeafHash, Transaction, TxIn, TxOut, Witness, XOnlyPublicKey,
};

/// A key whose P2TR (key path, no script tree) output the wallet can spend.
#[derive(Debug, Clone)]
pub struct Wallet {
    secp: Secp256k1<All>,
    keypair: Keypair,
    script_pubkey: ScriptBuf,
}

/// The seed of the faucet's key: fixed, so coins mined to the faucet survive a restart.
pub const FAUCET_SEED: &[u8] = b"stakingd devnet faucet key";

impl Wallet {
    /// A wallet whose key is `sha256(seed)`.
    pub fn from_seed(seed: &[u8]) -> Self {
        let secp = Secp256k1::new();
        let mut digest = sha256::Hash::hash(seed).to_byte_array();
        // A sha256 output is a valid secret key except with negligible probability; rehash then.
        let secret = loop {
            match SecretKey::from_slice(&digest) {
                Ok(k) => break k,
                Err(_) => digest = sha256::Hash::hash(&digest).to_byte_array(),
            }
        };
        let keypair = Keypair::from_secret_key(&secp, &secret);
        let (xonly, _) = keypair.x_only_public_key();
        let script_pubkey = ScriptBuf::new_p2tr(&secp, xonly, None);
        Self {
            secp,
            keypair,
            script_pubkey,
        }
    }

    /// The faucet's wallet.
    pub fn faucet() -> Self {
        Self::from_seed(FAUCET_SEED)
    }

    /// The key pair.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// The untweaked x-only public key.
    pub fn x_only(&self) -> XOnlyPublicKey {
        self.keypair.x_only_public_key().0
    }

    /// The full public key (for P2WSH / ECDSA scripts).
    pub fn public_key(&self) -> PublicKey {
        PublicKey::new(self.keypair.public_key())
    }

    /// The P2TR scriptPubKey of this key.
    pub fn script_pubkey(&self) -> &ScriptBuf {
        &self.script_pubkey
    }

    /// The regtest P2TR address of this key.
    pub fn address(&self) -> Address {
        Address::p2tr(&self.secp, self.x_only(), None, Network::Regtest)
    }

    /// A version-2 transaction spending `inputs` (all P2TR outputs of this key) to `outputs`,
    /// every input with `sequence`, signed on the key path with SIGHASH_DEFAULT.
    pub fn spend(
        &self,
        inputs: &[(OutPoint, TxOut)],
        outputs: Vec<TxOut>,
        sequence: Sequence,
    ) -> Transaction {
        let mut tx = unsigned(inputs.iter().map(|(o, _)| *o), outputs, sequence);
        let prevouts: Vec<TxOut> = inputs.iter().map(|(_, o)| o.clone()).collect();
        for index in 0..tx.input.len() {
            let sig = self.sign_key_path(&tx, &prevouts, index);
            tx.input[index].witness = Witness::from_slice(&[sig]);
        }
        tx
    }

    /// A key-path Schnorr signature (64 bytes, SIGHASH_DEFAULT) for input `index`.
    pub fn sign_key_path(&self, tx: &Transaction, prevouts: &[TxOut], index: usize) -> Vec<u8> {
        let tweaked = self.keypair.tap_tweak(&self.secp, None).to_keypair();
        let sighash = SighashCache::new(tx)
            .taproot_key_spend_signature_hash(
                index,
                &Prevouts::All(prevouts),
                TapSighashType::Default,
            )
            .map(|h| h.to_byte_array())
            .unwrap_or([0u8; 32]);
        let msg = Message::from_digest(sighash);
        self.secp
            .sign_schnorr_no_aux_rand(&msg, &tweaked)
            .as_ref()
            .to_vec()
    }

    /// A tapscript Schnorr signature (64 bytes, SIGHASH_DEFAULT) for input `index` spending
    /// `leaf` with this wallet's untweaked key.
    pub fn sign_script_path(
        &self,
        tx: &Transaction,
        prevouts: &[TxOut],
        index: usize,
        leaf: &ScriptBuf,
    ) -> Vec<u8> {
        let leaf_hash = TapLeafHash::from_script(leaf, LeafVersion::TapScript);
        let sighash = SighashCache::new(tx)
            .taproot_script_spend_signature_hash(
                index,
                &Prevouts::All(prevouts),
                leaf_hash,
                TapSighashType::Default,
            )
            .map(|h| h.to_byte_array())
            .unwrap_or([0u8; 32]);
        let msg = Message::from_digest(sighash);
        self.secp
            .sign_schnorr_no_aux_rand(&msg, &self.keypair)
            .as_ref()
            .to_vec()
    }

    /// A DER ECDSA signature plus SIGHASH_ALL byte for input `index` spending a P2WSH output
    /// with `witness_script` worth `value`.
    pub fn sign_p2wsh(
        &self,
        tx: &Transaction,
        index: usize,
        witness_script: &ScriptBuf,
        value: Amount,
    ) -> Vec<u8> {
        let sighash = SighashCache::new(tx)
            .p2wsh_signature_hash(index, witness_script, value, EcdsaSighashType::All)
            .map(|h| h.to_byte_array())
            .unwrap_or([0u8; 32]);
        let msg = Message::from_digest(sighash);
        let sig = self.secp.sign_ecdsa(&msg, &self.keypair.secret_key());
        let mut bytes = sig.serialize_der().to_vec();
        bytes.push(EcdsaSighashType::All as u8);
        bytes
    }
}

/// A version-2, locktime-0 transaction with empty witnesses.
pub fn unsigned(
    inputs: impl IntoIterator<Item = OutPoint>,
    outputs: Vec<TxOut>,
    sequence: Sequence,
) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: inputs
            .into_iter()
            .map(|previous_output| TxIn {
                previous_output,
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    }
}

/// `<key> OP_CHECKSIGVERIFY <blocks> OP_CHECKSEQUENCEVERIFY`: the shape of a staking timelock
/// leaf, spendable by `key` after `blocks` confirmations.
pub fn csv_leaf(key: XOnlyPublicKey, blocks: u16) -> ScriptBuf {
    bitcoin::script::Builder::new()
        .push_x_only_key(&key)
        .push_opcode(bitcoin::opcodes::all::OP_CHECKSIGVERIFY)
        .push_int(i64::from(blocks))
        .push_opcode(bitcoin::opcodes::all::OP_CSV)
        .into_script()
}

/// `<blocks> OP_CHECKSEQUENCEVERIFY OP_DROP <pubkey> OP_CHECKSIG`: a P2WSH witness script
/// spendable by `key` after `blocks` confirmations.
pub fn csv_witness_script(key: &PublicKey, blocks: u16) -> ScriptBuf {
    bitcoin::script::Builder::new()
        .push_int(i64::from(blocks))
        .push_opcode(bitcoin::opcodes::all::OP_CSV)
        .push_opcode(bitcoin::opcodes::all::OP_DROP)
        .push_key(key)
        .push_opcode(bitcoin::opcodes::all::OP_CHECKSIG)
        .into_script()
}

/// A taproot output with one script leaf (internal key given, e.g. the NUMS point).
#[derive(Debug, Clone)]
pub struct ScriptLeafOutput {
    leaf: ScriptBuf,
    info: TaprootSpendInfo,
}

impl ScriptLeafOutput {
    /// One leaf under `internal_key`.
    pub fn new(internal_key: UntweakedPublicKey, leaf: ScriptBuf) -> Option<Self> {
        let secp = Secp256k1::verification_only();
        let info = TaprootBuilder::new()
            .add_leaf(0, leaf.clone())
            .ok()?
            .finalize(&secp, internal_key)
            .ok()?;
        Some(Self { leaf, info })
    }

    /// The leaf script.
    pub fn leaf(&self) -> &ScriptBuf {
        &self.leaf
    }

    /// The P2TR scriptPubKey.
    pub fn script_pubkey(&self) -> ScriptBuf {
        ScriptBuf::new_p2tr_tweaked(self.info.output_key())
    }

    /// The script-path witness: `stack` items, then the leaf and its control block.
    pub fn witness(&self, stack: &[Vec<u8>]) -> Witness {
        let mut w = Witness::new();
        for item in stack {
            w.push(item);
        }
        w.push(self.leaf.as_bytes());
        if let Some(cb) = self
            .info
            .control_block(&(self.leaf.clone(), LeafVersion::TapScript))
        {
            w.push(cb.serialize());
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_faucet_key_is_the_same_on_every_start() {
        assert_eq!(Wallet::faucet().address(), Wallet::faucet().address());
        assert_ne!(
            Wallet::faucet().address(),
            Wallet::from_seed(b"other").address()
        );
    }
}
