//! `staker tx unbonding` rebuilds the staking API's golden unbonding tx from the staking tx
//! alone, and its sighash is the one the golden staker signature signs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::process::Command;

use serde_json::Value;
use staking_core::bitcoin::hashes::Hash;
use staking_core::bitcoin::TapSighash;
use staking_core::signing::verify;

fn testdata(path: &str) -> String {
    format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn unhex(s: &str) -> Result<Vec<u8>, staking_core::bitcoin::hex::HexToBytesError> {
    use staking_core::bitcoin::hex::FromHex;
    Vec::<u8>::from_hex(s)
}

fn golden() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(testdata("api-fixtures/unbonding-golden.json")).unwrap(),
    )
    .unwrap()
}

fn staker(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_staker"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_golden_staking_tx_yields_the_golden_unbonding_tx_and_sighash() {
    let g = golden();
    let event = &g["active_staking_event"];
    let height = event["staking_start_height"].as_u64().unwrap().to_string();
    let params = testdata("api-fixtures/global-params-test.json");
    let out = staker(&[
        "--json",
        "tx",
        "unbonding",
        "--params",
        &params,
        "--height",
        &height,
        event["staking_tx_hex"].as_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let req = &g["unbonding_request"];
    assert_eq!(v["txid"], req["unbonding_tx_hash_hex"]);
    assert_eq!(v["staking_txid"], event["staking_tx_hash_hex"]);
    assert_eq!(v["unbonding_value"], g["expected"]["unbonding_value_sat"]);
    assert_eq!(v["fee"], 10_000);
    assert_eq!(v["params_version"], g["expected"]["params_version"]);
    // The golden tx with its witness stripped is the unsigned tx printed.
    let golden_tx: staking_core::bitcoin::Transaction =
        staking_core::bitcoin::consensus::deserialize(
            &unhex(req["unbonding_tx_hex"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
    let mut stripped = golden_tx;
    stripped.input[0].witness.clear();
    assert_eq!(
        v["unsigned_tx_hex"].as_str().unwrap(),
        staking_core::bitcoin::consensus::encode::serialize_hex(&stripped)
    );
    let sighash = TapSighash::from_byte_array(
        unhex(v["staker_sighash"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let staker_key = event["staker_pk_hex"].as_str().unwrap().parse().unwrap();
    let signature = unhex(req["staker_signed_signature_hex"].as_str().unwrap()).unwrap();
    verify(&sighash, &signature, &staker_key).unwrap();
    assert!(v["psbt_base64"].as_str().unwrap().starts_with("cHNidP8"));
}

#[test]
fn a_tx_that_is_not_a_staking_tx_has_no_unbonding() {
    let g = golden();
    let params = testdata("api-fixtures/global-params-test.json");
    let out = staker(&[
        "tx",
        "unbonding",
        "--params",
        &params,
        "--height",
        "102",
        g["unbonding_request"]["unbonding_tx_hex"].as_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a staking tx"), "{stderr}");
}

#[test]
fn a_height_before_the_first_params_version_is_refused() {
    let g = golden();
    let params = testdata("api-fixtures/global-params-test.json");
    let out = staker(&[
        "tx",
        "unbonding",
        "--params",
        &params,
        "--height",
        "5",
        g["active_staking_event"]["staking_tx_hex"]
            .as_str()
            .unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}
