//! Per-input lookups, invalid-tx listing, row checks, export ranges and the round-trip property.

use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, Txid};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use store::{InvalidTxKind, InvalidTxQuery, SpentLookup, StoreError};

use crate::common::chain::{block, event, invalid, key, staking, unbonding};
use crate::common::TestDb;

pub async fn spendable_txids_are_those_of_every_stored_staking_and_unbonding_tx(db: &TestDb) {
    let s = db.open().await.indexer();
    assert!(s.spendable_txids().await.unwrap().is_empty());
    let mut b100 = block(100, 0, 0);
    let a = staking(&b100, 1, 10_000, false);
    let overflow = staking(&b100, 2, 10_000, true);
    b100.stakings = vec![a.clone(), overflow.clone()];
    b100.invalids = vec![invalid(
        &b100,
        3,
        InvalidTxKind::Staking,
        "staking_time_too_low",
    )];
    s.apply_block(&b100).await.unwrap();
    let mut b101 = block(101, 0, 0);
    let u = unbonding(&b101, &a);
    b101.unbondings.push(u.clone());
    s.apply_block(&b101).await.unwrap();

    let mut found = s.spendable_txids().await.unwrap();
    found.sort();
    let mut expected = vec![a.txid, overflow.txid, u.txid];
    expected.sort();
    assert_eq!(found, expected, "invalid txs are not spendable stakes");
}

pub async fn batch_lookup_finds_staking_outputs_and_unbonding_txs(db: &TestDb) {
    let s = db.open().await.indexer();
    let mut b100 = block(100, 0, 0);
    let mut a = staking(&b100, 1, 10_000, false);
    a.staking_output_index = 1;
    let other = staking(&b100, 2, 10_000, false);
    b100.stakings = vec![a.clone(), other.clone()];
    s.apply_block(&b100).await.unwrap();
    let mut b101 = block(101, 0, 0);
    let u = unbonding(&b101, &other);
    b101.unbondings.push(u.clone());
    s.apply_block(&b101).await.unwrap();

    let stranger = OutPoint::new(Txid::from_byte_array([7; 32]), 0);
    let prevouts = [
        OutPoint::new(a.txid, 0),
        a.staking_outpoint(),
        OutPoint::new(u.txid, 0),
        stranger,
        a.staking_outpoint(),
    ];
    let found = s.lookup_spent(&prevouts).await.unwrap();
    assert_eq!(
        found,
        SpentLookup {
            stakings: vec![a.clone()],
            unbondings: vec![u.clone()]
        }
    );
    assert_eq!(s.lookup_spent(&[]).await.unwrap(), SpentLookup::default());
    assert_eq!(
        s.lookup_spent(&[stranger]).await.unwrap(),
        SpentLookup::default()
    );

    assert!(s.is_staking_outpoint(a.staking_outpoint()).await.unwrap());
    assert!(
        !s.is_staking_outpoint(OutPoint::new(a.txid, 0))
            .await
            .unwrap(),
        "only the staking output"
    );
    assert!(s.unbonding_tx_exists(u.txid).await.unwrap());
    assert!(!s.unbonding_tx_exists(a.txid).await.unwrap());

    // A block-sized batch (more inputs than SQLite's variable limit).
    let mut many: Vec<OutPoint> = (0..40_000u32)
        .map(|i| OutPoint::new(Txid::from_byte_array([(i % 251) as u8; 32]), i))
        .collect();
    many.push(a.staking_outpoint());
    assert_eq!(s.lookup_spent(&many).await.unwrap().stakings, vec![a]);
}

pub async fn invalid_txs_are_recorded_with_their_reason_and_can_be_filtered(db: &TestDb) {
    let s = db.open().await.indexer();
    let mut b100 = block(100, 0, 0);
    let i1 = invalid(&b100, 1, InvalidTxKind::Staking, "staking_value_too_high");
    let mut i2 = invalid(
        &b100,
        2,
        InvalidTxKind::WithdrawStaking,
        "not_a_timelock_path",
    );
    i2.tx = None;
    b100.invalids = vec![i1.clone(), i2.clone()];
    s.apply_block(&b100).await.unwrap();
    let mut b101 = block(101, 0, 0);
    let i3 = invalid(&b101, 3, InvalidTxKind::Unbonding, "wrong_unbonding_fee");
    // The same tx may fail two different checks.
    let mut i4 = i3.clone();
    i4.kind = InvalidTxKind::WithdrawUnbonding;
    i4.reason = "multi_input_covenant_spend".into();
    b101.invalids = vec![i3.clone(), i4.clone(), i3.clone()];
    let out = s.apply_block(&b101).await.unwrap();
    assert_eq!(out.invalids_inserted, 2, "the repeated row is a duplicate");

    let all = s.invalid_txs(&InvalidTxQuery::default()).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].height <= w[1].height));
    assert!(all.contains(&i2), "raw tx is optional");
    let by_txid = s
        .invalid_txs(&InvalidTxQuery::by_txid(i3.txid))
        .await
        .unwrap();
    assert_eq!(by_txid.len(), 2);
    assert!(by_txid.contains(&i3) && by_txid.contains(&i4));
    let q = InvalidTxQuery {
        kind: Some(InvalidTxKind::Staking),
        ..Default::default()
    };
    assert_eq!(s.invalid_txs(&q).await.unwrap(), vec![i1]);
    let q = InvalidTxQuery {
        from_height: Some(101),
        to_height: Some(101),
        ..Default::default()
    };
    assert_eq!(s.invalid_txs(&q).await.unwrap().len(), 2);
    let q = InvalidTxQuery {
        to_height: Some(100),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(s.invalid_txs(&q).await.unwrap().len(), 1);

    let mut b102 = block(102, 0, 0);
    let bad = invalid(&b102, 5, InvalidTxKind::Staking, "Value too low!");
    b102.invalids.push(bad);
    let err = s.apply_block(&b102).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidReason { ref reason, .. } if reason == "Value too low!"),
        "{err}"
    );
    assert_eq!(s.tip().await.unwrap().unwrap().height, 101);
}

pub async fn rows_that_do_not_belong_to_their_block_are_rejected(db: &TestDb) {
    let (s, outbox) = db.stores().await;
    let b99 = block(99, 0, 0);
    let mut b = block(100, 0, 0);
    b.stakings.push(staking(&b99, 1, 1_000, false));
    b.events.push(event("active_staking_queue", 1));
    let err = s.apply_block(&b).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BlockMismatch {
                what: "staking tx",
                claimed_height: 99,
                ..
            }
        ),
        "{err}"
    );

    let mut b = block(100, 0, 0);
    let mut lying = staking(&b, 1, 1_000, false);
    lying.txid = Txid::from_byte_array([1; 32]);
    b.stakings.push(lying);
    let err = s.apply_block(&b).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TxidMismatch {
                what: "staking tx",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.tip().await.unwrap(), None);
    assert_eq!(outbox.unsent_count().await.unwrap(), 0);
}

pub async fn staking_txs_are_listed_by_height_range_in_chain_order(db: &TestDb) {
    let s = db.open().await.indexer();
    let mut all = Vec::new();
    for h in 100..105 {
        let mut b = block(h, 0, 0);
        b.stakings = vec![staking(&b, 3, 1_000, false), staking(&b, 1, 2_000, true)];
        all.push(b.stakings[1].clone());
        all.push(b.stakings[0].clone());
        s.apply_block(&b).await.unwrap();
    }
    assert_eq!(
        s.staking_txs_in_range(101, 103).await.unwrap(),
        all[2..6].to_vec()
    );
    assert!(s.staking_txs_in_range(105, 200).await.unwrap().is_empty());
}

pub async fn staking_rows_round_trip_for_arbitrary_field_values(db: &TestDb) {
    let s = db.open().await.indexer();
    let mut b = block(700_000, 0, 0);
    let fields = (
        0..u32::MAX,
        0..u16::MAX,
        0..=21_000_000 * 100_000_000u64,
        proptest::bool::ANY,
        0..u32::MAX,
        1..=255u8,
        1..=255u8,
    );
    let mut runner = TestRunner::deterministic();
    for position in 0..32u32 {
        let (index, time, value, overflow, version, staker, fp) =
            fields.new_tree(&mut runner).unwrap().current();
        let mut st = staking(&b, position, value, overflow);
        st.staking_output_index = index;
        st.staking_time = time;
        st.params_version = version;
        st.staker_pk = key(staker);
        st.finality_provider_pk = key(fp);
        st.value = Amount::from_sat(value);
        b.stakings.push(st);
    }
    let out = s.apply_block(&b).await.unwrap();
    assert_eq!(out.stakings_inserted, 32);
    for st in &b.stakings {
        assert_eq!(s.staking_tx(st.txid).await.unwrap().as_ref(), Some(st));
    }
    let active: u64 = b
        .stakings
        .iter()
        .filter(|s| !s.is_overflow)
        .map(|s| s.value.to_sat())
        .sum();
    assert_eq!(s.confirmed_tvl().await.unwrap(), Amount::from_sat(active));
}
