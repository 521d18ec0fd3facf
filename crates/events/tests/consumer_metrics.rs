//! The consumer metrics move when their events happen: a first delivery counts as `applied`, a
//! redelivery the handler recognises as `duplicate`, a failure as `retried`, a message past the
//! retry limit as `unprocessable` (and in the reference's `unprocessable_entity_total`), each
//! with one `event_processing_duration_seconds` observation. Scraped from the registry text
//! before and after, as Prometheus sees them.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use events::{
    ConsumerConfig, EventsMetrics, Handled, HandlerError, InProcessTransport, Message,
    MessageHandler, QueueName, Transport,
};
use prometheus::Registry;
use tokio_util::sync::CancellationToken;

/// Applies each body once; a body seen before is a duplicate; `fail` always fails.
#[derive(Default)]
struct Idempotent {
    seen: Mutex<HashSet<Vec<u8>>>,
    parked: Mutex<Vec<Vec<u8>>>,
}

impl MessageHandler for Idempotent {
    async fn handle(&self, message: &Message) -> Result<Handled, HandlerError> {
        if message.body == b"fail" {
            return Err(HandlerError::new("induced failure"));
        }
        if self.seen.lock().unwrap().insert(message.body.clone()) {
            Ok(Handled::Applied)
        } else {
            Ok(Handled::Duplicate)
        }
    }

    async fn unprocessable(&self, message: &Message, _: &HandlerError) -> Result<(), HandlerError> {
        self.parked.lock().unwrap().push(message.body.clone());
        Ok(())
    }
}

fn scrape(registry: &Registry, series: &str) -> f64 {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn applied_duplicate_retried_and_unprocessable_each_move_their_series() {
    let registry = Registry::new();
    let metrics = EventsMetrics::new();
    metrics.register(&registry).unwrap();
    let transport = Transport::InProcess(InProcessTransport::new(metrics.clone()));
    let handler = Arc::new(Idempotent::default());
    let shutdown = CancellationToken::new();
    let config = ConsumerConfig {
        processing_timeout: Duration::from_secs(5),
        max_retry_attempts: 1,
        requeue_delay: Duration::from_millis(10),
    };
    let q = "btc_info_queue";
    let series =
        |outcome: &str| format!(r#"events_consumed_total{{outcome="{outcome}",queue="{q}"}}"#);
    let consumer = {
        let (t, h, s) = (transport.clone(), Arc::clone(&handler), shutdown.clone());
        tokio::spawn(async move { t.consume(QueueName::BtcInfo, h, config, s).await })
    };
    let wait_for = |name: String, want: f64| {
        let registry = registry.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while scrape(&registry, &name) < want {
                assert!(Instant::now() < deadline, "{name} never reached {want}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    // Created at zero when the consumer starts, so a first event is an increase.
    wait_for(
        format!(r#"unprocessable_entity_total{{entity="{q}"}}"#),
        0.0,
    )
    .await;
    assert_eq!(scrape(&registry, &series("applied")), 0.0);

    transport.publish(QueueName::BtcInfo, b"one").await.unwrap();
    wait_for(series("applied"), 1.0).await;
    transport.publish(QueueName::BtcInfo, b"one").await.unwrap();
    wait_for(series("duplicate"), 1.0).await;
    assert_eq!(scrape(&registry, &series("applied")), 1.0);

    transport
        .publish(QueueName::BtcInfo, b"fail")
        .await
        .unwrap();
    // Attempts 0 and 1 are retried; attempt 2 is past max_retry_attempts = 1.
    wait_for(series("unprocessable"), 1.0).await;
    assert_eq!(scrape(&registry, &series("retried")), 2.0);
    assert_eq!(
        scrape(
            &registry,
            &format!(r#"unprocessable_entity_total{{entity="{q}"}}"#)
        ),
        1.0
    );
    assert_eq!(handler.parked.lock().unwrap().len(), 1);
    for (status, attempts, n) in [
        ("applied", "0", 1.0),
        ("duplicate", "0", 1.0),
        ("retried", "0", 1.0),
        ("retried", "1", 1.0),
        ("unprocessable", "2", 1.0),
    ] {
        let name = format!(
            r#"event_processing_duration_seconds_count{{attempts="{attempts}",queuename="{q}",status="{status}"}}"#
        );
        assert_eq!(scrape(&registry, &name), n, "{name}");
    }
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
}
