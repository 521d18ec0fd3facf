//! The transactional outbox as the relay sees it.

use crate::common::chain::{block, event};
use crate::common::TestDb;

pub async fn outbox_rows_come_out_in_insertion_order_until_marked_sent(db: &TestDb) {
    let (s, outbox) = db.stores().await;
    let mut expected = Vec::new();
    for (i, height) in (200..203).enumerate() {
        let mut b = block(height, 0, 0);
        for j in 0..3 {
            let e = event(
                if j % 2 == 0 {
                    "active_staking_queue"
                } else {
                    "btc_info_queue"
                },
                (i * 10 + j) as u64,
            );
            expected.push(e.clone());
            b.events.push(e);
        }
        s.apply_block(&b).await.unwrap();
    }
    let extra = vec![event("expired_staking_queue", 99)];
    let ids = outbox.enqueue(&extra).await.unwrap();
    assert_eq!(ids.len(), 1);
    expected.extend(extra);
    assert_eq!(outbox.unsent_count().await.unwrap(), 10);

    let first = outbox.fetch_unsent(4).await.unwrap();
    assert_eq!(first.len(), 4);
    assert!(first.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    let got: Vec<_> = first
        .iter()
        .map(|r| (r.queue.clone(), r.payload.clone()))
        .collect();
    let want: Vec<_> = expected[..4]
        .iter()
        .map(|e| (e.queue.clone(), e.payload.clone()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        outbox.fetch_unsent(4).await.unwrap(),
        first,
        "unsent rows stay until marked"
    );

    let first_ids: Vec<i64> = first.iter().map(|r| r.id).collect();
    assert_eq!(outbox.mark_sent(&first_ids).await.unwrap(), 4);
    assert_eq!(
        outbox.mark_sent(&first_ids).await.unwrap(),
        0,
        "marking twice is harmless"
    );
    assert_eq!(outbox.mark_sent(&[]).await.unwrap(), 0);

    let rest = outbox.fetch_unsent(100).await.unwrap();
    assert_eq!(rest.len(), 6);
    assert!(rest[0].id > first_ids[3]);
    let got: Vec<_> = rest.iter().map(|r| r.payload.clone()).collect();
    let want: Vec<_> = expected[4..].iter().map(|e| e.payload.clone()).collect();
    assert_eq!(got, want);
    assert_eq!(rest.last().unwrap().id, ids[0]);
    // Mark out of order: the remaining rows keep their order.
    assert_eq!(
        outbox.mark_sent(&[rest[5].id, rest[1].id]).await.unwrap(),
        2
    );
    let left: Vec<i64> = outbox
        .fetch_unsent(100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [rest[0].id, rest[2].id, rest[3].id, rest[4].id]);
    assert_eq!(outbox.unsent_count().await.unwrap(), 4);
}

/// Records what the relay publishes.
#[derive(Debug, Default, Clone)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl events::Publish for Recorder {
    async fn publish(
        &self,
        queue: events::QueueName,
        payload: &[u8],
    ) -> Result<(), events::EventsError> {
        let body = String::from_utf8(payload.to_vec()).expect("utf-8 payload");
        self.0
            .lock()
            .expect("not poisoned")
            .push((queue.as_str().to_owned(), body));
        Ok(())
    }
}

pub async fn the_events_relay_publishes_the_outbox_in_order_and_marks_rows_sent(db: &TestDb) {
    let (s, outbox) = db.stores().await;
    let mut want = Vec::new();
    for height in 1..=3 {
        let mut b = block(height, 0, 0);
        for j in 0..4u64 {
            let e = event(
                if j % 2 == 0 {
                    "active_staking_queue"
                } else {
                    "btc_info_queue"
                },
                u64::from(height) * 10 + j,
            );
            want.push((e.queue.clone(), e.payload.clone()));
            b.events.push(e);
        }
        s.apply_block(&b).await.unwrap();
    }
    let recorder = Recorder::default();
    let config = events::outbox::RelayConfig {
        batch_size: 5,
        ..Default::default()
    };
    let relay = events::outbox::Relay::new(outbox.clone(), recorder.clone(), config);
    assert_eq!(relay.relay_once().await.unwrap(), 5);
    assert_eq!(relay.relay_once().await.unwrap(), 5);
    assert_eq!(relay.relay_once().await.unwrap(), 2);
    assert_eq!(
        relay.relay_once().await.unwrap(),
        0,
        "everything was marked sent"
    );
    assert_eq!(*recorder.0.lock().unwrap(), want);
    assert_eq!(outbox.unsent_count().await.unwrap(), 0);
}
