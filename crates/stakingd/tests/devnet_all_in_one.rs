//! The all-in-one `stakingd devnet` as a process: it starts every part (chain, committee,
//! indexer, API, expiry checker, unbonding pipeline), serves, and stops cleanly on Ctrl-C
//! (SIGINT) and SIGTERM;
//! `--demo --exit-after-demo` walks two stakers through stake → unbond → withdraw and
//! stake → expiry → withdraw with every state read back from the API, then exits 0 (the CI's
//! all-in-one lifecycle); a restart on the same data directory resumes chain, database and
//! committee; the same demo runs on PostgreSQL and RabbitMQ.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

mod metrics_check;

/// A running `stakingd devnet` with its stdout collected line by line.
struct Devnet {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr_path: std::path::PathBuf,
}

impl Devnet {
    fn start(datadir: &Path, extra: &[&str]) -> Devnet {
        let stderr_path = datadir.with_extension(format!(
            "stderr.{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_stakingd"))
            .args([
                "devnet",
                "--rpc-port",
                "0",
                "--api-port",
                "0",
                "--esplora-port",
                "0",
                "--datadir",
            ])
            .arg(datadir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
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
        Devnet {
            child,
            lines,
            stderr_path,
        }
    }

    fn stdout(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The value printed after `label` (e.g. `API URL:`), waiting up to `timeout`.
    fn printed(&mut self, label: &str, timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            if let Some(v) = self
                .stdout()
                .iter()
                .find_map(|l| l.strip_prefix(label).map(|v| v.trim().to_owned()))
            {
                return v;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "stakingd devnet exited ({status}) before printing {label:?}; stderr:\n{}",
                    self.stderr_tail()
                );
            }
            assert!(
                started.elapsed() < timeout,
                "no {label:?} within {timeout:?}; stderr:\n{}",
                self.stderr_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` (`TERM`, or `INT` as Ctrl-C does).
    fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} failed");
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return status;
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "stakingd devnet still running after {timeout:?}; stdout:\n{}\nstderr:\n{}",
                    self.stdout().join("\n"),
                    self.stderr_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http://host:port` → (host, port).
fn host_port(url: &str) -> (String, u16) {
    let rest = url.trim_start_matches("http://").trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').unwrap();
    (host.to_owned(), port.parse().unwrap())
}

/// A minimal HTTP/1.0 request: status code and body.
fn http(url: &str, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let (host, port) = host_port(url);
    let mut stream = TcpStream::connect((host.as_str(), port)).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: Basic {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

fn api_get(api: &str, path: &str) -> Value {
    let (code, body) = http(api, "GET", path, None, "");
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// `devnet:devnet`, base64.
const DEVNET_AUTH: &str = "ZGV2bmV0OmRldm5ldA==";

fn rpc(url: &str, method: &str) -> Value {
    let (code, body) = http(
        url,
        "POST",
        "/",
        Some(DEVNET_AUTH),
        &format!(r#"{{"method":"{method}","params":[],"id":1}}"#),
    );
    assert_eq!(code, 200, "{method}: {body}");
    serde_json::from_str::<Value>(&body).unwrap()["result"].clone()
}

/// Each expected piece appears in `lines`, in this order.
fn assert_in_order(lines: &[String], expected: &[&str]) {
    let mut at = 0;
    for want in expected {
        match lines[at..].iter().position(|l| l.contains(want)) {
            Some(i) => at += i + 1,
            None => panic!(
                "expected {want:?} after line {at} of the output:\n{}",
                lines.join("\n")
            ),
        }
    }
}

/// The narration every complete demo prints, in order.
const DEMO_STEPS: &[&str] = &[
    "Alice: funded",
    "Alice: broadcast staking tx",
    "as `active`",
    "Alice: signed the canonical unbonding tx",
    "as `unbonding_requested`",
    "as `unbonding`",
    "as `unbonded`",
    "Alice: withdrew",
    "as `withdrawn`",
    "Bob: funded",
    "Bob: broadcast staking tx",
    "as `active`",
    "as `unbonded`",
    "Bob: withdrew",
    "as `withdrawn`",
    "API stats: 2 delegations in total, 0 active",
    "[demo] complete",
    "demo complete; stopping (--exit-after-demo)",
    "stakingd devnet stopped",
];

const DEMO_TIMEOUT: Duration = Duration::from_secs(420);

/// The last `(tip N)` the demo printed.
fn last_tip(lines: &[String]) -> u64 {
    lines
        .iter()
        .rev()
        .filter_map(|l| l.split("(tip ").nth(1))
        .find_map(|rest| rest.trim_end_matches(')').parse().ok())
        .unwrap()
}

#[test]
fn all_in_one_devnet_starts_every_part_serves_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("devnet");
    let mut devnet = Devnet::start(&datadir, &["--signers", "5", "--quorum", "3"]);
    let api = devnet.printed("API URL:", Duration::from_secs(120));
    let rpc_url = devnet.printed("RPC URL:", Duration::from_secs(1));
    let committee = devnet.printed("committee:", Duration::from_secs(1));
    assert!(committee.starts_with("5 covenant signers"), "{committee}");
    assert!(committee.ends_with("quorum 3"), "{committee}");

    let health = api_get(&api, "/healthcheck");
    assert_eq!(health["data"], "Server is up and running");
    let params = api_get(&api, "/v1/global-params");
    let version = &params["data"]["versions"][0];
    assert_eq!(version["covenant_pks"].as_array().unwrap().len(), 5);
    assert_eq!(version["covenant_quorum"], 3);
    assert_eq!(version["tag"], "64766e74");
    let fps = api_get(&api, "/v1/finality-providers");
    assert!(!fps["data"].as_array().unwrap().is_empty(), "{fps}");
    // The chain was mined up to just below the params' activation height.
    assert!(rpc(&rpc_url, "getblockcount").as_u64().unwrap() >= 109);

    // The staking dApp's two build values, and what they point at: the API, and the chain's
    // Esplora REST (which also stands in for `ord`, so the ordinals check answers).
    assert_eq!(
        devnet.printed("NEXT_PUBLIC_API_URL=", Duration::from_secs(1)),
        api
    );
    let mempool = devnet.printed("NEXT_PUBLIC_MEMPOOL_API=", Duration::from_secs(1));
    let (code, height) = http(&mempool, "GET", "/signet/api/blocks/tip/height", None, "");
    assert_eq!(code, 200, "{height}");
    assert!(height.parse::<u64>().unwrap() >= 109, "{height}");
    let (code, body) = http(
        &api,
        "POST",
        "/v1/ordinals/verify-utxos",
        None,
        &format!(
            r#"{{"utxos":[{{"txid":"{}","vout":0}}],"address":"tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"}}"#,
            "11".repeat(32)
        ),
    );
    assert_eq!(code, 200, "{body}");
    let checked: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(checked["data"][0]["inscription"], false, "{body}");

    // Every committee member answers on its own port.
    let ports: Vec<u16> = committee
        .split("ports ")
        .nth(1)
        .unwrap()
        .split(", quorum")
        .next()
        .unwrap()
        .split(',')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 5, "{committee}");
    // Every committee member is a signing server on its own port, and requires the
    // committee's HMAC (the pipeline has it; an unauthenticated caller does not).
    for port in ports {
        let (code, body) = http(
            &format!("http://127.0.0.1:{port}"),
            "POST",
            "/v1/sign-unbonding-tx",
            None,
            "{}",
        );
        assert_eq!(code, 401, "signer on {port}: {body}");
    }
    assert!(datadir.join("committee/hmac-key").exists());

    let config = std::fs::read_to_string(datadir.join("devnet.toml")).unwrap();
    assert!(config.contains(&format!("url = \"{api}\"")), "{config}");
    assert!(config.contains("quorum = 3"), "{config}");
    for i in 0..5 {
        assert!(datadir.join(format!("committee/member-{i}.key")).exists());
    }

    devnet.signal("INT");
    let status = devnet.wait(Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{}", devnet.stderr_tail());
    assert!(devnet
        .stdout()
        .iter()
        .any(|l| l == "stakingd devnet stopped"));
}

#[test]
fn demo_completes_every_step_checked_through_the_api_and_a_restart_resumes_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("devnet");
    let mut first = Devnet::start(&datadir, &["--demo", "--exit-after-demo"]);
    let api = first.printed("API URL:", Duration::from_secs(120));
    let params_before = api_get(&api, "/v1/global-params");
    let status = first.wait(DEMO_TIMEOUT);
    let lines = first.stdout();
    assert!(
        status.success(),
        "{status:?}\nstdout:\n{}\nstderr:\n{}",
        lines.join("\n"),
        first.stderr_tail()
    );
    assert_in_order(&lines, DEMO_STEPS);
    let tip_before = last_tip(&lines);
    drop(first);

    // Same data directory: same chain, same database, same committee.
    let mut second = Devnet::start(&datadir, &[]);
    let api = second.printed("API URL:", Duration::from_secs(120));
    let rpc_url = second.printed("RPC URL:", Duration::from_secs(1));
    assert!(rpc(&rpc_url, "getblockcount").as_u64().unwrap() >= tip_before);
    assert_eq!(api_get(&api, "/v1/global-params"), params_before);
    let stats = api_get(&api, "/v1/stats");
    assert_eq!(stats["data"]["total_delegations"], 2, "{stats}");
    assert_eq!(stats["data"]["active_delegations"], 0, "{stats}");
    assert_eq!(stats["data"]["total_stakers"], 2, "{stats}");
    second.signal("TERM");
    let status = second.wait(Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{}", second.stderr_tail());

    // A different committee for an existing data directory is refused with what to do.
    let out = Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .args([
            "devnet",
            "--rpc-port",
            "0",
            "--api-port",
            "0",
            "--esplora-port",
            "0",
            "--signers",
            "3",
            "--datadir",
        ])
        .arg(&datadir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("new --datadir"), "{stderr}");
}

/// A fresh PostgreSQL database, dropped with the handle; `None` when PostgreSQL is unreachable
/// and skipping is allowed (`testkit`).
fn postgres_database() -> Option<testkit::PgTestDb> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(testkit::PgTestDb::create_or_skip("devnet_test"))
}

/// The broker URL; `None` when RabbitMQ is unreachable and skipping is allowed (`testkit`).
fn rabbitmq() -> Option<String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(testkit::rabbitmq())
}

#[test]
fn demo_on_postgresql_and_rabbitmq_completes_every_step() {
    let (Some(database), Some(amqp)) = (postgres_database(), rabbitmq()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("devnet{}_", std::process::id());
    let _queues = testkit::QueueCleanup::new(events::QueueNaming::new(prefix.clone()));
    let mut devnet = Devnet::start(
        &dir.path().join("devnet"),
        &[
            "--demo",
            "--exit-after-demo",
            "--database-url",
            &database.url,
            "--amqp-url",
            &amqp,
            "--queue-prefix",
            &prefix,
        ],
    );
    let services = devnet.printed("services:", Duration::from_secs(120));
    assert!(services.contains("database postgres://"), "{services}");
    assert!(services.contains("queues amqp://"), "{services}");
    let status = devnet.wait(DEMO_TIMEOUT);
    let lines = devnet.stdout();
    assert!(
        status.success(),
        "{status:?}\nstdout:\n{}\nstderr:\n{}",
        lines.join("\n"),
        devnet.stderr_tail()
    );
    assert_in_order(&lines, DEMO_STEPS);
}

#[test]
fn a_taken_api_port_is_refused_before_anything_starts_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .args([
            "devnet",
            "--rpc-port",
            "0",
            "--api-port",
            &port,
            "--esplora-port",
            "0",
            "--datadir",
        ])
        .arg(dir.path().join("devnet"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the API port {port} is in use")) && stderr.contains("--api-port"),
        "{stderr}"
    );
    // Nothing was created: the check comes before the chain and the committee.
    assert!(!dir.path().join("devnet/global-params.json").exists());
}

#[test]
fn ctrl_c_mid_demo_loses_nothing_and_the_restart_finishes_the_pending_unbonding() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("devnet");
    let mut first = Devnet::start(&datadir, &["--demo"]);
    first.printed("API URL:", Duration::from_secs(120));
    let requested = first.printed("[demo  5] Alice: the API shows delegation", DEMO_TIMEOUT);
    // "<txid> as `unbonding_requested` (tip N)": stop right after the request was accepted.
    let txid = requested.split_whitespace().next().unwrap().to_owned();
    assert!(requested.contains("`unbonding_requested`"), "{requested}");
    first.signal("INT");
    let status = first.wait(Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{}", first.stderr_tail());
    drop(first);

    // The accepted request survived in the database: after the restart the pipeline sends the
    // unbonding tx, blocks keep coming, and the API shows the delegation unbonding.
    let mut second = Devnet::start(&datadir, &["--block-interval", "1"]);
    let api = second.printed("API URL:", Duration::from_secs(120));
    let started = Instant::now();
    loop {
        let d = api_get(&api, &format!("/v1/delegation?staking_tx_hash_hex={txid}"));
        let state = d["data"]["state"].as_str().unwrap().to_owned();
        if state == "unbonding" || state == "unbonded" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "still `{state}` after the restart\n{}",
            second.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    second.signal("TERM");
    assert!(second.wait(Duration::from_secs(60)).success());
}

#[test]
fn one_metrics_url_serves_every_service_and_every_dashboard_query_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::start(&dir.path().join("devnet"), &["--demo"]);
    let url = devnet.printed("metrics:", Duration::from_secs(120));
    let url = url.split_whitespace().next().unwrap().to_owned();
    let base = url.trim_end_matches("/metrics").to_owned();
    let started = Instant::now();
    while !devnet
        .stdout()
        .iter()
        .any(|l| l.starts_with("demo complete"))
    {
        assert!(
            started.elapsed() < DEMO_TIMEOUT,
            "the demo did not complete; stderr:\n{}",
            devnet.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (code, text) = http(&base, "GET", "/metrics", None, "");
    assert_eq!(code, 200);
    let problems = metrics_check::unresolved(&text);
    assert!(problems.is_empty(), "{problems:#?}");
    // What the demo did, counted by each service.
    let count = |name: &str, labels: &[&str]| metrics_check::sum(&text, name, labels);
    assert!(count("si_total_staking_txs", &[r#"tx_type="active""#]) >= 2.0);
    assert!(count("events_consumed_total", &[r#"outcome="applied""#]) >= 2.0);
    assert!(count("expiry_events_emitted_total", &[]) >= 1.0);
    assert!(count("unbonding_pipeline_requests_total", &[r#"outcome="sent""#]) >= 1.0);
    assert!(count("signer_requests_total", &[r#"outcome="signed""#]) >= 1.0);
    assert!(count("http_request_duration_seconds_count", &[]) >= 1.0);
    let (code, body) = http(&base, "GET", "/health/ready", None, "");
    assert_eq!(code, 200, "{body}");
    devnet.signal("INT");
    assert!(devnet.wait(Duration::from_secs(60)).success());
}
