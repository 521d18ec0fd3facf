//! The real RabbitMQ broker for the indexer's end-to-end tests: a queue prefix of each test's
//! own, a reader that declares the queues exactly as the reference consumer does and drains
//! them, and cleanup of everything the prefix declared.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    reason = "test code: a panic is a failed test; each test binary uses part of the helpers"
)]

use std::time::{SystemTime, UNIX_EPOCH};

use events::{QueueName, QueueNaming, QueueType};
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

/// `AMQP_URL`, or the local broker of `.ci/services` (`testkit::amqp_url`).
pub fn amqp_uri() -> String {
    testkit::amqp_url()
}

/// A fresh queue prefix for `test`; an unreachable broker fails the test, or gives `None` when
/// skipping is allowed (`testkit::rabbitmq`).
pub async fn prefix(test: &str) -> Option<String> {
    testkit::rabbitmq().await?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Some(format!("t_ix_{test}_{}_{nanos}_", std::process::id()))
}

/// Reads every message now in `queue` (full reference name under `naming`), in queue order,
/// after declaring its topology as the reference consumer does (a mismatch with what the
/// publisher declared fails here with PRECONDITION_FAILED).
pub async fn drain(naming: &QueueNaming, queue_type: QueueType, queue: QueueName) -> Vec<String> {
    let connection = Connection::connect(&amqp_uri(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    events::rabbitmq::declare_queue_topology(&channel, naming, queue_type, queue)
        .await
        .unwrap();
    let name = naming.queue(queue);
    let count = channel
        .queue_declare(
            &name,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count();
    channel
        .basic_qos(1_000, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            &name,
            "",
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    while out.len() < count as usize {
        let delivery = tokio::time::timeout(std::time::Duration::from_secs(10), consumer.next())
            .await
            .expect("the broker stopped delivering")
            .unwrap()
            .unwrap();
        out.push(String::from_utf8(delivery.data).unwrap());
    }
    let _ = connection.close(200, "drained").await;
    out
}

/// Deletes every queue and the exchange of a prefix when dropped, even after a panic.
pub struct Cleanup(pub QueueNaming);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let naming = self.0.clone();
        let cleaner = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let Ok(connection) =
                    Connection::connect(&amqp_uri(), ConnectionProperties::default()).await
                else {
                    return;
                };
                for queue in QueueName::ALL {
                    for name in [naming.queue(queue), naming.delay_queue(queue)] {
                        // A failed delete closes the channel, so use a fresh one each time.
                        if let Ok(channel) = connection.create_channel().await {
                            let _ = channel
                                .queue_delete(&name, QueueDeleteOptions::default())
                                .await;
                            let _ = channel.close(200, "done").await;
                        }
                    }
                }
                if let Ok(channel) = connection.create_channel().await {
                    let _ = channel
                        .exchange_delete(&naming.dead_letter_exchange(), Default::default())
                        .await;
                }
                let _ = connection.close(200, "cleanup").await;
            });
        });
        let _ = cleaner.join();
    }
}

/// The first occurrence of each message, in delivery order: what an idempotent consumer acts
/// on when the relay repeats messages after a crash.
pub fn first_occurrences(delivered: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    delivered
        .iter()
        .filter(|m| seen.insert(m.as_str()))
        .cloned()
        .collect()
}
