#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
//! Malformed messages on every queue the API consumes (not JSON, the wrong JSON shape, bad hex,
//! a truncated transaction, an invalid key, an unknown enum value) end in the unprocessable
//! store with their queue, exact body and reason, and change no state.

mod common;

use std::time::Duration;

use common::*;
use events::{ConsumerConfig, EventsMetrics, InProcessTransport, QueueName, Transport};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const FP: &str = "03d5a0bb72d71993e435d6c5a70e2aa4db500a62cfaae33c56050deefee64ec0";

fn with(mut v: Value, field: &str, value: Value) -> String {
    v[field] = value;
    v.to_string()
}

/// (queue, body) pairs, each of which must fail to decode.
fn malformed() -> Vec<(QueueName, String)> {
    let hash = txid(7);
    let active = active_event(&hash, &key(1), FP, 50_000, 120, false);
    let unbonding = unbonding_event(&hash, 130);
    let tx_hex = active["staking_tx_hex"].as_str().unwrap().to_owned();
    let mut out = Vec::new();
    for q in api::consumer::CONSUMED {
        out.push((q, "not json".to_owned()));
        out.push((q, "[1,2,3]".to_owned()));
        out.push((q, "{\"event_type\":".to_owned()));
    }
    out.extend([
        (
            QueueName::ActiveStaking,
            with(active.clone(), "staking_tx_hash_hex", "zz".into()),
        ),
        (
            QueueName::ActiveStaking,
            with(
                active.clone(),
                "staking_tx_hex",
                tx_hex[..tx_hex.len() - 2].into(),
            ),
        ),
        (
            QueueName::ActiveStaking,
            with(active.clone(), "staker_pk_hex", "ff".repeat(32).into()),
        ),
        (
            QueueName::ActiveStaking,
            with(active.clone(), "staking_value", (-1).into()),
        ),
        (
            QueueName::ActiveStaking,
            with(active, "is_overflow", "no".into()),
        ),
        (
            QueueName::UnbondingStaking,
            with(unbonding.clone(), "unbonding_tx_hex", "0100".into()),
        ),
        (
            QueueName::UnbondingStaking,
            with(unbonding, "unbonding_tx_hash_hex", hash[..62].into()),
        ),
        (
            QueueName::WithdrawStaking,
            with(withdraw_event(&hash), "staking_tx_hash_hex", Value::Null),
        ),
        (
            QueueName::ExpiredStaking,
            with(expired_event(&hash, "active"), "tx_type", "sideways".into()),
        ),
        (
            QueueName::BtcInfo,
            with(btc_info_event(10, 1, 2), "height", "ten".into()),
        ),
        (
            QueueName::BtcInfo,
            with(btc_info_event(10, 1, 2), "confirmed_tvl", (-5).into()),
        ),
    ]);
    out
}

async fn malformed_messages_land_in_the_unprocessable_store(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let before = h.stats().await;
    let transport = Transport::InProcess(InProcessTransport::new(EventsMetrics::default()));
    let shutdown = CancellationToken::new();
    let config = ConsumerConfig {
        processing_timeout: Duration::from_secs(5),
        max_retry_attempts: 1,
        requeue_delay: Duration::from_millis(50),
    };
    let task = tokio::spawn(api::consumer::run_consumers(
        h.consumer.clone(),
        transport.clone(),
        config,
        shutdown.clone(),
    ));
    let sent = malformed();
    for (queue, body) in &sent {
        transport.publish(*queue, body.as_bytes()).await.unwrap();
    }
    let mut kept = Vec::new();
    for _ in 0..300 {
        kept = h.store.unprocessable().await.unwrap();
        if kept.len() >= sent.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(
        kept.len(),
        sent.len(),
        "every malformed message is kept once"
    );
    for (queue, body) in &sent {
        let m = kept
            .iter()
            .find(|m| m.queue == queue.as_str() && m.message_body == *body)
            .unwrap_or_else(|| panic!("{queue:?} {body} not in the unprocessable store"));
        assert!(!m.reason.is_empty(), "{body} kept without a reason");
    }
    assert_eq!(
        h.stats().await,
        before,
        "malformed messages changed the stats"
    );
    let r = h
        .get(&format!("/v1/delegation?staking_tx_hash_hex={}", txid(7)))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
}
both_backends!(
    in_process,
    malformed_messages_land_in_the_unprocessable_store
);
