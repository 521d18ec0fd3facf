//! `unbond` and `status` against the real staking API (`api::run_with` on SQLite with the
//! in-process transport) and a devnet. The test plays the indexer (it publishes the active and
//! unbonding events the indexer would, built from the chain) and the covenant committee (it
//! completes the unbonding tx the API stored), so every step the staker CLI takes goes through
//! the API's real validation, storage and consumers.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::api::{parsed, publish_active, publish_unbonding, start_api, wait_state};
use common::{covenant, params, stderr, Env, STAKING_TIME, UNBONDING_FEE, UNBONDING_TIME};
use serde_json::Value;
use staking_core::bitcoin::consensus::encode::deserialize_hex;
use staking_core::bitcoin::hex::FromHex;
use staking_core::bitcoin::{OutPoint, Transaction};
use staking_core::signing::{sign, verify};
use staking_core::unbonding::{canonical_unbonding_tx, unbonding_sighash, UnbondingTerms};
use staking_core::witness::unbonding_witness;

#[test]
fn unbond_through_the_real_api_reaches_unbonding_once_the_committee_signed_tx_is_mined() {
    let mut env = Env::new();
    let api = start_api(&mut env);
    let (key, _) = env.funded_key(1_000_000);
    let staker = key["staker_pk_hex"].as_str().unwrap().to_owned();
    // Funded from the node's UTXO set (scantxoutset), no --utxo.
    let txid = env.stake_scanned(300_000);
    env.mine(2);
    let height = env.tip() - 1;
    let staking_tx = env.tx(&txid);

    // Before the indexer's event the API does not know the delegation; the CLI says when it will.
    let o = env.staker(&["unbond", "--staking-txid", &txid.to_string()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("it appears once the tx has the params' confirmation depth"),
        "{}",
        stderr(&o)
    );

    publish_active(&env, &api, &staking_tx, height);
    let d = wait_state(&env, &txid, "active");
    assert_eq!(d["staker_pk_hex"], staker);
    assert_eq!(d["staking_value"], 300_000);
    assert_eq!(d["staking_tx"]["start_height"], height);
    assert_eq!(d["staking_tx"]["timelock"], u64::from(STAKING_TIME));

    // `unbond --wait` submits, then follows the state until the unbonding tx is on chain.
    let child = Command::new(env!("CARGO_BIN_EXE_staker"))
        .args([
            "--json",
            "unbond",
            "--staking-txid",
            &txid.to_string(),
            "--wait",
            "--wait-timeout",
            "90",
        ])
        .envs(env.staker_env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The request the API stored: the canonical unbonding tx and a valid staker signature.
    let deadline = Instant::now() + Duration::from_secs(30);
    let request = loop {
        let stored = env.rt.block_on(api.store.unbonding_requests()).unwrap();
        if let Some(r) = stored.into_iter().next() {
            break r.request;
        }
        assert!(Instant::now() < deadline, "the API stored no request");
        std::thread::sleep(Duration::from_millis(100));
    };
    wait_state(&env, &txid, "unbonding_requested");
    let p = parsed(&staking_tx, height);
    let version = params().version(0).unwrap().clone();
    let staking = staking_core::script::StakingOutput::new(
        version.staking_keys(p.staker, p.finality_provider).unwrap(),
        p.staking_time,
    )
    .unwrap();
    let terms = UnbondingTerms {
        unbonding_time: UNBONDING_TIME,
        unbonding_fee: staking_core::bitcoin::Amount::from_sat(UNBONDING_FEE),
    };
    let expected = canonical_unbonding_tx(
        &staking,
        OutPoint::new(txid, p.staking_output_index),
        p.staking_value,
        &terms,
    )
    .unwrap();
    let stored_tx: Transaction = deserialize_hex(&request.unbonding_tx_hex).unwrap();
    assert_eq!(stored_tx, expected);
    assert_eq!(request.staking_tx_hash, txid);
    assert_eq!(request.unbonding_tx_hash, expected.compute_txid());
    assert_eq!(stored_tx.output[0].value.to_sat(), 300_000 - UNBONDING_FEE);
    let sighash = unbonding_sighash(&expected, &staking, p.staking_value).unwrap();
    let sig_bytes = Vec::<u8>::from_hex(&request.staker_signature_hex).unwrap();
    let staker_sig = verify(&sighash, &sig_bytes, &p.staker).unwrap();

    // The committee (quorum 2 of our 3 keys) completes the tx; it is mined; the indexer's event
    // moves the delegation to `unbonding`, which ends the CLI's wait.
    let cov: Vec<_> = (1..=2u8)
        .map(|i| {
            (
                covenant(i).x_only_public_key().0,
                sign(&sighash, &covenant(i)),
            )
        })
        .collect();
    let mut signed = expected.clone();
    signed.input[0].witness = unbonding_witness(&staking, &staker_sig, &cov).unwrap();
    env.node.submit_tx(signed.clone()).unwrap();
    env.mine(1);
    publish_unbonding(&env, &api, txid, &signed, env.tip());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["submitted"], true);
    assert_eq!(v["state"], "unbonding");
    assert_eq!(
        v["unbonding_tx_hash_hex"],
        expected.compute_txid().to_string()
    );
    let progress = stderr(&out);
    assert!(
        progress.contains(": unbonding_requested") && progress.contains(": unbonding\n"),
        "{progress}"
    );

    // status shows the unbonding tx; a second unbond is refused with what to do.
    let d = wait_state(&env, &txid, "unbonding");
    assert_eq!(
        d["unbonding_tx"]["tx_hex"],
        staking_core::bitcoin::consensus::encode::serialize_hex(&signed)
    );
    let o = env.staker(&["unbond", "--staking-txid", &txid.to_string()]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("is `unbonding`; only an `active` delegation"),
        "{}",
        stderr(&o)
    );

    // The unbonding output: too early (exit 3 "not yet", blocks remaining), then withdrawn.
    let unbonding_txid = expected.compute_txid().to_string();
    let o = env.staker(&[
        "--json",
        "withdraw",
        "--unbonding-txid",
        &unbonding_txid,
        "--fee-rate",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let w: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(w["kind"], "unbonding");
    assert_eq!(w["blocks_remaining"], u64::from(UNBONDING_TIME) - 1);
    env.mine(u32::from(UNBONDING_TIME) - 1);
    let w = env.staker_json(&[
        "withdraw",
        "--unbonding-txid",
        &unbonding_txid,
        "--fee-rate",
        "2",
    ]);
    assert_eq!(w["broadcast"], true);
    env.mine(1);
    assert!(!env.unspent(OutPoint::new(expected.compute_txid(), 0)));
}

#[test]
fn unbond_with_another_key_file_is_refused_by_the_cli_and_a_forged_signature_by_the_api() {
    let mut env = Env::new();
    let api = start_api(&mut env);
    let (_key, _) = env.funded_key(1_000_000);
    let txid = env.stake_scanned(200_000);
    env.mine(2);
    let height = env.tip() - 1;
    let staking_tx = env.tx(&txid);
    publish_active(&env, &api, &staking_tx, height);
    wait_state(&env, &txid, "active");

    // A signature over the right tx by the wrong key: the CLI checks its own key first...
    let other = env.dir.path().join("other-key.json");
    let o = env.staker(&[
        "--json",
        "keys",
        "generate",
        "--key-file",
        other.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = env.staker(&[
        "unbond",
        "--staking-txid",
        &txid.to_string(),
        "--key-file",
        other.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("use the staker's key file"),
        "{}",
        stderr(&o)
    );

    // ...and the API itself refuses a forged body (its real validation, through the CLI's client).
    let good = env.staker_json(&["unbond", "--staking-txid", &txid.to_string(), "--no-submit"]);
    let mut body = good["request"].clone();
    body["staker_signed_signature_hex"] = Value::String("11".repeat(64));
    let url = format!("{}/v1/unbonding", env.api_url.as_deref().unwrap());
    let response = env.rt.block_on(async {
        reqwest::Client::new()
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap()
    });
    assert_eq!(response.status().as_u16(), 403);
    let error: Value = env.rt.block_on(response.json()).unwrap();
    assert_eq!(error["errorCode"], "VALIDATION_ERROR", "{error}");
    // Nothing was stored and the delegation is still active.
    assert!(env
        .rt
        .block_on(api.store.unbonding_requests())
        .unwrap()
        .is_empty());
    wait_state(&env, &txid, "active");
}
