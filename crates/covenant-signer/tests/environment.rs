//! A running `covenant-signer start` holds none of the secrets its config took from the
//! environment (key passphrase, HMAC key, RPC passwords) in its process environment: not in
//! `environ`, and not in the block the kernel shows as `/proc/<pid>/environ` (issue 15).

#![cfg(target_os = "linux")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PASSPHRASE: &str = "PASSPHRASE-secret-in-env-31337";
const HMAC_KEY: &str = "HMACKEY-secret-in-env-0123456789abcdef0123";
const RPC_PASSWORD: &str = "RPCPASS-secret-in-env-4242";
const WALLET_PASSWORD: &str = "WALLETPASS-secret-in-env-4343";

/// Kills the child when the test ends, passed or not.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn secrets_are_gone_from_the_process_environment_once_the_signer_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signer.toml");
    // The wallet backend: the server starts without a key file and without calling the node.
    std::fs::write(
        &config,
        r#"
        [server]
        port = 0
        [metrics]
        enabled = false
        [auth]
        hmac-key-env = "TEST_SIGNER_HMAC"
        [btc-config]
        url = "http://127.0.0.1:1"
        user = "chain"
        pass-env = "TEST_SIGNER_RPC_PASSWORD"
        [btc-signer-config]
        url = "http://127.0.0.1:1"
        user = "wallet"
        pass-env = "TEST_SIGNER_WALLET_PASSWORD"
        [signer]
        backend = "wallet"
        passphrase-env = "TEST_SIGNER_PASSPHRASE"
        "#,
    )
    .unwrap();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_covenant-signer"))
            .args(["start", "--params", "bbn-1", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("TEST_SIGNER_PASSPHRASE", PASSPHRASE)
            .env("TEST_SIGNER_HMAC", HMAC_KEY)
            .env("TEST_SIGNER_RPC_PASSWORD", RPC_PASSWORD)
            .env("TEST_SIGNER_WALLET_PASSWORD", WALLET_PASSWORD)
            .env("TEST_SIGNER_NOT_A_SECRET", "still-here")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("the signer did not start ({e}):\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if line.contains("covenant signer listening") {
            break;
        }
    }
    assert!(log.contains("secrets read and removed"), "{log}");
    assert!(!log.contains("not from the process's original"), "{log}");

    let environ = std::fs::read(format!("/proc/{}/environ", child.0.id())).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        environ.contains("TEST_SIGNER_NOT_A_SECRET=still-here"),
        "not the signer's environment: {environ}"
    );
    for secret in [PASSPHRASE, HMAC_KEY, RPC_PASSWORD, WALLET_PASSWORD] {
        assert!(
            !environ.contains(secret),
            "{secret} is still in /proc/<pid>/environ"
        );
        assert!(!log.contains(secret), "{secret} was logged:\n{log}");
    }
    for name in [
        "TEST_SIGNER_PASSPHRASE=",
        "TEST_SIGNER_HMAC=",
        "TEST_SIGNER_RPC_PASSWORD=",
        "TEST_SIGNER_WALLET_PASSWORD=",
    ] {
        assert!(
            !environ.contains(name),
            "{name} is still in the environment"
        );
    }
}
