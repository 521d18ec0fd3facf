#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
//! The API's consumers through a real transport: the same scenarios on the in-process queues
//! and on a real RabbitMQ broker (each test its own queue prefix, deleted afterwards), on
//! SQLite and PostgreSQL: the lifecycle with stats after each transition, out-of-order delivery
//! retried through the delay queues, duplicates that change nothing, and the unprocessable
//! store with `replay-unprocessable`.

mod common;

use std::future::Future;
use std::time::Duration;

use common::*;
use events::{
    ConsumerConfig, EventsMetrics, InProcessTransport, QueueName, QueueType, RabbitMqConfig,
    RabbitMqTransport, Transport,
};
use serde_json::Value;
use testkit::QueueCleanup;
use tokio_util::sync::CancellationToken;

const FP: &str = "03d5a0bb72d71993e435d6c5a70e2aa4db500a62cfaae33c56050deefee64ec0";

#[derive(Debug, Clone, Copy)]
enum Queues {
    InProcess,
    RabbitMq,
}

/// The transport for a test, or `None` when the broker is unreachable and skipping is allowed
/// (`testkit::rabbitmq`).
async fn transport(kind: Queues, test: &str) -> Option<(Transport, Option<QueueCleanup>)> {
    match kind {
        Queues::InProcess => Some((
            Transport::InProcess(InProcessTransport::new(EventsMetrics::default())),
            None,
        )),
        Queues::RabbitMq => {
            let mut config = RabbitMqConfig::from_uri(testkit::rabbitmq().await?);
            config.queue_type = QueueType::Quorum;
            config.queue_prefix = format!(
                "t_api_{test}_{}_{:x}_",
                std::process::id(),
                rand::random::<u32>()
            );
            config.publish_timeout = Duration::from_secs(10);
            config.max_reconnect_backoff = Duration::from_millis(500);
            let cleanup = QueueCleanup::new(config.naming());
            let t = RabbitMqTransport::connect(config, EventsMetrics::default())
                .await
                .unwrap();
            Some((Transport::RabbitMq(t), Some(cleanup)))
        }
    }
}

/// The running consumers of one test.
struct Running {
    h: Harness,
    transport: Transport,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), events::EventsError>>,
    _cleanup: Option<QueueCleanup>,
}

impl Running {
    async fn start(b: Backend, q: Queues, test: &str) -> Option<Running> {
        let h = Harness::new(b).await?;
        let (transport, cleanup) = transport(q, test).await?;
        let shutdown = CancellationToken::new();
        let config = ConsumerConfig {
            processing_timeout: Duration::from_secs(5),
            max_retry_attempts: 2,
            requeue_delay: Duration::from_millis(300),
        };
        let task = tokio::spawn(api::consumer::run_consumers(
            h.consumer.clone(),
            transport.clone(),
            config,
            shutdown.clone(),
        ));
        Some(Running {
            h,
            transport,
            shutdown,
            task,
            _cleanup: cleanup,
        })
    }

    async fn publish(&self, queue: QueueName, body: &Value) {
        self.transport
            .publish(queue, &serde_json::to_vec(body).unwrap())
            .await
            .unwrap();
    }

    async fn state_becomes(&self, hash: &str, state: &str) {
        let parsed: bitcoin::Txid = hash.parse().unwrap();
        let store = self.h.store.clone();
        let want = state.to_owned();
        wait_for(&format!("{hash} becomes {state}"), || {
            let (store, want) = (store.clone(), want.clone());
            async move {
                store
                    .delegation(&parsed)
                    .await
                    .unwrap()
                    .is_some_and(|d| d.state.as_str() == want)
            }
        })
        .await;
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

async fn wait_for<F: Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not reached in 20 s");
}

fn counters(stats: &Value) -> (u64, u64, u64) {
    (
        stats["active_tvl"].as_u64().unwrap(),
        stats["active_delegations"].as_u64().unwrap(),
        stats["total_delegations"].as_u64().unwrap(),
    )
}

async fn lifecycle(r: Running) {
    let (a, b) = (txid(10), txid(11));
    r.publish(
        QueueName::ActiveStaking,
        &active_event(&a, &key(10), FP, 1_000, 120, false),
    )
    .await;
    r.publish(
        QueueName::ActiveStaking,
        &active_event(&b, &key(11), FP, 2_000, 121, false),
    )
    .await;
    r.state_becomes(&a, "active").await;
    r.state_becomes(&b, "active").await;
    assert_eq!(counters(&r.h.stats().await), (3_000, 2, 2));
    // Staking path: expiry, then withdrawal.
    r.publish(QueueName::ExpiredStaking, &expired_event(&a, "active"))
        .await;
    r.state_becomes(&a, "unbonded").await;
    assert_eq!(
        counters(&r.h.stats().await),
        (2_000, 1, 2),
        "stats fall on expiry"
    );
    r.publish(QueueName::WithdrawStaking, &withdraw_event(&a))
        .await;
    r.state_becomes(&a, "withdrawn").await;
    // Unbonding path: unbonding, its expiry, withdrawal.
    r.publish(QueueName::UnbondingStaking, &unbonding_event(&b, 130))
        .await;
    r.state_becomes(&b, "unbonding").await;
    assert_eq!(counters(&r.h.stats().await), (0, 0, 2));
    r.publish(QueueName::ExpiredStaking, &expired_event(&b, "unbonding"))
        .await;
    r.state_becomes(&b, "unbonded").await;
    r.publish(QueueName::WithdrawStaking, &withdraw_event(&b))
        .await;
    r.state_becomes(&b, "withdrawn").await;
    assert_eq!(counters(&r.h.stats().await), (0, 0, 2));
    let fp =
        r.h.get(&format!("/v1/finality-providers?fp_btc_pk={FP}"))
            .await;
    assert_eq!(fp.json()["data"][0]["active_tvl"], 0, "{}", fp.text);
    assert!(r.h.store.unprocessable().await.unwrap().is_empty());
    r.stop().await;
}

async fn out_of_order(r: Running) {
    let a = txid(20);
    // Withdraw, then expiry, then the active event: the first two wait in the delay queue
    // until their predecessor has been applied.
    r.publish(QueueName::WithdrawStaking, &withdraw_event(&a))
        .await;
    r.publish(QueueName::ExpiredStaking, &expired_event(&a, "active"))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(r
        .h
        .store
        .delegation(&a.parse().unwrap())
        .await
        .unwrap()
        .is_none());
    r.publish(
        QueueName::ActiveStaking,
        &active_event(&a, &key(20), FP, 5_000, 120, false),
    )
    .await;
    r.state_becomes(&a, "withdrawn").await;
    assert_eq!(counters(&r.h.stats().await), (0, 0, 1));
    assert!(
        r.h.store.unprocessable().await.unwrap().is_empty(),
        "retried, not given up"
    );
    r.stop().await;
}

async fn duplicates(r: Running) {
    let a = txid(30);
    let active = active_event(&a, &key(30), FP, 7_000, 120, false);
    for _ in 0..3 {
        r.publish(QueueName::ActiveStaking, &active).await;
    }
    r.state_becomes(&a, "active").await;
    // Give the two later copies time to be consumed (and ignored).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(counters(&r.h.stats().await), (7_000, 1, 1));
    for _ in 0..2 {
        r.publish(QueueName::ExpiredStaking, &expired_event(&a, "active"))
            .await;
    }
    r.state_becomes(&a, "unbonded").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        counters(&r.h.stats().await),
        (0, 0, 1),
        "one decrement only"
    );
    let staker =
        r.h.get(&format!("/v1/staker/delegations?staker_btc_pk={}", key(30)))
            .await;
    assert_eq!(staker.json()["data"].as_array().unwrap().len(), 1);
    assert!(r.h.store.unprocessable().await.unwrap().is_empty());
    r.stop().await;
}

async fn unprocessable_and_replay(r: Running) {
    let a = txid(40);
    // A withdrawal of a delegation nobody knows yet keeps failing: past the retry limit it is
    // stored with its reason, and so is a body that is not JSON.
    r.publish(QueueName::WithdrawStaking, &withdraw_event(&a))
        .await;
    r.transport
        .publish(QueueName::BtcInfo, b"not json")
        .await
        .unwrap();
    let store = r.h.store.clone();
    wait_for("two unprocessable messages", || {
        let s = store.clone();
        async move { s.unprocessable().await.unwrap().len() == 2 }
    })
    .await;
    let kept = r.h.store.unprocessable().await.unwrap();
    let withdraw = kept
        .iter()
        .find(|m| m.queue == "withdraw_staking_queue")
        .unwrap();
    assert!(withdraw.reason.contains("not found"), "{}", withdraw.reason);
    let garbage = kept.iter().find(|m| m.queue == "btc_info_queue").unwrap();
    assert_eq!(garbage.message_body, "not json");
    // Now the delegation arrives and expires; replay puts both back: the withdrawal applies,
    // the garbage fails again and is stored again.
    r.publish(
        QueueName::ActiveStaking,
        &active_event(&a, &key(40), FP, 3_000, 120, false),
    )
    .await;
    r.publish(QueueName::ExpiredStaking, &expired_event(&a, "active"))
        .await;
    r.state_becomes(&a, "unbonded").await;
    let replayed = api::consumer::replay_unprocessable(&r.h.store, &r.transport)
        .await
        .unwrap();
    assert_eq!(replayed, 2);
    r.state_becomes(&a, "withdrawn").await;
    let old = garbage.id;
    wait_for("garbage stored again", || {
        let s = store.clone();
        async move {
            let now = s.unprocessable().await.unwrap();
            now.len() == 1 && now[0].id != old && now[0].message_body == "not json"
        }
    })
    .await;
    r.stop().await;
}

/// Runs a scenario on each transport and backend.
macro_rules! on_every_transport {
    ($name:ident, $scenario:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn in_process_sqlite() {
                if let Some(r) =
                    Running::start(Backend::Sqlite, Queues::InProcess, stringify!($name)).await
                {
                    $scenario(r).await;
                }
            }
            #[tokio::test]
            async fn rabbitmq_sqlite() {
                if let Some(r) =
                    Running::start(Backend::Sqlite, Queues::RabbitMq, stringify!($name)).await
                {
                    $scenario(r).await;
                }
            }
            #[tokio::test]
            async fn rabbitmq_postgres() {
                if let Some(r) =
                    Running::start(Backend::Postgres, Queues::RabbitMq, stringify!($name)).await
                {
                    $scenario(r).await;
                }
            }
        }
    };
}

on_every_transport!(lifecycle_with_stats_after_each_transition, lifecycle);
on_every_transport!(
    out_of_order_delivery_is_retried_through_the_delay_queue,
    out_of_order
);
on_every_transport!(duplicate_messages_change_nothing, duplicates);
on_every_transport!(
    unprocessable_messages_are_stored_and_replayed,
    unprocessable_and_replay
);
