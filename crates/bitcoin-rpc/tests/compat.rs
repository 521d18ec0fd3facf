//! Compatibility suite: the same tests against the devnet (default, used in CI) and against a
//! real Bitcoin Core regtest node, so both answer the shared calls with the same results and
//! the same error codes and messages.
//!
//! Target selection (see the crate README):
//! * `BITCOIND_RPC_URL` (+ `BITCOIND_RPC_COOKIE`, or `BITCOIND_RPC_USER` / `BITCOIND_RPC_PASSWORD`):
//!   a running regtest node (needs `-txindex`); the tests then run one at a time.
//! * `BITCOIND_EXE`: a `bitcoind` binary; each test starts its own regtest node in a temporary
//!   datadir with cookie authentication.
//! * neither: each test starts its own in-process devnet.
//!
//! Funds come from coinbase outputs paid to a key of the suite's own, spent with transactions
//! the suite signs itself, so no node wallet is involved and both targets see identical calls.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::path::PathBuf;
use std::time::Duration;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute, transaction, Address, Amount, BlockHash, CompressedPublicKey, Network, OutPoint,
    ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};
use bitcoin_rpc::{
    codes, AcceptOutcome, ChainEvent, FeeEstimate, FollowerConfig, RpcAuth, RpcClient, RpcConfig,
    RpcError, StartPoint, TipFollower,
};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Fee paid by the suite's own transactions (about 10 sat/vB for a one-in one-out P2WPKH).
const FEE: Amount = Amount::from_sat(1_500);

/// Serialises tests against a shared external node, whose chain they all change.
static EXTERNAL_NODE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A node under test and what keeps it alive.
struct Target {
    client: RpcClient,
    _keep: Keep,
}

enum Keep {
    Devnet(
        #[allow(dead_code, reason = "held to keep the devnet running")] devnet::DevnetHandle,
        CancellationToken,
    ),
    Bitcoind(
        #[allow(dead_code, reason = "held to keep the node running; killed on drop")]
        tokio::process::Child,
        #[allow(dead_code, reason = "held so the datadir outlives the node")] tempfile::TempDir,
    ),
    External(
        #[allow(dead_code, reason = "held for the whole test")]
        tokio::sync::MutexGuard<'static, ()>,
    ),
}

impl Drop for Keep {
    fn drop(&mut self) {
        if let Keep::Devnet(_, shutdown) = self {
            shutdown.cancel();
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Target {
    async fn start() -> Self {
        let target = if let Some(url) = env("BITCOIND_RPC_URL") {
            let guard = EXTERNAL_NODE.lock().await;
            let auth = match (env("BITCOIND_RPC_COOKIE"), env("BITCOIND_RPC_USER")) {
                (Some(cookie), _) => RpcAuth::Cookie(PathBuf::from(cookie)),
                (None, Some(user)) => RpcAuth::UserPass {
                    user,
                    password: env("BITCOIND_RPC_PASSWORD").unwrap_or_default(),
                },
                (None, None) => panic!(
                    "BITCOIND_RPC_URL needs BITCOIND_RPC_COOKIE or BITCOIND_RPC_USER/BITCOIND_RPC_PASSWORD"
                ),
            };
            Target {
                client: RpcClient::new(RpcConfig::new(url, auth)).unwrap(),
                _keep: Keep::External(guard),
            }
        } else if let Some(exe) = env("BITCOIND_EXE") {
            let datadir = tempfile::tempdir().unwrap();
            let rpc_port = free_port();
            let child = tokio::process::Command::new(&exe)
                .arg("-regtest")
                .arg(format!("-datadir={}", datadir.path().display()))
                .arg(format!("-rpcport={rpc_port}"))
                .arg(format!("-port={}", free_port()))
                .args([
                    "-listen=0",
                    "-txindex=1",
                    "-server=1",
                    "-disablewallet=1",
                    "-printtoconsole=0",
                    "-rpcbind=127.0.0.1",
                    "-rpcallowip=127.0.0.1",
                ])
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start BITCOIND_EXE={exe}: {e}"));
            let auth = RpcAuth::cookie_in_datadir(datadir.path(), Network::Regtest);
            Target {
                client: RpcClient::new(RpcConfig::new(
                    format!("http://127.0.0.1:{rpc_port}/"),
                    auth,
                ))
                .unwrap(),
                _keep: Keep::Bitcoind(child, datadir),
            }
        } else {
            let shutdown = CancellationToken::new();
            let handle = devnet::spawn(devnet::DevnetConfig::default(), shutdown.clone())
                .await
                .unwrap();
            let auth = RpcAuth::UserPass {
                user: handle.rpc_user.clone(),
                password: handle.rpc_password.clone(),
            };
            Target {
                client: RpcClient::new(RpcConfig::new(handle.rpc_url.clone(), auth)).unwrap(),
                _keep: Keep::Devnet(handle, shutdown),
            }
        };
        target.wait_ready().await;
        target
    }

    /// Waits out a starting node: refused connections, no cookie yet, `-28` warm-up.
    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match self.client.get_blockchain_info().await {
                Ok(info) => {
                    assert_eq!(
                        info.chain,
                        Network::Regtest,
                        "the compat suite needs a regtest node"
                    );
                    return;
                }
                Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("node not ready: {e}"),
            }
        }
    }
}

/// The suite's own key and its P2WPKH address.
struct Wallet {
    secret: SecretKey,
    public: CompressedPublicKey,
    address: Address,
}

impl Wallet {
    fn new(seed: u8) -> Self {
        let secp = Secp256k1::new();
        let secret = SecretKey::from_slice(&[seed; 32]).unwrap();
        let public = CompressedPublicKey(secret.public_key(&secp));
        let address = Address::p2wpkh(&public, Network::Regtest);
        Self {
            secret,
            public,
            address,
        }
    }

    /// Mines a block paying this wallet, then 100 more so its coinbase is spendable; returns
    /// the coinbase output.
    async fn fund(&self, client: &RpcClient) -> (OutPoint, TxOut) {
        let hashes = client
            .generate_to_address(101, &self.address)
            .await
            .unwrap();
        assert_eq!(hashes.len(), 101);
        let block = client.get_block(&hashes[0]).await.unwrap();
        let coinbase = &block.txdata[0];
        let vout = coinbase
            .output
            .iter()
            .position(|o| o.script_pubkey == self.address.script_pubkey())
            .expect("the coinbase pays the wallet");
        (
            OutPoint::new(coinbase.compute_txid(), u32::try_from(vout).unwrap()),
            coinbase.output[vout].clone(),
        )
    }

    /// A signed transaction spending `prevout` back to this wallet, minus [`FEE`].
    fn spend(&self, outpoint: OutPoint, prevout: &TxOut) -> Transaction {
        self.spend_to(outpoint, prevout, self.address.script_pubkey())
    }

    /// A signed transaction spending `prevout` to `destination`, minus [`FEE`].
    fn spend_to(&self, outpoint: OutPoint, prevout: &TxOut, destination: ScriptBuf) -> Transaction {
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: prevout.value - FEE,
                script_pubkey: destination,
            }],
        };
        let sighash = SighashCache::new(&tx)
            .p2wpkh_signature_hash(
                0,
                &prevout.script_pubkey,
                prevout.value,
                EcdsaSighashType::All,
            )
            .unwrap();
        let signature = Secp256k1::new()
            .sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &self.secret);
        let signature = bitcoin::ecdsa::Signature {
            signature,
            sighash_type: EcdsaSighashType::All,
        };
        tx.input[0].witness = Witness::p2wpkh(&signature, &self.public.0);
        tx
    }
}

fn rpc_error(err: RpcError) -> (i32, String) {
    match err {
        RpcError::Rpc { code, message } => (code, message),
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

async fn call_err(client: &RpcClient, method: &str, params: &[Value]) -> (i32, String) {
    rpc_error(client.call::<Value>(method, params).await.unwrap_err())
}

#[tokio::test]
async fn blockchain_info_agrees_with_getblockcount_and_getbestblockhash() {
    let target = Target::start().await;
    let client = &target.client;
    client
        .generate_to_address(2, &Wallet::new(1).address)
        .await
        .unwrap();

    let info = client.get_blockchain_info().await.unwrap();

    assert_eq!(info.chain, Network::Regtest);
    assert_eq!(info.blocks, client.get_block_count().await.unwrap());
    assert_eq!(
        info.best_block_hash,
        client.get_best_block_hash().await.unwrap()
    );
    assert_eq!(
        info.best_block_hash,
        client.get_block_hash(info.blocks).await.unwrap()
    );
    assert_eq!(info.headers, info.blocks);
}

#[tokio::test]
async fn generated_blocks_are_found_by_height_hash_header_and_raw_block() {
    let target = Target::start().await;
    let client = &target.client;
    let wallet = Wallet::new(2);
    let start = client.get_block_count().await.unwrap();

    let hashes = client
        .generate_to_address(3, &wallet.address)
        .await
        .unwrap();

    assert_eq!(hashes.len(), 3);
    for (i, hash) in hashes.iter().enumerate() {
        let height = start + 1 + u32::try_from(i).unwrap();
        assert_eq!(client.get_block_hash(height).await.unwrap(), *hash);
        let block = client.get_block(hash).await.unwrap();
        assert_eq!(block.block_hash(), *hash);
        assert_eq!(client.get_block_header(hash).await.unwrap(), block.header);
        let header = client.get_block_header_info(hash).await.unwrap();
        assert_eq!(header.height, height);
        assert_eq!(
            header.confirmations,
            i64::from(3 - u32::try_from(i).unwrap())
        );
        assert_eq!(
            header.previous_block_hash,
            Some(block.header.prev_blockhash)
        );
        assert_eq!(header.merkle_root, block.header.merkle_root);
        let info = client.get_block_info(hash).await.unwrap();
        assert_eq!(info.height, height);
        assert_eq!(
            info.tx,
            block
                .txdata
                .iter()
                .map(Transaction::compute_txid)
                .collect::<Vec<_>>()
        );
        assert!(block.txdata[0]
            .output
            .iter()
            .any(|o| o.script_pubkey == wallet.address.script_pubkey()));
    }
    let tip = client.get_block_header_info(&hashes[2]).await.unwrap();
    assert_eq!(tip.next_block_hash, None);
    let below = client.get_block_header_info(&hashes[1]).await.unwrap();
    assert_eq!(below.next_block_hash, Some(hashes[2]));
}

#[tokio::test]
async fn an_unknown_block_hash_is_minus_5_block_not_found() {
    let target = Target::start().await;
    let client = &target.client;
    let unknown = BlockHash::from_byte_array([0xab; 32]);
    let not_found = (codes::INVALID_ADDRESS_OR_KEY, "Block not found".to_owned());

    assert_eq!(
        rpc_error(client.get_block(&unknown).await.unwrap_err()),
        not_found
    );
    assert_eq!(
        rpc_error(client.get_block_info(&unknown).await.unwrap_err()),
        not_found
    );
    assert_eq!(
        rpc_error(client.get_block_header_info(&unknown).await.unwrap_err()),
        not_found
    );
    assert_eq!(
        rpc_error(client.invalidate_block(&unknown).await.unwrap_err()),
        not_found
    );
    assert_eq!(
        rpc_error(client.reconsider_block(&unknown).await.unwrap_err()),
        not_found
    );
}

#[tokio::test]
async fn a_height_above_the_tip_or_below_zero_is_minus_8_block_height_out_of_range() {
    let target = Target::start().await;
    let client = &target.client;
    let tip = client.get_block_count().await.unwrap();
    let out_of_range = (
        codes::INVALID_PARAMETER,
        "Block height out of range".to_owned(),
    );

    assert_eq!(
        rpc_error(client.get_block_hash(tip + 1).await.unwrap_err()),
        out_of_range
    );
    assert_eq!(
        call_err(client, "getblockhash", &[json!(-1)]).await,
        out_of_range
    );
    assert!(client.get_block_hash(tip).await.is_ok());
}

#[tokio::test]
async fn a_malformed_block_hash_is_minus_8_naming_the_parameter_and_the_input() {
    let target = Target::start().await;
    let client = &target.client;

    assert_eq!(
        call_err(client, "getblock", &[json!("zz")]).await,
        (
            codes::INVALID_PARAMETER,
            "blockhash must be of length 64 (not 2, for 'zz')".to_owned()
        )
    );
    let not_hex = "g".repeat(64);
    assert_eq!(
        call_err(client, "getblock", &[json!(not_hex)]).await,
        (
            codes::INVALID_PARAMETER,
            format!("blockhash must be hexadecimal string (not '{not_hex}')")
        )
    );
}

/// Bitcoin Core's `getblockheader` names its argument `hash` (`getblock` says `blockhash`).
#[tokio::test]
async fn a_malformed_hash_for_getblockheader_is_minus_8_naming_the_argument_hash() {
    let target = Target::start().await;

    assert_eq!(
        call_err(&target.client, "getblockheader", &[json!("zz")]).await,
        (
            codes::INVALID_PARAMETER,
            "hash must be of length 64 (not 2, for 'zz')".to_owned()
        )
    );
}

#[tokio::test]
async fn an_unknown_method_is_minus_32601_method_not_found() {
    let target = Target::start().await;

    assert_eq!(
        call_err(&target.client, "getnosuchthing", &[]).await,
        (codes::METHOD_NOT_FOUND, "Method not found".to_owned())
    );
}

#[tokio::test]
async fn a_transaction_that_does_not_decode_is_minus_22_tx_decode_failed() {
    let target = Target::start().await;
    let expected = (
        codes::DESERIALIZATION_ERROR,
        "TX decode failed. Make sure the tx has at least one input.".to_owned(),
    );

    assert_eq!(
        call_err(&target.client, "sendrawtransaction", &[json!("00")]).await,
        expected
    );
    assert_eq!(
        call_err(&target.client, "sendrawtransaction", &[json!("zz")]).await,
        expected
    );
}

#[tokio::test]
async fn spending_an_output_that_does_not_exist_is_minus_25_and_missing_inputs() {
    let target = Target::start().await;
    let client = &target.client;
    let wallet = Wallet::new(3);
    let ghost = TxOut {
        value: Amount::from_sat(100_000),
        script_pubkey: wallet.address.script_pubkey(),
    };
    let tx = wallet.spend(OutPoint::new(Txid::from_byte_array([0xcd; 32]), 0), &ghost);

    let verdicts = client
        .test_mempool_accept(std::slice::from_ref(&tx))
        .await
        .unwrap();
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0].txid, tx.compute_txid());
    assert_eq!(
        verdicts[0].outcome,
        AcceptOutcome::Rejected {
            reason: "missing-inputs".into()
        }
    );
    assert_eq!(
        rpc_error(client.send_raw_transaction(&tx).await.unwrap_err()),
        (
            codes::VERIFY_ERROR,
            "bad-txns-inputs-missingorspent".to_owned()
        )
    );
}

#[tokio::test]
async fn unknown_transactions_are_minus_5_and_unknown_outputs_are_null() {
    let target = Target::start().await;
    let client = &target.client;
    let unknown = Txid::from_byte_array([0xef; 32]);

    let (code, message) = rpc_error(client.get_raw_transaction(&unknown).await.unwrap_err());
    assert_eq!(code, codes::INVALID_ADDRESS_OR_KEY);
    assert!(message.starts_with("No such mempool"), "{message}");
    assert_eq!(
        rpc_error(client.get_mempool_entry(&unknown).await.unwrap_err()),
        (
            codes::INVALID_ADDRESS_OR_KEY,
            "Transaction not in mempool".to_owned()
        )
    );
    assert_eq!(client.get_tx_out(&unknown, 0, true).await.unwrap(), None);
}

#[tokio::test]
async fn a_valid_spend_is_accepted_broadcast_seen_in_the_mempool_then_confirmed() {
    let target = Target::start().await;
    let client = &target.client;
    let wallet = Wallet::new(4);
    let (outpoint, prevout) = wallet.fund(client).await;

    let coin = client
        .get_tx_out(&outpoint.txid, outpoint.vout, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(coin.value, prevout.value);
    assert_eq!(coin.script_pubkey, prevout.script_pubkey);
    assert!(coin.coinbase);
    assert_eq!(coin.confirmations, 101);

    let tx = wallet.spend(outpoint, &prevout);
    let txid = tx.compute_txid();
    let verdicts = client
        .test_mempool_accept(std::slice::from_ref(&tx))
        .await
        .unwrap();
    assert_eq!(
        verdicts[0].outcome,
        AcceptOutcome::Accepted {
            vsize: u64::try_from(tx.vsize()).unwrap(),
            fee: Some(FEE)
        }
    );

    assert_eq!(client.send_raw_transaction(&tx).await.unwrap(), txid);
    assert!(client.get_raw_mempool().await.unwrap().contains(&txid));
    // Sending it again while it waits in the mempool is not an error.
    assert_eq!(client.send_raw_transaction(&tx).await.unwrap(), txid);
    // A conflicting spend paying no more is rejected by the mempool.
    let rival = wallet.spend_to(outpoint, &prevout, Wallet::new(40).address.script_pubkey());
    let (code, _) = rpc_error(client.send_raw_transaction(&rival).await.unwrap_err());
    assert_eq!(code, codes::VERIFY_REJECTED);
    let entry = client.get_mempool_entry(&txid).await.unwrap();
    assert_eq!(entry.fee, FEE);
    assert_eq!(entry.vsize, u64::try_from(tx.vsize()).unwrap());
    assert_eq!(entry.weight, tx.weight().to_wu());
    let pending = client.get_raw_transaction_info(&txid).await.unwrap();
    assert_eq!(pending.transaction, tx);
    assert_eq!(pending.confirmed_in(), None);
    assert_eq!(
        client
            .get_tx_out(&outpoint.txid, outpoint.vout, true)
            .await
            .unwrap(),
        None
    );
    assert!(client
        .get_tx_out(&outpoint.txid, outpoint.vout, false)
        .await
        .unwrap()
        .is_some());
    let unconfirmed = client.get_tx_out(&txid, 0, true).await.unwrap().unwrap();
    assert_eq!(unconfirmed.confirmations, 0);

    let mined = client
        .generate_to_address(1, &wallet.address)
        .await
        .unwrap();
    assert!(!client.get_raw_mempool().await.unwrap().contains(&txid));
    assert_eq!(client.get_raw_transaction(&txid).await.unwrap(), tx);
    let confirmed = client.get_raw_transaction_info(&txid).await.unwrap();
    assert_eq!(confirmed.confirmed_in(), Some((mined[0], 1)));
    assert!(client
        .get_block_info(&mined[0])
        .await
        .unwrap()
        .tx
        .contains(&txid));
    assert_eq!(
        client
            .get_tx_out(&txid, 0, false)
            .await
            .unwrap()
            .unwrap()
            .confirmations,
        1
    );

    let (code, _) = rpc_error(client.send_raw_transaction(&tx).await.unwrap_err());
    assert_eq!(code, codes::VERIFY_ALREADY_IN_CHAIN);
}

#[tokio::test]
async fn generateblock_mines_exactly_the_given_transactions_in_order() {
    let target = Target::start().await;
    let client = &target.client;
    let wallet = Wallet::new(5);
    let (outpoint, prevout) = wallet.fund(client).await;
    let tx = wallet.spend(outpoint, &prevout);

    let hash = client
        .generate_block(&wallet.address, std::slice::from_ref(&tx))
        .await
        .unwrap();

    assert_eq!(client.get_best_block_hash().await.unwrap(), hash);
    let block = client.get_block(&hash).await.unwrap();
    assert_eq!(block.txdata.len(), 2);
    assert!(block.txdata[0].is_coinbase());
    assert_eq!(block.txdata[1], tx);
}

/// Bitcoin Core on a fresh regtest chain has no fee history and says so; the devnet has no fee
/// market and answers the minimum relay fee rate (documented in its README). Both must answer
/// one of the two shapes, and both refuse a zero target with Core's message.
#[tokio::test]
async fn fee_estimation_answers_an_estimate_or_insufficient_data_and_refuses_target_zero() {
    let target = Target::start().await;

    match target.client.estimate_smart_fee(6).await.unwrap() {
        FeeEstimate::Available { fee_rate, blocks } => {
            assert!(
                fee_rate >= bitcoin::FeeRate::from_sat_per_vb_u32(1),
                "{fee_rate:?}"
            );
            assert!(blocks >= 1);
        }
        FeeEstimate::Unavailable { errors, .. } => {
            assert_eq!(
                errors,
                vec!["Insufficient data or no feerate found".to_owned()]
            );
        }
    }
    assert_eq!(
        rpc_error(target.client.estimate_smart_fee(0).await.unwrap_err()),
        (
            codes::INVALID_PARAMETER,
            "Invalid conf_target, must be between 1 and 1008".to_owned()
        )
    );
}

#[tokio::test]
async fn wrong_credentials_are_refused_with_http_401() {
    let target = Target::start().await;
    let intruder = RpcClient::new(RpcConfig::new(
        target.client.url(),
        RpcAuth::UserPass {
            user: "intruder".into(),
            password: "wrong".into(),
        },
    ))
    .unwrap();

    let err = intruder.get_block_count().await.unwrap_err();

    assert!(matches!(err, RpcError::Unauthorized { .. }), "{err:?}");
}

async fn next_event(follower: &mut TipFollower) -> (bool, u32, BlockHash) {
    let event = tokio::time::timeout(Duration::from_secs(10), follower.next())
        .await
        .expect("an event within 10 s")
        .unwrap();
    match event {
        ChainEvent::Connected { height, block } => (true, height, block.block_hash()),
        ChainEvent::Disconnected { height, hash } => (false, height, hash),
    }
}

fn fast_follower(client: &RpcClient, height: u32, hash: BlockHash) -> TipFollower {
    TipFollower::new(
        client.clone(),
        FollowerConfig {
            poll_interval: Duration::from_millis(20),
            zmq_endpoint: None,
            start: StartPoint::After { height, hash },
            prefetch: 1,
        },
    )
}

#[tokio::test]
async fn invalidateblock_reorg_is_reported_by_the_follower_as_disconnects_then_connects() {
    let target = Target::start().await;
    let client = &target.client;
    let old = client
        .generate_to_address(5, &Wallet::new(6).address)
        .await
        .unwrap();
    let tip = client.get_block_count().await.unwrap();
    let mut follower = fast_follower(client, tip, old[4]);

    client.invalidate_block(&old[3]).await.unwrap();
    assert_eq!(client.get_block_count().await.unwrap(), tip - 2);
    let new = client
        .generate_to_address(3, &Wallet::new(7).address)
        .await
        .unwrap();

    let mut events = Vec::new();
    for _ in 0..5 {
        events.push(next_event(&mut follower).await);
    }
    assert_eq!(
        events,
        vec![
            (false, tip, old[4]),
            (false, tip - 1, old[3]),
            (true, tip - 1, new[0]),
            (true, tip, new[1]),
            (true, tip + 1, new[2]),
        ]
    );

    // Reconsidering the shorter branch does not move the tip back.
    client.reconsider_block(&old[3]).await.unwrap();
    assert_eq!(client.get_best_block_hash().await.unwrap(), new[2]);
    assert_eq!(follower.last_connected(), Some((tip + 1, new[2])));
}

#[tokio::test]
async fn reconsiderblock_restores_an_invalidated_tip_and_the_follower_reconnects_it() {
    let target = Target::start().await;
    let client = &target.client;
    let blocks = client
        .generate_to_address(2, &Wallet::new(8).address)
        .await
        .unwrap();
    let tip = client.get_block_count().await.unwrap();
    let mut follower = fast_follower(client, tip, blocks[1]);

    client.invalidate_block(&blocks[1]).await.unwrap();
    assert_eq!(client.get_best_block_hash().await.unwrap(), blocks[0]);
    assert_eq!(next_event(&mut follower).await, (false, tip, blocks[1]));

    client.reconsider_block(&blocks[1]).await.unwrap();
    assert_eq!(client.get_best_block_hash().await.unwrap(), blocks[1]);
    assert_eq!(next_event(&mut follower).await, (true, tip, blocks[1]));
}
