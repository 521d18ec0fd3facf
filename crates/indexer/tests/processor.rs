//! The pure block processor against the rules of `docs/rules.md#block-processing`: each
//! test builds real (signed) transactions with the fixture and feeds blocks to the processor,
//! carrying the stored state from block to block as the store would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod support;

use std::collections::HashMap;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, Block, BlockHash, OutPoint, Transaction, TxOut, Txid};
use indexer::{process_block, BlockInput, InvalidReason, ProcessedBlock, StoredView};
use serde_json::Value;
use store::{InvalidTxKind, StakingTx, UnbondingTx};
use support::{block, fake_funding, Fx, V};

/// A minimal in-memory "store": what was written, to build the next block's view.
#[derive(Default)]
struct Mem {
    stakings: HashMap<Txid, StakingTx>,
    unbondings: HashMap<Txid, UnbondingTx>,
    tvl: Amount,
    prev: Option<BlockHash>,
    extra: bool,
}

impl Mem {
    fn view(&self, b: &Block) -> StoredView {
        let prevouts: Vec<OutPoint> = indexer::processor::prevouts(b);
        let mut stakings: Vec<StakingTx> = self
            .stakings
            .values()
            .filter(|s| prevouts.contains(&s.staking_outpoint()))
            .cloned()
            .collect();
        let unbondings: Vec<UnbondingTx> = self
            .unbondings
            .values()
            .filter(|u| prevouts.iter().any(|p| p.txid == u.txid))
            .cloned()
            .collect();
        for u in &unbondings {
            if !stakings.iter().any(|s| s.txid == u.staking_txid) {
                stakings.push(self.stakings[&u.staking_txid].clone());
            }
        }
        StoredView {
            stakings,
            unbondings,
            ..StoredView::default()
        }
    }

    fn apply(&mut self, fx: &Fx, height: u32, txs: Vec<Transaction>) -> ProcessedBlock {
        let prev = self.prev.unwrap_or_else(BlockHash::all_zeros);
        let b = block(prev, 1_700_000_000 + height, txs);
        let view = self.view(&b);
        let p = process_block(
            BlockInput {
                height,
                block: &b,
                hash: b.block_hash(),
                params: &fx.params,
                confirmed_tvl: self.tvl,
                extra_event_enabled: self.extra,
            },
            &view,
        )
        .unwrap();
        for s in &p.write.stakings {
            self.stakings.insert(s.txid, s.clone());
        }
        for u in &p.write.unbondings {
            self.unbondings.insert(u.txid, u.clone());
        }
        self.tvl = p.confirmed_tvl;
        self.prev = Some(b.block_hash());
        p
    }
}

fn events(p: &ProcessedBlock) -> Vec<(String, Value)> {
    p.write
        .events
        .iter()
        .map(|e| (e.queue.clone(), serde_json::from_str(&e.payload).unwrap()))
        .collect()
}

fn fx() -> Fx {
    Fx::new(&[V::amount(100, 1_000_000)], 3)
}

#[test]
fn a_valid_stake_is_stored_active_raises_tvl_and_emits_the_reference_event() {
    let fx = fx();
    let mut mem = Mem::default();
    let stake = fx.staking_tx(100, &fake_funding(&fx, 1, 1_000_000), 50_000, 10);
    let p = mem.apply(&fx, 100, vec![stake.clone()]);
    assert_eq!(p.write.stakings.len(), 1);
    let s = &p.write.stakings[0];
    assert!(!s.is_overflow);
    assert_eq!(
        (s.position_in_block, s.staking_output_index, s.value),
        (1, 0, Amount::from_sat(50_000))
    );
    assert_eq!(p.confirmed_tvl, Amount::from_sat(50_000));
    let ev = events(&p);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, "active_staking_queue");
    let body = &p.write.events[0].payload;
    let expected = format!(
        "{{\"schema_version\":0,\"event_type\":1,\"staking_tx_hash_hex\":\"{}\",\"staker_pk_hex\":\"{}\",\
         \"finality_provider_pk_hex\":\"{}\",\"staking_value\":50000,\"staking_start_height\":100,\
         \"staking_start_timestamp\":1700000100,\"staking_timelock\":10,\"staking_output_index\":0,\
         \"staking_tx_hex\":\"{}\",\"is_overflow\":false}}",
        stake.compute_txid(),
        fx.staker.x_only(),
        fx.fp,
        bitcoin::consensus::encode::serialize_hex(&stake)
    );
    assert_eq!(body, &expected);
    assert_eq!(p.counts.active_stakings, 1);
}

#[test]
fn a_stake_and_its_unbonding_in_the_same_block_both_count() {
    let fx = fx();
    let mut mem = Mem::default();
    let stake = fx.staking_tx(100, &fake_funding(&fx, 1, 1_000_000), 50_000, 10);
    let unbond = fx.unbonding_tx(&stake, 100, 10, None);
    let p = mem.apply(&fx, 100, vec![stake.clone(), unbond.clone()]);
    assert_eq!(p.write.stakings.len(), 1);
    assert_eq!(p.write.unbondings.len(), 1);
    assert_eq!(p.write.unbondings[0].staking_txid, stake.compute_txid());
    assert_eq!(p.confirmed_tvl, Amount::ZERO);
    let ev = events(&p);
    assert_eq!(ev[1].0, "unbonding_staking_queue");
    assert_eq!(ev[1].1["unbonding_timelock"], 5);
    assert_eq!(ev[1].1["unbonding_output_index"], 0);
    assert_eq!(
        ev[1].1["unbonding_tx_hash_hex"],
        unbond.compute_txid().to_string()
    );
}

#[test]
fn the_tx_crossing_the_amount_cap_is_active_and_the_next_is_overflow() {
    let fx = fx();
    let mut mem = Mem::default();
    let a = fx.staking_tx(100, &fake_funding(&fx, 1, 2_000_000), 600_000, 10);
    let b = fx.staking_tx(100, &fake_funding(&fx, 2, 2_000_000), 500_000, 10);
    let p = mem.apply(&fx, 100, vec![a, b]);
    // TVL before b is 600k < 1M: b is active although TVL ends at 1.1M.
    assert!(p.write.stakings.iter().all(|s| !s.is_overflow));
    assert_eq!(p.confirmed_tvl, Amount::from_sat(1_100_000));
    let c = fx.staking_tx(101, &fake_funding(&fx, 3, 2_000_000), 10_000, 10);
    let p = mem.apply(&fx, 101, vec![c]);
    assert!(p.write.stakings[0].is_overflow);
    assert_eq!(events(&p)[0].1["is_overflow"], true);
    assert_eq!(
        p.confirmed_tvl,
        Amount::from_sat(1_100_000),
        "overflow stakes never change TVL"
    );
    assert_eq!(p.counts.overflow_stakings, 1);
}

#[test]
fn tvl_exactly_at_the_cap_makes_the_next_stake_overflow_and_an_unbonding_reopens_it() {
    let fx = fx();
    let mut mem = Mem::default();
    let a = fx.staking_tx(100, &fake_funding(&fx, 1, 2_000_000), 1_000_000, 10);
    mem.apply(&fx, 100, vec![a.clone()]);
    let b = fx.staking_tx(101, &fake_funding(&fx, 2, 2_000_000), 10_000, 10);
    assert!(mem.apply(&fx, 101, vec![b]).write.stakings[0].is_overflow);
    let unbond = fx.unbonding_tx(&a, 100, 10, None);
    let c = fx.staking_tx(102, &fake_funding(&fx, 3, 2_000_000), 10_000, 10);
    let p = mem.apply(&fx, 102, vec![unbond, c]);
    assert!(!p.write.stakings[0].is_overflow);
    assert_eq!(p.confirmed_tvl, Amount::from_sat(10_000));
}

#[test]
fn a_height_capped_version_is_active_up_to_the_cap_height_inclusive() {
    let fx = Fx::new(&[V::height(100, 105)], 3);
    let mut mem = Mem::default();
    let a = fx.staking_tx(105, &fake_funding(&fx, 1, 2_000_000), 50_000, 10);
    assert!(!mem.apply(&fx, 105, vec![a]).write.stakings[0].is_overflow);
    let b = fx.staking_tx(106, &fake_funding(&fx, 2, 2_000_000), 50_000, 10);
    let p = mem.apply(&fx, 106, vec![b]);
    assert!(p.write.stakings[0].is_overflow);
    assert_eq!(
        p.confirmed_tvl,
        Amount::from_sat(50_000),
        "TVL is kept during height-cap versions too"
    );
}

#[test]
fn invalid_stakes_are_recorded_with_each_reason_and_never_emitted() {
    let fx = fx();
    let mut mem = Mem::default();
    let cases = [
        (5_000, 10, "below_min_staking_amount"),
        (2_000_000, 10, "above_max_staking_amount"),
        (50_000, 2, "below_min_staking_time"),
        (50_000, 2_000, "above_max_staking_time"),
    ];
    let txs: Vec<Transaction> = cases
        .iter()
        .enumerate()
        .map(|(i, (v, t, _))| {
            fx.staking_tx(100, &fake_funding(&fx, i as u8 + 1, 3_000_000), *v, *t)
        })
        .collect();
    let p = mem.apply(&fx, 100, txs.clone());
    assert!(p.write.stakings.is_empty());
    assert!(p.write.events.is_empty());
    assert_eq!(p.confirmed_tvl, Amount::ZERO);
    for ((_, _, reason), tx) in cases.iter().zip(&txs) {
        let row = p
            .write
            .invalids
            .iter()
            .find(|i| i.txid == tx.compute_txid())
            .unwrap();
        assert_eq!(row.kind, InvalidTxKind::Staking);
        assert_eq!(row.reason, *reason);
        assert_eq!(p.counts.invalid_count(InvalidReason::Staking(reason)), 1);
    }
}

#[test]
fn an_unbonding_with_the_wrong_fee_is_recorded_not_emitted_and_keeps_tvl() {
    let fx = fx();
    let mut mem = Mem::default();
    let stake = fx.staking_tx(100, &fake_funding(&fx, 1, 1_000_000), 50_000, 10);
    mem.apply(&fx, 100, vec![stake.clone()]);
    let bad = fx.unbonding_tx(&stake, 100, 10, Some(1_500));
    let p = mem.apply(&fx, 101, vec![bad.clone()]);
    assert!(p.write.unbondings.is_empty());
    assert!(p.write.events.is_empty());
    assert_eq!(p.confirmed_tvl, Amount::from_sat(50_000));
    assert_eq!(p.write.invalids.len(), 1);
    assert_eq!(p.write.invalids[0].kind, InvalidTxKind::Unbonding);
    assert_eq!(p.write.invalids[0].reason, "unbonding_wrong_output_value");
}

#[test]
fn a_tx_that_stakes_anew_and_withdraws_an_older_stake_is_both() {
    let fx = fx();
    let mut mem = Mem::default();
    let old = fx.staking_tx(100, &fake_funding(&fx, 1, 1_000_000), 50_000, 10);
    mem.apply(&fx, 100, vec![old.clone()]);
    let new_staking = fx.staking_output(120, 10);
    let v = fx.version_at(120);
    let op = staking_core::op_return::V0OpReturn {
        tag: v.tag,
        staker: fx.staker.x_only(),
        finality_provider: fx.fp,
        staking_time: 10,
    };
    let both = fx.timelock_spend(
        &[(&old, 100, 10)],
        vec![
            TxOut {
                value: Amount::from_sat(40_000),
                script_pubkey: new_staking.script_pubkey().clone(),
            },
            op.tx_out(),
        ],
    );
    let p = mem.apply(&fx, 120, vec![both.clone()]);
    let queues: Vec<_> = events(&p).into_iter().map(|(q, _)| q).collect();
    assert_eq!(queues, ["active_staking_queue", "withdraw_staking_queue"]);
    let w = &events(&p)[1].1;
    assert_eq!(w["staking_tx_hash_hex"], old.compute_txid().to_string());
    assert_eq!(w["withdraw_tx_hash_hex"], both.compute_txid().to_string());
    assert_eq!(w["withdraw_tx_btc_height"], 120);
    assert_eq!(
        p.confirmed_tvl,
        Amount::from_sat(90_000),
        "a withdrawal never lowers TVL"
    );
}

#[test]
fn several_withdrawals_in_one_tx_emit_one_event_each_in_input_order() {
    let fx = fx();
    let mut mem = Mem::default();
    let a = fx.staking_tx(100, &fake_funding(&fx, 1, 1_000_000), 50_000, 10);
    let b = fx.staking_tx(100, &fake_funding(&fx, 2, 1_000_000), 60_000, 12);
    let c = fx.staking_tx(100, &fake_funding(&fx, 3, 1_000_000), 70_000, 10);
    mem.apply(&fx, 100, vec![a.clone(), b.clone(), c.clone()]);
    let unbond_c = fx.unbonding_tx(&c, 100, 10, None);
    mem.apply(&fx, 101, vec![unbond_c.clone()]);
    let w = fx.withdraw_staking_tx(&[(&b, 100, 12), (&a, 100, 10)]);
    let wu = fx.withdraw_unbonding_tx(&[(&unbond_c, 100, 10)]);
    let p = mem.apply(&fx, 115, vec![w, wu]);
    let hashes: Vec<_> = events(&p)
        .into_iter()
        .map(|(q, v)| (q, v["staking_tx_hash_hex"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        hashes,
        [
            (
                "withdraw_staking_queue".to_owned(),
                b.compute_txid().to_string()
            ),
            (
                "withdraw_staking_queue".to_owned(),
                a.compute_txid().to_string()
            ),
            (
                "withdraw_staking_queue".to_owned(),
                c.compute_txid().to_string()
            ),
        ]
    );
    assert_eq!(
        (
            p.counts.withdrawals_from_staking,
            p.counts.withdrawals_from_unbonding
        ),
        (2, 1)
    );
    assert_eq!(p.confirmed_tvl, Amount::from_sat(110_000));
}

#[test]
fn an_unbonding_after_a_params_change_uses_the_staking_txs_version() {
    // v1 changes the unbonding time: the stake of v0 must still unbond with v0's terms.
    let fx = Fx::new(
        &[
            V::amount(100, 1_000_000),
            V::amount(110, 1_000_000).unbonding(7),
        ],
        3,
    );
    let mut mem = Mem::default();
    let stake = fx.staking_tx(100, &fake_funding(&fx, 1, 1_000_000), 50_000, 10);
    mem.apply(&fx, 100, vec![stake.clone()]);
    let unbond = fx.unbonding_tx(&stake, 100, 10, None);
    let p = mem.apply(&fx, 111, vec![unbond]);
    assert_eq!(p.write.unbondings.len(), 1);
    assert_eq!(events(&p)[0].1["unbonding_timelock"], 5);
    let later = fx.staking_tx(111, &fake_funding(&fx, 2, 1_000_000), 50_000, 10);
    let p = mem.apply(&fx, 112, vec![later]);
    assert_eq!(p.write.stakings[0].params_version, 1);
}

#[test]
fn a_covenant_path_spend_in_a_multi_input_tx_is_an_invalid_withdrawal_with_its_own_label() {
    let fx = fx();
    let mut mem = Mem::default();
    let stake = fx.staking_tx(100, &fake_funding(&fx, 1, 1_000_000), 50_000, 10);
    mem.apply(&fx, 100, vec![stake.clone()]);
    let mut tx = fx.unbonding_tx(&stake, 100, 10, None);
    tx.input.push(tx.input[0].clone());
    tx.input[1].previous_output = OutPoint::new(Txid::from_byte_array([7; 32]), 0);
    let p = mem.apply(&fx, 101, vec![tx]);
    assert!(p.write.events.is_empty());
    assert_eq!(p.write.invalids.len(), 1);
    assert_eq!(p.write.invalids[0].kind, InvalidTxKind::WithdrawStaking);
    assert_eq!(
        p.write.invalids[0].reason,
        "covenant_path_spend_not_unbonding"
    );
    assert_eq!(
        InvalidReason::CovenantPathNotUnbonding.reference_tx_type(),
        "confirmed_withdraw_staking_transactions"
    );
}

#[test]
fn replaying_a_stored_block_reuses_the_stored_flags_and_does_not_count_tvl_twice() {
    let fx = fx();
    let mut mem = Mem::default();
    let a = fx.staking_tx(100, &fake_funding(&fx, 1, 2_000_000), 1_000_000, 10);
    let p1 = mem.apply(&fx, 100, vec![a.clone()]);
    let b = block(BlockHash::all_zeros(), 1_700_000_100, vec![a.clone()]);
    let view = StoredView {
        already_stored: [(a.compute_txid(), false)].into_iter().collect(),
        ..StoredView::default()
    };
    let p2 = process_block(
        BlockInput {
            height: 100,
            block: &b,
            hash: b.block_hash(),
            params: &fx.params,
            confirmed_tvl: mem.tvl,
            extra_event_enabled: false,
        },
        &view,
    )
    .unwrap();
    assert!(
        !p2.write.stakings[0].is_overflow,
        "stored flag reused although TVL is at the cap"
    );
    assert_eq!(p2.confirmed_tvl, p1.confirmed_tvl);
    assert_eq!(
        p2.write.events, p1.write.events,
        "events are queued again on replay"
    );
}

#[test]
fn confirmed_info_is_emitted_after_each_block_only_when_enabled() {
    let fx = fx();
    let mut mem = Mem {
        extra: true,
        ..Mem::default()
    };
    let a = fx.staking_tx(100, &fake_funding(&fx, 1, 1_000_000), 50_000, 10);
    let p = mem.apply(&fx, 100, vec![a]);
    let last = p.write.events.last().unwrap();
    assert_eq!(last.queue, "confirmed_info_queue");
    assert_eq!(
        last.payload,
        r#"{"schema_version":0,"event_type":7,"height":100,"tvl":50000}"#
    );
    mem.extra = false;
    assert!(mem.apply(&fx, 101, vec![]).write.events.is_empty());
}

#[test]
fn blocks_below_the_first_activation_height_yield_nothing() {
    let fx = fx();
    let mut mem = Mem::default();
    let a = fx.staking_tx(100, &fake_funding(&fx, 1, 1_000_000), 50_000, 10);
    let p = mem.apply(&fx, 99, vec![a]);
    assert!(
        p.write.stakings.is_empty() && p.write.invalids.is_empty() && p.write.events.is_empty()
    );
}
