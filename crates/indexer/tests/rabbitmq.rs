//! The RabbitMQ path end to end: the indexer, configured with a broker URL (its own queue
//! prefix), follows a devnet chain and relays its outbox to the real broker; a consumer that
//! declares the queues exactly as the reference does reads every event, byte for byte the JSON
//! the indexer committed, in commit order, with the reference's field order.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod broker;
mod devnet;
mod support;

use std::time::{Duration, Instant};

use devnet::{Backend, Harness};
use events::{QueueName, QueueNaming, QueueType};
use sqlx::{Connection, SqliteConnection};
use support::{Fx, V};

const ACTIVATION: u32 = 120;

/// Top-level keys of a JSON object in the order they appear in the text.
fn key_order(json: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut keys: Vec<(usize, String)> = value
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (json.find(&format!("\"{k}\":")).unwrap(), k.clone()))
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, k)| k).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_events_reach_the_reference_queues_in_order_and_byte_for_byte() {
    let Some(prefix) = broker::prefix("e2e").await else {
        return;
    };
    let naming = QueueNaming::new(prefix.clone());
    let _cleanup = broker::Cleanup(naming.clone());
    let fx = Fx::new(&[V::amount(u64::from(ACTIVATION), 1_000_000)], 3);
    let mut h = Harness::start(Backend::Sqlite, fx).await.unwrap();
    while h.tip() < ACTIVATION - 1 {
        h.mine_empty(1);
    }
    let mut raw = h.raw_config();
    raw.extra_event_enabled = Some(true);
    raw.queue.url = Some(broker::amqp_uri());
    raw.queue.queue_type = Some("quorum".into());
    raw.queue.queue_prefix = Some(prefix);
    h.start_indexer_with(raw);

    let first = h.stake(ACTIVATION, 50_000, 10);
    let second = h.stake(ACTIVATION, 60_000, 10);
    h.mine(vec![first.clone(), second.clone()]);
    let staked_at = h.tip();
    let unbond = h.fx.unbonding_tx(&first, staked_at, 10, None);
    h.mine(vec![unbond.clone()]);
    h.mine_empty(support::UNBONDING_TIME.into());
    let withdraw = h.fx.withdraw_unbonding_tx(&[(&unbond, staked_at, 10)]);
    h.mine(vec![withdraw]);
    h.confirm(h.tip());

    let want = h.tip() + 1 - h.depth;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tip = h.store.tip().await.unwrap().map_or(0, |t| t.height);
        if tip >= want && h.outbox.unsent_count().await.unwrap() == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "indexer did not relay up to {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.stop_indexer().await.unwrap();

    let mut db = SqliteConnection::connect(&h.db_url).await.unwrap();
    let committed: Vec<(String, String)> =
        sqlx::query_as("SELECT queue, payload FROM outbox ORDER BY id")
            .fetch_all(&mut db)
            .await
            .unwrap();
    for queue in QueueName::ALL {
        let expected: Vec<String> = committed
            .iter()
            .filter(|(q, _)| q == queue.as_str())
            .map(|(_, p)| p.clone())
            .collect();
        let delivered = broker::drain(&naming, QueueType::Quorum, queue).await;
        assert_eq!(
            delivered, expected,
            "{queue}: delivered differs from committed"
        );
    }

    let active: Vec<_> = committed
        .iter()
        .filter(|(q, _)| q == "active_staking_queue")
        .map(|(_, p)| p.as_str())
        .collect();
    assert_eq!(active.len(), 2);
    assert!(active[0].contains(&first.compute_txid().to_string()));
    assert!(active[1].contains(&second.compute_txid().to_string()));
    assert_eq!(
        key_order(active[0]),
        [
            "schema_version",
            "event_type",
            "staking_tx_hash_hex",
            "staker_pk_hex",
            "finality_provider_pk_hex",
            "staking_value",
            "staking_start_height",
            "staking_start_timestamp",
            "staking_timelock",
            "staking_output_index",
            "staking_tx_hex",
            "is_overflow"
        ]
    );
    let unbonding: Vec<_> = committed
        .iter()
        .filter(|(q, _)| q == "unbonding_staking_queue")
        .collect();
    assert_eq!(unbonding.len(), 1);
    assert_eq!(
        key_order(&unbonding[0].1),
        [
            "schema_version",
            "event_type",
            "staking_tx_hash_hex",
            "unbonding_start_height",
            "unbonding_start_timestamp",
            "unbonding_timelock",
            "unbonding_output_index",
            "unbonding_tx_hex",
            "unbonding_tx_hash_hex"
        ]
    );
    let withdraws = committed
        .iter()
        .filter(|(q, _)| q == "withdraw_staking_queue")
        .count();
    assert_eq!(withdraws, 1);
    let confirmed: Vec<u64> = committed
        .iter()
        .filter(|(q, _)| q == "confirmed_info_queue")
        .map(|(_, p)| {
            serde_json::from_str::<serde_json::Value>(p).unwrap()["height"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let expected_heights: Vec<u64> = (u64::from(ACTIVATION)..=u64::from(want)).collect();
    assert_eq!(
        confirmed, expected_heights,
        "one confirmed_info per block, in order"
    );
    assert!(
        committed.iter().any(|(q, _)| q == "btc_info_queue"),
        "btc_info is relayed too"
    );
}
