#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
//! The API's listener against hostile connections (`api::run_with` on SQLite over loopback):
//! idle connections under a low open-file limit do not stop requests from being answered, and
//! the API serves HTTPS from a certificate and key. Its own test binary: it lowers the
//! process's open-file limit.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{config_toml, Backend, TestDb};
use events::{EventsMetrics, InProcessTransport, Transport};
use net::flood::{FloodConfig, IdleFlood};
use tokio_util::sync::CancellationToken;

/// The API running on a free loopback port with `extra` TOML appended to the test config.
async fn start(db: &TestDb, extra: &str) -> (SocketAddr, CancellationToken) {
    let text = format!("{}\n{extra}", config_toml(&db.url, 10));
    let config = api::Config::from_toml(&text).unwrap();
    let service = api::Service::build(&config).await.unwrap();
    let transport = Transport::InProcess(InProcessTransport::new(EventsMetrics::default()));
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(api::run_with(
        service,
        transport,
        addr,
        None,
        config.consumer(),
        shutdown.clone(),
    ));
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return (addr, shutdown);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the API did not start on {addr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_idle_connections_under_a_512_fd_limit_do_not_stop_api_requests() {
    // Without caps, the API accepts idle connections until it runs out of descriptors and then
    // answers nobody.
    testkit::tls::lower_fd_limit(512);
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let (addr, shutdown) = start(
        &db,
        "[server.limits]\nmax_connections = 64\nmax_connections_per_client = 16\n\
         header_read_timeout_secs = 60\n",
    )
    .await;
    let flood = IdleFlood::start(FloodConfig::loopback(addr, 300, 30));
    assert!(
        flood.wait_open(60, Duration::from_secs(10)).await,
        "{:?}",
        flood.counts()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..20 {
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            client.get(format!("http://{addr}/v1/stats")).send(),
        )
        .await
        .expect("a request is answered while the flood holds its connections")
        .unwrap();
        assert_eq!(response.status(), 200);
    }
    let counts = flood.stop().await;
    assert!(counts.closed_by_server > 0, "{counts:?}");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_certificate_and_key_the_api_serves_https_to_clients_that_trust_it() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let cert = testkit::tls::TestCert::new();
    let (addr, shutdown) = start(&db, &cert.toml()).await;
    let client = net::ClientBuilder::new("test")
        .tls(net::ClientTls::with_ca_file(&cert.cert))
        .build()
        .unwrap();
    let response = client
        .get(&format!("https://localhost:{}/v1/stats", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let stats: serde_json::Value = response.json().await.unwrap();
    assert!(stats["data"]["active_tvl"].is_number(), "{stats}");

    let untrusting = reqwest::Client::new();
    let refused = untrusting
        .get(format!("https://127.0.0.1:{}/v1/stats", addr.port()))
        .send()
        .await
        .unwrap_err();
    assert!(
        net::error_chain(&refused).contains("certificate"),
        "{}",
        net::error_chain(&refused)
    );
    shutdown.cancel();
}
