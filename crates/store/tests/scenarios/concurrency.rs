//! Two writers and the hot-standby lock.

use std::time::Duration;

use bitcoin::Amount;
use store::{BlockApplied, StoreError, INDEXER_LOCK};
use tokio_util::sync::CancellationToken;

use crate::common::chain::{block, busy_block};
use crate::common::TestDb;

pub async fn two_writers_applying_the_same_blocks_concurrently_count_each_once(db: &TestDb) {
    let (s1, s2) = (db.open().await.indexer(), db.open().await.indexer());
    let first = 300;
    for height in first..first + 12 {
        let b = busy_block(first, height);
        let (r1, r2) = tokio::join!(s1.apply_block(&b), s2.apply_block(&b));
        let mut kinds = [r1.unwrap().applied, r2.unwrap().applied];
        kinds.sort_by_key(|k| *k == BlockApplied::Replayed);
        assert_eq!(
            kinds,
            [BlockApplied::Extended, BlockApplied::Replayed],
            "height {height}"
        );
    }
    let tvl = s1.confirmed_tvl().await.unwrap();
    assert_eq!(tvl, s2.tvl_from_rows().await.unwrap());
    // Same result as one writer: 12 active stakes, 9 of them unbonded.
    let expected: u64 = (first + 9..first + 12)
        .map(|h| 10_000 + u64::from(h % 97))
        .sum();
    assert_eq!(tvl, Amount::from_sat(expected));
    assert_eq!(s2.tip().await.unwrap().unwrap().height, first + 11);
}

pub async fn two_writers_with_competing_blocks_leave_exactly_one(db: &TestDb) {
    let (s1, s2) = (db.open().await.indexer(), db.open().await.indexer());
    s1.apply_block(&block(400, 0, 0)).await.unwrap();
    for height in 401..409 {
        let mine = block(height, 0, 0);
        let mut theirs = block(height, 1, 0);
        theirs.prev_hash = mine.prev_hash;
        let (r1, r2) = tokio::join!(s1.apply_block(&mine), s2.apply_block(&theirs));
        let (winner, loser) = match (r1, r2) {
            (Ok(o), Err(e)) => ((o, mine.hash), e),
            (Err(e), Ok(o)) => ((o, theirs.hash), e),
            other => panic!("exactly one of two competing blocks must win: {other:?}"),
        };
        assert_eq!(winner.0.applied, BlockApplied::Extended);
        assert!(
            matches!(loser, StoreError::ConflictingBlock { .. }),
            "{loser}"
        );
        assert_eq!(s1.block_hash_at(height).await.unwrap(), Some(winner.1));
        // Continue on the winner's branch.
        if winner.1 != mine.hash {
            s1.rollback_to(height - 1).await.unwrap();
            s1.apply_block(&mine).await.unwrap();
        }
    }
    assert_eq!(s2.tip().await.unwrap().unwrap().height, 408);
}

pub async fn a_standby_waits_for_the_writer_lock_and_takes_over(db: &TestDb) {
    let (active, standby) = (db.open().await, db.open().await);
    let mut lock = active
        .try_writer_lock(INDEXER_LOCK)
        .await
        .unwrap()
        .expect("free lock");
    lock.check().await.unwrap();
    assert!(
        standby
            .try_writer_lock(INDEXER_LOCK)
            .await
            .unwrap()
            .is_none(),
        "held elsewhere"
    );
    assert!(
        active
            .try_writer_lock(INDEXER_LOCK)
            .await
            .unwrap()
            .is_none(),
        "not re-entrant"
    );
    let other_name = standby.try_writer_lock("another-service").await.unwrap();
    assert!(other_name.is_some(), "locks are per name");

    let shutdown = CancellationToken::new();
    let waiter = {
        let (standby, shutdown) = (standby.clone(), shutdown.clone());
        tokio::spawn(async move {
            standby
                .wait_for_writer_lock(INDEXER_LOCK, Duration::from_millis(20), &shutdown)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "the standby waits while the writer holds the lock"
    );

    // The writer keeps writing while holding the lock.
    active.indexer().apply_block(&block(1, 0, 0)).await.unwrap();
    drop(lock); // as when the active process dies: its connection closes
    let mut taken = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("standby takes over within 10 s")
        .unwrap()
        .unwrap()
        .expect("lock, not shutdown");
    taken.check().await.unwrap();
    standby
        .indexer()
        .apply_block(&block(2, 0, 0))
        .await
        .unwrap();
    assert!(
        active
            .try_writer_lock(INDEXER_LOCK)
            .await
            .unwrap()
            .is_none(),
        "now the old writer waits"
    );
    taken.release().await.unwrap();
    let again = active.try_writer_lock(INDEXER_LOCK).await.unwrap();
    assert!(again.is_some(), "released explicitly");
    assert_eq!(standby.outbox().unsent_count().await.unwrap(), 0);
}

pub async fn waiting_for_the_writer_lock_stops_on_shutdown(db: &TestDb) {
    let (active, standby) = (db.open().await, db.open().await);
    let _lock = active
        .try_writer_lock(INDEXER_LOCK)
        .await
        .unwrap()
        .expect("free lock");
    let shutdown = CancellationToken::new();
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        stopper.cancel();
    });
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        standby.wait_for_writer_lock(INDEXER_LOCK, Duration::from_secs(3600), &shutdown),
    )
    .await
    .expect("shutdown interrupts the wait")
    .unwrap();
    assert!(got.is_none());
}
