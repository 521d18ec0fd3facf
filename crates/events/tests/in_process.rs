#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
//! The in-process transport has the reference consumer's semantics
//! (`docs/reference.md#consuming-and-retries`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::scenarios;
use common::{wait_until, Recorder};
use events::{EventsError, EventsMetrics, InProcessTransport, QueueName, Transport};
use tokio_util::sync::CancellationToken;

fn transport() -> Transport {
    Transport::InProcess(InProcessTransport::new(EventsMetrics::new()))
}

#[tokio::test]
async fn a_message_that_keeps_failing_is_tried_max_plus_two_times_then_handed_to_unprocessable() {
    scenarios::a_message_that_keeps_failing_is_tried_max_plus_two_times_then_handed_to_unprocessable(&transport())
        .await;
}

#[tokio::test]
async fn a_message_that_fails_once_is_processed_again_after_the_requeue_delay() {
    scenarios::a_message_that_fails_once_is_processed_again_after_the_requeue_delay(&transport())
        .await;
}

#[tokio::test]
async fn messages_are_processed_one_at_a_time_in_publish_order() {
    scenarios::messages_are_processed_one_at_a_time_in_publish_order(&transport()).await;
}

#[tokio::test]
async fn a_handler_slower_than_the_processing_timeout_counts_as_failed() {
    scenarios::a_handler_slower_than_the_processing_timeout_counts_as_failed(&transport()).await;
}

#[tokio::test]
async fn a_message_whose_unprocessable_store_fails_comes_back_with_the_same_attempts() {
    scenarios::a_message_whose_unprocessable_store_fails_comes_back_with_the_same_attempts(
        &transport(),
    )
    .await;
}

#[tokio::test]
async fn messages_published_before_the_consumer_starts_are_delivered() {
    scenarios::messages_published_before_the_consumer_starts_are_delivered(&transport()).await;
}

#[tokio::test]
async fn a_second_consumer_of_the_same_queue_is_refused() {
    let transport = transport();
    let shutdown = CancellationToken::new();
    let first = tokio::spawn({
        let (t, s) = (transport.clone(), shutdown.clone());
        async move {
            t.consume(
                QueueName::BtcInfo,
                Arc::new(Recorder::new(|_, _| false)),
                Default::default(),
                s,
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = transport
        .consume(
            QueueName::BtcInfo,
            Arc::new(Recorder::new(|_, _| false)),
            Default::default(),
            shutdown.clone(),
        )
        .await;
    assert!(
        matches!(second, Err(EventsError::AlreadyConsumed { .. })),
        "{second:?}"
    );
    shutdown.cancel();
    first.await.unwrap().unwrap();
}

#[tokio::test]
async fn messages_left_when_a_consumer_stops_go_to_the_next_consumer() {
    let transport = transport();
    // A consumer whose future is dropped mid-way (not just cancelled) must not take the queue
    // with it.
    let recorder = Arc::new(Recorder::new(|_, _| false).with_delay(Duration::from_secs(60)));
    let stuck = transport.consume(
        QueueName::BtcInfo,
        recorder.clone(),
        Default::default(),
        CancellationToken::new(),
    );
    transport.publish(QueueName::BtcInfo, b"one").await.unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(100), stuck).await;
    assert_eq!(
        recorder.bodies(),
        ["one"],
        "the first consumer took the first message"
    );

    transport.publish(QueueName::BtcInfo, b"two").await.unwrap();
    let shutdown = CancellationToken::new();
    let next = Arc::new(Recorder::new(|_, _| false));
    let task = tokio::spawn({
        let (t, n, s) = (transport.clone(), next.clone(), shutdown.clone());
        async move {
            t.consume(QueueName::BtcInfo, n, Default::default(), s)
                .await
        }
    });
    assert!(wait_until(Duration::from_secs(5), || !next.calls().is_empty()).await);
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(next.bodies(), ["two"]);
}

#[tokio::test]
async fn publishes_are_counted_per_queue() {
    let metrics = EventsMetrics::new();
    let transport = InProcessTransport::new(metrics.clone());
    transport
        .publish(QueueName::ActiveStaking, b"{}")
        .await
        .unwrap();
    transport
        .publish(QueueName::ActiveStaking, b"{}")
        .await
        .unwrap();
    assert_eq!(metrics.published_count("active_staking_queue"), 2);
    assert_eq!(metrics.published_count("btc_info_queue"), 0);
}
