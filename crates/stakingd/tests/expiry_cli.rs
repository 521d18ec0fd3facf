#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
//! `stakingd expiry-checker` and `stakingd api` from environment and flags: a missing setting
//! is refused with where to set it; the API starts with no config file at all; the checker
//! runs against a node and stops cleanly on SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn testdata(path: &str) -> String {
    format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

fn wait_for(port: u16, path: &str) -> String {
    let started = Instant::now();
    loop {
        if let Some(r) = get(port, path) {
            return r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{path} never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the child if a failed assertion unwinds past it, so a failing test leaves no process.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn stop(child: &mut std::process::Child) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn expiry_checker_without_a_database_says_where_to_set_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .arg("expiry-checker")
        .env_remove("STAKINGD_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("database_url is not set"), "{stderr}");
}

#[test]
fn expiry_checker_help_teaches_with_an_example() {
    let out = Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .args(["expiry-checker", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Example:") && help.contains("STAKINGD_BITCOIND_URL"),
        "{help}"
    );
}

#[test]
fn expiry_checker_runs_from_env_and_flags_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let rpc = TcpListener::bind("127.0.0.1:0").unwrap();
    let rpc_port = rpc.local_addr().unwrap().port();
    drop(rpc);
    let metrics = free_port();
    // The node is down: the checker keeps retrying (transient) and still serves /health.
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_stakingd"))
            .arg("expiry-checker")
            .env(
                "STAKINGD_DATABASE_URL",
                format!("sqlite:{}", dir.path().join("api.db").display()),
            )
            .env("STAKINGD_BITCOIND_USER", "u")
            .env("STAKINGD_BITCOIND_PASSWORD", "p")
            .args(["--bitcoind-url", &format!("http://127.0.0.1:{rpc_port}")])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics}")])
            .args(["--poll-interval-ms", "100"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let health = wait_for(metrics, "/health");
    assert!(
        health.contains("200 OK") && health.ends_with("ok"),
        "{health}"
    );
    let m = wait_for(metrics, "/metrics");
    assert!(m.contains("expiry_timelock_rows"), "{m}");
    stop(&mut child.0);
}

#[test]
fn api_runs_from_env_and_flags_without_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_stakingd"))
            .arg("api")
            .env_remove("STAKINGD_API_CONFIG")
            .env(
                "STAKINGD_API_PARAMS",
                testdata("api-fixtures/global-params-test.json"),
            )
            .env(
                "STAKINGD_API_DB_URL",
                format!("sqlite:{}", dir.path().join("api.db").display()),
            )
            .args([
                "--finality-providers",
                &testdata("api-fixtures/finality-providers-test.json"),
            ])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--network", "signet", "--queue-url", "in-process"])
            .args(["--set", "server.max_content_length=100"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let health = wait_for(port, "/healthcheck");
    assert!(health.contains("Server is up and running"), "{health}");
    stop(&mut child.0);
}

#[test]
fn api_with_a_missing_setting_names_the_variable_and_the_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .args(["api", "--params", "bbn-test-4"])
        .env_remove("STAKINGD_API_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("finality_providers is not set")
            && stderr.contains("STAKINGD_API_FINALITY_PROVIDERS")
            && stderr.contains("--finality-providers"),
        "{stderr}"
    );
}
