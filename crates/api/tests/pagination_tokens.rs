#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
//! Any `pagination_key` a client crafts (base64 of JSON of the wrong shape, wrong types, numbers
//! out of every range, bytes that are no JSON, …) is a 400 with the reference's error body on
//! every paginated listing, and never an ERROR log line (issue 15: a height above `i64::MAX`
//! gave a 500 and an ERROR line per request).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use common::*;
use events::QueueName;
use serde_json::{json, Value};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Counts the ERROR events emitted on this thread while it is the default subscriber (the
/// test runtime is single-threaded, so the handlers run here).
struct ErrorCounter(Arc<AtomicUsize>);

impl Subscriber for ErrorCounter {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() == Level::ERROR {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// JSON values of every type and range, for each field of each token.
fn hostile_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!(i64::MAX as u64 + 1),
        json!(i64::MIN),
        json!(1e300),
        json!("12"),
        json!(""),
        json!("zz".repeat(32)),
        json!("0".repeat(64)),
        json!("ff".repeat(32)),
        json!("a".repeat(5000)),
        json!([]),
        json!({}),
        json!([1, 2]),
    ]
}

/// Tokens of every shape for a listing whose token has the fields `hash_field` (a hex string)
/// and `number_field` (an integer), valid values being `hash` and `number`.
fn hostile_tokens(hash_field: &str, hash: &str, number_field: &str, number: Value) -> Vec<String> {
    let mut documents: Vec<Vec<u8>> = Vec::new();
    for value in hostile_values() {
        documents.push(
            serde_json::to_vec(&json!({hash_field: value.clone(), number_field: number})).unwrap(),
        );
        documents.push(
            serde_json::to_vec(&json!({hash_field: hash, number_field: value.clone()})).unwrap(),
        );
        documents.push(serde_json::to_vec(&value).unwrap());
    }
    documents.extend([
        br#"{}"#.to_vec(),
        format!(r#"{{"{hash_field}":"{hash}"}}"#).into_bytes(),
        format!(r#"{{"{hash_field}":"{hash}","{hash_field}":"{hash}","{number_field}":1}}"#)
            .into_bytes(),
        format!(r#"{{"{hash_field}":"{hash}","{number_field}":1"#).into_bytes(),
        "[".repeat(10_000).into_bytes(),
        vec![0xff, 0xfe, 0x00, 0x01],
        b"\x00".to_vec(),
    ]);
    let mut tokens: Vec<String> = documents
        .iter()
        .flat_map(|d| [URL_SAFE.encode(d), STANDARD.encode(d)])
        .collect();
    // Not base64 at all, or base64 with wrong padding.
    tokens.extend(["!!!!", "a", "ab=c", "abc===", "%00", "e30", "=", "===="].map(String::from));
    tokens
}

/// Every token is answered 400 with the reference's body, or 200 when it happens to be valid;
/// never 5xx and never an ERROR line.
async fn check_every_token(h: &Harness, base: &str, tokens: &[String], errors: &AtomicUsize) {
    let mut refused = 0;
    for token in tokens {
        let encoded: String = url_encode(token);
        let uri = format!("{base}pagination_key={encoded}");
        let r = h.get(&uri).await;
        assert_eq!(errors.load(Ordering::Relaxed), 0, "ERROR logged for {uri}");
        // Some shapes are valid tokens (a negative TVL, an all-zero hash): those serve a page.
        if r.status.as_u16() == 200 {
            continue;
        }
        assert_eq!(r.status.as_u16(), 400, "{base} {token}: {}", r.text);
        refused += 1;
        let body = r.json();
        assert_eq!(body["errorCode"], "BAD_REQUEST", "{token}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message == "Invalid pagination token" || message == "invalid pagination key format",
            "{token}: {message}"
        );
    }
    // Nearly every shape is refused (the valid ones are a few per field).
    assert!(
        refused + 12 >= tokens.len(),
        "{refused} of {}",
        tokens.len()
    );
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn any_crafted_pagination_key_is_a_400_and_logs_no_error(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    // Rows in every listing, so a token that decoded would reach the store.
    let fp = "03d5a0bb72d71993e435d6c5a70e2aa4db500a62cfaae33c56050deefee64ec0";
    for n in 1..=3 {
        let event = active_event(&txid(n), &key(n), fp, 50_000, 100 + n, false);
        h.deliver(QueueName::ActiveStaking, &event).await;
    }
    let errors = Arc::new(AtomicUsize::new(0));
    let _guard = tracing::subscriber::set_default(ErrorCounter(Arc::clone(&errors)));

    let staker = key(1);
    let delegations = hostile_tokens(
        "staking_tx_hash_hex",
        &txid(1),
        "staking_start_height",
        json!(101),
    );
    let base = format!("/v1/staker/delegations?staker_btc_pk={staker}&");
    check_every_token(&h, &base, &delegations, &errors).await;

    let stakers = hostile_tokens("staker_pk_hex", &key(1).to_string(), "active_tvl", json!(1));
    check_every_token(&h, "/v1/stats/staker?", &stakers, &errors).await;

    let fps = hostile_tokens(
        "finality_provider_pk_hex",
        &key(2).to_string(),
        "active_tvl",
        json!(1),
    );
    check_every_token(&h, "/v1/finality-providers?", &fps, &errors).await;
}
both_backends!(
    crafted_tokens,
    any_crafted_pagination_key_is_a_400_and_logs_no_error
);

async fn a_delegation_token_with_a_height_beyond_the_store_is_invalid_not_a_500(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let errors = Arc::new(AtomicUsize::new(0));
    let _guard = tracing::subscriber::set_default(ErrorCounter(Arc::clone(&errors)));
    for height in [i64::MAX as u64 + 1, u64::MAX] {
        let token = URL_SAFE.encode(
            serde_json::to_vec(
                &json!({"staking_tx_hash_hex": txid(1), "staking_start_height": height}),
            )
            .unwrap(),
        );
        h.get(&format!(
            "/v1/staker/delegations?staker_btc_pk={}&pagination_key={token}",
            key(1)
        ))
        .await
        .assert_error(400, "BAD_REQUEST", "Invalid pagination token");
    }
    assert_eq!(errors.load(Ordering::Relaxed), 0);
}
both_backends!(
    height_out_of_range,
    a_delegation_token_with_a_height_beyond_the_store_is_invalid_not_a_500
);
