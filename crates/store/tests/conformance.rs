//! The storage conformance suite: every scenario is written once and run against SQLite and
//! PostgreSQL (a fresh database each).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;
mod scenarios;

/// Instantiates every scenario for one backend.
macro_rules! conformance {
    ($backend:ident, $make:path; $($scenario:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(db) = $make().await else { return };
                    crate::scenarios::$scenario(&db).await;
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($scenario:ident),* $(,)?) => {
        conformance!(sqlite, crate::common::TestDb::sqlite; $($scenario),*);
        conformance!(postgres, crate::common::TestDb::postgres; $($scenario),*);
    };
}

all_backends!(
    migrations_run_twice_and_a_new_store_is_empty,
    store_connects_from_its_url,
    a_block_commits_rows_tvl_tip_and_events_together,
    consecutive_blocks_in_one_transaction_each_see_the_ones_before_and_fail_together,
    a_block_that_does_not_connect_to_the_tip_is_rejected_and_changes_nothing,
    replaying_a_processed_block_ignores_duplicates_and_counts_tvl_once,
    a_different_block_at_a_processed_height_is_a_reorg_error,
    unbonding_lowers_tvl_only_for_active_stakes,
    unbonding_an_unknown_staking_tx_is_rejected_and_nothing_is_written,
    a_second_unbonding_of_the_same_stake_is_rejected,
    tvl_going_negative_is_an_error_and_nothing_of_the_block_is_written,
    rollback_removes_rows_above_the_height_recomputes_tvl_and_keeps_the_outbox,
    rollback_below_the_first_block_empties_the_indexer_state,
    outbox_rows_come_out_in_insertion_order_until_marked_sent,
    the_events_relay_publishes_the_outbox_in_order_and_marks_rows_sent,
    batch_lookup_finds_staking_outputs_and_unbonding_txs,
    spendable_txids_are_those_of_every_stored_staking_and_unbonding_tx,
    invalid_txs_are_recorded_with_their_reason_and_can_be_filtered,
    rows_that_do_not_belong_to_their_block_are_rejected,
    staking_txs_are_listed_by_height_range_in_chain_order,
    staking_rows_round_trip_for_arbitrary_field_values,
    two_writers_applying_the_same_blocks_concurrently_count_each_once,
    two_writers_with_competing_blocks_leave_exactly_one,
    a_standby_waits_for_the_writer_lock_and_takes_over,
    waiting_for_the_writer_lock_stops_on_shutdown,
    a_signers_nul_laden_overlong_error_is_stored_escaped_and_cut,
    an_unprocessable_message_with_a_nul_is_kept_readable,
);
