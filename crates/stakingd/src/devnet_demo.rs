//! `stakingd devnet --demo`: two stakers walk through the whole lifecycle against the running
//! devnet, the way a staker's tools do it — transactions built with `staking_core::builder` and
//! the canonical unbonding rules, signed with the staker's key, broadcast over the chain's RPC;
//! the unbonding requested over the API's HTTP endpoint; every state checked through the API.
//!
//! * Alice: stake → active → unbonding requested → unbonding (the pipeline collects the
//!   committee's signatures and broadcasts) → unbonded (unbonding time over) → withdrawn.
//! * Bob: stake for the shortest staking time → active → unbonded (expiry) → withdrawn.

use std::time::Duration;

use anyhow::{bail, Context};
use bitcoin::absolute::LockTime;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hex::DisplayHex;
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Address, Amount, OutPoint, Transaction, TxOut, Txid};
use bitcoin_rpc::RpcClient;
use serde_json::{json, Value};
use staking_core::builder::{staking_tx, withdrawal_tx, StakingTxRequest, Utxo};
use staking_core::op_return::V0OpReturn;
use staking_core::params::{BlockHeight, GlobalParams, ParamsVersion};
use staking_core::psbt::LeafSpend;
use staking_core::script::{StakingLeaf, StakingOutput, UnbondingLeaf, UnbondingOutput};
use staking_core::signing::{leaf_sighash, sign, verify_parsed};
use staking_core::staking_tx::{classify, StakingTxClass};
use staking_core::unbonding::{canonical_unbonding_tx, unbonding_sighash, UnbondingTerms};
use staking_core::witness::{staking_timelock_witness, unbonding_timelock_witness};
use tokio_util::sync::CancellationToken;

use crate::devnet_committee::MIN_STAKING_TIME;
use crate::devnet_demo_staker::Staker;
use crate::devnet_stack::Running;

/// Fee rate of the demo's own transactions, in sat/vB.
const FEE_RATE: u64 = 2;
/// The longest any single step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(180);
/// While waiting for a state, a block is mined this often so that time moves quickly.
const MINE_EVERY: Duration = Duration::from_secs(1);

struct Demo<'a> {
    rpc: RpcClient,
    http: reqwest::Client,
    api_url: String,
    params: &'a GlobalParams,
    fp: XOnlyPublicKey,
    miner: Address,
    step: u32,
    shutdown: CancellationToken,
}

impl Demo<'_> {
    fn say(&mut self, text: impl AsRef<str>) {
        self.step += 1;
        println!("[demo {:>2}] {}", self.step, text.as_ref());
    }

    async fn tip(&self) -> anyhow::Result<u32> {
        self.rpc.get_block_count().await.context("getblockcount")
    }

    async fn mine(&self, blocks: u32) -> anyhow::Result<()> {
        self.rpc
            .generate_to_address(blocks, &self.miner)
            .await
            .context("generatetoaddress")?;
        Ok(())
    }

    /// `GET /v1/delegation`: the delegation's JSON, `None` while the API does not know it.
    async fn delegation(&self, txid: &Txid) -> anyhow::Result<Option<Value>> {
        let response = self
            .http
            .get(format!("{}/v1/delegation", self.api_url))
            .query(&[("staking_tx_hash_hex", txid.to_string())])
            .send()
            .await
            .context("GET /v1/delegation")?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            bail!("GET /v1/delegation answered {}", response.status());
        }
        let body: Value = response.json().await.context("GET /v1/delegation body")?;
        Ok(Some(body["data"].clone()))
    }

    /// Waits until the API shows `want` for `txid`, mining a block every second meanwhile.
    async fn wait_state(&mut self, who: &str, txid: &Txid, want: &str) -> anyhow::Result<Value> {
        let started = tokio::time::Instant::now();
        let mut last_mined = started;
        let mut last = String::new();
        loop {
            if self.shutdown.is_cancelled() {
                bail!("stopped while waiting for {who}'s delegation to become {want}");
            }
            if let Some(d) = self.delegation(txid).await? {
                let state = d["state"].as_str().unwrap_or_default().to_owned();
                if state == want {
                    self.say(format!(
                        "{who}: the API shows delegation {txid} as `{want}` (tip {})",
                        self.tip().await?
                    ));
                    return Ok(d);
                }
                if state != last {
                    println!("          {who}: API state `{state}`, waiting for `{want}`");
                    last = state;
                }
            }
            if started.elapsed() > STEP_TIMEOUT {
                bail!(
                    "{who}'s delegation {txid} did not become `{want}` within {} s (last state: `{}`)",
                    STEP_TIMEOUT.as_secs(),
                    if last.is_empty() { "unknown to the API" } else { &last }
                );
            }
            if last_mined.elapsed() >= MINE_EVERY {
                self.mine(1).await?;
                last_mined = tokio::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn fund(&mut self, staker: &Staker, btc: f64) -> anyhow::Result<Vec<Utxo>> {
        let txid: String = self
            .rpc
            .call("faucet", &[json!(staker.address.to_string()), json!(btc)])
            .await
            .context("the devnet faucet")?;
        let txid: Txid = txid.parse().context("the faucet's txid")?;
        let tx = self.rpc.get_raw_transaction(&txid).await?;
        let script = staker.address.script_pubkey();
        let utxos: Vec<Utxo> = tx
            .output
            .iter()
            .enumerate()
            .filter(|(_, o)| o.script_pubkey == script)
            .map(|(vout, o)| {
                Ok(Utxo {
                    outpoint: OutPoint::new(txid, u32::try_from(vout)?),
                    value: o.value,
                    script_pubkey: o.script_pubkey.clone(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        self.say(format!(
            "{}: funded {} with {btc} BTC from the faucet (tx {txid})",
            staker.name, staker.address
        ));
        Ok(utxos)
    }

    fn version_at(&self, height: u32) -> anyhow::Result<&ParamsVersion> {
        self.params
            .for_height(BlockHeight(u64::from(height)))
            .with_context(|| format!("no params version is active at height {height}"))
    }

    /// Builds, signs and broadcasts a staking tx (as `staker stake` does).
    async fn stake(
        &mut self,
        staker: &Staker,
        utxos: &[Utxo],
        amount: Amount,
        staking_time: u16,
    ) -> anyhow::Result<Transaction> {
        let height = self.tip().await? + 1;
        let version = self.version_at(height)?.clone();
        let keys = version.staking_keys(staker.x_only(), self.fp)?;
        let staking = StakingOutput::new(keys, staking_time)?;
        let op_return = V0OpReturn {
            tag: version.tag,
            staker: staker.x_only(),
            finality_provider: self.fp,
            staking_time,
        }
        .script();
        let activation = u32::try_from(version.activation_height.0.saturating_sub(1))?;
        let built = staking_tx(&StakingTxRequest {
            staking: &staking,
            amount,
            op_return,
            utxos,
            change_script: staker.address.script_pubkey(),
            fee_rate: FEE_RATE,
            lock_time: LockTime::from_height(activation)?,
        })
        .context("building the staking tx")?;
        match classify(&built.tx, self.params, BlockHeight(u64::from(height))) {
            StakingTxClass::Valid(_) => {}
            other => bail!("the demo's staking tx would not count: {other:?}"),
        }
        let prevouts: Vec<TxOut> = built
            .inputs
            .iter()
            .map(|u| TxOut {
                value: u.value,
                script_pubkey: u.script_pubkey.clone(),
            })
            .collect();
        let mut tx = built.tx.clone();
        for index in 0..tx.input.len() {
            tx.input[index].witness = staker.sign_key_path(&built.tx, index, &prevouts)?;
        }
        let txid = self
            .rpc
            .send_raw_transaction(&tx)
            .await
            .context("broadcasting the staking tx")?;
        self.say(format!(
            "{}: broadcast staking tx {txid}: {} sat for {staking_time} blocks to finality provider {}",
            staker.name,
            amount.to_sat(),
            self.fp
        ));
        Ok(tx)
    }

    /// Signs the canonical unbonding tx and submits it to the API (as `staker unbond` does).
    async fn request_unbonding(
        &mut self,
        staker: &Staker,
        staking_tx: &Transaction,
        start_height: u32,
    ) -> anyhow::Result<Transaction> {
        let StakingTxClass::Valid(parsed) = classify(
            staking_tx,
            self.params,
            BlockHeight(u64::from(start_height)),
        ) else {
            bail!("the staking tx is not valid at its height {start_height}");
        };
        let version = self.version_at(start_height)?;
        let staking = StakingOutput::new(
            version.staking_keys(parsed.staker, parsed.finality_provider)?,
            parsed.staking_time,
        )?;
        let terms = UnbondingTerms {
            unbonding_time: version.unbonding_time,
            unbonding_fee: version.unbonding_fee,
        };
        let outpoint = OutPoint::new(staking_tx.compute_txid(), parsed.staking_output_index);
        let unbonding_tx =
            canonical_unbonding_tx(&staking, outpoint, parsed.staking_value, &terms)?;
        let sighash = unbonding_sighash(&unbonding_tx, &staking, parsed.staking_value)?;
        let signature = sign(&sighash, &staker.keypair);
        verify_parsed(&sighash, &signature, &staker.x_only())?;
        let body = json!({
            "staker_signed_signature_hex": signature.as_ref().to_lower_hex_string(),
            "staking_tx_hash_hex": outpoint.txid.to_string(),
            "unbonding_tx_hash_hex": unbonding_tx.compute_txid().to_string(),
            "unbonding_tx_hex": serialize_hex(&unbonding_tx),
        });
        let response = self
            .http
            .post(format!("{}/v1/unbonding", self.api_url))
            .json(&body)
            .send()
            .await
            .context("POST /v1/unbonding")?;
        let status = response.status();
        if status != reqwest::StatusCode::ACCEPTED {
            let text = response.text().await.unwrap_or_default();
            bail!("POST /v1/unbonding answered {status}: {text}");
        }
        self.say(format!(
            "{}: signed the canonical unbonding tx {} and submitted it to the API (202 Accepted)",
            staker.name,
            unbonding_tx.compute_txid()
        ));
        Ok(unbonding_tx)
    }

    /// Mines until a spend with relative timelock `timelock` of an output confirmed at
    /// `confirmed_at` can enter the next block.
    async fn mine_until_unlocked(
        &mut self,
        confirmed_at: u32,
        timelock: u16,
    ) -> anyhow::Result<()> {
        let unlock = confirmed_at + u32::from(timelock);
        let tip = self.tip().await?;
        if tip + 1 < unlock {
            self.mine(unlock - tip - 1).await?;
        }
        Ok(())
    }

    /// The height of the block that holds `txid`.
    async fn confirmed_height(&self, txid: &Txid) -> anyhow::Result<u32> {
        let info = self.rpc.get_raw_transaction_info(txid).await?;
        let Some((_, confirmations)) = info.confirmed_in() else {
            bail!("{txid} is not confirmed");
        };
        Ok(self.tip().await? + 1 - confirmations)
    }

    /// Builds, signs and broadcasts the withdrawal through a timelock leaf (as `staker
    /// withdraw` does).
    async fn withdraw(
        &mut self,
        staker: &Staker,
        outpoint: OutPoint,
        spend: &LeafSpend,
        timelock: u16,
        witness: impl Fn(&bitcoin::secp256k1::schnorr::Signature) -> bitcoin::Witness,
        what: &str,
    ) -> anyhow::Result<Txid> {
        let confirmed_at = self.confirmed_height(&outpoint.txid).await?;
        self.mine_until_unlocked(confirmed_at, timelock).await?;
        let mut tx = withdrawal_tx(
            outpoint,
            spend.prevout.value,
            timelock,
            staker.address.script_pubkey(),
            FEE_RATE,
        )?;
        let sighash = leaf_sighash(
            &tx,
            0,
            std::slice::from_ref(&spend.prevout),
            spend.leaf_hash(),
        )?;
        tx.input[0].witness = witness(&sign(&sighash, &staker.keypair));
        let txid = self
            .rpc
            .send_raw_transaction(&tx)
            .await
            .with_context(|| format!("broadcasting the withdrawal from the {what}"))?;
        self.say(format!(
            "{}: withdrew {} sat from the {what} {outpoint} (tx {txid})",
            staker.name,
            tx.output[0].value.to_sat()
        ));
        Ok(txid)
    }
}

fn start_height(delegation: &Value) -> anyhow::Result<u32> {
    let h = delegation["staking_tx"]["start_height"]
        .as_u64()
        .context("the API's delegation has no staking_tx.start_height")?;
    Ok(u32::try_from(h)?)
}

/// Runs the demo; `Ok` once both stakers have withdrawn and the API agrees at every step.
pub async fn run(
    running: &Running,
    params: &GlobalParams,
    fps: &[XOnlyPublicKey],
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let fp = *fps
        .first()
        .context("the devnet lists no finality provider")?;
    let miner = Staker::new("miner").address;
    let mut demo = Demo {
        rpc: running.rpc()?,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot make an HTTP client")?,
        api_url: running.api_url.clone(),
        params,
        fp,
        miner,
        step: 0,
        shutdown,
    };
    println!();
    println!("[demo] two stakers: Alice stakes, unbonds early and withdraws; Bob stakes for {MIN_STAKING_TIME} blocks, lets it expire and withdraws.");
    println!("[demo] each state is read back from the API at {}; blocks are mined every second while waiting.", running.api_url);

    // Alice: stake → unbond → withdraw.
    let alice = Staker::new("Alice");
    let utxos = demo.fund(&alice, 0.1).await?;
    let staking = demo
        .stake(&alice, &utxos, Amount::from_sat(1_000_000), 1_000)
        .await?;
    let txid = staking.compute_txid();
    let delegation = demo.wait_state("Alice", &txid, "active").await?;
    let height = start_height(&delegation)?;
    let unbonding_tx = demo.request_unbonding(&alice, &staking, height).await?;
    demo.wait_state("Alice", &txid, "unbonding_requested")
        .await?;
    println!("          the unbonding pipeline now asks the covenant committee for signatures and broadcasts the unbonding tx");
    demo.wait_state("Alice", &txid, "unbonding").await?;
    let version = demo.version_at(height)?.clone();
    let StakingTxClass::Valid(parsed) = classify(&staking, params, BlockHeight(u64::from(height)))
    else {
        bail!("Alice's staking tx stopped being valid");
    };
    let keys = version.staking_keys(parsed.staker, parsed.finality_provider)?;
    let unbonding_output = UnbondingOutput::new(&keys, version.unbonding_time)?;
    let spend = LeafSpend::unbonding(
        &unbonding_output,
        unbonding_tx.output[0].value,
        UnbondingLeaf::Timelock,
    );
    demo.wait_state("Alice", &txid, "unbonded").await?;
    demo.withdraw(
        &alice,
        OutPoint::new(unbonding_tx.compute_txid(), 0),
        &spend,
        version.unbonding_time,
        |sig| unbonding_timelock_witness(&unbonding_output, sig),
        "unbonding output",
    )
    .await?;
    demo.wait_state("Alice", &txid, "withdrawn").await?;

    // Bob: stake → expiry → withdraw.
    let bob = Staker::new("Bob");
    let utxos = demo.fund(&bob, 0.1).await?;
    let staking = demo
        .stake(&bob, &utxos, Amount::from_sat(500_000), MIN_STAKING_TIME)
        .await?;
    let txid = staking.compute_txid();
    let delegation = demo.wait_state("Bob", &txid, "active").await?;
    let height = start_height(&delegation)?;
    let version = demo.version_at(height)?.clone();
    let staking_output =
        StakingOutput::new(version.staking_keys(bob.x_only(), fp)?, MIN_STAKING_TIME)?;
    let spend = LeafSpend::staking(
        &staking_output,
        staking.output[0].value,
        StakingLeaf::Timelock,
    );
    println!("          Bob's staking time of {MIN_STAKING_TIME} blocks runs out; the expiry checker reports it");
    demo.wait_state("Bob", &txid, "unbonded").await?;
    demo.withdraw(
        &bob,
        OutPoint::new(txid, 0),
        &spend,
        MIN_STAKING_TIME,
        |sig| staking_timelock_witness(&staking_output, sig),
        "staking output",
    )
    .await?;
    demo.wait_state("Bob", &txid, "withdrawn").await?;

    let stats: Value = demo
        .http
        .get(format!("{}/v1/stats", running.api_url))
        .send()
        .await?
        .json()
        .await?;
    demo.say(format!(
        "API stats: {} delegations in total, {} active, total TVL {} sat",
        stats["data"]["total_delegations"],
        stats["data"]["active_delegations"],
        stats["data"]["total_tvl"]
    ));
    println!("[demo] complete: stake → unbond → withdraw and stake → expiry → withdraw, every state confirmed by the API.");
    Ok(())
}
