//! `kill -9` of the all-in-one `stakingd devnet` on the in-process queues loses no event: an
//! event the indexer's relay marked sent but the API had not consumed when the process died is
//! published again at the next start, and applied exactly once.
//!
//! The window between the relay's `mark_sent` and the API's commit is milliseconds wide, so the
//! test holds it open: on PostgreSQL it locks the API's idempotency table
//! (`api_consumed_messages`, the first write of every consumer transaction) while the demo
//! stakes, waits until the stake's events are marked sent, and kills the process then.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, Row};

/// A running `stakingd devnet` (in-process queues) with its stdout collected.
struct Devnet {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Devnet {
    fn start(datadir: &Path, database: &str, extra: &[&str]) -> Devnet {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stakingd"))
            .args([
                "devnet",
                "--rpc-port",
                "0",
                "--api-port",
                "0",
                "--esplora-port",
                "0",
            ])
            .args(["--block-interval", "1", "--database-url", database])
            .arg("--datadir")
            .arg(datadir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                println!("devnet> {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Devnet { child, lines }
    }

    /// The value printed after `label`, waiting up to two minutes.
    fn printed(&mut self, label: &str) -> String {
        let started = Instant::now();
        loop {
            let found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix(label).map(|v| v.trim().to_owned()));
            if let Some(v) = found {
                return v;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("stakingd devnet exited ({status}) before printing {label:?}");
            }
            assert!(started.elapsed() < Duration::from_secs(120), "no {label:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown code runs.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on the API: status code and JSON body (`Null` when the body is not JSON).
fn api_get(api: &str, path: &str) -> (u16, Value) {
    let host = api.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The sent `active_staking_queue` event's body, once the relay has marked one sent.
async fn sent_active_staking(db: &mut PgConnection) -> Option<Value> {
    let row = sqlx::query(
        "SELECT payload FROM outbox WHERE queue = 'active_staking_queue' \
         AND sent_at IS NOT NULL ORDER BY id LIMIT 1",
    )
    .fetch_optional(&mut *db)
    .await
    .unwrap()?;
    // The stake's stats event is written in the same block; wait until it is sent too.
    let unsent: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE queue = 'staking_stats_queue' AND sent_at IS NULL",
    )
    .fetch_one(&mut *db)
    .await
    .unwrap();
    (unsent == 0).then(|| serde_json::from_str(row.get::<&str, _>("payload")).unwrap())
}

/// Waits until the API shows `hash` and returns `/v1/stats`'s data.
fn wait_for_delegation(api: &str, hash: &str) -> (Value, Value) {
    let started = Instant::now();
    loop {
        let (code, d) = api_get(api, &format!("/v1/delegation?staking_tx_hash_hex={hash}"));
        if code == 200 {
            let (code, stats) = api_get(api, "/v1/stats");
            assert_eq!(code, 200, "{stats}");
            return (d["data"].clone(), stats["data"].clone());
        }
        assert_eq!(code, 404, "{d}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the API never showed the stake {hash} after the restart"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_kill_9_after_a_stake_is_indexed_and_before_the_api_has_it_loses_nothing_and_applies_it_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = runtime.block_on(testkit::PgTestDb::create_or_skip("devnet_kill")) else {
        return;
    };
    let database = db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("devnet");

    let mut first = Devnet::start(&datadir, &database, &["--demo"]);
    first.printed("API URL:");
    // Hold every API consumer at its first write; the indexer and its relay go on.
    let mut lock = runtime.block_on(PgConnection::connect(&database)).unwrap();
    runtime
        .block_on(lock.execute("BEGIN; LOCK TABLE api_consumed_messages IN EXCLUSIVE MODE"))
        .unwrap();
    let mut probe = runtime.block_on(PgConnection::connect(&database)).unwrap();
    let started = Instant::now();
    let event = loop {
        if let Some(event) = runtime.block_on(sent_active_staking(&mut probe)) {
            break event;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the demo's stake was never indexed and relayed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    first.kill_9();
    runtime.block_on(lock.execute("ROLLBACK")).unwrap();
    let hash = event["staking_tx_hash_hex"].as_str().unwrap().to_owned();

    // The kill hit the window: the events were marked sent, and the API has none of them.
    let consumed: i64 = runtime
        .block_on(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM api_consumed_messages \
                 WHERE queue IN ('active_staking_queue', 'staking_stats_queue')",
            )
            .fetch_one(&mut probe),
        )
        .unwrap();
    assert_eq!(consumed, 0, "the API consumed the stake before the kill");
    let known: i64 = runtime
        .block_on(sqlx::query_scalar("SELECT COUNT(*) FROM api_delegations").fetch_one(&mut probe))
        .unwrap();
    assert_eq!(known, 0);

    // After a restart the API has the stake, exactly as a run without the kill would.
    let mut second = Devnet::start(&datadir, &database, &[]);
    let api = second.printed("API URL:");
    let (delegation, stats) = wait_for_delegation(&api, &hash);
    let value = event["staking_value"].as_u64().unwrap();
    assert_eq!(delegation["state"], "active", "{delegation}");
    assert_eq!(delegation["staking_value"], value, "{delegation}");
    assert_eq!(
        delegation["staker_pk_hex"], event["staker_pk_hex"],
        "{delegation}"
    );
    let expected = serde_json::json!({
        "active_tvl": value, "total_tvl": value, "active_delegations": 1,
        "total_delegations": 1, "total_stakers": 1,
    });
    for (field, want) in expected.as_object().unwrap() {
        assert_eq!(&stats[field], want, "{field} in {stats}");
    }

    // Killed again and restarted: everything consumed stays applied once, nothing doubles.
    second.kill_9();
    let mut third = Devnet::start(&datadir, &database, &[]);
    let api = third.printed("API URL:");
    let (again, stats_again) = wait_for_delegation(&api, &hash);
    assert_eq!(again, delegation);
    for (field, want) in expected.as_object().unwrap() {
        assert_eq!(&stats_again[field], want, "{field} in {stats_again}");
    }
    let records: i64 = runtime
        .block_on(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM api_consumed_messages WHERE queue = 'active_staking_queue'",
            )
            .fetch_one(&mut probe),
        )
        .unwrap();
    assert_eq!(records, 1, "the stake was consumed once");
    drop(third);
}
