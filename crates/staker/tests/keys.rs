//! `staker keys`: generate, import (WIF or hex), show; the mainnet guard; no overwrite.

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
        .env_remove("STAKER_NETWORK")
        .env_remove("STAKER_KEY_FILE")
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// secret 0x01…01: x-only key from BIP340's generator multiples is fixed, so the addresses are too.
const SECRET: &str = "0101010101010101010101010101010101010101010101010101010101010101";

#[test]
fn import_hex_then_show_gives_the_same_key_and_both_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.json");
    let f = file.to_str().unwrap();
    let imported = json(&staker(&[
        "--json",
        "keys",
        "import",
        "--network",
        "signet",
        "--key-file",
        f,
        SECRET,
    ]));
    let shown = json(&staker(&[
        "--json",
        "keys",
        "show",
        "--network",
        "signet",
        "--key-file",
        f,
    ]));
    assert_eq!(imported["staker_pk_hex"], shown["staker_pk_hex"]);
    assert_eq!(
        shown["staker_pk_hex"],
        "1b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f"
    );
    assert!(shown["p2tr_address"].as_str().unwrap().starts_with("tb1p"));
    assert!(shown["p2wpkh_address"]
        .as_str()
        .unwrap()
        .starts_with("tb1q"));
    assert_eq!(shown["created"], false);

    // The file is for signet: loading it as regtest is refused; it is never overwritten.
    let o = staker(&["keys", "show", "--network", "regtest", "--key-file", f]);
    assert!(
        err(&o).contains("is for signet but the network is regtest"),
        "{}",
        err(&o)
    );
    let o = staker(&["keys", "generate", "--network", "signet", "--key-file", f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("already exists"), "{}", err(&o));
}

#[test]
fn generate_writes_a_key_under_the_data_dir_and_its_wif_imports_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let made = json(&staker(&[
        "--json",
        "keys",
        "generate",
        "--network",
        "regtest",
        "--data-dir",
        d,
    ]));
    let path = dir.path().join("regtest/staker-key.json");
    assert_eq!(made["key_file"], path.to_str().unwrap());
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let other = dir.path().join("copy.json");
    let again = json(&staker(&[
        "--json",
        "keys",
        "import",
        "--network",
        "regtest",
        "--key-file",
        other.to_str().unwrap(),
        file["wif"].as_str().unwrap(),
    ]));
    assert_eq!(again["staker_pk_hex"], made["staker_pk_hex"]);
    assert!(made["p2tr_address"].as_str().unwrap().starts_with("bcrt1p"));
}

#[test]
fn mainnet_needs_the_explicit_flag_and_a_mainnet_wif_is_not_imported_for_a_test_network() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.json");
    let f = f.to_str().unwrap();
    let o = staker(&["keys", "generate", "--network", "mainnet", "--key-file", f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("refusing mainnet"), "{}", err(&o));
    assert!(!std::path::Path::new(f).exists());
    let made = json(&staker(&[
        "--json",
        "keys",
        "generate",
        "--network",
        "mainnet",
        "--key-file",
        f,
        "--i-know-this-is-mainnet",
    ]));
    assert!(made["p2tr_address"].as_str().unwrap().starts_with("bc1p"));
    let file: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
    let other = dir.path().join("t.json");
    let o = staker(&[
        "keys",
        "import",
        "--network",
        "signet",
        "--key-file",
        other.to_str().unwrap(),
        file["wif"].as_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("import it with the matching --network"),
        "{}",
        err(&o)
    );
}
