//! The bitcoind-wallet backend against a stand-in wallet that answers `walletprocesspsbt` the
//! way Bitcoin Core's descriptor wallet does: it signs the script-path input only if the PSBT
//! carries what it needs (witness UTXO, SIGHASH_DEFAULT, the key's BIP32 entry, the leaf and
//! control block) and it holds the key.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use bitcoin::base64::engine::general_purpose::STANDARD;
use bitcoin::base64::Engine as _;
use bitcoin::hashes::Hash;
use bitcoin::psbt::{Psbt, PsbtSighashType};
use bitcoin::secp256k1::Keypair;
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::taproot::{LeafVersion, TapLeafHash};
use bitcoin::{Amount, OutPoint, TapSighashType, Transaction, Txid};
use covenant_signer::chain::MemoryChain;
use covenant_signer::error::SignError;
use covenant_signer::fixture::{Fixture, FixtureShape};
use covenant_signer::keystore::{KeyBackend, SigningError};
use covenant_signer::signer::Signer;
use covenant_signer::wallet::{JsonRpc, WalletSigner};
use futures::future::BoxFuture;
use serde_json::{json, Value};

/// How the stand-in wallet behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Honest,
    Locked,
    /// Signs over a wrong message (a buggy or malicious wallet).
    WrongMessage,
}

struct FakeWallet {
    keys: Vec<Keypair>,
    mode: Mode,
    seen: Mutex<Vec<Value>>,
}

impl FakeWallet {
    fn process(&self, params: &[Value]) -> Result<Value, String> {
        if self.mode == Mode::Locked {
            return Err("RPC error -13: Error: Please enter the wallet passphrase with walletpassphrase first.".into());
        }
        assert_eq!(params[1], json!(true), "sign = true");
        assert_eq!(params[2], json!("DEFAULT"), "sighash type DEFAULT");
        let bytes = STANDARD.decode(params[0].as_str().unwrap()).unwrap();
        let mut psbt = Psbt::deserialize(&bytes).unwrap();
        let unsigned = psbt.unsigned_tx.clone();
        let input = &mut psbt.inputs[0];
        assert_eq!(
            input.sighash_type,
            Some(PsbtSighashType::from(TapSighashType::Default))
        );
        let prevout = input.witness_utxo.clone().expect("witness utxo");
        let (_, (leaf, version)) = input.tap_scripts.iter().next().expect("leaf script");
        assert_eq!(*version, LeafVersion::TapScript);
        let leaf_hash = TapLeafHash::from_script(leaf, LeafVersion::TapScript);
        for key in &self.keys {
            if !input.bip32_derivation.contains_key(&key.public_key()) {
                continue;
            }
            let mut sighash = SighashCache::new(&unsigned)
                .taproot_script_spend_signature_hash(
                    0,
                    &Prevouts::All(std::slice::from_ref(&prevout)),
                    leaf_hash,
                    TapSighashType::Default,
                )
                .unwrap();
            if self.mode == Mode::WrongMessage {
                sighash = bitcoin::TapSighash::from_byte_array([7; 32]);
            }
            let signature = staking_core::signing::sign(&sighash, key);
            input.tap_script_sigs.insert(
                (key.x_only_public_key().0, leaf_hash),
                bitcoin::taproot::Signature {
                    signature,
                    sighash_type: TapSighashType::Default,
                },
            );
        }
        Ok(json!({ "psbt": STANDARD.encode(psbt.serialize()), "complete": false }))
    }
}

impl JsonRpc for FakeWallet {
    fn call(&self, method: &str, params: Vec<Value>) -> BoxFuture<'_, Result<Value, String>> {
        assert_eq!(method, "walletprocesspsbt");
        self.seen.lock().unwrap().push(params[0].clone());
        let answer = self.process(&params);
        Box::pin(async move { answer })
    }
}

struct Setup {
    fx: Fixture,
    chain: Arc<MemoryChain>,
    staking_tx: Transaction,
}

fn setup() -> Setup {
    let fx = Fixture::new(FixtureShape::default(), 31).unwrap();
    let staking_tx = fx
        .staking_tx(
            OutPoint::new(Txid::from_byte_array([8; 32]), 1),
            Amount::from_sat(50_000),
            500,
            None,
        )
        .unwrap();
    let chain = Arc::new(MemoryChain::new(300));
    chain.confirm(staking_tx.clone(), 200);
    Setup {
        fx,
        chain,
        staking_tx,
    }
}

fn signer(s: &Setup, keys: Vec<Keypair>, mode: Mode) -> Signer {
    let wallet = FakeWallet {
        keys,
        mode,
        seen: Mutex::new(Vec::new()),
    };
    let backend = KeyBackend::Wallet(WalletSigner::new(Arc::new(wallet)));
    Signer::new(s.fx.params.clone(), s.chain.clone(), backend, u32::MAX)
}

#[tokio::test]
async fn a_wallet_holding_the_key_signs_and_the_signature_verifies() {
    let s = setup();
    // One wallet can hold several committee keys; the request names which one signs.
    let signer = signer(&s, vec![s.fx.members[0], s.fx.members[2]], Mode::Honest);
    for member in [0, 2] {
        let request = s.fx.request(&s.staking_tx, 500, member).unwrap();
        let signature = signer.sign(&request).await.unwrap();
        let staking = s.fx.staking_output(500).unwrap();
        let sighash = staking_core::unbonding::unbonding_sighash(
            &request.unbonding_tx,
            &staking,
            Amount::from_sat(50_000),
        )
        .unwrap();
        let key = s.fx.member_key(member).unwrap().x_only_public_key().0;
        staking_core::signing::verify_parsed(&sighash, &signature, &key).unwrap();
    }
}

#[tokio::test]
async fn a_wallet_without_the_key_is_an_internal_error_with_the_reference_reason() {
    let s = setup();
    let signer = signer(&s, vec![s.fx.members[0]], Mode::Honest);
    let request = s.fx.request(&s.staking_tx, 500, 1).unwrap();
    let error = signer.sign(&request).await.unwrap_err();
    assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(matches!(
        error,
        SignError::Signing(SigningError::NoSignature(key)) if key == s.fx.member_key(1).unwrap()
    ));
    assert!(error.to_string().contains(
        "no signature found in PSBT packet. Wallet does not maintain covenant public key"
    ));
}

#[tokio::test]
async fn a_locked_wallet_is_an_internal_error() {
    let s = setup();
    let signer = signer(&s, vec![s.fx.members[0]], Mode::Locked);
    let error = signer
        .sign(&s.fx.request(&s.staking_tx, 500, 0).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, SignError::Signing(SigningError::Wallet(_))));
    assert_eq!(error.body().message, "Internal service error");
}

#[tokio::test]
async fn a_signature_from_the_wallet_that_does_not_verify_is_never_returned() {
    let s = setup();
    let signer = signer(&s, vec![s.fx.members[0]], Mode::WrongMessage);
    let error = signer
        .sign(&s.fx.request(&s.staking_tx, 500, 0).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        SignError::Signing(SigningError::BadSignature(_))
    ));
}

#[tokio::test]
async fn the_wallet_is_not_asked_for_a_refused_request() {
    let s = setup();
    let wallet = Arc::new(FakeWallet {
        keys: vec![s.fx.members[0]],
        mode: Mode::Honest,
        seen: Mutex::new(Vec::new()),
    });
    let backend = KeyBackend::Wallet(WalletSigner::new(wallet.clone()));
    let signer = Signer::new(s.fx.params.clone(), s.chain.clone(), backend, u32::MAX);
    let mut request = s.fx.request(&s.staking_tx, 500, 0).unwrap();
    request.unbonding_tx.output[0].value += Amount::from_sat(1);
    assert!(signer.sign(&request).await.is_err());
    assert!(wallet.seen.lock().unwrap().is_empty());
}
