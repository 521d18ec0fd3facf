//! Claiming and leases in the database alone (no chain), on SQLite and PostgreSQL: concurrent
//! claimers never share a request, an expired lease is taken over and its old holder can no
//! longer record, a backoff is respected, `retry-failed` gives a fresh budget.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin::{Amount, Txid};
use common::{insert_request, Backend, TestDb};
use staking_core::keys::SECP;
use store::api::NewUnbondingRequest;
use store::unbonding::Recorded;
use store::{Db, DbOptions, UnbondingStore};

fn key(seed: u8) -> bitcoin::secp256k1::XOnlyPublicKey {
    let mut bytes = [1u8; 32];
    bytes[0] = seed;
    Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&bytes).unwrap())
        .x_only_public_key()
        .0
}

/// A row as the API would store it; the chain is not involved here.
fn request(i: u32) -> NewUnbondingRequest {
    let mut staking = [0u8; 32];
    staking[..4].copy_from_slice(&i.to_be_bytes());
    let mut unbonding = staking;
    unbonding[31] = 0xee;
    NewUnbondingRequest {
        staking_tx_hash: Txid::from_byte_array(staking),
        unbonding_tx_hash: Txid::from_byte_array(unbonding),
        unbonding_tx_hex: "00".into(),
        staker_pk: key(1),
        finality_provider_pk: key(2),
        staker_signature_hex: "00".into(),
        staking_tx_hex: "00".into(),
        staking_output_index: 0,
        staking_timelock: 1000,
        staking_amount: Amount::from_sat(100_000),
    }
}

async fn store_with(backend: Backend, n: u32) -> Option<(TestDb, UnbondingStore)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    for i in 0..n {
        insert_request(&store, &request(i), 100).await;
    }
    Some((db, store.unbonding()))
}

async fn concurrent_claimers(backend: Backend) {
    let Some((db, _store)) = store_with(backend, 60).await else {
        return;
    };
    let mut claimers = Vec::new();
    for c in 0..4 {
        let url = db.url.clone();
        claimers.push(tokio::spawn(async move {
            let options = DbOptions::new(url).max_connections(4);
            let store = Db::connect(&options).await.unwrap().unbonding();
            let token = format!("claimer-{c}");
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim(&token, Duration::from_secs(60), 3)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|c| c.id));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 60, "every request claimed once: {all:?}");
    assert_eq!(distinct.len(), 60);
}
on_both_backends!(
    concurrent_claimers_never_get_the_same_request,
    concurrent_claimers
);

async fn expired_lease(backend: Backend) {
    let Some((_db, store)) = store_with(backend, 1).await else {
        return;
    };
    let first = store
        .claim("first", Duration::from_millis(300), 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 1);
    assert_eq!(first[0].request.as_ref().unwrap(), &request(0));
    let id = first[0].id;
    assert!(store
        .claim("second", Duration::from_secs(60), 10)
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = store
        .claim("second", Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].id, second[0].attempts), (id, 2));
    let txid = request(0).unbonding_tx_hash;
    assert_eq!(
        store.record_sent(id, "first", &txid).await.unwrap(),
        Recorded::LeaseLost
    );
    assert_eq!(
        store.record_failed(id, "first", "stale").await.unwrap(),
        Recorded::LeaseLost
    );
    assert_eq!(
        store.record_sent(id, "second", &txid).await.unwrap(),
        Recorded::Yes
    );
    assert_eq!(
        store.record_sent(id, "second", &txid).await.unwrap(),
        Recorded::LeaseLost,
        "an outcome is recorded once"
    );
    let p = &store.progress().await.unwrap()[0];
    assert_eq!(p.state, "sent");
    assert_eq!(p.sent_txid, Some(txid.to_string()));
}
on_both_backends!(
    an_expired_lease_is_taken_over_and_the_old_holder_can_no_longer_record,
    expired_lease
);

async fn backoff_and_requeue(backend: Backend) {
    let Some((_db, store)) = store_with(backend, 1).await else {
        return;
    };
    let lease = Duration::from_secs(60);
    let id = store.claim("p", lease, 1).await.unwrap()[0].id;
    let not_before = chrono::Utc::now().timestamp_millis() + 300;
    assert_eq!(
        store
            .release_for_retry(id, "p", not_before, "signers down", false)
            .await
            .unwrap(),
        Recorded::Yes
    );
    assert!(store.claim("p", lease, 1).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = store.claim("p", lease, 1).await.unwrap();
    assert_eq!(again[0].attempts, 2);
    // A failure of our own node gives the attempt back.
    store
        .release_for_retry(id, "p", 0, "node down", true)
        .await
        .unwrap();
    let p = &store.progress().await.unwrap()[0];
    assert_eq!((p.state.as_str(), p.attempts), ("accepted", 1));
    assert_eq!(p.last_error.as_deref(), Some("node down"));

    store.claim("p", lease, 1).await.unwrap();
    store.record_failed(id, "p", "gave up").await.unwrap();
    assert_eq!(store.requeue_failed(Some(id + 1)).await.unwrap(), 0);
    assert_eq!(store.requeue_failed(Some(id)).await.unwrap(), 1);
    let p = &store.progress().await.unwrap()[0];
    assert_eq!((p.state.as_str(), p.attempts), ("accepted", 0));
    assert_eq!(p.failure_reason, None);
    assert_eq!(p.last_error.as_deref(), Some("gave up"));
    assert_eq!(store.requeue_failed(None).await.unwrap(), 0);
}
on_both_backends!(
    a_retry_waits_for_its_backoff_and_retry_failed_gives_a_fresh_budget,
    backoff_and_requeue
);
