//! `rollback_to`: the recovery path after a reorg deeper than the confirmation window.

use bitcoin::Amount;
use store::{BlockApplied, BlockRef, InvalidTxKind, InvalidTxQuery};

use crate::common::chain::{block, block_hash, event, invalid, staking, unbonding};
use crate::common::TestDb;

pub async fn rollback_removes_rows_above_the_height_recomputes_tvl_and_keeps_the_outbox(
    db: &TestDb,
) {
    let (s, outbox) = db.stores().await;
    // 100: stake A (active 10k); 101: stake B (active 20k), overflow C; 102: nothing;
    // 103: unbond A, invalid tx; 104: stake D (active 4k).
    let mut b100 = block(100, 0, 0);
    let a = staking(&b100, 1, 10_000, false);
    b100.stakings.push(a.clone());
    b100.events.push(event("active_staking_queue", 100));
    let mut b101 = block(101, 0, 0);
    let b = staking(&b101, 1, 20_000, false);
    let c = staking(&b101, 2, 3_000, true);
    b101.stakings = vec![b.clone(), c.clone()];
    b101.events.push(event("active_staking_queue", 101));
    let b102 = block(102, 0, 0);
    let mut b103 = block(103, 0, 0);
    let ua = unbonding(&b103, &a);
    b103.unbondings.push(ua.clone());
    b103.invalids.push(invalid(
        &b103,
        1,
        InvalidTxKind::Unbonding,
        "wrong_unbonding_fee",
    ));
    b103.events.push(event("unbonding_staking_queue", 103));
    let mut b104 = block(104, 0, 0);
    let d = staking(&b104, 1, 4_000, false);
    b104.stakings.push(d.clone());
    b104.events.push(event("active_staking_queue", 104));
    for blk in [&b100, &b101, &b102, &b103, &b104] {
        s.apply_block(blk).await.unwrap();
    }
    assert_eq!(s.confirmed_tvl().await.unwrap(), Amount::from_sat(24_000));
    let outbox_before = outbox.fetch_unsent(100).await.unwrap();

    let report = s.rollback_to(102).await.unwrap();
    assert_eq!(
        report.tip,
        Some(BlockRef {
            height: 102,
            hash: b102.hash
        })
    );
    assert_eq!(report.blocks_removed, 2);
    assert_eq!(report.stakings_removed, 1);
    assert_eq!(report.unbondings_removed, 1);
    assert_eq!(report.invalids_removed, 1);
    assert_eq!(
        report.confirmed_tvl,
        Amount::from_sat(30_000),
        "A is bonded again, D is gone"
    );

    assert_eq!(s.tip().await.unwrap(), report.tip);
    assert_eq!(s.confirmed_tvl().await.unwrap(), Amount::from_sat(30_000));
    assert_eq!(s.tvl_from_rows().await.unwrap(), Amount::from_sat(30_000));
    assert_eq!(s.block_hash_at(103).await.unwrap(), None);
    assert_eq!(s.block_hash_at(102).await.unwrap(), Some(b102.hash));
    assert_eq!(s.staking_tx(d.txid).await.unwrap(), None);
    assert_eq!(s.staking_tx(a.txid).await.unwrap(), Some(a.clone()));
    assert!(!s.unbonding_tx_exists(ua.txid).await.unwrap());
    let q = InvalidTxQuery {
        from_height: Some(103),
        ..InvalidTxQuery::default()
    };
    assert!(s.invalid_txs(&q).await.unwrap().is_empty());
    assert_eq!(
        outbox.fetch_unsent(100).await.unwrap(),
        outbox_before,
        "outbox history is kept"
    );

    // The new branch connects to the rolled-back tip; block 103 of the old branch no longer does.
    let mut fork103 = block(103, 1, 0);
    fork103.unbondings.push(unbonding(&fork103, &b));
    assert_eq!(
        s.apply_block(&fork103).await.unwrap().applied,
        BlockApplied::Extended
    );
    assert_eq!(s.confirmed_tvl().await.unwrap(), Amount::from_sat(10_000));
    let err = s.apply_block(&block(104, 0, 0)).await.unwrap_err();
    assert!(
        matches!(err, store::StoreError::NotConnected { .. }),
        "{err}"
    );

    // Rolling back to or above the tip changes nothing.
    let report = s.rollback_to(500).await.unwrap();
    assert_eq!(report.blocks_removed, 0);
    assert_eq!(
        report.tip,
        Some(BlockRef {
            height: 103,
            hash: block_hash(103, 1)
        })
    );
    assert_eq!(report.confirmed_tvl, Amount::from_sat(10_000));
}

pub async fn rollback_below_the_first_block_empties_the_indexer_state(db: &TestDb) {
    let (s, outbox) = db.stores().await;
    let mut b = block(100, 0, 0);
    b.stakings.push(staking(&b, 1, 1_000, false));
    b.events.push(event("active_staking_queue", 1));
    s.apply_block(&b).await.unwrap();
    s.apply_block(&block(101, 0, 0)).await.unwrap();
    let report = s.rollback_to(99).await.unwrap();
    assert_eq!(report.tip, None);
    assert_eq!((report.blocks_removed, report.stakings_removed), (2, 1));
    assert_eq!(s.confirmed_tvl().await.unwrap(), Amount::ZERO);
    assert_eq!(s.first_processed_height().await.unwrap(), None);
    assert_eq!(outbox.unsent_count().await.unwrap(), 1, "outbox kept");
    // An empty history accepts any start block again.
    s.apply_block(&block(100, 2, 0)).await.unwrap();
    assert_eq!(s.tip().await.unwrap().unwrap().hash, block_hash(100, 2));
}
