//! Test fixtures: params with a committee whose keys the tests hold, and builders of real,
//! signed staking / unbonding / withdrawal transactions (valid under consensus, so the devnet
//! accepts them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    reason = "test code: a panic is a failed test; each test binary uses part of the fixture"
)]

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Txid, Witness, XOnlyPublicKey,
};
use devnet::wallet::Wallet;
use staking_core::keys::SECP;
use staking_core::op_return::V0OpReturn;
use staking_core::params::{GlobalParams, ParamsVersion};
use staking_core::script::{StakingLeaf, StakingOutput, UnbondingLeaf};
use staking_core::signing::{leaf_sighash, sign};
use staking_core::unbonding::{
    canonical_unbonding_tx, unbonding_output, unbonding_sighash, UnbondingTerms,
};
use staking_core::witness::{
    staking_timelock_witness, unbonding_timelock_witness, unbonding_witness,
};

/// One params version as the tests describe it.
#[derive(Debug, Clone, Copy)]
pub struct V {
    pub activation: u64,
    /// Amount cap in sat (0 = height cap).
    pub staking_cap: u64,
    pub cap_height: u64,
    pub unbonding_time: u16,
}

impl V {
    /// An amount-capped version.
    pub fn amount(activation: u64, cap: u64) -> V {
        V {
            activation,
            staking_cap: cap,
            cap_height: 0,
            unbonding_time: UNBONDING_TIME,
        }
    }

    /// A height-capped version.
    pub fn height(activation: u64, cap_height: u64) -> V {
        V {
            activation,
            staking_cap: 0,
            cap_height,
            unbonding_time: UNBONDING_TIME,
        }
    }

    /// The same with another unbonding time.
    pub fn unbonding(self, unbonding_time: u16) -> V {
        V {
            unbonding_time,
            ..self
        }
    }
}

pub const UNBONDING_TIME: u16 = 5;
pub const UNBONDING_FEE: u64 = 1_000;
pub const MIN_AMOUNT: u64 = 10_000;
pub const MAX_AMOUNT: u64 = 1_000_000;
pub const MIN_TIME: u16 = 5;
pub const MAX_TIME: u16 = 1_000;
/// Fee every builder here pays (the devnet's relay fee is far lower).
pub const FEE: u64 = 2_000;

/// The committee, the staker's wallet, a finality provider and the params.
#[derive(Debug, Clone)]
pub struct Fx {
    pub params: GlobalParams,
    pub covenants: Vec<Keypair>,
    pub staker: Wallet,
    pub fp: XOnlyPublicKey,
}

fn keypair(byte: u8) -> Keypair {
    Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&[byte; 32]).unwrap())
}

impl Fx {
    /// Params with the given versions (3 covenants, quorum 2) and confirmation depth `depth`.
    pub fn new(versions: &[V], depth: u16) -> Fx {
        let covenants: Vec<Keypair> = (1..=3).map(keypair).collect();
        let pks: Vec<String> = covenants
            .iter()
            .map(|k| k.public_key().to_string())
            .collect();
        let versions: Vec<serde_json::Value> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| {
                serde_json::json!({
                    "version": i,
                    "activation_height": v.activation,
                    "staking_cap": v.staking_cap,
                    "cap_height": v.cap_height,
                    "tag": "74657374",
                    "covenant_pks": pks,
                    "covenant_quorum": 2,
                    "unbonding_time": v.unbonding_time,
                    "unbonding_fee": UNBONDING_FEE,
                    "max_staking_amount": MAX_AMOUNT,
                    "min_staking_amount": MIN_AMOUNT,
                    "max_staking_time": MAX_TIME,
                    "min_staking_time": MIN_TIME,
                    "confirmation_depth": depth,
                })
            })
            .collect();
        let json = serde_json::json!({ "versions": versions }).to_string();
        let (params, _) = GlobalParams::from_json(&json).unwrap();
        Fx {
            params,
            covenants,
            staker: Wallet::from_seed(b"indexer test staker"),
            fp: keypair(9).x_only_public_key().0,
        }
    }

    /// The params as a JSON file body.
    pub fn params_json(&self) -> String {
        self.params.to_json().to_string()
    }

    pub fn version_at(&self, height: u32) -> &ParamsVersion {
        self.params.for_height(u64::from(height).into()).unwrap()
    }

    pub fn staking_output(&self, height: u32, time: u16) -> StakingOutput {
        let v = self.version_at(height);
        StakingOutput::new(v.staking_keys(self.staker.x_only(), self.fp).unwrap(), time).unwrap()
    }

    fn terms(&self, height: u32) -> UnbondingTerms {
        let v = self.version_at(height);
        UnbondingTerms {
            unbonding_time: v.unbonding_time,
            unbonding_fee: v.unbonding_fee,
        }
    }

    /// A staking tx mined at `height`, spending `funding` (a P2TR output of the staker's
    /// wallet): `[staking, OP_RETURN, change]`, signed.
    pub fn staking_tx(
        &self,
        height: u32,
        funding: &(OutPoint, TxOut),
        value: u64,
        time: u16,
    ) -> Transaction {
        let v = self.version_at(height);
        let staking = self.staking_output(height, time);
        let op_return = V0OpReturn {
            tag: v.tag,
            staker: self.staker.x_only(),
            finality_provider: self.fp,
            staking_time: time,
        };
        let change = funding.1.value.to_sat() - value - FEE;
        let outputs = vec![
            TxOut {
                value: Amount::from_sat(value),
                script_pubkey: staking.script_pubkey().clone(),
            },
            op_return.tx_out(),
            TxOut {
                value: Amount::from_sat(change),
                script_pubkey: self.staker.script_pubkey().clone(),
            },
        ];
        self.staker
            .spend(std::slice::from_ref(funding), outputs, Sequence::MAX)
    }

    /// The change output of a staking tx built by [`Fx::staking_tx`], to fund the next one.
    pub fn change_of(tx: &Transaction) -> (OutPoint, TxOut) {
        (OutPoint::new(tx.compute_txid(), 2), tx.output[2].clone())
    }

    /// The canonical unbonding tx of `staking_tx` (mined at `staking_height`), signed by the
    /// staker and a quorum of the committee. `fee` overrides the params' unbonding fee (an
    /// invalid unbonding when different).
    pub fn unbonding_tx(
        &self,
        staking_tx: &Transaction,
        staking_height: u32,
        time: u16,
        fee: Option<u64>,
    ) -> Transaction {
        let staking = self.staking_output(staking_height, time);
        let value = staking_tx.output[0].value;
        let outpoint = OutPoint::new(staking_tx.compute_txid(), 0);
        let mut tx =
            canonical_unbonding_tx(&staking, outpoint, value, &self.terms(staking_height)).unwrap();
        if let Some(fee) = fee {
            tx.output[0].value = value - Amount::from_sat(fee);
        }
        let sighash = unbonding_sighash(&tx, &staking, value).unwrap();
        let staker_sig = sign(&sighash, self.staker.keypair());
        let cov: Vec<_> = self
            .covenants
            .iter()
            .take(2)
            .map(|k| (k.x_only_public_key().0, sign(&sighash, k)))
            .collect();
        tx.input[0].witness = unbonding_witness(&staking, &staker_sig, &cov).unwrap();
        tx
    }

    /// Spends the staking outputs of `stakings` (tx, height, time) through their timelock leaf in
    /// one tx, paying the staker.
    pub fn withdraw_staking_tx(&self, stakings: &[(&Transaction, u32, u16)]) -> Transaction {
        let total: u64 = stakings
            .iter()
            .map(|(tx, _, _)| tx.output[0].value.to_sat())
            .sum();
        self.timelock_spend(
            stakings,
            vec![TxOut {
                value: Amount::from_sat(total - FEE),
                script_pubkey: self.staker.script_pubkey().clone(),
            }],
        )
    }

    /// Spends staking outputs through their timelock leaf to the given outputs.
    pub fn timelock_spend(
        &self,
        stakings: &[(&Transaction, u32, u16)],
        outputs: Vec<TxOut>,
    ) -> Transaction {
        let prevouts: Vec<TxOut> = stakings
            .iter()
            .map(|(tx, _, _)| tx.output[0].clone())
            .collect();
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: stakings
                .iter()
                .map(|(s, _, time)| TxIn {
                    previous_output: OutPoint::new(s.compute_txid(), 0),
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::from_height(*time),
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs,
        };
        for (i, (_, height, time)) in stakings.iter().enumerate() {
            let staking = self.staking_output(*height, *time);
            let sighash =
                leaf_sighash(&tx, i, &prevouts, staking.leaf_hash(StakingLeaf::Timelock)).unwrap();
            let sig = sign(&sighash, self.staker.keypair());
            tx.input[i].witness = staking_timelock_witness(&staking, &sig);
        }
        tx
    }

    /// Spends unbonding txs (tx, staking height, staking time) through the unbonding output's
    /// timelock leaf, plus optionally extra staking outputs, in one tx.
    pub fn withdraw_unbonding_tx(&self, unbondings: &[(&Transaction, u32, u16)]) -> Transaction {
        let prevouts: Vec<TxOut> = unbondings
            .iter()
            .map(|(tx, _, _)| tx.output[0].clone())
            .collect();
        let total: u64 = prevouts.iter().map(|o| o.value.to_sat()).sum();
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: unbondings
                .iter()
                .map(|(u, height, _)| TxIn {
                    previous_output: OutPoint::new(u.compute_txid(), 0),
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::from_height(self.version_at(*height).unbonding_time),
                    witness: Witness::new(),
                })
                .collect(),
            output: vec![TxOut {
                value: Amount::from_sat(total - FEE),
                script_pubkey: self.staker.script_pubkey().clone(),
            }],
        };
        for (i, (_, height, time)) in unbondings.iter().enumerate() {
            let staking = self.staking_output(*height, *time);
            let out = unbonding_output(staking.keys(), &self.terms(*height)).unwrap();
            let sighash =
                leaf_sighash(&tx, i, &prevouts, out.leaf_hash(UnbondingLeaf::Timelock)).unwrap();
            let sig = sign(&sighash, self.staker.keypair());
            tx.input[i].witness = unbonding_timelock_witness(&out, &sig);
        }
        tx
    }
}

/// A fake funding output of the staker (for pure processor tests, never checked there).
pub fn fake_funding(fx: &Fx, n: u8, sat: u64) -> (OutPoint, TxOut) {
    (
        OutPoint::new(Txid::from_byte_array([n; 32]), 0),
        TxOut {
            value: Amount::from_sat(sat),
            script_pubkey: fx.staker.script_pubkey().clone(),
        },
    )
}

/// A block (not mined: the processor does not check proof of work) with a dummy coinbase.
pub fn block(prev: BlockHash, time: u32, txs: Vec<Transaction>) -> Block {
    let coinbase = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(time.to_le_bytes().to_vec()),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(50),
            script_pubkey: ScriptBuf::new(),
        }],
    };
    let mut txdata = vec![coinbase];
    txdata.extend(txs);
    Block {
        header: bitcoin::block::Header {
            version: bitcoin::block::Version::TWO,
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        },
        txdata,
    }
}
