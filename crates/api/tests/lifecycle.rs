#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

//! The delegation state machine through the consumers, with stats after each transition
//! (reference `active_staking_test.go`, `withdraw_staking_test.go`, `unbonding_test.go` event
//! parts, `stats_test.go`), plus our fixes: stats fall on expiry, expiry during
//! `unbonding_requested` ⇒ `unbonded`.

mod common;

use common::*;
use events::QueueName;
use serde_json::json;
use store::api::{Applied, ExpiryKind};

const FP: &str = "03d5a0bb72d71993e435d6c5a70e2aa4db500a62cfaae33c56050deefee64ec0";

fn counts(stats: &serde_json::Value) -> (i64, i64, i64, i64, i64) {
    (
        stats["active_tvl"].as_i64().unwrap(),
        stats["total_tvl"].as_i64().unwrap(),
        stats["active_delegations"].as_i64().unwrap(),
        stats["total_delegations"].as_i64().unwrap(),
        stats["total_stakers"].as_i64().unwrap(),
    )
}

async fn active_expiry_withdraw_lifecycle_updates_state_and_stats(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let hash = txid(1);
    let staker = key(1);
    assert_eq!(counts(&h.stats().await), (0, 0, 0, 0, 0));
    let e = active_event(&hash, &staker, FP, 100_000, 102, false);
    assert_eq!(
        h.deliver(QueueName::ActiveStaking, &e).await,
        Applied::Changed
    );
    assert_eq!(h.state_of(&hash).await, "active");
    assert_eq!(counts(&h.stats().await), (100_000, 100_000, 1, 1, 1));
    let rows = h.store.timelock_rows(&hash.parse().unwrap()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].expire_height, 202);
    assert_eq!(rows[0].tx_type, ExpiryKind::Active);

    let r = h
        .deliver(QueueName::ExpiredStaking, &expired_event(&hash, "active"))
        .await;
    assert_eq!(r, Applied::Changed);
    assert_eq!(h.state_of(&hash).await, "unbonded");
    // Our fix: natural expiry takes the stake out of the active counters.
    assert_eq!(counts(&h.stats().await), (0, 100_000, 0, 1, 1));

    let r = h
        .deliver(QueueName::WithdrawStaking, &withdraw_event(&hash))
        .await;
    assert_eq!(r, Applied::Changed);
    assert_eq!(h.state_of(&hash).await, "withdrawn");
    assert_eq!(counts(&h.stats().await), (0, 100_000, 0, 1, 1));

    // A duplicate withdraw (another body shape) is ignored.
    let dup = json!({"schema_version": 1, "event_type": 3, "staking_tx_hash_hex": hash});
    assert!(matches!(
        h.deliver(QueueName::WithdrawStaking, &dup).await,
        Applied::Ignored(_)
    ));
    // The identical message again is a recorded duplicate.
    assert_eq!(
        h.deliver(QueueName::WithdrawStaking, &withdraw_event(&hash))
            .await,
        Applied::Duplicate
    );
}
both_backends!(
    active_expiry_withdraw,
    active_expiry_withdraw_lifecycle_updates_state_and_stats
);

async fn unbonding_path_sets_unbonding_tx_and_takes_stake_out_once(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let hash = txid(2);
    let staker = key(2);
    h.deliver(
        QueueName::ActiveStaking,
        &active_event(&hash, &staker, FP, 50_000, 150, false),
    )
    .await;
    // Bootstrap: an unbonding event without a prior request.
    let r = h
        .deliver(QueueName::UnbondingStaking, &unbonding_event(&hash, 160))
        .await;
    assert_eq!(r, Applied::Changed);
    let d = h
        .get(&format!("/v1/delegation?staking_tx_hash_hex={hash}"))
        .await
        .json();
    assert_eq!(d["data"]["state"], "unbonding");
    assert_eq!(d["data"]["unbonding_tx"]["start_height"], 160);
    assert_eq!(d["data"]["unbonding_tx"]["timelock"], 5);
    assert_eq!(d["data"]["unbonding_tx"]["output_index"], 0);
    assert_eq!(
        d["data"]["unbonding_tx"]["start_timestamp"],
        "2024-04-25T08:54:19Z"
    );
    assert_eq!(
        d["data"]["staking_tx"]["start_timestamp"],
        "2024-04-25T08:52:39Z"
    );
    assert_eq!(counts(&h.stats().await), (0, 50_000, 0, 1, 1));
    let rows = h.store.timelock_rows(&hash.parse().unwrap()).await.unwrap();
    let kinds: Vec<_> = rows.iter().map(|r| (r.tx_type, r.expire_height)).collect();
    assert_eq!(
        kinds,
        vec![(ExpiryKind::Active, 250), (ExpiryKind::Unbonding, 165)]
    );

    // A second unbonding event (another body) is ignored; the staking expiry too.
    let mut again = unbonding_event(&hash, 161);
    again["unbonding_start_timestamp"] = 1.into();
    assert!(matches!(
        h.deliver(QueueName::UnbondingStaking, &again).await,
        Applied::Ignored(_)
    ));
    assert!(matches!(
        h.deliver(QueueName::ExpiredStaking, &expired_event(&hash, "active"))
            .await,
        Applied::Ignored(_)
    ));
    assert_eq!(h.state_of(&hash).await, "unbonding");
    assert_eq!(counts(&h.stats().await), (0, 50_000, 0, 1, 1));

    let r = h
        .deliver(
            QueueName::ExpiredStaking,
            &expired_event(&hash, "unbonding"),
        )
        .await;
    assert_eq!(r, Applied::Changed);
    assert_eq!(h.state_of(&hash).await, "unbonded");
    h.deliver(QueueName::WithdrawStaking, &withdraw_event(&hash))
        .await;
    assert_eq!(h.state_of(&hash).await, "withdrawn");
    let d = h
        .get(&format!("/v1/delegation?staking_tx_hash_hex={hash}"))
        .await
        .json();
    assert!(
        d["data"]["unbonding_tx"].is_object(),
        "withdrawn keeps its unbonding tx"
    );
    assert_eq!(counts(&h.stats().await), (0, 50_000, 0, 1, 1));
}
both_backends!(
    unbonding_path,
    unbonding_path_sets_unbonding_tx_and_takes_stake_out_once
);

async fn out_of_order_messages_wait_for_their_predecessor(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let hash = txid(3);
    let staker = key(3);
    // Unbonding, expiry and withdraw before active: retried, nothing written.
    for (q, m) in [
        (QueueName::UnbondingStaking, unbonding_event(&hash, 160)),
        (QueueName::ExpiredStaking, expired_event(&hash, "active")),
        (QueueName::WithdrawStaking, withdraw_event(&hash)),
    ] {
        assert!(
            matches!(h.deliver(q, &m).await, Applied::RetryLater(_)),
            "{m}"
        );
    }
    h.deliver(
        QueueName::ActiveStaking,
        &active_event(&hash, &staker, FP, 10_000, 120, false),
    )
    .await;
    // Withdraw before expiry: still waits.
    assert!(matches!(
        h.deliver(QueueName::WithdrawStaking, &withdraw_event(&hash))
            .await,
        Applied::RetryLater(_)
    ));
    // Unbonding expiry before the unbonding event: waits too.
    assert!(matches!(
        h.deliver(
            QueueName::ExpiredStaking,
            &expired_event(&hash, "unbonding")
        )
        .await,
        Applied::RetryLater(_)
    ));
    // The retried messages now succeed (the failed attempts left no idempotency record).
    assert_eq!(
        h.deliver(QueueName::UnbondingStaking, &unbonding_event(&hash, 160))
            .await,
        Applied::Changed
    );
    assert_eq!(
        h.deliver(
            QueueName::ExpiredStaking,
            &expired_event(&hash, "unbonding")
        )
        .await,
        Applied::Changed
    );
    assert_eq!(
        h.deliver(QueueName::WithdrawStaking, &withdraw_event(&hash))
            .await,
        Applied::Changed
    );
    assert_eq!(h.state_of(&hash).await, "withdrawn");
}
both_backends!(
    out_of_order,
    out_of_order_messages_wait_for_their_predecessor
);

async fn duplicate_active_events_change_nothing(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let hash = txid(4);
    let staker = key(4);
    let e = active_event(&hash, &staker, FP, 7_000, 120, false);
    assert_eq!(
        h.deliver(QueueName::ActiveStaking, &e).await,
        Applied::Changed
    );
    assert_eq!(
        h.deliver(QueueName::ActiveStaking, &e).await,
        Applied::Duplicate
    );
    let mut reshaped = e.clone();
    reshaped["schema_version"] = 0.into();
    assert!(matches!(
        h.deliver(QueueName::ActiveStaking, &reshaped).await,
        Applied::Ignored(_)
    ));
    assert_eq!(counts(&h.stats().await), (7_000, 7_000, 1, 1, 1));
    assert_eq!(
        h.store
            .timelock_rows(&hash.parse().unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
    // A reference-style stats event for the same delegation is absorbed by the stats lock.
    let stats = json!({"schema_version": 1, "event_type": 5, "staking_tx_hash_hex": hash,
        "staker_pk_hex": staker.to_string(), "finality_provider_pk_hex": FP,
        "staking_value": 7000, "state": "active", "is_overflow": false});
    h.deliver(QueueName::StakingStats, &stats).await;
    assert_eq!(counts(&h.stats().await), (7_000, 7_000, 1, 1, 1));
}
both_backends!(duplicates, duplicate_active_events_change_nothing);

async fn expiry_during_unbonding_requested_unbonds_and_later_unbonding_is_ignored(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let g = golden();
    let hash = g["active_staking_event"]["staking_tx_hash_hex"]
        .as_str()
        .unwrap()
        .to_owned();
    h.deliver(QueueName::ActiveStaking, &g["active_staking_event"])
        .await;
    let r = h
        .post("/v1/unbonding", &g["unbonding_request"].to_string())
        .await;
    assert_eq!(r.status.as_u16(), 202, "{}", r.text);
    assert_eq!(h.state_of(&hash).await, "unbonding_requested");
    assert_eq!(
        h.deliver(QueueName::ExpiredStaking, &expired_event(&hash, "active"))
            .await,
        Applied::Changed
    );
    assert_eq!(h.state_of(&hash).await, "unbonded");
    assert_eq!(counts(&h.stats().await), (0, 100_000, 0, 1, 1));
    assert!(matches!(
        h.deliver(QueueName::UnbondingStaking, &unbonding_event(&hash, 210))
            .await,
        Applied::Ignored(_)
    ));
    assert_eq!(h.state_of(&hash).await, "unbonded");
    assert_eq!(counts(&h.stats().await), (0, 100_000, 0, 1, 1));
}
both_backends!(
    expiry_while_requested,
    expiry_during_unbonding_requested_unbonds_and_later_unbonding_is_ignored
);

async fn overflow_delegations_never_touch_stats(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let hash = txid(5);
    h.deliver(
        QueueName::ActiveStaking,
        &active_event(&hash, &key(5), FP, 9_000, 120, true),
    )
    .await;
    assert_eq!(counts(&h.stats().await), (0, 0, 0, 0, 0));
    let d = h
        .get(&format!("/v1/delegation?staking_tx_hash_hex={hash}"))
        .await
        .json();
    assert_eq!(d["data"]["is_overflow"], true);
    h.deliver(QueueName::UnbondingStaking, &unbonding_event(&hash, 130))
        .await;
    assert_eq!(h.state_of(&hash).await, "unbonding");
    assert_eq!(counts(&h.stats().await), (0, 0, 0, 0, 0));
}
both_backends!(overflow, overflow_delegations_never_touch_stats);

async fn btc_info_keeps_the_highest_height_and_pending_tvl_never_underflows(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    h.deliver(QueueName::BtcInfo, &btc_info_event(100, 1_000, 1_500))
        .await;
    let s = h.stats().await;
    assert_eq!(
        (s["unconfirmed_tvl"].as_u64(), s["pending_tvl"].as_u64()),
        (Some(1_500), Some(500))
    );
    assert!(matches!(
        h.deliver(QueueName::BtcInfo, &btc_info_event(99, 1, 2))
            .await,
        Applied::Ignored(_)
    ));
    assert_eq!(h.stats().await["unconfirmed_tvl"], 1_500);
    // Unconfirmed below confirmed (an unbonding in the unconfirmed window): pending is 0.
    h.deliver(QueueName::BtcInfo, &btc_info_event(101, 2_000, 1_800))
        .await;
    let s = h.stats().await;
    assert_eq!(
        (s["unconfirmed_tvl"].as_u64(), s["pending_tvl"].as_u64()),
        (Some(1_800), Some(0))
    );
}
both_backends!(
    btc_info,
    btc_info_keeps_the_highest_height_and_pending_tvl_never_underflows
);

async fn total_stakers_counts_each_staker_once(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let staker = key(6);
    for i in 0..3 {
        h.deliver(
            QueueName::ActiveStaking,
            &active_event(&txid(60 + i), &staker, FP, 1_000, 120, false),
        )
        .await;
    }
    h.deliver(
        QueueName::ActiveStaking,
        &active_event(&txid(70), &key(7), FP, 2_000, 120, false),
    )
    .await;
    assert_eq!(counts(&h.stats().await), (5_000, 5_000, 4, 4, 2));
    let s = h
        .get(&format!("/v1/stats/staker?staker_btc_pk={staker}"))
        .await
        .json();
    assert_eq!(s["data"][0]["active_tvl"], 3_000);
    assert_eq!(s["data"][0]["total_delegations"], 3);
    assert!(s.get("pagination").is_none());
    let none = h
        .get(&format!("/v1/stats/staker?staker_btc_pk={}", key(99)))
        .await;
    assert_eq!(none.text, r#"{"data":null}"#);
}
both_backends!(total_stakers, total_stakers_counts_each_staker_once);
