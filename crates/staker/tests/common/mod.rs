//! A devnet, a params file with our own committee, a key file and the `staker` binary wired to
//! them through the `STAKER_…` environment variables.

#![allow(dead_code, reason = "each test file uses a different part")]

pub mod api;
pub mod committee;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use bitcoin_rpc::{RpcAuth, RpcClient, RpcConfig};
use serde_json::{json, Value};
use staking_core::bitcoin::secp256k1::{Keypair, PublicKey, SecretKey};
use staking_core::bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, Txid};
use staking_core::keys::SECP;
use staking_core::params::GlobalParams;
use tokio_util::sync::CancellationToken;

pub const STAKING_TIME: u16 = 10;
pub const UNBONDING_TIME: u16 = 5;
pub const UNBONDING_FEE: u64 = 1_000;
pub const FP: &str = "c333bf065809ed12b162dc3c849f8cf65219125fdfde98770c2b285f04ff9960";

pub fn covenant(i: u8) -> Keypair {
    Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&[i; 32]).unwrap())
}

pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub node: Arc<devnet::Node>,
    pub rpc: RpcClient,
    rpc_url: String,
    rpc_auth: RpcAuth,
    shutdown: CancellationToken,
    pub dir: tempfile::TempDir,
    pub params_path: PathBuf,
    pub key_file: PathBuf,
    pub api_url: Option<String>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn params_json() -> Value {
    let pks: Vec<String> = (1..=3u8)
        .map(|i| PublicKey::from_keypair(&covenant(i)).to_string())
        .collect();
    json!({"versions": [{
        "version": 0, "activation_height": 1, "staking_cap": 100_000_000_000u64, "tag": "74657374",
        "covenant_pks": pks, "covenant_quorum": 2, "unbonding_time": UNBONDING_TIME,
        "unbonding_fee": UNBONDING_FEE, "max_staking_amount": 10_000_000, "min_staking_amount": 10_000,
        "max_staking_time": 100, "min_staking_time": 5, "confirmation_depth": 2
    }]})
}

pub fn params() -> GlobalParams {
    GlobalParams::from_json(&params_json().to_string())
        .unwrap()
        .0
}

impl Env {
    pub fn new() -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let shutdown = CancellationToken::new();
        let handle = rt
            .block_on(devnet::spawn(
                devnet::DevnetConfig::default(),
                shutdown.clone(),
            ))
            .unwrap();
        let rpc_auth = RpcAuth::UserPass {
            user: handle.rpc_user.clone(),
            password: handle.rpc_password.clone(),
        };
        let rpc = RpcClient::new(RpcConfig::new(handle.rpc_url.clone(), rpc_auth.clone())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let params_path = dir.path().join("params.json");
        std::fs::write(&params_path, params_json().to_string()).unwrap();
        let key_file = dir.path().join("key.json");
        Self {
            rt,
            node: handle.chain.clone(),
            rpc,
            rpc_url: handle.rpc_url.clone(),
            rpc_auth,
            shutdown,
            dir,
            params_path,
            key_file,
            api_url: None,
        }
    }

    /// The `STAKER_…` variables that point the CLI at this devnet, params, key and API.
    pub fn staker_env(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("STAKER_NETWORK".to_owned(), "regtest".to_owned()),
            (
                "STAKER_PARAMS".to_owned(),
                self.params_path.display().to_string(),
            ),
            (
                "STAKER_KEY_FILE".to_owned(),
                self.key_file.display().to_string(),
            ),
            ("STAKER_RPC_URL".to_owned(), self.rpc_url.clone()),
            ("STAKER_RPC_USER".to_owned(), "devnet".to_owned()),
            ("STAKER_RPC_PASSWORD".to_owned(), "devnet".to_owned()),
        ];
        if let Some(api) = &self.api_url {
            vars.push(("STAKER_API_URL".to_owned(), api.clone()));
        }
        vars
    }

    pub fn staker(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_staker"))
            .args(args)
            .envs(self.staker_env())
            .output()
            .unwrap()
    }

    pub fn staker_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let o = self.staker(&all);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// Generates the key file and funds its P2TR address with `sat`; returns the key JSON and
    /// the funded outpoint.
    pub fn funded_key(&self, sat: u64) -> (Value, OutPoint) {
        let key = self.staker_json(&["keys", "generate"]);
        let address: staking_core::bitcoin::Address<_> =
            key["p2tr_address"].as_str().unwrap().parse().unwrap();
        let script = address.assume_checked().script_pubkey();
        let outpoint = self.fund(&script, sat);
        (key, outpoint)
    }

    pub fn fund(&self, script: &ScriptBuf, sat: u64) -> OutPoint {
        let txid = self
            .node
            .faucet(script, Amount::from_sat(sat), true)
            .unwrap();
        let tx = self.tx(&txid);
        let vout = tx
            .output
            .iter()
            .position(|o| o.script_pubkey == *script)
            .unwrap();
        OutPoint::new(txid, vout as u32)
    }

    pub fn tx(&self, txid: &Txid) -> Transaction {
        self.rt
            .block_on(self.rpc.get_raw_transaction(txid))
            .unwrap()
    }

    pub fn mine(&self, n: u32) {
        self.node
            .mine_blocks(n, devnet::wallet::Wallet::faucet().script_pubkey())
            .unwrap();
    }

    /// The node's RPC, for services the test runs (covenant signers, pipeline).
    pub fn rpc_config(&self) -> RpcConfig {
        RpcConfig::new(self.rpc_url.clone(), self.rpc_auth.clone())
    }

    /// Mines one block with exactly `txs`, timestamped `secs` after the tip: a chain mined at a
    /// steady pace, as `stakingd devnet --block-interval` does, for the time estimates.
    pub fn mine_paced(&self, txs: Vec<Transaction>, secs: u32) {
        let last = {
            let state = self.node.lock();
            state.chain.tip().block.header.time
        };
        self.node
            .mine_block_with(
                txs,
                devnet::wallet::Wallet::faucet().script_pubkey(),
                Some(last + secs),
            )
            .unwrap();
    }

    pub fn tip(&self) -> u64 {
        u64::from(self.node.tip().height)
    }

    pub fn unspent(&self, outpoint: OutPoint) -> bool {
        self.rt
            .block_on(self.rpc.get_tx_out(&outpoint.txid, outpoint.vout, true))
            .unwrap()
            .is_some()
    }

    /// Stakes `sat` from `utxo` with the test params; returns the staking txid.
    pub fn stake(&self, utxo: OutPoint, sat: u64) -> Txid {
        let v = self.staker_json(&[
            "stake",
            "--fp-pk",
            FP,
            "--amount",
            &sat.to_string(),
            "--staking-time",
            &STAKING_TIME.to_string(),
            "--fee-rate",
            "2",
            "--utxo",
            &format!("{}:{}", utxo.txid, utxo.vout),
        ]);
        assert_eq!(v["broadcast"], true);
        v["txid"].as_str().unwrap().parse().unwrap()
    }
}

impl Env {
    /// Stakes `sat` from whatever the key file's addresses hold, found by the CLI through the
    /// node's `scantxoutset`; returns the staking txid.
    pub fn stake_scanned(&self, sat: u64) -> Txid {
        let v = self.staker_json(&[
            "stake",
            "--fp-pk",
            FP,
            "--amount",
            &sat.to_string(),
            "--staking-time",
            &STAKING_TIME.to_string(),
            "--fee-rate",
            "2",
        ]);
        assert_eq!(v["broadcast"], true);
        v["txid"].as_str().unwrap().parse().unwrap()
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
