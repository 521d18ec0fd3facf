//! The signing server against hostile connections, over loopback with an in-memory chain: idle
//! connections under a low open-file limit do not stop valid signing requests, and the server
//! serves HTTPS from a certificate and key. Its own test binary: it lowers the process's
//! open-file limit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::time::Duration;

use covenant_signer::request::SignResponseJson;
use net::flood::{FloodConfig, IdleFlood};

use common::{setup, start_member_0 as start, Setup, TIME};

/// Signs one valid request with `client` at `url`; the verified answer's status.
async fn sign(client: &reqwest::Client, url: &str, s: &Setup) -> u16 {
    let request = s.fx.request(&s.staking_tx, TIME, 0).unwrap();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(common::body(&request))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        let answer: SignResponseJson = response.json().await.unwrap();
        assert_eq!(answer.data.signature_hex.len(), 128);
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_idle_connections_under_a_512_fd_limit_do_not_stop_valid_signing_requests() {
    // Without caps, the server accepts idle connections until it runs out of descriptors and
    // then answers nobody (the finding: 300 idle connections and a 256-fd limit).
    testkit::tls::lower_fd_limit(512);
    let s = setup();
    let server = start(
        &s,
        "[rate-limit]\nrequests-per-second = 0\nburst = 0\n\
         [server.limits]\nmax-connections = 64\nmax-connections-per-client = 16\n\
         header-read-timeout-secs = 60\n",
    )
    .await;
    let addr = server.base.trim_start_matches("http://").parse().unwrap();
    let flood = IdleFlood::start(FloodConfig::loopback(addr, 300, 30));
    assert!(
        flood.wait_open(60, Duration::from_secs(10)).await,
        "{:?}",
        flood.counts()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A new connection per request, as each pipeline of a committee would open.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..20 {
        let status = tokio::time::timeout(
            Duration::from_secs(10),
            sign(&client, &server.sign_url(), &s),
        )
        .await
        .expect("a valid signing request is answered while the flood holds its connections");
        assert_eq!(status, 200);
    }
    let counts = flood.stop().await;
    assert!(counts.closed_by_server > 0, "{counts:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_certificate_and_key_the_signer_serves_https_to_clients_that_trust_it() {
    let s = setup();
    let cert = testkit::tls::TestCert::new();
    let server = start(&s, &cert.toml()).await;
    // The test certificate names localhost.
    let https = server
        .sign_url()
        .replace("http://127.0.0.1:", "https://localhost:");

    let trusting = net::ClientBuilder::new("test")
        .tls(net::ClientTls::with_ca_file(&cert.cert))
        .build()
        .unwrap();
    let request = s.fx.request(&s.staking_tx, TIME, 0).unwrap();
    let response = trusting
        .post(&https)
        .header("content-type", "application/json")
        .body(common::body(&request))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: SignResponseJson = response.json().await.unwrap();
    assert_eq!(answer.data.signature_hex.len(), 128);

    // A client without the CA refuses the certificate; plain HTTP gets no answer.
    let untrusting = reqwest::Client::new();
    let refused = untrusting.post(&https).body("{}").send().await.unwrap_err();
    assert!(
        net::error_chain(&refused).contains("certificate"),
        "{}",
        net::error_chain(&refused)
    );
    assert!(untrusting
        .post(server.sign_url())
        .body("{}")
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_err());
    server.stop().await;
}
