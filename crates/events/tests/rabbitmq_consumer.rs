#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
//! The RabbitMQ consumer follows the reference protocol (`docs/reference.md#consuming-and-retries`)
//! against the real broker: retries travel through `<queue>_delay` and come back by dead-lettering.

mod common;

use std::time::Duration;

use common::scenarios;
use common::{admin_channel, broker, message_count, wait_until, Cleanup, Recorder};
use events::{EventsMetrics, QueueName, QueueType, RabbitMqTransport, Transport};

async fn transport(test: &str, queue_type: QueueType) -> Option<(Transport, Cleanup)> {
    let config = broker(test, queue_type).await?;
    let cleanup = Cleanup(config.naming());
    let transport = RabbitMqTransport::connect(config, EventsMetrics::new())
        .await
        .unwrap();
    Some((Transport::RabbitMq(transport), cleanup))
}

#[tokio::test]
async fn a_message_that_keeps_failing_is_tried_max_plus_two_times_then_handed_to_unprocessable() {
    let Some((t, _cleanup)) = transport("cons_poison", QueueType::Quorum).await else {
        return;
    };
    scenarios::a_message_that_keeps_failing_is_tried_max_plus_two_times_then_handed_to_unprocessable(&t).await;
}

#[tokio::test]
async fn a_message_that_fails_once_is_processed_again_after_the_requeue_delay() {
    let Some((t, _cleanup)) = transport("cons_flaky", QueueType::Quorum).await else {
        return;
    };
    scenarios::a_message_that_fails_once_is_processed_again_after_the_requeue_delay(&t).await;
}

#[tokio::test]
async fn messages_are_processed_one_at_a_time_in_publish_order() {
    let Some((t, _cleanup)) = transport("cons_order", QueueType::Classic).await else {
        return;
    };
    scenarios::messages_are_processed_one_at_a_time_in_publish_order(&t).await;
}

#[tokio::test]
async fn a_handler_slower_than_the_processing_timeout_counts_as_failed() {
    let Some((t, _cleanup)) = transport("cons_slow", QueueType::Classic).await else {
        return;
    };
    scenarios::a_handler_slower_than_the_processing_timeout_counts_as_failed(&t).await;
}

#[tokio::test]
async fn a_message_whose_unprocessable_store_fails_comes_back_with_the_same_attempts() {
    let Some((t, _cleanup)) = transport("cons_store", QueueType::Quorum).await else {
        return;
    };
    scenarios::a_message_whose_unprocessable_store_fails_comes_back_with_the_same_attempts(&t)
        .await;
}

#[tokio::test]
async fn messages_published_before_the_consumer_starts_are_delivered() {
    let Some((t, _cleanup)) = transport("cons_early", QueueType::Classic).await else {
        return;
    };
    scenarios::messages_published_before_the_consumer_starts_are_delivered(&t).await;
}

#[tokio::test]
async fn a_failed_message_waits_in_the_delay_queue_until_its_ttl_expires() {
    let Some(config) = broker("cons_delay", QueueType::Quorum).await else {
        return;
    };
    let _cleanup = Cleanup(config.naming());
    let naming = config.naming();
    let t = Transport::RabbitMq(
        RabbitMqTransport::connect(config, EventsMetrics::new())
            .await
            .unwrap(),
    );
    let running = scenarios::start(
        &t,
        Recorder::new(|m, _| m.attempts == 0),
        scenarios::config(10, Duration::from_secs(2)),
    );
    t.publish(QueueName::ExpiredStaking, b"later")
        .await
        .unwrap();
    let r = running.recorder.clone();
    assert!(wait_until(Duration::from_secs(10), || r.calls().len() == 1).await);
    let (connection, channel) = admin_channel().await;
    let delay_queue = naming.delay_queue(QueueName::ExpiredStaking);
    assert!(
        wait_until_async(|| async { message_count(&channel, &delay_queue).await == 1 }).await,
        "the failed message is parked in {delay_queue}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || r.calls().len() == 2).await,
        "it comes back after the TTL"
    );
    assert_eq!(message_count(&channel, &delay_queue).await, 0);
    let r = running.stop().await;
    assert_eq!(r.attempts(), [0, 1]);
    connection.close(200, "done").await.unwrap();
}

async fn wait_until_async<F, Fut>(mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..50 {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
