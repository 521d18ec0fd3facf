//! `stakingd api` as a process: from a TOML config (SQLite, in-process queues) it migrates,
//! serves the v1 API and stops cleanly on SIGTERM; a config with a mistake is refused with a
//! message naming the file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn testdata(path: &str) -> String {
    format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// A minimal HTTP/1.0 GET: status line and body.
fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

#[test]
fn api_serves_from_a_config_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("api.toml");
    std::fs::write(
        &config,
        format!(
            "params = \"{}\"\nfinality_providers = \"{}\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\nnetwork = \"signet\"\n\n[db]\nurl = \"sqlite:{}\"\n\n[queue]\nurl = \"in-process\"\n",
            testdata("api-fixtures/global-params-test.json"),
            testdata("api-fixtures/finality-providers-test.json"),
            dir.path().join("api.db").display(),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .args(["api", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let started = Instant::now();
    let health = loop {
        if let Some(answer) = get(port, "/healthcheck") {
            break answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the API did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(health.0.contains("200"), "{health:?}");
    assert_eq!(health.1, r#"{"data":"Server is up and running"}"#);
    let (status, body) = get(port, "/v1/global-params").unwrap();
    assert!(status.contains("200"), "{status}");
    let params: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(params["data"]["versions"].as_array().unwrap().len(), 4);

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
fn api_with_a_bad_config_says_which_file_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("api.toml");
    std::fs::write(
        &config,
        "params = \"bbn-1\"\n[server]\nlisten = \"not an address\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .args(["api", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("api.toml"), "{stderr}");
}
