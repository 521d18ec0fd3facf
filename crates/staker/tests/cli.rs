//! The `staker` binary as a user runs it: exit codes, exact error texts, JSON fields.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
use std::process::{Command, Output};

use serde_json::Value;

fn staker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_staker"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn json_of(o: &Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap()
}

fn testdata(path: &str) -> String {
    format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR"))
}

const STAKER: &str = "aff94eb65a2fe773a57c5bd54e62d8436a5467573565214028422b41bd43e29b";
const FP: &str = "c333bf065809ed12b162dc3c849f8cf65219125fdfde98770c2b285f04ff9960";

#[test]
fn params_check_accepts_both_presets_and_the_files_with_a_table() {
    for arg in [
        "bbn-1",
        "bbn-test-4",
        &testdata("params/bbn-1.global-params.json"),
    ] {
        let o = staker(&["params", "check", arg]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let text = stdout(&o);
        assert!(text.contains("is valid"), "{text}");
        assert!(text.contains("activation"), "{text}");
    }
    let text = stdout(&staker(&["params", "check", "bbn-1"]));
    assert!(
        text.contains("1        864790      height 864799     62626e31  6 of 9"),
        "{text}"
    );
}

#[test]
fn params_check_rejects_a_broken_file_with_the_reference_error_and_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("params.json");
    let mut json: Value = serde_json::from_str(
        &std::fs::read_to_string(testdata("params/bbn-1.global-params.json")).unwrap(),
    )
    .unwrap();
    json["versions"][1]["covenant_quorum"] = Value::from(10);
    std::fs::write(&path, json.to_string()).unwrap();
    let o = staker(&["params", "check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("invalid params with version 1: covenant quorum 10 cannot be more than the amount of covenants 9"),
        "{}",
        stderr(&o)
    );
    let o = staker(&["--json", "params", "check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"], "invalid params with version 1: covenant quorum 10 cannot be more than the amount of covenants 9");
}

#[test]
fn params_check_of_a_missing_file_says_what_to_do() {
    let o = staker(&["params", "check", "/no/such/file.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("give a readable file, or a preset: bbn-test-4, bbn-1"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn params_check_json_is_the_reference_format_plus_a_verdict() {
    let v = json_of(&staker(&["params", "check", "bbn-test-4", "--json"]));
    assert_eq!(v["valid"], true);
    assert_eq!(v["versions"].as_array().unwrap().len(), 5);
    assert_eq!(v["versions"][4]["cap_height"], 223661);
    assert_eq!(v["confirmation_depth"], 10);
}

#[test]
fn staking_output_reproduces_appendix_a2_for_bbn_1_version_0() {
    let v = json_of(&staker(&[
        "tx",
        "staking-output",
        "--params",
        "bbn-1",
        "--height",
        "857910",
        "--staker-pk",
        STAKER,
        "--fp-pk",
        FP,
        "--staking-time",
        "64000",
        "--json",
    ]));
    assert_eq!(v["params_version"], 0);
    assert_eq!(v["timelock_script"], format!("20{STAKER}ad0300fa00b2"));
    assert_eq!(
        v["merkle_root"],
        "03c88da550f542d725f79b1c8cc8d936d0aac833e37672373ea796733723d2db"
    );
    assert_eq!(
        v["script_pubkey"],
        "5120284989c5958a2adda1ac39c98e97f1ccd9b45cc029b09a70fadcdf26e9dbfb56"
    );
    assert_eq!(
        v["address"],
        "bc1p9pycn3v43g4dmgdv88yca9l3envmghxq9xcf5u86mn0jd6wmldtqz94haj"
    );
    assert_eq!(v["control_blocks"]["slashing"], "c050929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac00f484eb8bc0df4e7a7e0ac973af6ca7228d6842a762a87ec74b036f60e2ce7d1");
    assert_eq!(
        v["unbonding_output"]["script_pubkey"],
        "5120af8964471750a84d2adef85d0930ae1c03ac644bbb6ca50421fc7baaf0b7880b"
    );
    assert_eq!(v["unbonding_script"].as_str().unwrap().len(), 342 * 2);
    assert_eq!(v["slashing_script"].as_str().unwrap().len(), 376 * 2);
}

#[test]
fn staking_output_reproduces_appendix_a1_on_signet() {
    let v = json_of(&staker(&[
        "tx",
        "staking-output",
        "--params",
        "bbn-test-4",
        "--height",
        "198665",
        "--staker-pk",
        STAKER,
        "--fp-pk",
        FP,
        "--staking-time",
        "64000",
        "--json",
    ]));
    assert_eq!(v["params_version"], 1);
    assert_eq!(
        v["address"],
        "tb1pxfkfs0ue9mlrng3t245tw4ju49f3zersumvgzaa2g8ka7thqgssq4hqdcj"
    );
    assert_eq!(
        v["unbonding_output"]["script_pubkey"],
        "5120942ab85318eb8be1394545b84eae9df0715ab3c8d168ed76f2e1dc264eaaa5d3"
    );
    assert_eq!(
        v["op_return_script"],
        format!("6a476262743400{STAKER}{FP}fa00")
    );
}

#[test]
fn staking_output_explains_bad_input() {
    let run = |height: &str, staker_pk: &str, time: &str, extra: &[&str]| {
        let mut args = vec![
            "tx",
            "staking-output",
            "--params",
            "bbn-1",
            "--height",
            height,
            "--staker-pk",
            staker_pk,
            "--fp-pk",
            FP,
            "--staking-time",
            time,
        ];
        args.extend_from_slice(extra);
        let o = staker(&args);
        assert!(!o.status.success());
        stderr(&o)
    };
    assert!(run("857909", STAKER, "64000", &[])
        .contains("no params version is active at height 857909: the first activates at 857910"));
    assert!(run("857910", STAKER, "1000", &[])
        .contains("staking time 1000 is outside params version 0's bounds 64000..=64000"));
    assert!(run("857910", &format!("02{STAKER}"), "64000", &[])
        .contains("give the 32-byte x-only form"));
    assert!(run("857910", &STAKER[..60], "64000", &[]).contains("is 30 bytes"));
    assert!(run("857910", &"00".repeat(32), "64000", &[]).contains("not a point on secp256k1"));
    assert!(run("857910", FP, "64000", &[]).contains("appears more than once"));
    assert!(
        run("857910", STAKER, "64000", &["--network", "moon"]).contains("unknown network `moon`")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    std::fs::copy(testdata("params/bbn-1.global-params.json"), &file).unwrap();
    let o = staker(&[
        "tx",
        "staking-output",
        "--params",
        file.to_str().unwrap(),
        "--height",
        "857910",
        "--staker-pk",
        STAKER,
        "--fp-pk",
        FP,
        "--staking-time",
        "64000",
    ]);
    assert!(stderr(&o).contains("add --network"), "{}", stderr(&o));
}

fn other_tx(txid: &str) -> String {
    let all: Value = serde_json::from_str(
        &std::fs::read_to_string(testdata("realtx/other-staking-txs/classified.json")).unwrap(),
    )
    .unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|c| c["txid"] == txid)
        .unwrap()["hex"]
        .as_str()
        .unwrap()
        .to_owned()
}

const MAINNET_300_BTC: &str = "7d90210b21aad480cd88fd8399aa6d47e6b3f2ecea2f9f9cfdd79598430e3003";

#[test]
fn inspect_reports_a_valid_mainnet_stake_with_every_field() {
    let hex = other_tx(MAINNET_300_BTC);
    let v = json_of(&staker(&[
        "tx", "inspect", "--params", "bbn-1", "--height", "864790", "--json", &hex,
    ]));
    assert_eq!(v["txid"], MAINNET_300_BTC);
    assert_eq!(v["kind"], "staking");
    assert_eq!(v["params_version"], 1);
    assert_eq!(v["staking_output_index"], 0);
    assert_eq!(v["staking_value"], 30_000_400_000u64);
    assert_eq!(v["staking_time"], 64000);
    assert_eq!(v["op_return_index"], 1);
    assert_eq!(v["staker_pk"].as_str().unwrap().len(), 64);
    assert_eq!(v["finality_provider_pk"].as_str().unwrap().len(), 64);
    assert!(v["staking_address"].as_str().unwrap().starts_with("bc1p"));
}

#[test]
fn inspect_explains_invalid_and_not_staking_txs() {
    let hex = other_tx(MAINNET_300_BTC);
    let v = json_of(&staker(&[
        "tx", "inspect", "--params", "bbn-1", "--height", "864789", "--json", &hex,
    ]));
    assert_eq!(v["kind"], "invalid_staking");
    assert_eq!(
        v["reason"],
        "staking value 30000400000 sat is above max_staking_amount 5000000 sat"
    );
    assert_eq!(v["reason_code"], "above_max_staking_amount");
    let v = json_of(&staker(&[
        "tx",
        "inspect",
        "--params",
        "bbn-test-4",
        "--height",
        "220637",
        "--json",
        &hex,
    ]));
    assert_eq!(v["kind"], "not_staking");
    assert_eq!(v["reason_code"], "no_tagged_op_return");
    // Text output carries the same facts.
    let o = staker(&[
        "tx", "inspect", "--params", "bbn-1", "--height", "864789", &hex,
    ]);
    assert!(
        stdout(&o).contains("kind: invalid_staking"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn inspect_rejects_bad_hex_with_advice() {
    let hex = other_tx(MAINNET_300_BTC);
    let o = staker(&[
        "tx",
        "inspect",
        "--params",
        "bbn-1",
        "--height",
        "864790",
        &hex[..hex.len() - 10],
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("TX_HEX must be a whole raw transaction"),
        "{}",
        stderr(&o)
    );
    let o = staker(&[
        "tx", "inspect", "--params", "bbn-1", "--height", "864790", "xyz",
    ]);
    assert!(stderr(&o).contains("not valid hex"), "{}", stderr(&o));
}

#[test]
fn help_names_the_presets_and_the_commands() {
    let text = stdout(&staker(&["--help"]));
    assert!(
        text.contains("bbn-test-4") && text.contains("params") && text.contains("tx"),
        "{text}"
    );
    let text = stdout(&staker(&["tx", "inspect", "--help"]));
    assert!(
        text.contains("--height") && text.contains("TX_HEX"),
        "{text}"
    );
}

#[test]
fn help_documents_every_exit_status() {
    let text = stdout(&staker(&["--help"]));
    for line in [
        "Exit status:",
        "0  done",
        "1  error:",
        "2  usage:",
        "3  not yet:",
        "4  refused:",
        "5  unreachable:",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
}

#[test]
fn unbond_signer_flags_are_exclusive_and_a_key_origin_needs_psbt_out() {
    let txid = "11".repeat(32);
    let base = [
        "unbond",
        "--params",
        "bbn-test-4",
        "--api-url",
        "http://127.0.0.1:1",
        "--staking-txid",
        &txid,
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        staker(&args)
    };
    let o = run(&["--psbt-out", "a.psbt", "--psbt-in", "b.psbt"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["--psbt-in", "b.psbt", "--signature", "00"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["--key-origin", "[d34db33f/86'/1'/0'/0/0]"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["--psbt-out", "a.psbt", "--key-origin", "[d34db3/0]"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not 8 hex characters"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--psbt-out", "a.psbt", "--wait"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn an_api_that_cannot_be_reached_exits_5() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let o = staker(&[
        "unbond",
        "--params",
        "bbn-test-4",
        "--api-url",
        &url,
        "--staking-txid",
        &"11".repeat(32),
        "--psbt-out",
        "never-written.psbt",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot reach the API"),
        "{}",
        stderr(&o)
    );
    assert!(!std::path::Path::new("never-written.psbt").exists());
}

#[test]
fn no_help_text_of_any_subcommand_prints_a_password() {
    let leaks = testkit::help_password_leaks(std::path::Path::new(env!("CARGO_BIN_EXE_staker")));
    assert!(leaks.is_empty(), "{leaks:#?}");
}
