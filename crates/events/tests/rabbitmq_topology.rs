#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
//! Against the real broker (127.0.0.1:5672 or `AMQP_URL`): our topology is the reference's to the
//! argument, our messages are what a reference consumer reads. Each test has its own prefix.

mod common;

use std::time::Duration;

use bitcoin::{Amount, Txid};
use common::{admin_channel, broker, declare_like_reference, message_count, Cleanup};
use events::rabbitmq::ATTEMPTS_HEADER;
use events::{
    BtcInfoEvent, Event, EventsError, EventsMetrics, ExpiredStakingEvent, ExpiredTxType, QueueName,
    QueueType, RabbitMqTransport,
};
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable};
use lapin::ExchangeKind;

fn is_precondition_failed(error: &lapin::Error) -> bool {
    matches!(error, lapin::Error::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)))
}

async fn our_topology_accepts_the_reference_declaration(queue_type: QueueType, test: &str) {
    let Some(config) = broker(test, queue_type).await else {
        return;
    };
    let _cleanup = Cleanup(config.naming());
    let naming = config.naming();
    let transport = RabbitMqTransport::connect(config, EventsMetrics::new())
        .await
        .unwrap();

    let (connection, channel) = admin_channel().await;
    for queue in QueueName::ALL {
        // Active re-declaration with the reference's exact arguments: RabbitMQ would answer
        // PRECONDITION_FAILED (and close the channel) on any difference.
        declare_like_reference(
            &channel,
            &naming.queue(queue),
            &naming.dead_letter_exchange(),
            queue_type.as_str(),
        )
        .await
        .unwrap_or_else(|e| panic!("{queue}: {e}"));
        // Passive declarations: all of them exist.
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        for name in [naming.queue(queue), naming.delay_queue(queue)] {
            channel
                .queue_declare(&name, passive, FieldTable::default())
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            &naming.dead_letter_exchange(),
            ExchangeKind::Direct,
            passive,
            FieldTable::default(),
        )
        .await
        .unwrap();
    transport.close().await;
    connection.close(200, "done").await.unwrap();
}

#[tokio::test]
async fn quorum_topology_accepts_the_reference_declaration_unchanged() {
    our_topology_accepts_the_reference_declaration(QueueType::Quorum, "topo_quorum").await;
}

#[tokio::test]
async fn classic_topology_accepts_the_reference_declaration_unchanged() {
    our_topology_accepts_the_reference_declaration(QueueType::Classic, "topo_classic").await;
}

#[tokio::test]
async fn a_declaration_with_any_other_argument_is_refused_with_precondition_failed() {
    let Some(config) = broker("topo_mismatch", QueueType::Quorum).await else {
        return;
    };
    let _cleanup = Cleanup(config.naming());
    let naming = config.naming();
    let transport = RabbitMqTransport::connect(config.clone(), EventsMetrics::new())
        .await
        .unwrap();
    let q = naming.queue(QueueName::ActiveStaking);
    let (connection, _) = admin_channel().await;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let text = |s: &str| AMQPValue::LongString(s.into());
    let variants: [(&str, &str, String); 4] = [
        ("x-queue-type", "classic", naming.dead_letter_exchange()),
        (
            "x-dead-letter-routing-key",
            "wrong_routing_key",
            naming.dead_letter_exchange(),
        ),
        ("x-dead-letter-exchange", "", naming.dead_letter_exchange()),
        (
            "x-dead-letter-exchange",
            "other_dlx",
            naming.dead_letter_exchange(),
        ),
    ];
    for (changed, value, dlx) in variants {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), text("quorum"));
        args.insert("x-dead-letter-exchange".into(), text(&dlx));
        args.insert(
            "x-dead-letter-routing-key".into(),
            text(&format!("{q}_routing_key")),
        );
        args.insert(changed.into(), text(value));
        let channel = connection.create_channel().await.unwrap();
        let error = channel.queue_declare(&q, durable, args).await.unwrap_err();
        assert!(
            is_precondition_failed(&error),
            "{changed}={value:?}: {error}"
        );
    }
    // Our own transport with the other queue type meets the same refusal, as a permanent error.
    let mut classic = config;
    classic.queue_type = QueueType::Classic;
    let error = RabbitMqTransport::connect(classic, EventsMetrics::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EventsError::Declare { source, .. } if is_precondition_failed(source)),
        "{error}"
    );
    assert!(!error.is_transient(), "a topology mismatch is not retried");
    transport.close().await;
    connection.close(200, "done").await.unwrap();
}

#[tokio::test]
async fn a_consumer_that_declares_the_reference_way_reads_our_messages_byte_for_byte() {
    let Some(config) = broker("topo_consumer", QueueType::Quorum).await else {
        return;
    };
    let _cleanup = Cleanup(config.naming());
    let naming = config.naming();
    // The reference consumer starts first and declares its queues.
    let (connection, channel) = admin_channel().await;
    for queue in [QueueName::ExpiredStaking, QueueName::BtcInfo] {
        declare_like_reference(
            &channel,
            &naming.queue(queue),
            &naming.dead_letter_exchange(),
            "quorum",
        )
        .await
        .unwrap();
    }
    let metrics = EventsMetrics::new();
    let transport = RabbitMqTransport::connect(config, metrics.clone())
        .await
        .unwrap();
    let txid: Txid = "9764a21549914b4879f1b4e7ea0092fb28d30b17361e66f53c4d6031f367a11b"
        .parse()
        .unwrap();
    let events = [
        Event::from(ExpiredStakingEvent {
            staking_tx_hash: txid,
            tx_type: ExpiredTxType::Active,
        }),
        Event::from(BtcInfoEvent {
            height: 7,
            confirmed_tvl: Amount::from_sat(1),
            unconfirmed_tvl: Amount::from_sat(2),
        }),
    ];
    for event in &events {
        transport
            .publish(event.queue(), event.to_json().as_bytes())
            .await
            .unwrap();
    }
    for event in &events {
        let name = naming.queue(event.queue());
        let delivery = channel
            .basic_get(&name, BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("a message");
        assert_eq!(
            String::from_utf8(delivery.data.clone()).unwrap(),
            event.to_json()
        );
        assert_eq!(
            Event::decode(event.queue(), &delivery.data).unwrap(),
            *event
        );
        let properties = &delivery.properties;
        assert_eq!(properties.delivery_mode(), &Some(2), "persistent");
        assert_eq!(
            properties.content_type().as_ref().map(|c| c.as_str()),
            Some("text/plain")
        );
        let attempts = properties
            .headers()
            .as_ref()
            .unwrap()
            .inner()
            .get(ATTEMPTS_HEADER)
            .cloned();
        assert_eq!(
            attempts,
            Some(AMQPValue::LongInt(0)),
            "int32 0, as Go's consumer type-asserts"
        );
        assert_eq!(delivery.delivery.exchange.as_str(), "", "default exchange");
        assert_eq!(delivery.delivery.routing_key.as_str(), name);
        assert_eq!(metrics.published_count(&name), 1);
    }
    transport.close().await;
    connection.close(200, "done").await.unwrap();
}

#[tokio::test]
async fn a_publish_to_a_vanished_queue_fails_and_the_next_publish_redeclares_it() {
    let Some(config) = broker("topo_vanished", QueueType::Classic).await else {
        return;
    };
    let _cleanup = Cleanup(config.naming());
    let naming = config.naming();
    let metrics = EventsMetrics::new();
    let transport = RabbitMqTransport::connect(config, metrics.clone())
        .await
        .unwrap();
    let name = naming.queue(QueueName::BtcInfo);
    let (connection, channel) = admin_channel().await;
    channel
        .queue_delete(&name, QueueDeleteOptions::default())
        .await
        .unwrap();

    transport.ping().await.unwrap();
    let error = transport
        .publish(QueueName::BtcInfo, b"lost?")
        .await
        .unwrap_err();
    assert!(
        matches!(error, EventsError::Unroutable { .. }),
        "mandatory publish is returned: {error}"
    );
    assert!(error.is_transient());
    assert_eq!(metrics.publish_failed_count(&name), 1);

    transport
        .publish(QueueName::BtcInfo, b"again")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(message_count(&channel, &name).await, 1);
    transport.close().await;
    connection.close(200, "done").await.unwrap();
}

#[tokio::test]
async fn an_unreachable_broker_is_a_transient_connect_error_without_the_password() {
    let mut config = events::RabbitMqConfig::from_parts("guest", "hunter2", "127.0.0.1:1");
    config.queue_prefix = "never_".to_owned();
    let error = RabbitMqTransport::connect(config, EventsMetrics::new())
        .await
        .unwrap_err();
    assert!(matches!(error, EventsError::Connect { .. }), "{error}");
    assert!(error.is_transient());
    assert!(!error.to_string().contains("hunter2"), "{error}");
    let unreachable = events::RabbitMqConfig::from_parts("guest", "x", "127.0.0.1:1");
    let lazy = RabbitMqTransport::lazy(unreachable, EventsMetrics::new());
    assert!(
        lazy.ping().await.is_err(),
        "ping reports an unreachable broker"
    );
}

#[tokio::test]
async fn a_refused_connection_is_said_once_with_the_redacted_url() {
    let config = events::RabbitMqConfig::from_parts("guest", "hunter2", "127.0.0.1:1");
    let text = RabbitMqTransport::connect(config, EventsMetrics::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("amqp://guest:***@127.0.0.1:1"), "{text}");
    assert_eq!(
        text.to_lowercase().matches("connection refused").count(),
        1,
        "{text}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_reported_as_a_refused_login_without_debug_dumps() {
    let Some(config) = broker("wrong_password", QueueType::Classic).await else {
        return;
    };
    // The working URI with its password replaced.
    let uri = config.uri.clone();
    let (head, host) = uri.rsplit_once('@').unwrap();
    let user = head.rsplit_once(':').unwrap().0;
    let wrong = events::RabbitMqConfig::from_uri(format!("{user}:not-the-password@{host}"));
    let error = RabbitMqTransport::connect(wrong, EventsMetrics::new())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("refused the login"), "{text}");
    assert!(text.contains("wrong user or password"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    for debug in ["{", "Some(", "AMQPError"] {
        assert!(!text.contains(debug), "{debug:?} in {text}");
    }
    assert!(
        !error.is_transient(),
        "retrying a wrong password cannot help"
    );
}
