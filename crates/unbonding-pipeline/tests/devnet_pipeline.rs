//! The pipeline against the embedded devnet over RPC and a committee of real signing servers,
//! every scenario on SQLite and on PostgreSQL: quorum despite bad members, each failure kind
//! recorded with its reason, retries with a cap, `retry-failed`, and two pipelines on one
//! database never sending a request twice.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use bitcoin::{Amount, Sequence, Transaction, TxOut};
use common::{insert_request, progress_of, Backend, Member, TestDb, World, STAKE, STAKING_TIME};
use staking_core::script::StakingLeaf;
use tokio_util::sync::CancellationToken;
use unbonding_pipeline::{Pipeline, Summary};

const NINE_WITH_THREE_BAD: [Member; 9] = [
    Member::Honest,
    Member::Down,
    Member::Honest,
    Member::Garbage,
    Member::Honest,
    Member::Honest,
    Member::WrongSignature,
    Member::Honest,
    Member::Honest,
];

async fn once(pipeline: &Pipeline) -> Summary {
    pipeline.run_pass(&CancellationToken::new()).await.unwrap()
}

/// The number of non-empty covenant slots in an unbonding-path witness.
fn covenant_signatures(tx: &Transaction) -> usize {
    let items: Vec<&[u8]> = tx.input[0].witness.iter().collect();
    // [covenant slots…, staker sig, leaf script, control block]
    items[..items.len() - 3]
        .iter()
        .filter(|i| !i.is_empty())
        .count()
}

async fn quorum_despite_three_bad_members(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let world = World::start(&NINE_WITH_THREE_BAD, 6, 4).await;
    let store = db.store().await;
    let (stakes, height) = world.stake_confirmed(3);
    let requests: Vec<_> = stakes.iter().map(|s| world.request_for(s)).collect();
    for r in &requests {
        insert_request(&store, r, height).await;
    }
    let pipeline = Pipeline::connect(world.config(&db.url)).await.unwrap();
    let summary = once(&pipeline).await;
    assert_eq!(summary.claimed, 3, "{summary:?}");
    assert_eq!(summary.sent, 3, "{summary:?}");
    for r in &requests {
        let p = progress_of(&store, r).await;
        assert_eq!(p.state, "sent", "{p:?}");
        assert_eq!(p.sent_txid, Some(r.unbonding_tx_hash.to_string()));
        let tx = world
            .rpc
            .get_raw_transaction(&r.unbonding_tx_hash)
            .await
            .unwrap();
        assert_eq!(covenant_signatures(&tx), 6, "exactly quorum signatures");
    }
    world.mine(1);
    for r in &requests {
        let info = world
            .rpc
            .get_raw_transaction_info(&r.unbonding_tx_hash)
            .await
            .unwrap();
        assert!(info.confirmed_in().is_some(), "unbonding tx mined");
    }
    let m = pipeline.metrics();
    assert_eq!(m.outcome_count("sent"), 3);
    let bad = |i: usize| world.endpoints[i].public_key;
    // Each bad member was asked for every request; none of its answers counted.
    assert_eq!(m.signer_count(&bad(1), "valid"), 0);
    assert_eq!(m.signer_count(&bad(3), "valid"), 0);
    assert_eq!(m.signer_count(&bad(6), "valid"), 0);
    let rendered = m.render().unwrap();
    assert!(rendered.contains("unbonding_pipeline_requests_total{outcome=\"sent\"} 3"));
    // Signer latency per member: at least quorum answers per request, from at least quorum
    // members; the committee margin (9 members, quorum 6, at most 3 seen failing) is 0..=3.
    let latency: Vec<(String, f64)> = rendered
        .lines()
        .filter_map(|l| l.strip_prefix("unbonding_pipeline_signer_seconds_count{covenant_pk=\""))
        .map(|l| {
            let (key, value) = l.split_once("\"} ").unwrap();
            (key.to_owned(), value.parse().unwrap())
        })
        .collect();
    assert!(latency.len() >= 6, "{latency:?}");
    assert!(
        latency.iter().map(|(_, n)| n).sum::<f64>() >= 18.0,
        "{latency:?}"
    );
    let margin = rendered
        .lines()
        .find_map(|l| l.strip_prefix("unbonding_pipeline_committee_margin "))
        .unwrap();
    assert!(
        (0..=3).contains(&margin.parse::<i64>().unwrap()),
        "{margin}"
    );
    world.stop().await;
}
on_both_backends!(
    a_quorum_of_honest_members_gets_the_unbonding_tx_mined_despite_three_bad_ones,
    quorum_despite_three_bad_members
);

async fn below_quorum_retried_then_failed_then_requeued(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let members = [
        Member::Honest,
        Member::Down,
        Member::Garbage,
        Member::Honest,
        Member::Slow,
        Member::Honest,
        Member::WrongSignature,
        Member::Honest,
        Member::Honest,
    ];
    let world = World::start(&members, 6, 2).await;
    let store = db.store().await;
    let (stakes, height) = world.stake_confirmed(1);
    let request = world.request_for(&stakes[0]);
    insert_request(&store, &request, height).await;
    let mut config = world.config(&db.url);
    config.max_attempts = 2;
    config.signer_timeout = Duration::from_millis(500);
    let pipeline = Pipeline::connect(config).await.unwrap();

    let first = once(&pipeline).await;
    assert_eq!(first.retried, 1, "{first:?}");
    let p = progress_of(&store, &request).await;
    assert_eq!(p.state, "accepted", "{p:?}");
    assert_eq!(p.attempts, 1);
    let error = p.last_error.unwrap();
    assert!(error.contains("only 5 of the 6"), "{error}");
    assert!(error.contains("timed out"), "{error}");
    assert!(error.contains("signature does not verify"), "{error}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = once(&pipeline).await;
    assert_eq!(second.failed, 1, "{second:?}");
    let p = progress_of(&store, &request).await;
    assert_eq!(p.state, "failed", "{p:?}");
    let reason = p.failure_reason.unwrap();
    assert!(
        reason.starts_with("gave up after 2 attempts: only 5 of the 6"),
        "{reason}"
    );
    assert_eq!(pipeline.metrics().outcome_count("failed_no_quorum"), 1);
    assert!(world
        .rpc
        .get_raw_transaction_info(&request.unbonding_tx_hash)
        .await
        .is_err());

    // The operator fixes the committee's endpoints and re-queues.
    assert_eq!(
        unbonding_pipeline::retry_failed(&db.url, None)
            .await
            .unwrap(),
        1
    );
    let p = progress_of(&store, &request).await;
    assert_eq!((p.state.as_str(), p.attempts), ("accepted", 0), "{p:?}");
    let mut fixed = world.config(&db.url);
    fixed.signers = world.all_honest();
    let pipeline = Pipeline::connect(fixed).await.unwrap();
    let third = once(&pipeline).await;
    assert_eq!(third.sent, 1, "{third:?}");
    assert_eq!(progress_of(&store, &request).await.state, "sent");
    world.stop().await;
}
on_both_backends!(
    fewer_than_quorum_is_retried_then_failed_with_the_reason_and_retry_failed_requeues_it,
    below_quorum_retried_then_failed_then_requeued
);

async fn invalid_staker_signature(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let world = World::start(&[Member::Honest; 3], 2, 2).await;
    let store = db.store().await;
    let (stakes, height) = world.stake_confirmed(2);
    let mut bad = world.request_for(&stakes[0]);
    // The staker's signature over the other staking tx's unbonding tx.
    bad.staker_signature_hex = world.request_for(&stakes[1]).staker_signature_hex;
    let good = world.request_for(&stakes[1]);
    insert_request(&store, &bad, height).await;
    insert_request(&store, &good, height).await;
    let pipeline = Pipeline::connect(world.config(&db.url)).await.unwrap();
    let summary = once(&pipeline).await;
    assert_eq!((summary.failed, summary.sent), (1, 1), "{summary:?}");
    let p = progress_of(&store, &bad).await;
    assert_eq!(p.state, "failed");
    let reason = p.failure_reason.unwrap();
    assert!(reason.contains("invalid unbonding signature"), "{reason}");
    assert_eq!(
        pipeline.metrics().outcome_count("failed_invalid_request"),
        1
    );
    // Only the good request reached the committee: at most one call per member, and the
    // quorum (2) of valid signatures.
    let valid: u64 = world
        .endpoints
        .iter()
        .map(|e| pipeline.metrics().signer_count(&e.public_key, "valid"))
        .sum();
    assert_eq!(valid, 2);
    for e in &world.endpoints {
        assert!(pipeline.metrics().signer_count(&e.public_key, "valid") <= 1);
    }
    assert_eq!(progress_of(&store, &good).await.state, "sent");
    world.stop().await;
}
on_both_backends!(
    a_bad_staker_signature_fails_the_request_before_any_signer_is_asked_and_others_go_on,
    invalid_staker_signature
);

async fn input_spent_by_another_tx(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let world = World::start_with(&[Member::Honest; 3], 2, 1, |s| {
        s.min_staking_time = 10;
    })
    .await;
    let store = db.store().await;
    let (stakes, height) = world.stake_confirmed(1);
    let request = world.request_for(&stakes[0]);
    insert_request(&store, &request, height).await;
    // The staker withdraws through the timelock path instead.
    world.mine(u32::from(STAKING_TIME));
    let staking = world.fx.staking_output(STAKING_TIME).unwrap();
    let prevout = TxOut {
        value: STAKE,
        script_pubkey: staking.script_pubkey().clone(),
    };
    let mut withdraw = devnet::wallet::unsigned(
        vec![bitcoin::OutPoint::new(stakes[0].compute_txid(), 0)],
        vec![TxOut {
            value: STAKE - Amount::from_sat(1_000),
            script_pubkey: world.payout.clone(),
        }],
        Sequence::from_height(STAKING_TIME),
    );
    let sighash = staking_core::signing::leaf_sighash(
        &withdraw,
        0,
        &[prevout],
        staking.leaf_hash(StakingLeaf::Timelock),
    )
    .unwrap();
    let signature = staking_core::signing::sign(&sighash, &world.fx.staker);
    withdraw.input[0].witness =
        staking_core::witness::staking_timelock_witness(&staking, &signature);
    world.node.submit_tx(withdraw).unwrap();
    world.mine(1);

    let pipeline = Pipeline::connect(world.config(&db.url)).await.unwrap();
    let summary = once(&pipeline).await;
    assert_eq!(summary.failed, 1, "{summary:?}");
    let p = progress_of(&store, &request).await;
    let reason = p.failure_reason.unwrap();
    assert!(
        reason.contains("already spent by another transaction"),
        "{reason}"
    );
    assert_eq!(pipeline.metrics().outcome_count("failed_input_spent"), 1);
    for e in &world.endpoints {
        for result in ["valid", "http_error", "garbage", "timeout", "unreachable"] {
            assert_eq!(pipeline.metrics().signer_count(&e.public_key, result), 0);
        }
    }
    world.stop().await;
}
on_both_backends!(
    a_staking_output_spent_by_another_tx_fails_as_input_spent_without_asking_signers,
    input_spent_by_another_tx
);

async fn unconfirmed_staking_tx(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let world = World::start(&[Member::Honest; 3], 2, 1).await;
    let store = db.store().await;
    let stakes = world.stake(1);
    let request = world.request_for(&stakes[0]);
    insert_request(&store, &request, world.tip() + 1).await;
    let pipeline = Pipeline::connect(world.config(&db.url)).await.unwrap();
    let first = once(&pipeline).await;
    assert_eq!(first.retried, 1, "{first:?}");
    let p = progress_of(&store, &request).await;
    assert!(p.last_error.unwrap().contains("is not in a block"));
    world.mine(1 + u32::from(world.fx.shape.confirmation_depth));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = once(&pipeline).await;
    assert_eq!(second.sent, 1, "{second:?}");
    world.stop().await;
}
on_both_backends!(
    a_staking_tx_still_in_the_mempool_is_retried_and_sent_once_mined,
    unconfirmed_staking_tx
);

async fn wrong_params(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let world = World::start(&[Member::Honest; 3], 2, 1).await;
    let store = db.store().await;
    let (stakes, height) = world.stake_confirmed(1);
    let request = world.request_for(&stakes[0]);
    insert_request(&store, &request, height).await;
    // The pipeline was given another committee's params file.
    let other = covenant_signer::fixture::Fixture::new(
        covenant_signer::fixture::FixtureShape {
            activation_height: 1,
            ..Default::default()
        },
        99,
    )
    .unwrap();
    let mut config = world.config(&db.url);
    config.params = other.params.clone();
    config.signers = (0..3)
        .map(|i| {
            unbonding_pipeline::SignerEndpoint::new(
                other.member_key(i).unwrap(),
                "http://127.0.0.1:1",
            )
        })
        .collect();
    let pipeline = Pipeline::connect(config).await.unwrap();
    let summary = once(&pipeline).await;
    assert_eq!(summary.failed, 1, "{summary:?}");
    let reason = progress_of(&store, &request).await.failure_reason.unwrap();
    assert!(reason.contains("is not the output rebuilt"), "{reason}");
    assert_eq!(
        pipeline
            .metrics()
            .outcome_count("failed_staking_output_mismatch"),
        1
    );
    world.stop().await;
}
on_both_backends!(
    params_that_do_not_rebuild_the_staking_output_fail_the_request,
    wrong_params
);

async fn fee_refused(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let world = World::start_with(&[Member::Honest; 3], 2, 1, |s| {
        s.unbonding_fee = Amount::from_sat(1);
    })
    .await;
    let store = db.store().await;
    let (stakes, height) = world.stake_confirmed(1);
    let request = world.request_for(&stakes[0]);
    insert_request(&store, &request, height).await;
    let pipeline = Pipeline::connect(world.config(&db.url)).await.unwrap();
    let summary = once(&pipeline).await;
    assert_eq!(summary.failed, 1, "{summary:?}");
    let reason = progress_of(&store, &request).await.failure_reason.unwrap();
    assert!(reason.contains("for its fee"), "{reason}");
    assert!(reason.contains("at 1 sat"), "{reason}");
    assert_eq!(pipeline.metrics().outcome_count("failed_fee_rejected"), 1);
    world.stop().await;
}
on_both_backends!(
    a_fee_the_mempool_refuses_is_a_terminal_failure_with_a_clear_reason,
    fee_refused
);

async fn two_pipelines(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let world = World::start(&[Member::Honest; 3], 2, 40).await;
    let store = db.store().await;
    let (stakes, height) = world.stake_confirmed(40);
    let requests: Vec<_> = stakes.iter().map(|s| world.request_for(s)).collect();
    for r in &requests {
        insert_request(&store, r, height).await;
    }
    let mut config = world.config(&db.url);
    config.batch_size = 4;
    config.concurrency = 4;
    let a = Pipeline::connect(config.clone()).await.unwrap();
    let b = Pipeline::connect(config).await.unwrap();
    let token = CancellationToken::new();
    let (sa, sb) = tokio::join!(a.run_pass(&token), b.run_pass(&token));
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert_eq!(sa.claimed + sb.claimed, 40, "{sa:?} {sb:?}");
    assert_eq!(
        sa.sent + sb.sent,
        40,
        "each request broadcast by exactly one: {sa:?} {sb:?}"
    );
    assert_eq!(sa.already_sent + sb.already_sent, 0);
    assert!(sa.sent > 0 && sb.sent > 0, "both took part: {sa:?} {sb:?}");
    for r in &requests {
        assert_eq!(progress_of(&store, r).await.attempts, 1);
    }
    world.stop().await;
}
on_both_backends!(
    two_pipelines_on_one_database_never_send_the_same_request_twice,
    two_pipelines
);

async fn no_params_for_the_height(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let world = World::start(&[Member::Honest; 3], 2, 1).await;
    let store = db.store().await;
    let (stakes, height) = world.stake_confirmed(1);
    let request = world.request_for(&stakes[0]);
    insert_request(&store, &request, height).await;
    // The pipeline's params file starts after the staking tx's height.
    let mut late = world.fx.version().unwrap().clone();
    late.activation_height = staking_core::params::BlockHeight(u64::from(world.tip()) + 1_000);
    let (params, _) = staking_core::params::GlobalParams::from_versions(vec![late]).unwrap();
    let mut config = world.config(&db.url);
    config.params = params;
    let pipeline = Pipeline::connect(config).await.unwrap();
    let summary = once(&pipeline).await;
    assert_eq!(summary.failed, 1, "{summary:?}");
    let reason = progress_of(&store, &request).await.failure_reason.unwrap();
    assert_eq!(
        reason,
        format!("no params version for the staking tx's inclusion height {height}")
    );
    assert_eq!(pipeline.metrics().outcome_count("failed_no_params"), 1);
    world.stop().await;
}
on_both_backends!(
    a_staking_tx_below_every_params_version_fails_with_no_params,
    no_params_for_the_height
);
