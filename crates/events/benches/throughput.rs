#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench code: a panic is a failed run"
)]
//! Message encode/decode cost, in-process relay throughput, and confirmed publishes to the
//! local RabbitMQ (skipped with a notice when no broker is reachable).

use std::sync::Mutex;
use std::time::Duration;

use bitcoin::consensus::encode::deserialize_hex;
use bitcoin::{Amount, Transaction};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use events::{
    ActiveStakingEvent, Event, EventsMetrics, InProcessTransport, Outbox, OutboxError, OutboxRow,
    QueueName, QueueType, RabbitMqConfig, RabbitMqTransport, Relay, RelayConfig,
};
use lapin::options::QueueDeleteOptions;

fn deposit() -> Transaction {
    let path = format!(
        "{}/../../testdata/realtx/signet-fp-deposits/deposits.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    deserialize_hex(json["deposits"][0]["signed_tx"].as_str().unwrap()).unwrap()
}

fn active_event() -> Event {
    let tx = deposit();
    Event::from(ActiveStakingEvent {
        staking_tx_hash: tx.compute_txid(),
        staker_pk: "3afc02011ea9bf02a9a36ed55f4d3c58cf25ed7f382f15c7fafbf1114b458702"
            .parse()
            .unwrap(),
        finality_provider_pk: "48cff6be4cc49d09fbdb22d89b254152c278f08703169e4b3f5148a96aa05810"
            .parse()
            .unwrap(),
        staking_value: Amount::from_sat(10_000_000),
        staking_start_height: 200_665,
        staking_start_timestamp: 1_716_283_800,
        staking_timelock: 52_560,
        staking_output_index: 1,
        staking_tx: tx,
        is_overflow: false,
    })
}

fn messages(c: &mut Criterion) {
    let event = active_event();
    let json = event.to_json();
    let mut group = c.benchmark_group("messages");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_active_staking_event", |b| {
        b.iter(|| event.to_json())
    });
    group.bench_function("decode_active_staking_event", |b| {
        b.iter(|| Event::decode(QueueName::ActiveStaking, json.as_bytes()).unwrap())
    });
    group.finish();
}

/// An outbox that always has `rows` unsent rows and forgets what is marked.
struct Endless {
    rows: Vec<OutboxRow>,
    marked: Mutex<usize>,
}

impl Outbox for Endless {
    async fn fetch_unsent(&self, limit: usize) -> Result<Vec<OutboxRow>, OutboxError> {
        Ok(self.rows.iter().take(limit).cloned().collect())
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), OutboxError> {
        *self.marked.lock().unwrap() += ids.len();
        Ok(())
    }
}

fn relay(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let payload = active_event().to_json();
    let rows: Vec<OutboxRow> = (1..=1000)
        .map(|id| OutboxRow {
            id,
            queue: "active_staking_queue".to_owned(),
            payload: payload.clone(),
        })
        .collect();
    let outbox = Endless {
        rows,
        marked: Mutex::new(0),
    };
    let config = RelayConfig {
        batch_size: 1000,
        ..RelayConfig::default()
    };
    let mut group = c.benchmark_group("relay");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("in_process_1000_rows", |b| {
        b.iter(|| {
            // A fresh transport each time so queued messages do not pile up.
            let transport = InProcessTransport::new(EventsMetrics::new());
            let relay = Relay::new(&outbox, transport, config.clone());
            assert_eq!(runtime.block_on(relay.relay_once()).unwrap(), 1000);
        })
    });
    group.finish();
}

fn rabbitmq(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let uri = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let mut config = RabbitMqConfig::from_uri(uri.clone());
    config.queue_type = QueueType::Quorum;
    config.queue_prefix = format!("bench_{}_", std::process::id());
    let naming = config.naming();
    let Ok(transport) = runtime.block_on(RabbitMqTransport::connect(config, EventsMetrics::new()))
    else {
        eprintln!("SKIPPED rabbitmq benches: no broker at {uri}");
        return;
    };
    let payload = active_event().to_json();
    let mut group = c.benchmark_group("rabbitmq");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("publish_confirmed_quorum", |b| {
        b.iter(|| {
            runtime
                .block_on(transport.publish(QueueName::ActiveStaking, payload.as_bytes()))
                .unwrap()
        })
    });
    group.finish();
    // The outbox relay over the same broker: a pass of 1000 rows, each confirmed before it is
    // marked sent (msgs/s = 1000 / time per pass).
    let outbox = Endless {
        rows: (1..=1000)
            .map(|id| OutboxRow {
                id,
                queue: "active_staking_queue".to_owned(),
                payload: payload.clone(),
            })
            .collect(),
        marked: Mutex::new(0),
    };
    let relay_config = RelayConfig {
        batch_size: 1000,
        ..RelayConfig::default()
    };
    let mut group = c.benchmark_group("rabbitmq");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("relay_1000_rows_quorum", |b| {
        b.iter(|| {
            let relay = Relay::new(&outbox, transport.clone(), relay_config.clone());
            assert_eq!(runtime.block_on(relay.relay_once()).unwrap(), 1000);
        })
    });
    group.finish();
    runtime.block_on(async {
        transport.close().await;
        let connection = lapin::Connection::connect(&uri, Default::default())
            .await
            .unwrap();
        for queue in QueueName::ALL {
            for name in [naming.queue(queue), naming.delay_queue(queue)] {
                let channel = connection.create_channel().await.unwrap();
                let _ = channel
                    .queue_delete(&name, QueueDeleteOptions::default())
                    .await;
            }
        }
        let channel = connection.create_channel().await.unwrap();
        let _ = channel
            .exchange_delete(&naming.dead_letter_exchange(), Default::default())
            .await;
    });
}

criterion_group!(benches, messages, relay, rabbitmq);
criterion_main!(benches);
