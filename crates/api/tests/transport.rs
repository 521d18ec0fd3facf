#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
//! Consumers on a real transport (in-process): out-of-order delivery is retried after the delay,
//! a message that keeps failing lands in the unprocessable store with its reason, and replay
//! puts it back.

mod common;

use std::time::Duration;

use common::*;
use events::{ConsumerConfig, EventsMetrics, InProcessTransport, QueueName, Transport};
use tokio_util::sync::CancellationToken;

const FP: &str = "03d5a0bb72d71993e435d6c5a70e2aa4db500a62cfaae33c56050deefee64ec0";

async fn wait_for<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) {
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition not reached in 10 s");
}

async fn retries_unprocessable_and_replay(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let transport = Transport::InProcess(InProcessTransport::new(EventsMetrics::default()));
    let shutdown = CancellationToken::new();
    let config = ConsumerConfig {
        processing_timeout: Duration::from_secs(5),
        max_retry_attempts: 2,
        requeue_delay: Duration::from_millis(200),
    };
    let task = tokio::spawn(api::consumer::run_consumers(
        h.consumer.clone(),
        transport.clone(),
        config,
        shutdown.clone(),
    ));
    let hash = txid(1);
    // Unbonding first: retried until the active event arrives.
    let unb = serde_json::to_vec(&unbonding_event(&hash, 130)).unwrap();
    transport
        .publish(QueueName::UnbondingStaking, &unb)
        .await
        .unwrap();
    let act = serde_json::to_vec(&active_event(&hash, &key(1), FP, 1_000, 120, false)).unwrap();
    transport
        .publish(QueueName::ActiveStaking, &act)
        .await
        .unwrap();
    let store = h.store.clone();
    let parsed: bitcoin::Txid = hash.parse().unwrap();
    wait_for(|| {
        let store = store.clone();
        async move {
            store
                .delegation(&parsed)
                .await
                .unwrap()
                .is_some_and(|d| d.state == store::api::DelegationState::Unbonding)
        }
    })
    .await;
    // Garbage ends up unprocessable with its reason after max + 2 attempts.
    transport
        .publish(QueueName::WithdrawStaking, b"not json")
        .await
        .unwrap();
    let store2 = h.store.clone();
    wait_for(|| {
        let s = store2.clone();
        async move { !s.unprocessable().await.unwrap().is_empty() }
    })
    .await;
    let kept = h.store.unprocessable().await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].message_body, "not json");
    assert_eq!(kept[0].queue, "withdraw_staking_queue");
    assert!(!kept[0].reason.is_empty());
    // Replay re-publishes and deletes the record (it fails again and comes back).
    let n = api::consumer::replay_unprocessable(&h.store, &transport)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let store3 = h.store.clone();
    let old_id = kept[0].id;
    wait_for(|| {
        let s = store3.clone();
        async move {
            s.unprocessable()
                .await
                .unwrap()
                .first()
                .is_some_and(|m| m.id != old_id)
        }
    })
    .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
both_backends!(in_process, retries_unprocessable_and_replay);
