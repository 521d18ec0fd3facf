//! The load generator: real, signed staking and unbonding transactions sent to the devnet over
//! RPC, a block mined every tick, and the reorg storm. Params use a committee whose keys the
//! generator holds (the covenant signers run with the same keys), so it can also unbond on
//! chain without the pipeline; unbonding requests through the API are in `requests.rs`.
//!
//! Some stakes are short (5–60 blocks) so that the expiry checker expires them during the run.
//! A stake is only unbonded (on chain or through the API) if its staking timelock cannot expire
//! before the end of the run (`Load::horizon`): an expiry and an unbonding of the same
//! delegation reach the API in an order that depends on timing, so the settled state would not
//! be a function of the chain alone.

use std::collections::HashMap;

use anyhow::Context;
use bitcoin::secp256k1::{schnorr, Keypair, SecretKey};
use bitcoin::{Amount, OutPoint, Sequence, TapSighash, Transaction, TxOut, Txid, XOnlyPublicKey};
use bitcoin_rpc::RpcClient;
use devnet::wallet::Wallet;
use rand::rngs::StdRng;
use rand::Rng;
use staking_core::keys::SECP;
use staking_core::op_return::V0OpReturn;
use staking_core::params::{BlockHeight, GlobalParams, ParamsVersion};
use staking_core::script::StakingOutput;
use staking_core::signing::sign;
use staking_core::unbonding::{canonical_unbonding_tx, unbonding_sighash, UnbondingTerms};
use staking_core::witness::unbonding_witness;

/// First height at which staking is allowed (funding coinbases mature before it).
pub const ACTIVATION: u64 = 120;
/// Confirmation depth: larger than the deepest reorg of the storm (12), so every reorg stays
/// inside the indexer's unconfirmed window.
pub const DEPTH: u16 = 14;
/// Amount cap: the load passes it, so overflow delegations are part of what is compared.
pub const CAP_SAT: u64 = 40_000_000;
/// Committee size and quorum: one member dead and one slow still leave a quorum.
pub const COMMITTEE: u8 = 5;
pub const QUORUM: u32 = 3;
/// Blocks an unbonding output stays locked: longer than the confirmation depth, so the
/// unbondings of the last blocks are still `unbonding` when the run settles.
pub const UNBONDING_TIME: u32 = 30;
/// Deepest reorg of the storm.
pub const MAX_REORG: u32 = 12;
const FEE: u64 = 2_000;
/// Independent funding chains (one matured coinbase each).
pub const LANES: usize = 16;

fn keypair(byte: u8) -> Keypair {
    #[allow(
        clippy::expect_used,
        reason = "a constant non-zero byte array is a valid key"
    )]
    Keypair::from_secret_key(
        &SECP,
        &SecretKey::from_slice(&[byte; 32]).expect("valid secret key"),
    )
}

/// Keys, params and the wallets of the load.
#[derive(Debug)]
pub struct Fixture {
    pub params: GlobalParams,
    pub covenants: Vec<Keypair>,
    pub stakers: Vec<Wallet>,
    pub fps: Vec<XOnlyPublicKey>,
    pub miner: Wallet,
}

/// The canonical unbonding tx of a stake with its staker's signature (no witness yet).
pub struct StakerSigned {
    pub tx: Transaction,
    pub staking: StakingOutput,
    pub sighash: TapSighash,
    pub staker_sig: schnorr::Signature,
}

impl Fixture {
    /// The one unbonding tx the params allow for `stake` (output 0 of `txid`), signed by its
    /// staker: what both the on-chain unbondings and the `/v1/unbonding` requests start from.
    pub fn staker_signed_unbonding(
        &self,
        txid: Txid,
        stake: &Stake,
    ) -> anyhow::Result<StakerSigned> {
        let v = self.version()?;
        let wallet = &self.stakers[stake.staker];
        let staking = StakingOutput::new(
            v.staking_keys(wallet.x_only(), self.fps[stake.fp])?,
            stake.time,
        )?;
        let value = stake.tx.output[0].value;
        let terms = UnbondingTerms {
            unbonding_time: v.unbonding_time,
            unbonding_fee: v.unbonding_fee,
        };
        let tx = canonical_unbonding_tx(&staking, OutPoint::new(txid, 0), value, &terms)?;
        let sighash = unbonding_sighash(&tx, &staking, value)?;
        let staker_sig = sign(&sighash, wallet.keypair());
        Ok(StakerSigned {
            tx,
            staking,
            sighash,
            staker_sig,
        })
    }

    pub fn new() -> anyhow::Result<Self> {
        let covenants: Vec<Keypair> = (1..=COMMITTEE).map(keypair).collect();
        let pks: Vec<String> = covenants
            .iter()
            .map(|k| k.public_key().to_string())
            .collect();
        let json = serde_json::json!({ "versions": [{
            "version": 0, "activation_height": ACTIVATION, "staking_cap": CAP_SAT,
            "cap_height": 0, "tag": "63686173", "covenant_pks": pks, "covenant_quorum": QUORUM,
            "unbonding_time": UNBONDING_TIME, "unbonding_fee": 1_000, "max_staking_amount": 1_000_000,
            "min_staking_amount": 10_000, "max_staking_time": 1_000, "min_staking_time": 5,
            "confirmation_depth": DEPTH,
        }]});
        let (params, _) =
            GlobalParams::from_json(&json.to_string()).context("the chaos params must be valid")?;
        Ok(Fixture {
            params,
            covenants,
            stakers: (0..3u8)
                .map(|i| Wallet::from_seed(&[b'c', b's', i]))
                .collect(),
            fps: (20..24u8)
                .map(|b| keypair(b).x_only_public_key().0)
                .collect(),
            miner: Wallet::from_seed(b"chaos miner"),
        })
    }

    pub fn version(&self) -> anyhow::Result<&ParamsVersion> {
        self.params
            .for_height(BlockHeight(ACTIVATION))
            .context("no params version at the activation height")
    }

    /// The finality providers file the API reads.
    pub fn fp_file(&self) -> String {
        let fps: Vec<_> = self
            .fps
            .iter()
            .enumerate()
            .map(|(i, pk)| {
                serde_json::json!({"description": {"moniker": format!("fp{i}")},
                    "commission": "0.05", "btc_pk": pk.to_string()})
            })
            .collect();
        serde_json::json!({ "finality_providers": fps }).to_string()
    }
}

/// One staking the generator made.
#[derive(Debug, Clone)]
pub struct Stake {
    pub tx: Transaction,
    pub staker: usize,
    pub fp: usize,
    pub time: u16,
    /// The tip when it was sent (it is mined in the next block, or lower after a reorg).
    pub sent_tip: u32,
    /// A short stake, left to expire.
    pub short: bool,
    /// Unbonded on chain by the load itself.
    pub unbonding: Option<Txid>,
    /// Chosen for an unbonding request through the API.
    pub requested: bool,
}

impl Stake {
    /// The lowest height its staking timelock can expire at (a reorg may mine it lower).
    pub fn earliest_expiry(&self) -> u32 {
        (self.sent_tip + 1 + u32::from(self.time)).saturating_sub(MAX_REORG)
    }
}

/// What the generator did, and its funding chains.
#[derive(Debug, Default)]
pub struct Load {
    lanes: Vec<Option<(OutPoint, TxOut, usize)>>,
    pub stakes: HashMap<Txid, Stake>,
    order: Vec<Txid>,
    pub sent_stakes: u32,
    pub sent_unbondings: u32,
    pub rejected: u32,
    pub reorgs: Vec<u32>,
    /// The tip now (updated each tick).
    pub tip: u32,
    /// No run goes past this height: a stake expiring above it may be unbonded.
    pub horizon: u32,
    pub sent_short: u32,
}

impl Load {
    /// Mines one funding coinbase per lane to the stakers, then enough blocks to mature them and
    /// reach the activation height. The chain must be fresh.
    pub async fn setup(fx: &Fixture, rpc: &RpcClient) -> anyhow::Result<Load> {
        let mut load = Load::default();
        for lane in 0..LANES {
            let staker = lane % fx.stakers.len();
            let hashes = rpc
                .generate_to_address(1, &fx.stakers[staker].address())
                .await?;
            let hash = hashes.first().context("generatetoaddress mined nothing")?;
            let block = rpc.get_block(hash).await?;
            let cb = block.txdata.first().context("block without coinbase")?;
            load.lanes.push(Some((
                OutPoint::new(cb.compute_txid(), 0),
                cb.output[0].clone(),
                staker,
            )));
        }
        let height = rpc.get_block_count().await?;
        let to_activation = u32::try_from(ACTIVATION)?.saturating_sub(height + 1);
        rpc.generate_to_address(to_activation.max(101), &fx.miner.address())
            .await?;
        load.tip = rpc.get_block_count().await?;
        Ok(load)
    }

    /// One tick of load: a few stakings, sometimes an unbonding of an earlier one.
    pub async fn tick(
        &mut self,
        fx: &Fixture,
        rpc: &RpcClient,
        rng: &mut StdRng,
    ) -> anyhow::Result<()> {
        self.tip = rpc.get_block_count().await?;
        for _ in 0..rng.gen_range(1..=3) {
            self.stake(fx, rpc, rng).await?;
        }
        if rng.gen_bool(0.25) {
            self.unbond(fx, rpc, rng).await?;
        }
        Ok(())
    }

    async fn stake(
        &mut self,
        fx: &Fixture,
        rpc: &RpcClient,
        rng: &mut StdRng,
    ) -> anyhow::Result<()> {
        let live: Vec<usize> = (0..self.lanes.len())
            .filter(|i| self.lanes[*i].is_some())
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let lane = live[rng.gen_range(0..live.len())];
        let Some((outpoint, prevout, staker)) = self.lanes[lane].clone() else {
            return Ok(());
        };
        let v = fx.version()?;
        let fp = rng.gen_range(0..fx.fps.len());
        let short = rng.gen_bool(0.3);
        let time: u16 = if short {
            rng.gen_range(5..=60)
        } else {
            rng.gen_range(200..=1_000)
        };
        let value: u64 = rng.gen_range(10_000..=1_000_000);
        let wallet = &fx.stakers[staker];
        let staking = StakingOutput::new(v.staking_keys(wallet.x_only(), fx.fps[fp])?, time)?;
        let op_return = V0OpReturn {
            tag: v.tag,
            staker: wallet.x_only(),
            finality_provider: fx.fps[fp],
            staking_time: time,
        };
        let change = prevout.value.to_sat() - value - FEE;
        let tx = wallet.spend(
            &[(outpoint, prevout)],
            vec![
                TxOut {
                    value: Amount::from_sat(value),
                    script_pubkey: staking.script_pubkey().clone(),
                },
                op_return.tx_out(),
                TxOut {
                    value: Amount::from_sat(change),
                    script_pubkey: wallet.script_pubkey().clone(),
                },
            ],
            Sequence::MAX,
        );
        match rpc.send_raw_transaction(&tx).await {
            Ok(txid) => {
                self.sent_stakes += 1;
                self.sent_short += u32::from(short);
                self.lanes[lane] = Some((OutPoint::new(txid, 2), tx.output[2].clone(), staker));
                self.order.push(txid);
                self.stakes.insert(
                    txid,
                    Stake {
                        tx,
                        staker,
                        fp,
                        time,
                        sent_tip: self.tip,
                        short,
                        unbonding: None,
                        requested: false,
                    },
                );
            }
            Err(e) => {
                // A lane whose tip a reorg dropped is retired; the others carry the load.
                eprintln!("chaos: staking tx rejected ({e}); lane {lane} retired");
                self.rejected += 1;
                self.lanes[lane] = None;
            }
        }
        Ok(())
    }

    /// Stakes that may still be unbonded: long, not unbonded or requested yet, expiring after
    /// the horizon, and sent at least `min_age` blocks ago.
    pub fn unbondable(&self, min_age: u32) -> Vec<Txid> {
        self.order
            .iter()
            .filter(|t| {
                self.stakes.get(*t).is_some_and(|s| {
                    !s.short
                        && s.unbonding.is_none()
                        && !s.requested
                        && s.earliest_expiry() > self.horizon
                        && s.sent_tip + min_age <= self.tip
                })
            })
            .copied()
            .collect()
    }

    async fn unbond(
        &mut self,
        fx: &Fixture,
        rpc: &RpcClient,
        rng: &mut StdRng,
    ) -> anyhow::Result<()> {
        let candidates = self.unbondable(0);
        if candidates.is_empty() {
            return Ok(());
        }
        let txid = candidates[rng.gen_range(0..candidates.len())];
        let Some(stake) = self.stakes.get(&txid).cloned() else {
            return Ok(());
        };
        let StakerSigned {
            mut tx,
            staking,
            sighash,
            staker_sig,
        } = fx.staker_signed_unbonding(txid, &stake)?;
        let cov: Vec<_> = fx
            .covenants
            .iter()
            .take(QUORUM as usize)
            .map(|k| (k.x_only_public_key().0, sign(&sighash, k)))
            .collect();
        tx.input[0].witness = unbonding_witness(&staking, &staker_sig, &cov)?;
        match rpc.send_raw_transaction(&tx).await {
            Ok(unbonding) => {
                self.sent_unbondings += 1;
                if let Some(s) = self.stakes.get_mut(&txid) {
                    s.unbonding = Some(unbonding);
                }
            }
            Err(e) => {
                eprintln!("chaos: unbonding tx of {txid} rejected ({e})");
                self.rejected += 1;
            }
        }
        Ok(())
    }

    /// A reorg of `depth` blocks: the block `depth - 1` below the tip is invalidated and a
    /// longer branch (`depth + 1` blocks, paying a fresh address) mined on its parent. The
    /// disconnected transactions return to the mempool and are mined again on the new branch.
    pub async fn reorg(&mut self, rpc: &RpcClient, depth: u32) -> anyhow::Result<()> {
        let tip = rpc.get_block_count().await?;
        let hash = rpc.get_block_hash(tip + 1 - depth).await?;
        rpc.invalidate_block(&hash)
            .await
            .with_context(|| format!("invalidateblock at height {}", tip + 1 - depth))?;
        // A payout of its own per reorg: a fork block must not repeat the coinbase of a block
        // at the same height on an earlier branch (BIP30 refuses duplicate coinbase txids).
        let payout = Wallet::from_seed(format!("chaos fork {}", self.reorgs.len()).as_bytes());
        rpc.generate_to_address(depth + 1, &payout.address())
            .await?;
        self.reorgs.push(depth);
        Ok(())
    }

    /// Mines `n` blocks to the miner.
    pub async fn mine(fx: &Fixture, rpc: &RpcClient, n: u32) -> anyhow::Result<()> {
        rpc.generate_to_address(n, &fx.miner.address()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use bitcoin::hashes::Hash;

    use super::*;

    fn stake(sent_tip: u32, time: u16, short: bool) -> Stake {
        Stake {
            tx: Transaction {
                version: bitcoin::transaction::Version::TWO,
                lock_time: bitcoin::absolute::LockTime::ZERO,
                input: vec![],
                output: vec![],
            },
            staker: 0,
            fp: 0,
            time,
            sent_tip,
            short,
            unbonding: None,
            requested: false,
        }
    }

    #[test]
    fn only_long_stakes_expiring_after_the_horizon_and_old_enough_may_be_unbonded() {
        let mut load = Load {
            tip: 300,
            horizon: 400,
            ..Load::default()
        };
        let cases = [
            (1u8, stake(200, 500, false), true),
            // Expires at 200 + 1 + 210 = 411 at the earliest with no reorg, 399 after one.
            (2, stake(200, 210, false), false),
            (3, stake(200, 40, true), false),
            (4, stake(295, 800, false), false),
        ];
        for (byte, s, _) in &cases {
            let txid = Txid::from_byte_array([*byte; 32]);
            load.order.push(txid);
            load.stakes.insert(txid, s.clone());
        }
        let ok = load.unbondable(10);
        for (byte, _, expected) in &cases {
            let txid = Txid::from_byte_array([*byte; 32]);
            assert_eq!(ok.contains(&txid), *expected, "stake {byte}");
        }
        // Once requested or unbonded, a stake is no longer a candidate.
        let first = Txid::from_byte_array([1; 32]);
        load.stakes.get_mut(&first).unwrap().requested = true;
        assert!(load.unbondable(10).is_empty());
    }
}
