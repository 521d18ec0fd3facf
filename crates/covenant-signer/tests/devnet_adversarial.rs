//! The adversarial suite against the real devnet over RPC: a committee of three signing
//! servers (quorum 2), each with its own key file backend and its own RPC view of the devnet.
//!
//! Starting from the valid request, every single mutation is refused with the right status
//! and no signature; the valid request is signed by each member with a signature that
//! verifies; the unbonding tx assembled from a quorum of those signatures is accepted by the
//! devnet's mempool and mined; afterwards the same request is refused as already spent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::schnorr;
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::{
    Amount, OutPoint, ScriptBuf, Sequence, TapSighashType, Transaction, TxIn, TxOut, Witness,
};
use bitcoin_rpc::{AcceptOutcome, RpcAuth, RpcClient, RpcConfig};
use covenant_signer::auth::HmacKey;
use covenant_signer::chain::CachedChain;
use covenant_signer::fixture::{Fixture, FixtureShape};
use covenant_signer::keystore::KeyBackend;
use covenant_signer::request::{SignRequest, SignRequestJson, SignResponseJson};
use covenant_signer::rpc_chain::RpcChain;
use devnet::wallet::Wallet;
use reqwest::StatusCode;
use staking_core::script::StakingLeaf;
use tokio_util::sync::CancellationToken;

const TIME: u16 = 1000;
const AMOUNT: Amount = Amount::from_sat(100_000);
const HMAC: &str = "devnet adversarial shared key, 32 bytes or more";

struct World {
    fx: Fixture,
    node: Arc<devnet::Node>,
    rpc: RpcClient,
    staking_tx: Transaction,
    servers: Vec<common::Running>,
    payout: ScriptBuf,
    devnet: devnet::DevnetHandle,
}

fn rpc_client(handle: &devnet::DevnetHandle) -> RpcClient {
    RpcClient::new(RpcConfig::new(
        handle.rpc_url.clone(),
        RpcAuth::UserPass {
            user: handle.rpc_user.clone(),
            password: handle.rpc_password.clone(),
        },
    ))
    .unwrap()
}

/// Funds a staker wallet from the faucet and builds, signs and broadcasts the staking tx.
async fn broadcast_staking_tx(fx: &Fixture, node: &devnet::Node, rpc: &RpcClient) -> Transaction {
    let funder = Wallet::from_seed(b"covenant-signer adversarial funder");
    let funding_value = Amount::from_sat(200_000);
    let funding_txid = node
        .faucet(funder.script_pubkey(), funding_value, true)
        .unwrap();
    let funding_tx = rpc.get_raw_transaction(&funding_txid).await.unwrap();
    let funding_vout = funding_tx
        .output
        .iter()
        .position(|o| o.script_pubkey == *funder.script_pubkey() && o.value == funding_value)
        .expect("faucet output to the funder") as u32;
    let prevout = funding_tx.output[funding_vout as usize].clone();
    let change = TxOut {
        value: funding_value - AMOUNT - Amount::from_sat(2_000),
        script_pubkey: funder.script_pubkey().clone(),
    };
    let mut tx = fx
        .staking_tx(
            OutPoint::new(funding_txid, funding_vout),
            AMOUNT,
            TIME,
            Some(change),
        )
        .unwrap();
    let signature = funder.sign_key_path(&tx, &[prevout], 0);
    tx.input[0].witness = Witness::from_slice(&[signature]);
    rpc.send_raw_transaction(&tx).await.unwrap();
    tx
}

async fn world() -> World {
    let devnet_shutdown = CancellationToken::new();
    let handle = devnet::spawn(devnet::DevnetConfig::default(), devnet_shutdown.clone())
        .await
        .unwrap();
    let node = Arc::clone(&handle.chain);
    let shape = FixtureShape {
        activation_height: 1,
        ..FixtureShape::default()
    };
    let fx = Fixture::new(shape, 42).unwrap();
    let rpc = rpc_client(&handle);
    let staking_tx = broadcast_staking_tx(&fx, &node, &rpc).await;
    let payout = Wallet::from_seed(b"covenant-signer adversarial miner")
        .script_pubkey()
        .clone();
    let mut servers = Vec::new();
    std::env::set_var("COVENANT_SIGNER_TEST_DEVNET_HMAC", HMAC);
    for member in 0..fx.members.len() {
        let chain = CachedChain::new(
            RpcChain::new(rpc_client(&handle)),
            Duration::from_secs(30),
            1000,
        );
        let backend = KeyBackend::File(fx.member_covenant_key(member).unwrap());
        let config = common::config(
            "[auth]\nhmac-key-env = \"COVENANT_SIGNER_TEST_DEVNET_HMAC\"\n[rate-limit]\nrequests-per-second = 0\nburst = 0\n",
        );
        servers.push(common::start(config, fx.params.clone(), Arc::new(chain), backend).await);
    }
    World {
        fx,
        node,
        rpc,
        staking_tx,
        servers,
        payout,
        devnet: handle,
    }
}

impl World {
    fn mine(&self, n: u32) {
        self.node.mine_blocks(n, &self.payout).unwrap();
    }

    fn valid(&self, member: usize) -> SignRequest {
        self.fx.request(&self.staking_tx, TIME, member).unwrap()
    }

    async fn post(&self, member: usize, body: String, authenticate: bool) -> (StatusCode, String) {
        let mut request = reqwest::Client::new()
            .post(self.servers[member].sign_url())
            .header("content-type", "application/json");
        if authenticate {
            request = request.header(
                "X-Covenant-HMAC",
                HmacKey::new(HMAC.as_bytes()).sign(body.as_bytes()),
            );
        }
        let response = request.body(body).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn sign(&self, member: usize, request: &SignRequest) -> (StatusCode, String) {
        self.post(member, common::body(request), true).await
    }

    /// Re-signs the staker signature after changing the unbonding tx, so the change itself is
    /// what the signer must catch.
    fn with_tx(&self, mutate: impl FnOnce(&mut Transaction)) -> SignRequest {
        let mut request = self.valid(0);
        mutate(&mut request.unbonding_tx);
        let staking = self.fx.staking_output(TIME).unwrap();
        let prevouts = vec![
            TxOut {
                value: AMOUNT,
                script_pubkey: staking.script_pubkey().clone()
            };
            request.unbonding_tx.input.len()
        ];
        if let Ok(sighash) = SighashCache::new(&request.unbonding_tx)
            .taproot_script_spend_signature_hash(
                0,
                &Prevouts::All(&prevouts),
                staking.leaf_hash(StakingLeaf::Unbonding),
                TapSighashType::Default,
            )
        {
            request.staker_signature = staking_core::signing::sign(&sighash, &self.fx.staker);
        }
        request
    }

    async fn stop(self) {
        for server in self.servers {
            server.stop().await;
        }
        self.devnet.shutdown().await;
    }
}

fn signature_of(body: &str) -> schnorr::Signature {
    let response: SignResponseJson = serde_json::from_str(body).unwrap();
    staking_core::signing::parse_signature(&hex::decode(response.data.signature_hex).unwrap())
        .unwrap()
}

fn assert_refused(
    case: &str,
    (status, body): &(StatusCode, String),
    expected: StatusCode,
    text: &str,
) {
    assert_eq!(*status, expected, "{case}: {body}");
    assert!(
        !body.contains("signature_hex"),
        "{case} yielded a signature: {body}"
    );
    assert!(body.contains(text), "{case}: expected {text:?} in {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_single_mutation_is_refused_and_a_quorum_of_signatures_unbonds_on_the_devnet() {
    let w = world().await;

    // Unconfirmed: only in the mempool.
    let r = w.sign(0, &w.valid(0)).await;
    assert_refused(
        "staking tx unconfirmed",
        &r,
        StatusCode::BAD_REQUEST,
        "is not included in a block",
    );
    // Confirmed but too shallow: 9 of 10 confirmations.
    w.mine(9);
    let r = w.sign(0, &w.valid(0)).await;
    assert_refused(
        "staking tx too shallow",
        &r,
        StatusCode::BAD_REQUEST,
        "has 9 confirmations, but 10 are required",
    );
    w.mine(1);

    // The valid request: every member signs, and each signature verifies.
    let valid = w.valid(0);
    let staking = w.fx.staking_output(TIME).unwrap();
    let sighash =
        staking_core::unbonding::unbonding_sighash(&valid.unbonding_tx, &staking, AMOUNT).unwrap();
    let mut signatures = Vec::new();
    for member in 0..3 {
        let (status, body) = w.sign(member, &w.valid(member)).await;
        assert_eq!(status, StatusCode::OK, "member {member}: {body}");
        let signature = signature_of(&body);
        let key = w.fx.member_key(member).unwrap().x_only_public_key().0;
        staking_core::signing::verify_parsed(&sighash, &signature, &key).unwrap();
        signatures.push((key, signature));
    }

    // Single mutations of the valid request.
    let outsider = Fixture::new(FixtureShape::default(), 99).unwrap();
    let mut next_version = w.fx.version().unwrap().clone();
    next_version.covenant_pks = outsider.version().unwrap().covenant_pks.clone();
    let mut other_leaf_sig = valid.clone();
    {
        let prevout = TxOut {
            value: AMOUNT,
            script_pubkey: staking.script_pubkey().clone(),
        };
        let sighash_all = SighashCache::new(&valid.unbonding_tx)
            .taproot_script_spend_signature_hash(
                0,
                &Prevouts::All(&[prevout]),
                staking.leaf_hash(StakingLeaf::Unbonding),
                TapSighashType::All,
            )
            .unwrap();
        other_leaf_sig.staker_signature = staking_core::signing::sign(&sighash_all, &w.fx.staker);
    }
    let other_tx_sig = {
        let other = w.with_tx(|tx| tx.output[0].value -= Amount::from_sat(1));
        let mut request = valid.clone();
        request.staker_signature = other.staker_signature;
        request
    };
    let bad = StatusCode::BAD_REQUEST;
    let cases: Vec<(&str, SignRequest, &str)> = vec![
        ("tx version 1", w.with_tx(|tx| tx.version = bitcoin::transaction::Version::ONE), "tx version must be between 2 and 2"),
        ("tx version 3", w.with_tx(|tx| tx.version = bitcoin::transaction::Version(3)), "tx version must be between 2 and 2"),
        ("lock time 1", w.with_tx(|tx| tx.lock_time = bitcoin::absolute::LockTime::from_consensus(1)), "pre-signed tx must not have locktime"),
        ("sequence RBF", w.with_tx(|tx| tx.input[0].sequence = Sequence::ENABLE_RBF_NO_LOCKTIME), "pre-signed tx must not be replaceable"),
        ("sequence max-1", w.with_tx(|tx| tx.input[0].sequence = Sequence(0xffff_fffe)), "pre-signed tx must not be replaceable"),
        ("output value +1", w.with_tx(|tx| tx.output[0].value += Amount::from_sat(1)), "unbonding output does not match expected output"),
        ("output value -1", w.with_tx(|tx| tx.output[0].value -= Amount::from_sat(1)), "unbonding output does not match expected output"),
        ("output script", w.with_tx(|tx| tx.output[0].script_pubkey = w.payout.clone()), "unbonding output does not match expected output"),
        ("extra input", w.with_tx(|tx| tx.input.push(TxIn { previous_output: OutPoint::new(w.staking_tx.compute_txid(), 2), script_sig: ScriptBuf::new(), sequence: Sequence::MAX, witness: Witness::new() })), "tx must have exactly 1 inputs"),
        ("extra output", w.with_tx(|tx| tx.output.push(TxOut { value: Amount::from_sat(600), script_pubkey: w.payout.clone() })), "tx must have exactly 1 outputs"),
        ("wrong input index", w.with_tx(|tx| tx.input[0].previous_output.vout = 2), "unbonding transaction spends output 2 of the staking transaction, but the staking output is 0"),
        ("key not in committee", SignRequest { covenant_key: outsider.member_key(0).unwrap(), ..valid.clone() }, "is not committee member at height"),
        ("staker signature over another tx", other_tx_sig, "staker unbonding signature verification failed: signature is not valid: invalid signing request"),
        ("staker signature with SIGHASH_ALL", other_leaf_sig, "staker unbonding signature verification failed"),
    ];
    for (case, request, text) in &cases {
        let r = w.sign(0, request).await;
        assert_refused(case, &r, bad, text);
    }

    // Wire-level mutations.
    let good: SignRequestJson = valid.to_json();
    let mut trailing = good.clone();
    trailing.unbonding_tx_hex.push_str("00");
    let mut malformed = good.clone();
    malformed.staker_unbonding_sig_hex.replace_range(0..1, "x");
    let mut uncompressed = good.clone();
    uncompressed.covenant_public_key =
        hex::encode(w.fx.member_key(0).unwrap().serialize_uncompressed());
    let body_of = |raw: &SignRequestJson| serde_json::to_string(raw).unwrap();
    let r = w.post(0, body_of(&trailing), true).await;
    assert_refused("trailing bytes", &r, bad, "invalid unbonding transaction");
    let r = w.post(0, body_of(&malformed), true).await;
    assert_refused(
        "malformed hex",
        &r,
        bad,
        "invalid staker unbonding signature",
    );
    let r = w.post(0, body_of(&uncompressed), true).await;
    assert_refused("uncompressed key", &r, bad, "invalid covenant public key");
    let mut oversized = good.clone();
    oversized.covenant_public_key.push_str(&"0".repeat(9000));
    let r = w.post(0, body_of(&oversized), true).await;
    assert_refused(
        "oversized body",
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request Entity Too Large",
    );
    let r = w.post(0, body_of(&good), false).await;
    assert_refused("no HMAC", &r, StatusCode::UNAUTHORIZED, "X-Covenant-HMAC");
    let bad_mac = reqwest::Client::new()
        .post(w.servers[0].sign_url())
        .header(
            "X-Covenant-HMAC",
            HmacKey::new(b"not the key").sign(body_of(&good).as_bytes()),
        )
        .body(body_of(&good))
        .send()
        .await
        .unwrap();
    let status = bad_mac.status();
    let text = bad_mac.text().await.unwrap();
    assert_refused(
        "bad HMAC",
        &(status, text),
        StatusCode::UNAUTHORIZED,
        "does not match",
    );

    // A quorum (2 of 3) of the returned signatures unbonds on the devnet.
    let mut unbonding = valid.unbonding_tx.clone();
    let quorum = &signatures[1..];
    unbonding.input[0].witness =
        staking_core::witness::unbonding_witness(&staking, &valid.staker_signature, quorum)
            .unwrap();
    let verdict = w
        .rpc
        .test_mempool_accept(std::slice::from_ref(&unbonding))
        .await
        .unwrap();
    assert!(
        matches!(verdict[0].outcome, AcceptOutcome::Accepted { .. }),
        "{verdict:?}"
    );
    // One signature fewer than the quorum is rejected by the chain's script check.
    let mut short = valid.unbonding_tx.clone();
    let mut witness: Vec<Vec<u8>> = unbonding.input[0]
        .witness
        .iter()
        .map(<[u8]>::to_vec)
        .collect();
    let first_filled = witness.iter().position(|item| item.len() == 64).unwrap();
    witness[first_filled].clear();
    short.input[0].witness = Witness::from_slice(&witness);
    let verdict = w
        .rpc
        .test_mempool_accept(std::slice::from_ref(&short))
        .await
        .unwrap();
    assert!(
        matches!(verdict[0].outcome, AcceptOutcome::Rejected { .. }),
        "{verdict:?}"
    );
    let txid = w.rpc.send_raw_transaction(&unbonding).await.unwrap();
    assert_eq!(txid, unbonding.compute_txid());
    w.mine(1);
    let info = w.rpc.get_raw_transaction_info(&txid).await.unwrap();
    assert!(info.confirmed_in().is_some(), "the unbonding tx was mined");

    // Now the staking output is spent: the same valid request is refused.
    let r = w.sign(2, &w.valid(2)).await;
    assert_refused("staking output spent", &r, bad, "is already spent");
    w.stop().await;
}

/// `run` as the binary calls it: config file values, the RPC client it builds, the key file it
/// unlocks with the passphrase from the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_from_a_config_with_a_key_file_and_the_devnet_rpc() {
    let devnet_shutdown = CancellationToken::new();
    let handle = devnet::spawn(devnet::DevnetConfig::default(), devnet_shutdown.clone())
        .await
        .unwrap();
    let node = Arc::clone(&handle.chain);
    let rpc = rpc_client(&handle);
    let fx = Fixture::new(
        FixtureShape {
            activation_height: 1,
            ..FixtureShape::default()
        },
        43,
    )
    .unwrap();
    let staking_tx = broadcast_staking_tx(&fx, &node, &rpc).await;
    let payout = Wallet::from_seed(b"run test miner").script_pubkey().clone();

    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("key.json");
    let passphrase = "run test passphrase, long enough";
    fx.member_covenant_key(1)
        .unwrap()
        .save_throwaway(
            &key_path,
            &covenant_signer::keyfile::Passphrase::new(passphrase.into()),
            covenant_signer::keyfile::KdfCost {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
        )
        .unwrap();
    std::env::set_var("COVENANT_SIGNER_TEST_RUN_PASSPHRASE", passphrase);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = covenant_signer::config::Config::from_toml(&format!(
        r#"
        [server]
        port = {port}
        [metrics]
        enabled = false
        [btc-config]
        url = "{url}"
        user = "{user}"
        pass = "{pass}"
        [signer]
        backend = "file"
        key-file = "{key}"
        passphrase-env = "COVENANT_SIGNER_TEST_RUN_PASSPHRASE"
        "#,
        url = handle.rpc_url,
        user = handle.rpc_user,
        pass = handle.rpc_password,
        key = key_path.display(),
    ))
    .unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(covenant_signer::run(
        config,
        fx.params.clone(),
        shutdown.clone(),
    ));
    let url = format!("http://127.0.0.1:{port}/v1/sign-unbonding-tx");
    let body = common::body(&fx.request(&staking_tx, TIME, 1).unwrap());
    let client = reqwest::Client::new();
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(response) = client.post(&url).body(body.clone()).send().await {
            answer = Some((response.status(), response.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, text) = answer.expect("server came up");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("is not included in a block"), "{text}");
    node.mine_blocks(10, &payout).unwrap();
    let response = client.post(&url).body(body).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let signature = signature_of(&text);
    let request = fx.request(&staking_tx, TIME, 1).unwrap();
    let staking = fx.staking_output(TIME).unwrap();
    let sighash =
        staking_core::unbonding::unbonding_sighash(&request.unbonding_tx, &staking, AMOUNT)
            .unwrap();
    let key = fx.member_key(1).unwrap().x_only_public_key().0;
    staking_core::signing::verify_parsed(&sighash, &signature, &key).unwrap();
    shutdown.cancel();
    server.await.unwrap().unwrap();
    devnet_shutdown.cancel();
    handle.stopped().await;
}
