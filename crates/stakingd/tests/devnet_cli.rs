//! `stakingd devnet --chain-only` as a process: prints its RPC URL and credentials, serves,
//! stops on SIGTERM. The all-in-one devnet is tested in `devnet_all_in_one.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn devnet_chain_only_prints_its_rpc_url_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .args([
            "devnet",
            "--chain-only",
            "--rpc-port",
            "0",
            "--esplora-port",
            "0",
            "--datadir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("output").unwrap();
        if let Some(url) = line.strip_prefix("RPC URL:") {
            break url.trim().to_owned();
        }
    };
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let password = lines.next().unwrap().unwrap();
    assert!(password.starts_with("RPC user:"));
    // SIGTERM, then the process exits cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(dir.path().join("blocks.dat").exists());
}
