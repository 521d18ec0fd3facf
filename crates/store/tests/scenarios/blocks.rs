//! Block writes: atomicity, chain continuity, replays, TVL rules.

use bitcoin::Amount;
use store::{
    BlockApplied, BlockRef, Db, DbOptions, IndexerStore, InvalidTxKind, InvalidTxQuery,
    OutboxStore, StoreError,
};

use crate::common::chain::{block, block_hash, event, invalid, staking, unbonding};
use crate::common::TestDb;

/// Everything a failed write must leave untouched.
async fn snapshot(s: &IndexerStore, outbox: &OutboxStore) -> (Option<BlockRef>, Amount, u64) {
    (
        s.tip().await.unwrap(),
        s.confirmed_tvl().await.unwrap(),
        outbox.unsent_count().await.unwrap(),
    )
}

pub async fn migrations_run_twice_and_a_new_store_is_empty(db: &TestDb) {
    let db = db.open().await;
    db.migrate().await.unwrap();
    let (s, outbox) = (db.indexer(), db.outbox());
    assert_eq!(s.tip().await.unwrap(), None);
    assert_eq!(s.first_processed_height().await.unwrap(), None);
    assert_eq!(s.confirmed_tvl().await.unwrap(), Amount::ZERO);
    assert_eq!(s.tvl_from_rows().await.unwrap(), Amount::ZERO);
    assert_eq!(outbox.unsent_count().await.unwrap(), 0);
    assert!(outbox.fetch_unsent(10).await.unwrap().is_empty());
}

pub async fn store_connects_from_its_url(db: &TestDb) {
    let s = Db::connect(&DbOptions::new(db.url.clone())).await.unwrap();
    s.migrate().await.unwrap();
    s.indexer().apply_block(&block(7, 0, 0)).await.unwrap();
    let other = db.open().await.indexer();
    assert_eq!(
        other.tip().await.unwrap(),
        Some(BlockRef {
            height: 7,
            hash: block_hash(7, 0)
        })
    );
    assert!(matches!(
        Db::connect(&DbOptions::new("mysql://localhost/x")).await,
        Err(StoreError::UnsupportedUrl { .. })
    ));
}

pub async fn a_block_commits_rows_tvl_tip_and_events_together(db: &TestDb) {
    let (s, outbox) = db.stores().await;
    let mut b = block(100, 0, 0);
    let active = staking(&b, 1, 50_000, false);
    let overflow = staking(&b, 2, 7_000, true);
    let bad = invalid(&b, 1, InvalidTxKind::Staking, "staking_time_too_low");
    b.stakings = vec![active.clone(), overflow.clone()];
    b.invalids = vec![bad.clone()];
    b.events = vec![
        event("active_staking_queue", 1),
        event("active_staking_queue", 2),
    ];

    let out = s.apply_block(&b).await.unwrap();
    assert_eq!(out.applied, BlockApplied::Extended);
    assert_eq!((out.stakings_inserted, out.stakings_duplicate), (2, 0));
    assert_eq!((out.invalids_inserted, out.events_queued), (1, 2));
    assert_eq!(
        out.confirmed_tvl,
        Amount::from_sat(50_000),
        "overflow stakes do not count"
    );

    assert_eq!(
        s.tip().await.unwrap(),
        Some(BlockRef {
            height: 100,
            hash: b.hash
        })
    );
    assert_eq!(s.block_hash_at(100).await.unwrap(), Some(b.hash));
    assert_eq!(s.block_hash_at(101).await.unwrap(), None);
    assert_eq!(s.first_processed_height().await.unwrap(), Some(100));
    assert_eq!(s.staking_tx(active.txid).await.unwrap(), Some(active));
    assert_eq!(s.staking_tx(overflow.txid).await.unwrap(), Some(overflow));
    assert_eq!(s.confirmed_tvl().await.unwrap(), Amount::from_sat(50_000));
    assert_eq!(s.tvl_from_rows().await.unwrap(), Amount::from_sat(50_000));
    assert_eq!(
        s.invalid_txs(&InvalidTxQuery::by_txid(bad.txid))
            .await
            .unwrap(),
        vec![bad]
    );
    let rows = outbox.fetch_unsent(10).await.unwrap();
    let payloads: Vec<_> = rows.iter().map(|r| r.payload.as_str()).collect();
    assert_eq!(
        payloads,
        [b.events[0].payload.as_str(), b.events[1].payload.as_str()]
    );
    assert!(rows.iter().all(|r| r.queue == "active_staking_queue"));
}

pub async fn a_block_that_does_not_connect_to_the_tip_is_rejected_and_changes_nothing(db: &TestDb) {
    let (s, outbox) = db.stores().await;
    s.apply_block(&block(100, 0, 0)).await.unwrap();
    let before = snapshot(&s, &outbox).await;

    let mut orphan = block(101, 0, 9); // parent is block 100 of fork 9, not ours
    let stake = staking(&orphan, 1, 1_000, false);
    orphan.stakings.push(stake.clone());
    orphan.events.push(event("active_staking_queue", 1));
    let err = s.apply_block(&orphan).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotConnected {
                height: 101,
                tip_height: 100,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_transient());

    let gap = block(102, 0, 0);
    let err = s.apply_block(&gap).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::HeightGap {
                height: 102,
                tip_height: 100
            }
        ),
        "{err}"
    );

    assert_eq!(snapshot(&s, &outbox).await, before);
    assert_eq!(s.staking_tx(stake.txid).await.unwrap(), None);
}

pub async fn replaying_a_processed_block_ignores_duplicates_and_counts_tvl_once(db: &TestDb) {
    let (s, outbox) = db.stores().await;
    let mut b100 = block(100, 0, 0);
    let stake = staking(&b100, 1, 30_000, false);
    b100.stakings.push(stake.clone());
    b100.invalids
        .push(invalid(&b100, 1, InvalidTxKind::Staking, "value_too_low"));
    b100.events.push(event("active_staking_queue", 1));
    let mut b101 = block(101, 0, 0);
    let other = staking(&b101, 1, 5_000, false);
    b101.stakings.push(other);
    b101.unbondings.push(unbonding(&b101, &stake));
    b101.events.push(event("unbonding_staking_queue", 2));
    s.apply_block(&b100).await.unwrap();
    s.apply_block(&b101).await.unwrap();
    assert_eq!(s.confirmed_tvl().await.unwrap(), Amount::from_sat(5_000));

    let again = s.apply_block(&b100).await.unwrap();
    assert_eq!(again.applied, BlockApplied::Replayed);
    assert_eq!((again.stakings_inserted, again.stakings_duplicate), (0, 1));
    assert_eq!(again.invalids_inserted, 0);
    let again = s.apply_block(&b101).await.unwrap();
    assert_eq!(
        (again.unbondings_inserted, again.unbondings_duplicate),
        (0, 1)
    );
    assert_eq!(again.confirmed_tvl, Amount::from_sat(5_000));

    assert_eq!(s.confirmed_tvl().await.unwrap(), Amount::from_sat(5_000));
    assert_eq!(s.tvl_from_rows().await.unwrap(), Amount::from_sat(5_000));
    assert_eq!(
        s.tip().await.unwrap().unwrap().height,
        101,
        "a replay does not move the tip"
    );
    // The reference republishes on replay; consumers are idempotent.
    assert_eq!(outbox.unsent_count().await.unwrap(), 4);
}

pub async fn a_different_block_at_a_processed_height_is_a_reorg_error(db: &TestDb) {
    let (s, outbox) = db.stores().await;
    s.apply_block(&block(100, 0, 0)).await.unwrap();
    s.apply_block(&block(101, 0, 0)).await.unwrap();
    let before = snapshot(&s, &outbox).await;
    let err = s.apply_block(&block(101, 1, 0)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ConflictingBlock { height: 101, .. }),
        "{err}"
    );
    let err = s.apply_block(&block(99, 0, 0)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BelowHistory {
                height: 99,
                first_height: 100
            }
        ),
        "{err}"
    );
    assert_eq!(snapshot(&s, &outbox).await, before);
}

pub async fn unbonding_lowers_tvl_only_for_active_stakes(db: &TestDb) {
    let s = db.open().await.indexer();
    let mut b100 = block(100, 0, 0);
    let active = staking(&b100, 1, 40_000, false);
    let overflow = staking(&b100, 2, 9_000, true);
    b100.stakings = vec![active.clone(), overflow.clone()];
    s.apply_block(&b100).await.unwrap();

    let mut b101 = block(101, 0, 0);
    let unbond_overflow = unbonding(&b101, &overflow);
    b101.unbondings.push(unbond_overflow.clone());
    let out = s.apply_block(&b101).await.unwrap();
    assert_eq!(
        out.confirmed_tvl,
        Amount::from_sat(40_000),
        "overflow unbonding keeps the TVL"
    );

    let mut b102 = block(102, 0, 0);
    let unbond_active = unbonding(&b102, &active);
    b102.unbondings.push(unbond_active.clone());
    let out = s.apply_block(&b102).await.unwrap();
    assert_eq!(out.confirmed_tvl, Amount::ZERO);
    assert_eq!(s.tvl_from_rows().await.unwrap(), Amount::ZERO);

    assert_eq!(
        s.unbonding_tx(unbond_active.txid).await.unwrap(),
        Some(unbond_active.clone())
    );
    assert_eq!(
        s.unbonding_of(active.txid).await.unwrap(),
        Some(unbond_active)
    );
    assert_eq!(
        s.unbonding_of(overflow.txid).await.unwrap(),
        Some(unbond_overflow)
    );
}

pub async fn unbonding_an_unknown_staking_tx_is_rejected_and_nothing_is_written(db: &TestDb) {
    let (s, outbox) = db.stores().await;
    s.apply_block(&block(100, 0, 0)).await.unwrap();
    let before = snapshot(&s, &outbox).await;
    let ghost_block = block(50, 0, 0);
    let ghost = staking(&ghost_block, 1, 1_000, false);
    let mut b = block(101, 0, 0);
    b.stakings.push(staking(&b, 1, 2_000, false));
    let u = unbonding(&b, &ghost);
    b.unbondings.push(u.clone());
    b.events.push(event("unbonding_staking_queue", 1));
    let err = s.apply_block(&b).await.unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownStakingTx { unbonding, staking } if unbonding == u.txid && staking == ghost.txid),
        "{err}"
    );
    assert_eq!(snapshot(&s, &outbox).await, before);
    assert!(!s.unbonding_tx_exists(u.txid).await.unwrap());
    assert_eq!(s.staking_tx(b.stakings[0].txid).await.unwrap(), None);
}

pub async fn a_second_unbonding_of_the_same_stake_is_rejected(db: &TestDb) {
    let s = db.open().await.indexer();
    let mut b100 = block(100, 0, 0);
    let stake = staking(&b100, 1, 10_000, false);
    b100.stakings.push(stake.clone());
    s.apply_block(&b100).await.unwrap();
    let mut b101 = block(101, 0, 0);
    let first = unbonding(&b101, &stake);
    b101.unbondings.push(first.clone());
    s.apply_block(&b101).await.unwrap();

    let mut b102 = block(102, 0, 0);
    let mut second = unbonding(&b102, &stake);
    second.tx.lock_time = bitcoin::absolute::LockTime::from_consensus(1);
    second.txid = second.tx.compute_txid();
    b102.unbondings.push(second.clone());
    let err = s.apply_block(&b102).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyUnbonded { existing, .. } if existing == first.txid),
        "{err}"
    );
    assert_eq!(
        s.confirmed_tvl().await.unwrap(),
        Amount::ZERO,
        "TVL decreased once"
    );
    assert_eq!(s.tip().await.unwrap().unwrap().height, 101);
}

pub async fn tvl_going_negative_is_an_error_and_nothing_of_the_block_is_written(db: &TestDb) {
    let (s, outbox) = db.stores().await;
    let mut b100 = block(100, 0, 0);
    let stake = staking(&b100, 1, 10_000, false);
    b100.stakings.push(stake.clone());
    s.apply_block(&b100).await.unwrap();
    // Corrupt the stored TVL below the stake's value (as a hand edit or a bug would).
    db.exec("UPDATE indexer_state SET confirmed_tvl = 10 WHERE id = 1")
        .await;
    let before = snapshot(&s, &outbox).await;

    let mut b101 = block(101, 0, 0);
    let u = unbonding(&b101, &stake);
    b101.unbondings.push(u.clone());
    b101.events.push(event("unbonding_staking_queue", 1));
    let err = s.apply_block(&b101).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NegativeTvl { tvl, value, unbonding }
            if tvl == Amount::from_sat(10) && value == Amount::from_sat(10_000) && unbonding == u.txid),
        "{err}"
    );
    assert!(!err.is_transient());
    assert_eq!(snapshot(&s, &outbox).await, before);
    assert!(!s.unbonding_tx_exists(u.txid).await.unwrap());
}

pub async fn consecutive_blocks_in_one_transaction_each_see_the_ones_before_and_fail_together(
    db: &TestDb,
) {
    let (together, outbox) = db.stores().await;
    let mut b100 = block(100, 0, 0);
    let stake = staking(&b100, 1, 40_000, false);
    b100.stakings = vec![stake.clone()];
    b100.events = vec![event("active_staking_queue", 1)];
    let mut b101 = block(101, 0, 0);
    b101.unbondings = vec![unbonding(&b101, &stake)];
    b101.events = vec![event("unbonding_staking_queue", 2)];
    let mut b102 = block(102, 0, 0);
    b102.stakings = vec![staking(&b102, 3, 25_000, false)];

    let outs = together
        .apply_blocks(&[b100.clone(), b101.clone(), b102.clone()])
        .await
        .unwrap();
    assert_eq!(
        outs.iter()
            .map(|o| o.confirmed_tvl.to_sat())
            .collect::<Vec<_>>(),
        vec![40_000, 0, 25_000],
        "each block sees the state the ones before it left"
    );
    assert_eq!(outs[1].unbondings_inserted, 1);
    assert_eq!(
        together.tip().await.unwrap(),
        Some(BlockRef {
            height: 102,
            hash: b102.hash
        })
    );
    assert_eq!(outbox.unsent_count().await.unwrap(), 2);
    assert_eq!(together.apply_blocks(&[]).await.unwrap(), vec![]);

    // A group whose last block does not follow writes nothing, not even its first blocks.
    let before = snapshot(&together, &outbox).await;
    let mut b103 = block(103, 0, 0);
    b103.stakings = vec![staking(&b103, 4, 10_000, false)];
    b103.events = vec![event("active_staking_queue", 5)];
    let stray = block(105, 0, 0);
    let err = together.apply_blocks(&[b103, stray]).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::HeightGap {
                height: 105,
                tip_height: 103
            }
        ),
        "{err:?}"
    );
    assert_eq!(snapshot(&together, &outbox).await, before);
    assert!(together.block_hash_at(103).await.unwrap().is_none());
}
