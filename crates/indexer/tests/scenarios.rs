//! Scenarios on the devnet: real signed transactions mined into a regtest chain served over
//! RPC, the indexer following it as `stakingd indexer` does, every scenario on SQLite and on
//! PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod devnet;
mod support;

use devnet::{Backend, Harness};
use indexer::IndexerError;
use store::InvalidTxQuery;
use support::{Fx, V};

const ACTIVATION: u64 = 120;

fn fx(depth: u16) -> Fx {
    Fx::new(&[V::amount(ACTIVATION, 1_000_000)], depth)
}

async fn harness(backend: Backend, depth: u16) -> Option<Harness> {
    let h = Harness::start(backend, fx(depth)).await?;
    while h.tip() < ACTIVATION as u32 - 1 {
        h.mine_empty(1);
    }
    Some(h)
}

/// Runs a scenario on both backends.
macro_rules! on_both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                $body(Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                $body(Backend::Postgres).await;
            }
        }
    };
}

async fn stake_expire_withdraw(backend: Backend) {
    let Some(mut h) = harness(backend, 3).await else {
        return;
    };
    h.start_indexer();
    let funding = h.funding();
    let stake = h.fx.staking_tx(ACTIVATION as u32, &funding, 50_000, 10);
    h.mine(vec![stake.clone()]);
    let staked_at = h.tip();
    h.mine_empty(9);
    let withdraw = h.fx.withdraw_staking_tx(&[(&stake, staked_at, 10)]);
    h.node
        .submit_tx(withdraw.clone())
        .expect("the timelock has expired");
    h.mine(vec![withdraw.clone()]);
    h.confirm(h.tip());
    h.settle().await;
    let active = h.events("active_staking_queue").await;
    assert_eq!(active.len(), 1);
    assert_eq!(
        active[0]["staking_tx_hash_hex"],
        stake.compute_txid().to_string()
    );
    assert_eq!(active[0]["staking_start_height"], staked_at);
    let withdrawn = h.events("withdraw_staking_queue").await;
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(
        withdrawn[0]["withdraw_tx_hash_hex"],
        withdraw.compute_txid().to_string()
    );
    assert_eq!(
        h.store.confirmed_tvl().await.unwrap().to_sat(),
        50_000,
        "withdrawal keeps TVL (reference)"
    );
    assert_eq!(h.metric("si_total_withdraw_txs_from_staking", None), 1.0);
    h.stop_indexer().await.unwrap();
}
on_both_backends!(
    staking_then_expiry_then_withdrawal_emits_active_and_withdraw,
    stake_expire_withdraw
);

async fn stake_unbond_withdraw(backend: Backend) {
    let Some(mut h) = harness(backend, 3).await else {
        return;
    };
    h.start_indexer();
    let funding = h.funding();
    let stake = h.fx.staking_tx(ACTIVATION as u32, &funding, 50_000, 10);
    h.mine(vec![stake.clone()]);
    let staked_at = h.tip();
    let unbond = h.fx.unbonding_tx(&stake, staked_at, 10, None);
    h.mine(vec![unbond.clone()]);
    h.mine_empty(support::UNBONDING_TIME.into());
    let withdraw = h.fx.withdraw_unbonding_tx(&[(&unbond, staked_at, 10)]);
    h.mine(vec![withdraw.clone()]);
    h.confirm(h.tip());
    h.settle().await;
    assert_eq!(h.events("unbonding_staking_queue").await.len(), 1);
    let w = h.events("withdraw_staking_queue").await;
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0]["staking_tx_hash_hex"],
        stake.compute_txid().to_string()
    );
    assert_eq!(h.store.confirmed_tvl().await.unwrap().to_sat(), 0);
    assert!(h
        .store
        .unbonding_of(stake.compute_txid())
        .await
        .unwrap()
        .is_some());
    assert_eq!(h.metric("si_total_withdraw_txs_from_unbonding", None), 1.0);
    h.stop_indexer().await.unwrap();
}
on_both_backends!(
    staking_then_unbonding_then_withdrawal_from_the_unbonding_output,
    stake_unbond_withdraw
);

async fn invalid_stakes_and_unbonding(backend: Backend) {
    let Some(mut h) = harness(backend, 3).await else {
        return;
    };
    h.start_indexer();
    let good = h.stake(ACTIVATION as u32, 50_000, 10);
    let small = h.stake(ACTIVATION as u32, 5_000, 10);
    let long = h.stake(ACTIVATION as u32, 50_000, 2_000);
    h.mine(vec![good.clone(), small.clone(), long.clone()]);
    let at = h.tip();
    let bad_fee = h.fx.unbonding_tx(&good, at, 10, Some(3_000));
    h.mine(vec![bad_fee.clone()]);
    h.confirm(h.tip());
    h.settle().await;
    assert_eq!(h.events("active_staking_queue").await.len(), 1);
    assert!(h.events("unbonding_staking_queue").await.is_empty());
    let invalid = h
        .store
        .invalid_txs(&InvalidTxQuery::default())
        .await
        .unwrap();
    let reason = |tx: &bitcoin::Transaction| {
        invalid
            .iter()
            .find(|i| i.txid == tx.compute_txid())
            .map(|i| i.reason.clone())
    };
    assert_eq!(reason(&small).as_deref(), Some("below_min_staking_amount"));
    assert_eq!(reason(&long).as_deref(), Some("above_max_staking_time"));
    assert_eq!(
        reason(&bad_fee).as_deref(),
        Some("unbonding_wrong_output_value")
    );
    assert_eq!(h.store.confirmed_tvl().await.unwrap().to_sat(), 50_000);
    assert_eq!(
        h.metric(
            "si_invalid_txs_counter",
            Some(("tx_type", "confirmed_unbonding_transactions"))
        ),
        1.0
    );
    h.stop_indexer().await.unwrap();
}
on_both_backends!(
    invalid_stakes_and_a_wrong_fee_unbonding_are_recorded_and_not_emitted,
    invalid_stakes_and_unbonding
);

async fn unconfirmed_tvl(backend: Backend) {
    let Some(mut h) = harness(backend, 3).await else {
        return;
    };
    h.start_indexer();
    h.mine_empty(1);
    h.settle().await;
    let stake = h.stake(ACTIVATION as u32, 50_000, 10);
    h.mine(vec![stake.clone()]);
    let at = h.tip();
    h.settle().await;
    h.confirm(at);
    h.settle().await;
    let unbond = h.fx.unbonding_tx(&stake, at, 10, None);
    h.mine(vec![unbond]);
    h.settle().await;
    h.confirm(h.tip());
    h.settle().await;
    assert_eq!(
        h.tvl_history().await,
        [(0, 0), (0, 50_000), (50_000, 50_000), (50_000, 0), (0, 0)]
    );
    h.stop_indexer().await.unwrap();
}
on_both_backends!(
    unconfirmed_tvl_rises_and_falls_as_a_stake_confirms_and_unbonds,
    unconfirmed_tvl
);

async fn restart(backend: Backend) {
    let Some(mut h) = harness(backend, 3).await else {
        return;
    };
    h.start_indexer();
    let stake = h.stake(ACTIVATION as u32, 50_000, 10);
    h.mine(vec![stake]);
    h.confirm(h.tip());
    h.settle().await;
    let before = h.chain_events().await;
    let tip_before = h.store.tip().await.unwrap();
    h.stop_indexer().await.unwrap();
    h.start_indexer();
    h.mine_empty(1);
    h.settle().await;
    let after = h.chain_events().await;
    assert_eq!(after, before, "nothing replayed");
    assert_eq!(
        h.store.tip().await.unwrap().unwrap().height,
        tip_before.unwrap().height + 1
    );
    h.stop_indexer().await.unwrap();
}
on_both_backends!(a_restart_at_the_same_height_replays_nothing_new, restart);

async fn reorg_inside_window(backend: Backend) {
    let Some(mut h) = harness(backend, 5).await else {
        return;
    };
    h.start_indexer();
    h.mine_empty(1);
    h.settle().await;
    let stake = h.stake(ACTIVATION as u32, 50_000, 10);
    let first = h.mine(vec![stake.clone()]);
    let fork_height = h.tip();
    h.mine_empty(2);
    h.settle().await;
    assert_eq!(h.tvl_history().await.last(), Some(&(0, 50_000)));
    // Three blocks leave the active chain; the replacement chain does not contain the stake.
    h.node.invalidate(&first).unwrap().unwrap();
    h.node.lock().mempool.drain();
    let replacement = h.mine_fork(vec![]);
    h.mine_fork(vec![]);
    h.mine_fork(vec![]);
    h.mine_fork(vec![]);
    h.confirm(h.tip());
    h.settle().await;
    assert!(
        h.events("active_staking_queue").await.is_empty(),
        "nothing of the dropped blocks emitted"
    );
    assert_eq!(
        h.store.block_hash_at(fork_height).await.unwrap(),
        Some(replacement)
    );
    assert!(h.metric("si_minor_reorgs_total", None) >= 3.0);
    assert_eq!(h.tvl_history().await.last(), Some(&(0, 0)));
    h.stop_indexer().await.unwrap();
}
on_both_backends!(
    a_three_block_reorg_inside_the_window_is_absorbed,
    reorg_inside_window
);

async fn deep_reorg(backend: Backend) {
    let Some(mut h) = harness(backend, 3).await else {
        return;
    };
    h.start_indexer();
    let stake = h.stake(ACTIVATION as u32, 50_000, 10);
    let staked = h.mine(vec![stake.clone()]);
    let fork_height = h.tip();
    h.mine_empty(4);
    h.settle().await;
    assert!(h
        .store
        .staking_tx(stake.compute_txid())
        .await
        .unwrap()
        .is_some());
    // The stake's block was confirmed and written; now it leaves the chain.
    h.node.invalidate(&staked).unwrap().unwrap();
    h.node.lock().mempool.drain();
    for _ in 0..7 {
        h.mine_fork(vec![]);
    }
    let registry = h.registry.clone();
    let err = h.indexer_exit().await.unwrap_err();
    assert!(
        matches!(
            err,
            IndexerError::MajorReorg { .. } | IndexerError::Store(_)
        ),
        "{err}"
    );
    assert!(err.to_string().contains("rollback --to-height"), "{err}");
    let reorgs = registry
        .gather()
        .into_iter()
        .find(|f| f.get_name() == "si_major_reorgs_counter")
        .map(|f| f.get_metric()[0].get_counter().get_value());
    assert_eq!(reorgs, Some(1.0));
    // Restarting without a rollback stops again with the same clear message.
    h.start_indexer();
    let again = h.indexer_exit().await.unwrap_err();
    assert!(again.to_string().contains("rollback"), "{again}");
    let report = indexer::rollback(&h.db_url, fork_height - 1).await.unwrap();
    assert_eq!(report.stakings_removed, 1);
    assert_eq!(report.confirmed_tvl.to_sat(), 0);
    h.start_indexer();
    h.mine_empty(1);
    h.settle().await;
    let tip = h.store.tip().await.unwrap().unwrap();
    assert_eq!(Some(tip.hash), h.rpc.get_block_hash(tip.height).await.ok());
    assert!(h
        .store
        .staking_tx(stake.compute_txid())
        .await
        .unwrap()
        .is_none());
    h.stop_indexer().await.unwrap();
}
on_both_backends!(
    a_reorg_deeper_than_the_window_stops_the_indexer_and_rollback_recovers,
    deep_reorg
);

async fn height_cap_and_version_change(backend: Backend) {
    let fx = Fx::new(
        &[
            V::amount(ACTIVATION, 1_000_000),
            V::height(ACTIVATION + 3, ACTIVATION + 4).unbonding(7),
        ],
        3,
    );
    let Some(mut h) = Harness::start(backend, fx).await else {
        return;
    };
    while h.tip() < ACTIVATION as u32 - 1 {
        h.mine_empty(1);
    }
    h.start_indexer();
    let v0 = h.stake(ACTIVATION as u32, 50_000, 10);
    h.mine(vec![v0.clone()]); // 120, version 0
    let v0_at = h.tip();
    h.mine_empty(2); // 121, 122
    let active = h.stake(ACTIVATION as u32 + 3, 50_000, 10);
    h.mine(vec![active.clone()]); // 123, version 1
    let unbond_v0 = h.fx.unbonding_tx(&v0, v0_at, 10, None);
    h.mine(vec![unbond_v0]); // 124: unbonding of a v0 stake after the change
    let overflow = h.stake(ACTIVATION as u32 + 5, 50_000, 10);
    h.mine(vec![overflow.clone()]); // 125 > cap height 124
    h.confirm(h.tip());
    h.settle().await;
    let flags: Vec<(String, bool)> = h
        .events("active_staking_queue")
        .await
        .into_iter()
        .map(|e| {
            (
                e["staking_tx_hash_hex"].as_str().unwrap().to_owned(),
                e["is_overflow"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            (v0.compute_txid().to_string(), false),
            (active.compute_txid().to_string(), false),
            (overflow.compute_txid().to_string(), true),
        ]
    );
    let unbonding = h.events("unbonding_staking_queue").await;
    assert_eq!(
        unbonding[0]["unbonding_timelock"], 5,
        "the staking tx's version decides"
    );
    assert_eq!(
        h.store
            .staking_tx(active.compute_txid())
            .await
            .unwrap()
            .unwrap()
            .params_version,
        1
    );
    h.stop_indexer().await.unwrap();
}
on_both_backends!(
    a_params_version_change_mid_chain_and_its_height_cap,
    height_cap_and_version_change
);

async fn amount_cap(backend: Backend) {
    let Some(mut h) = harness(backend, 3).await else {
        return;
    };
    h.start_indexer();
    let a = h.stake(ACTIVATION as u32, 600_000, 10);
    let b = h.stake(ACTIVATION as u32, 500_000, 10);
    let c = h.stake(ACTIVATION as u32, 20_000, 10);
    h.mine(vec![a, b.clone(), c.clone()]);
    h.confirm(h.tip());
    h.settle().await;
    let flags: Vec<bool> = h
        .events("active_staking_queue")
        .await
        .iter()
        .map(|e| e["is_overflow"].as_bool().unwrap())
        .collect();
    assert_eq!(
        flags,
        [false, false, true],
        "the crossing tx is active, the next overflow"
    );
    assert_eq!(h.store.confirmed_tvl().await.unwrap().to_sat(), 1_100_000);
    h.stop_indexer().await.unwrap();
}
on_both_backends!(
    the_amount_cap_crossed_at_the_boundary_makes_only_the_next_stake_overflow,
    amount_cap
);

async fn standby(backend: Backend) {
    let Some(mut h) = harness(backend, 3).await else {
        return;
    };
    h.start_indexer();
    h.mine_empty(2);
    h.settle().await;
    // A second instance against the same database waits on the writer lock.
    let config = h.raw_config().validate().unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let t = token.clone();
    let second = tokio::spawn(async move {
        indexer::run_with(config, None, &prometheus::Registry::new(), t).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!second.is_finished());
    h.stop_indexer().await.unwrap();
    // The standby takes over and follows the chain.
    h.mine_empty(2);
    h.settle().await;
    token.cancel();
    second.await.unwrap().unwrap();
}
on_both_backends!(
    a_second_instance_waits_as_hot_standby_and_takes_over,
    standby
);
