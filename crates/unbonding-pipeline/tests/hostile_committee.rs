//! A hostile committee member can only lose its own vote: an endless, dripping, NUL-laden,
//! redirecting or wrongly shaped answer, or a valid signature by another member's key, is
//! discarded with a short, escaped reason; the request completes from the honest quorum
//! (reached over https:// for one member, with a test CA) and the pipeline never stops on a
//! peer's bytes — on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::hostile::HUGE_BYTES;
use common::{insert_request, progress_of, Backend, Member, TestDb, World};
use tokio_util::sync::CancellationToken;
use unbonding_pipeline::signers::{Committee, MAX_ANSWER_BYTES};
use unbonding_pipeline::{check, Pipeline};

/// Seven honest members (one over https://) and six hostile ones. `OtherKey` forwards to the
/// member after it, which must be a plain-http honest one.
const HOSTILE_SIX: [Member; 13] = [
    Member::Honest,
    Member::Huge,
    Member::Honest,
    Member::NulBody,
    Member::Honest,
    Member::Redirect,
    Member::Tls,
    Member::SlowBody,
    Member::Honest,
    Member::WrongShape,
    Member::Honest,
    Member::OtherKey,
    Member::Honest,
];

/// The process's peak resident memory in bytes (`VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

fn assert_clean(reason: &str) {
    assert!(
        !reason.chars().any(char::is_control),
        "control characters in {reason:?}"
    );
    assert!(reason.len() <= 400, "{} bytes: {reason}", reason.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hostile_answer_is_discarded_with_a_short_clean_reason_and_memory_stays_bounded() {
    // Every member must answer (quorum = all) so every failure is seen.
    let world = World::start(&HOSTILE_SIX, 13, 1).await;
    let (stakes, _) = world.stake_confirmed(1);
    let request = world.request_for(&stakes[0]);
    let prepared = check::prepare(&world.rpc, &world.fx.params, &request)
        .await
        .unwrap();
    let committee = Committee::with_tls(
        &world.endpoints,
        Duration::from_millis(1_500),
        &world.signer_tls,
    )
    .unwrap();
    let metrics = unbonding_pipeline::metrics::Metrics::new().unwrap();
    let collected = committee.collect(&prepared, &metrics).await;

    // The six honest plain-http members and the https one.
    assert_eq!(collected.signatures.len(), 7, "{collected:?}");
    let by_key: HashMap<_, _> = collected.failures.iter().cloned().collect();
    let expected = [
        (Member::Huge, "too_large"),
        (Member::SlowBody, "timeout"),
        (Member::NulBody, "http_error"),
        (Member::Redirect, "redirect"),
        (Member::WrongShape, "garbage"),
        (Member::OtherKey, "invalid_signature"),
    ];
    for (member, label) in expected {
        let index = HOSTILE_SIX.iter().position(|m| *m == member).unwrap();
        let key = world.endpoints[index].public_key;
        let failure = by_key
            .get(&key)
            .unwrap_or_else(|| panic!("{member:?} not discarded: {collected:?}"));
        assert_eq!(failure.label(), label, "{member:?}: {failure}");
        assert_clean(&failure.to_string());
        assert_eq!(metrics.signer_count(&key, label), 1, "{member:?}");
    }
    assert_eq!(collected.failures.len(), 6, "{collected:?}");

    // The redirect was not followed; the endless answer was abandoned near the cap.
    assert_eq!(
        world.hostile.redirect_target_hits.load(Ordering::Relaxed),
        0
    );
    let sent = world.hostile.huge_bytes_sent.load(Ordering::Relaxed);
    assert!(
        sent < 64 * MAX_ANSWER_BYTES as u64,
        "the huge member sent {sent} of {HUGE_BYTES} bytes"
    );
    let peak = peak_rss();
    assert!(peak < 512 << 20, "peak RSS {} MiB", peak >> 20);
    world.stop().await;
}

async fn hostile_minority_cannot_stop_the_request(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let world = World::start(&HOSTILE_SIX, 7, 1).await;
    let store = db.store().await;
    let (stakes, height) = world.stake_confirmed(1);
    let request = world.request_for(&stakes[0]);
    insert_request(&store, &request, height).await;
    let pipeline = Pipeline::connect(world.config(&db.url)).await.unwrap();
    let summary = pipeline
        .run_pass(&CancellationToken::new())
        .await
        .expect("a pass never fails on a peer's bytes");
    assert_eq!(summary.sent, 1, "{summary:?}");
    assert_eq!(progress_of(&store, &request).await.state, "sent");
    world.mine(1);
    assert!(world
        .rpc
        .get_raw_transaction_info(&request.unbonding_tx_hash)
        .await
        .is_ok());
    assert_eq!(
        world.hostile.redirect_target_hits.load(Ordering::Relaxed),
        0
    );
    world.stop().await;
}
on_both_backends!(
    a_hostile_minority_cannot_stop_a_request_reaching_the_honest_quorum,
    hostile_minority_cannot_stop_the_request
);

async fn hostile_reasons_are_stored_clean(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    // Quorum 8 with 7 honest members: every answer is awaited and the request is retried with
    // every member's reason stored.
    let world = World::start(&HOSTILE_SIX, 8, 1).await;
    let store = db.store().await;
    let (stakes, height) = world.stake_confirmed(1);
    let request = world.request_for(&stakes[0]);
    insert_request(&store, &request, height).await;
    let mut config = world.config(&db.url);
    config.max_attempts = 5;
    let pipeline = Pipeline::connect(config).await.unwrap();
    let token = CancellationToken::new();
    let first = pipeline
        .run_pass(&token)
        .await
        .expect("a pass never fails on a peer's bytes");
    assert_eq!(first.retried, 1, "{first:?}");
    let p = progress_of(&store, &request).await;
    assert_eq!(p.state, "accepted", "{p:?}");
    let error = p.last_error.unwrap();
    assert!(!error.contains('\0'), "{error:?}");
    assert!(
        error.len() <= store::sanitize::MAX_ERROR_TEXT + 64,
        "{}",
        error.len()
    );
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(error.contains("redirect"), "{error}");
    assert!(error.contains("larger than"), "{error}");
    // The daemon keeps going: the next pass after the backoff works on the same request.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = pipeline
        .run_pass(&token)
        .await
        .expect("a pass never fails on a peer's bytes");
    assert_eq!(second.claimed, 1, "{second:?}");
    world.stop().await;
}
on_both_backends!(
    below_quorum_every_hostile_reason_is_stored_without_nul_and_capped,
    hostile_reasons_are_stored_clean
);
