//! The staker's signature over the unbonding tx when someone else's software made it: a PSBT
//! (BIP174/BIP371) handed to a hardware wallet, Bitcoin Core or a custodian's signer, and what
//! comes back — a signed PSBT or a bare 64-byte signature.
//!
//! What comes back is untrusted: it may be a PSBT for another delegation, signed by another
//! key, or altered on the way (an output, the witness UTXO, the signature). Each of these is
//! refused with its own reason before anything is sent to the API, so the user learns *what* is
//! wrong, not only that the API said no.

use std::fmt;

use bitcoin::bip32::KeySource;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{schnorr, XOnlyPublicKey};
use bitcoin::taproot::TapLeafHash;
use bitcoin::{Amount, OutPoint, TapSighash, TapSighashType, Transaction, TxOut, Txid};

use crate::psbt::{unbonding_psbt, LeafSpend, PsbtError};
use crate::script::{StakingLeaf, StakingOutput};
use crate::signing::{parse_signature, verify_parsed, SighashError, SignatureError};
use crate::unbonding::{canonical_unbonding_tx, unbonding_sighash, UnbondingError, UnbondingTerms};

/// Why the unbonding tx of a staking output cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Unbonding(#[from] UnbondingError),
    #[error(transparent)]
    Sighash(#[from] SighashError),
}

/// The one unbonding tx of a staking output, with what a signer needs (the PSBT) and what a
/// returned signature is checked against (the staker key and the unbonding-leaf sighash).
#[derive(Debug, Clone)]
pub struct UnbondingToSign {
    staking: StakingOutput,
    staking_value: Amount,
    tx: Transaction,
    spend: LeafSpend,
    sighash: TapSighash,
}

impl UnbondingToSign {
    /// The canonical unbonding tx (`docs/formats.md#canonical-unbonding-transaction`) of
    /// `staking` at `staking_outpoint`, worth `staking_value`, under `terms`.
    pub fn new(
        staking: StakingOutput,
        staking_outpoint: OutPoint,
        staking_value: Amount,
        terms: &UnbondingTerms,
    ) -> Result<Self, PrepareError> {
        let tx = canonical_unbonding_tx(&staking, staking_outpoint, staking_value, terms)?;
        let sighash = unbonding_sighash(&tx, &staking, staking_value)?;
        let spend = LeafSpend::staking(&staking, staking_value, StakingLeaf::Unbonding);
        Ok(Self {
            staking,
            staking_value,
            tx,
            spend,
            sighash,
        })
    }

    /// The unsigned canonical unbonding tx.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// The sighash the staker signs (script path, unbonding leaf, `SIGHASH_DEFAULT`).
    pub fn sighash(&self) -> TapSighash {
        self.sighash
    }

    /// The delegation's staker key: the only key whose signature is accepted.
    pub fn staker(&self) -> XOnlyPublicKey {
        self.staking.keys().staker
    }

    /// The staking output's unbonding leaf, as spent.
    pub fn spend(&self) -> &LeafSpend {
        &self.spend
    }

    /// The unbonding leaf's hash.
    pub fn leaf_hash(&self) -> TapLeafHash {
        self.spend.leaf_hash()
    }

    /// The PSBT for an external signer ([`unbonding_psbt`]).
    pub fn psbt(&self, staker_origin: Option<KeySource>) -> Result<Psbt, PsbtError> {
        unbonding_psbt(
            self.tx.clone(),
            &self.staking,
            self.staking_value,
            staker_origin,
        )
    }

    /// Checks a bare signature: 64 bytes, by the staker key, over the unbonding sighash.
    pub fn check_signature(
        &self,
        bytes: &[u8],
    ) -> Result<schnorr::Signature, SignedUnbondingError> {
        let signature = parse_signature(bytes).map_err(|e| match e {
            SignatureError::Length(n) => SignedUnbondingError::Length(n),
            other => SignedUnbondingError::Malformed(other.to_string()),
        })?;
        self.verify(&signature)?;
        Ok(signature)
    }

    fn verify(&self, signature: &schnorr::Signature) -> Result<(), SignedUnbondingError> {
        verify_parsed(&self.sighash, signature, &self.staker()).map_err(|_| {
            SignedUnbondingError::DoesNotVerify {
                staker: self.staker(),
                sighash: self.sighash,
            }
        })
    }

    /// The staker's signature from a signed PSBT, after checking that the PSBT is this
    /// unbonding (same tx, same witness UTXO, same leaf) and that the signature is the staker
    /// key's over the unbonding sighash. Other signatures in the PSBT are ignored.
    pub fn signature_from_psbt(
        &self,
        psbt: &Psbt,
    ) -> Result<schnorr::Signature, SignedUnbondingError> {
        self.check_tx(&psbt.unsigned_tx)?;
        let input = psbt
            .inputs
            .first()
            .ok_or(SignedUnbondingError::NoInputMap)?;
        if let Some(utxo) = &input.witness_utxo {
            if *utxo != self.spend.prevout {
                return Err(SignedUnbondingError::WitnessUtxoChanged {
                    expected: self.spend.prevout.clone(),
                    got: utxo.clone(),
                });
            }
        }
        // A signer may drop the leaf map once it has signed; if it is there, it must be ours.
        let our_leaf = input
            .tap_scripts
            .get(&self.spend.control_block)
            .map(|(script, _)| script);
        if !input.tap_scripts.is_empty() && our_leaf != Some(&self.spend.leaf_script) {
            return Err(SignedUnbondingError::LeafChanged);
        }
        let staker = self.staker();
        let leaf = self.leaf_hash();
        let Some(signature) = input.tap_script_sigs.get(&(staker, leaf)) else {
            return Err(self.why_no_signature(psbt));
        };
        if signature.sighash_type != TapSighashType::Default {
            return Err(SignedUnbondingError::SighashType(signature.sighash_type));
        }
        self.verify(&signature.signature)?;
        Ok(signature.signature)
    }

    /// Which of "another leaf", "another key" or "not signed" applies.
    fn why_no_signature(&self, psbt: &Psbt) -> SignedUnbondingError {
        let staker = self.staker();
        let leaf = self.leaf_hash();
        let sigs = psbt
            .inputs
            .first()
            .map(|i| i.tap_script_sigs.keys().copied().collect::<Vec<_>>())
            .unwrap_or_default();
        if let Some((_, other)) = sigs.iter().find(|(key, _)| *key == staker) {
            return SignedUnbondingError::OtherLeaf {
                expected: leaf,
                got: *other,
            };
        }
        let signers: Vec<XOnlyPublicKey> = sigs.iter().map(|(key, _)| *key).collect();
        if signers.is_empty() {
            SignedUnbondingError::NotSigned { staker, leaf }
        } else {
            SignedUnbondingError::OtherKey {
                staker,
                signers: KeyList(signers),
            }
        }
    }

    /// The PSBT's unsigned tx must be exactly the canonical unbonding tx.
    fn check_tx(&self, got: &Transaction) -> Result<(), SignedUnbondingError> {
        let expected = &self.tx;
        let expected_outpoint = expected.input[0].previous_output;
        if let Some(first) = got.input.first() {
            if first.previous_output != expected_outpoint {
                return Err(SignedUnbondingError::OtherTx {
                    expected: expected_outpoint,
                    got: first.previous_output,
                });
            }
        }
        match tx_difference(expected, got) {
            None => Ok(()),
            Some(difference) => Err(SignedUnbondingError::TxChanged {
                expected: expected.compute_txid(),
                got: got.compute_txid(),
                difference,
            }),
        }
    }
}

/// x-only keys, shown comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyList(pub Vec<XOnlyPublicKey>);

impl fmt::Display for KeyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, key) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{key}")?;
        }
        Ok(())
    }
}

/// How a PSBT's unsigned tx differs from the canonical unbonding tx (first difference found).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxDifference {
    #[error("version {got} instead of {expected}")]
    Version { expected: i32, got: i32 },
    #[error("lock time {got} instead of {expected}")]
    LockTime { expected: u32, got: u32 },
    #[error("{got} inputs instead of 1")]
    InputCount { got: usize },
    #[error("input sequence {got:#010x} instead of {expected:#010x}")]
    Sequence { expected: u32, got: u32 },
    #[error("{got} outputs instead of 1")]
    OutputCount { got: usize },
    #[error("output 0 is {got} sat instead of {expected} sat", got = got.to_sat(), expected = expected.to_sat())]
    OutputValue { expected: Amount, got: Amount },
    #[error("output 0 pays to {got} instead of the unbonding output {expected}", got = got.to_hex_string(), expected = expected.to_hex_string())]
    OutputScript {
        expected: bitcoin::ScriptBuf,
        got: bitcoin::ScriptBuf,
    },
}

/// The first field in which `got` differs from `expected` (a 1-in/1-out tx), if any.
fn tx_difference(expected: &Transaction, got: &Transaction) -> Option<TxDifference> {
    if got.version != expected.version {
        return Some(TxDifference::Version {
            expected: expected.version.0,
            got: got.version.0,
        });
    }
    if got.lock_time != expected.lock_time {
        return Some(TxDifference::LockTime {
            expected: expected.lock_time.to_consensus_u32(),
            got: got.lock_time.to_consensus_u32(),
        });
    }
    let ([want_in], [want_out]) = (expected.input.as_slice(), expected.output.as_slice()) else {
        // The canonical tx is always 1-in/1-out; compare whole txs if that ever changes.
        return (expected != got).then_some(TxDifference::InputCount {
            got: got.input.len(),
        });
    };
    let [got_in] = got.input.as_slice() else {
        return Some(TxDifference::InputCount {
            got: got.input.len(),
        });
    };
    if got_in.sequence != want_in.sequence {
        return Some(TxDifference::Sequence {
            expected: want_in.sequence.to_consensus_u32(),
            got: got_in.sequence.to_consensus_u32(),
        });
    }
    let [got_out] = got.output.as_slice() else {
        return Some(TxDifference::OutputCount {
            got: got.output.len(),
        });
    };
    if got_out.value != want_out.value {
        return Some(TxDifference::OutputValue {
            expected: want_out.value,
            got: got_out.value,
        });
    }
    if got_out.script_pubkey != want_out.script_pubkey {
        return Some(TxDifference::OutputScript {
            expected: want_out.script_pubkey.clone(),
            got: got_out.script_pubkey.clone(),
        });
    }
    None
}

/// Why a signed unbonding PSBT or signature is refused. Each message starts with what happened
/// (another tx, another key, tampered, …) so the user knows what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedUnbondingError {
    /// The PSBT spends another outpoint: it was made for another delegation.
    #[error("signed for another tx: the PSBT's tx spends {got}, but this delegation's staking output is {expected}")]
    OtherTx { expected: OutPoint, got: OutPoint },
    /// Same outpoint, but the tx was changed.
    #[error(
        "tampered: the PSBT's tx {got} is not the canonical unbonding tx {expected} ({difference})"
    )]
    TxChanged {
        expected: Txid,
        got: Txid,
        difference: TxDifference,
    },
    /// The PSBT has no input map (it cannot come from a PSBT parser).
    #[error("the PSBT has no input 0")]
    NoInputMap,
    /// The witness UTXO (what the signer commits to as the spent amount and script) was changed.
    #[error(
        "tampered: the PSBT's witness UTXO is {} sat to {}, but the staking output is {} sat to {}",
        got.value.to_sat(), got.script_pubkey.to_hex_string(),
        expected.value.to_sat(), expected.script_pubkey.to_hex_string()
    )]
    WitnessUtxoChanged { expected: TxOut, got: TxOut },
    /// The PSBT's leaf script or control block is not the staking output's unbonding leaf.
    #[error("tampered: the PSBT's leaf script and control block are not the staking output's unbonding leaf")]
    LeafChanged,
    /// No signature at all.
    #[error("not signed: the PSBT has no signature by the staker key {staker} for the unbonding leaf {leaf}")]
    NotSigned {
        staker: XOnlyPublicKey,
        leaf: TapLeafHash,
    },
    /// Signatures, but none by the staker key.
    #[error("signed with another key: the PSBT's signature is by {signers}, not by this delegation's staker key {staker}")]
    OtherKey {
        staker: XOnlyPublicKey,
        signers: KeyList,
    },
    /// The staker key signed another leaf.
    #[error("signed for another leaf: the staker key's signature is for leaf {got}, not the unbonding leaf {expected}")]
    OtherLeaf {
        expected: TapLeafHash,
        got: TapLeafHash,
    },
    /// A 65-byte signature with an explicit sighash type other than the default.
    #[error(
        "signed with sighash type {0}; the unbonding needs SIGHASH_DEFAULT (a 64-byte signature)"
    )]
    SighashType(TapSighashType),
    /// Not 64 bytes.
    #[error("truncated or padded: the signature is {0} bytes; a BIP340 signature with SIGHASH_DEFAULT is exactly 64")]
    Length(usize),
    /// 64 bytes, but not a BIP340 encoding.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Well formed, but not the staker key's signature over this sighash.
    #[error("does not verify: the signature is not by the staker key {staker} over the unbonding sighash {sighash} (it was made by another key, for other data such as a tampered PSBT, or damaged)")]
    DoesNotVerify {
        staker: XOnlyPublicKey,
        sighash: TapSighash,
    },
}
