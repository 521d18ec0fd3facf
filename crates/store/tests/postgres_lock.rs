//! PostgreSQL only: the advisory lock lives in one server session, so a writer must notice when
//! that session is gone (network loss, server restart, an operator's `pg_terminate_backend`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::time::Duration;

use common::TestDb;
use store::{StoreError, INDEXER_LOCK};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_whose_lock_session_ends_learns_it_lost_the_lock_and_the_standby_takes_over() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (active, standby) = (db.open().await, db.open().await);
    let mut lock = active
        .try_writer_lock(INDEXER_LOCK)
        .await
        .unwrap()
        .expect("free lock");
    lock.check().await.unwrap();

    db.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .await;

    let err = lock.check().await.unwrap_err();
    assert!(
        matches!(err, StoreError::LockLost { ref name } if name == INDEXER_LOCK),
        "{err}"
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let taken = tokio::time::timeout(
        Duration::from_secs(10),
        standby.wait_for_writer_lock(INDEXER_LOCK, Duration::from_millis(20), &shutdown),
    )
    .await
    .expect("the standby takes over")
    .unwrap();
    assert!(taken.is_some());
}
