//! The HTTP surface over loopback with an in-memory chain: the reference's wire format, the
//! door checks (body limit, HMAC, rate limit, malformed input) and the metrics that count them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use covenant_signer::auth::HmacKey;
use covenant_signer::request::{SignRequest, SignResponseJson};
use reqwest::StatusCode;

use common::{setup, start_member_0 as start, Setup, AMOUNT, TIME};

fn valid(s: &Setup) -> SignRequest {
    s.fx.request(&s.staking_tx, TIME, 0).unwrap()
}

async fn post(url: &str, body: String) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

fn assert_no_signature(body: &str) {
    assert!(
        !body.contains("signature_hex"),
        "a refusal carried a signature: {body}"
    );
}

#[tokio::test]
async fn a_valid_request_gets_the_reference_success_body_with_a_verifying_signature() {
    let s = setup();
    let server = start(&s, "").await;
    let request = valid(&s);
    let (status, body) = post(&server.sign_url(), common::body(&request)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response: SignResponseJson = serde_json::from_str(&body).unwrap();
    let signature =
        staking_core::signing::parse_signature(&hex::decode(&response.data.signature_hex).unwrap())
            .unwrap();
    let staking = s.fx.staking_output(TIME).unwrap();
    let sighash =
        staking_core::unbonding::unbonding_sighash(&request.unbonding_tx, &staking, AMOUNT)
            .unwrap();
    let member = s.fx.member_key(0).unwrap().x_only_public_key().0;
    staking_core::signing::verify_parsed(&sighash, &signature, &member).unwrap();
    server.stop().await;
}

#[tokio::test]
async fn malformed_fields_get_the_reference_messages_and_no_signature() {
    let s = setup();
    let server = start(&s, "").await;
    let good = valid(&s).to_json();
    let mut trailing = good.clone();
    trailing.unbonding_tx_hex.push_str("00");
    let mut bad_hex = good.clone();
    bad_hex.unbonding_tx_hex.replace_range(0..2, "zz");
    let mut uncompressed = good.clone();
    uncompressed.covenant_public_key =
        hex::encode(s.fx.member_key(0).unwrap().serialize_uncompressed());
    let mut long_sig = good.clone();
    long_sig.staker_unbonding_sig_hex.push_str("01");
    let mut bad_script = good.clone();
    bad_script.staking_output_pk_script_hex = "5120zz".into();
    let cases = [
        (
            serde_json::to_string(&trailing).unwrap(),
            "invalid unbonding transaction",
        ),
        (
            serde_json::to_string(&bad_hex).unwrap(),
            "invalid unbonding transaction",
        ),
        (
            serde_json::to_string(&uncompressed).unwrap(),
            "invalid covenant public key",
        ),
        (
            serde_json::to_string(&long_sig).unwrap(),
            "invalid staker unbonding signature",
        ),
        (
            serde_json::to_string(&bad_script).unwrap(),
            "invalid staking output pk script",
        ),
        (
            "{\"staking_output_pk_script_hex\":".to_owned(),
            "invalid request payload",
        ),
    ];
    for (body, message) in cases {
        let (status, text) = post(&server.sign_url(), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert_eq!(
            text,
            format!(r#"{{"errorCode":"BAD_REQUEST","message":"{message}"}}"#)
        );
        assert_no_signature(&text);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_answered_413() {
    let s = setup();
    let server = start(&s, "").await;
    let mut raw = valid(&s).to_json();
    raw.covenant_public_key.push_str(&" ".repeat(9000));
    let (status, text) = post(&server.sign_url(), serde_json::to_string(&raw).unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(text, "Request Entity Too Large");
    // Just under the limit is read and judged on its content.
    let padded = format!("{}{}", common::body(&valid(&s)), " ".repeat(7000));
    let (status, text) = post(&server.sign_url(), padded).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    server.stop().await;
}

#[tokio::test]
async fn with_hmac_on_only_correctly_authenticated_requests_are_served() {
    let s = setup();
    let key_env = "COVENANT_SIGNER_TEST_HMAC_KEY_HTTP";
    std::env::set_var(key_env, "a shared hmac key for tests, 32 bytes or more");
    let server = start(&s, &format!("[auth]\nhmac-key-env = \"{key_env}\"\n")).await;
    let key = HmacKey::new(b"a shared hmac key for tests, 32 bytes or more");
    let body = common::body(&valid(&s));
    let client = reqwest::Client::new();
    let send = |mac: Option<String>, body: String| {
        let mut request = client.post(server.sign_url()).body(body);
        if let Some(mac) = mac {
            request = request.header("X-Covenant-HMAC", mac);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, text) = send(None, body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_no_signature(&text);
    let wrong = HmacKey::new(b"another key").sign(body.as_bytes());
    let (status, text) = send(Some(wrong), body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_no_signature(&text);
    let for_other_body = key.sign(b"{}");
    let (status, _) = send(Some(for_other_body), body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = send(Some(key.sign(body.as_bytes())), body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    server.stop().await;
}

#[tokio::test]
async fn a_client_over_its_rate_is_answered_429() {
    let s = setup();
    let server = start(&s, "[rate-limit]\nrequests-per-second = 1\nburst = 3\n").await;
    let body = common::body(&valid(&s));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(post(&server.sign_url(), body.clone()).await.0);
    }
    assert_eq!(&statuses[..3], &[StatusCode::OK; 3]);
    assert!(
        statuses[3..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn every_outcome_is_counted_in_the_metrics() {
    let s = setup();
    let server = start(&s, "").await;
    let good = common::body(&valid(&s));
    post(&server.sign_url(), good).await;
    post(&server.sign_url(), "not json".into()).await;
    let mut refused = valid(&s);
    refused.unbonding_tx.version = bitcoin::transaction::Version::ONE;
    post(&server.sign_url(), common::body(&refused)).await;
    post(&server.sign_url(), "x".repeat(10_000)).await;
    let text = reqwest::get(&server.metrics)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"signer_requests_total{outcome="signed"} 1"#,
        r#"signer_requests_total{outcome="malformed"} 1"#,
        r#"signer_requests_total{outcome="refused"} 1"#,
        r#"signer_requests_total{outcome="too_large"} 1"#,
        r#"signer_requests_total{outcome="internal_error"} 0"#,
        "signer_received_signing_requests 2",
        "signer_succeeded_signing_requests 1",
        "signer_failed_signing_requests 1",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn health_reports_the_node_tip_and_other_routes_are_not_found() {
    let s = setup();
    let server = start(&s, "").await;
    let response = reqwest::get(format!("{}/health", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["tip_height"], 300);
    s.chain
        .fail_with(Some(covenant_signer::chain::ChainError::Transient(
            "down".into(),
        )));
    // The last answer serves /health for HEALTH_TTL (tests/edges.rs).
    tokio::time::sleep(covenant_signer::health::HEALTH_TTL).await;
    let response = reqwest::get(format!("{}/health", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = reqwest::get(server.sign_url()).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = reqwest::get(format!("{}/v1/other", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn a_chunked_body_without_content_length_is_cut_off_at_the_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = setup();
    let server = start(&s, "").await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/sign-unbonding-tx HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = "a".repeat(4096);
    for _ in 0..3 {
        let frame = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if stream.write_all(frame.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.ends_with("Request Entity Too Large"), "{answer}");
    server.stop().await;
}

/// `/health/ready` on the metrics port, polled until `want` (readiness is cached for 2 s).
async fn ready_until(metrics: &str, want: StatusCode) -> serde_json::Value {
    let url = metrics.replace("/metrics", "/health/ready");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = reqwest::get(&url).await.unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        if status == want {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readiness stayed {status}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readiness_on_the_metrics_port_goes_503_while_the_node_fails_and_back() {
    let s = setup();
    let server = start(&s, "").await;
    let live = server.metrics.replace("/metrics", "/health/live");
    assert_eq!(reqwest::get(&live).await.unwrap().status(), StatusCode::OK);
    ready_until(&server.metrics, StatusCode::OK).await;
    s.chain
        .fail_with(Some(covenant_signer::chain::ChainError::Transient(
            "down".into(),
        )));
    let body = ready_until(&server.metrics, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["checks"]["node"]["ok"], false, "{body}");
    assert!(
        body["reason"].as_str().unwrap().starts_with("node: "),
        "{body}"
    );
    s.chain.fail_with(None);
    let body = ready_until(&server.metrics, StatusCode::OK).await;
    assert_eq!(body["status"], "ready");
    server.stop().await;
}
