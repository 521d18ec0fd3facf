//! The API-side tables as the unbonding pipeline and the consumers use them: text that came
//! from outside the process (a committee member's error body, a queue message that could not
//! be applied) is stored without NUL or control characters and cut to a bounded length, on
//! every backend.

use std::time::Duration;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, Txid};
use store::api::{
    AddressMapping, ConsumedKey, Delegation, DelegationState, NewUnbondingRequest, RequestOutcome,
    TxInfo,
};
use store::unbonding::Recorded;
use store::Db;

use crate::common::chain::key;
use crate::common::TestDb;

/// An `active` delegation and an accepted unbonding request for it, as the API stores them.
async fn accepted_request(db: &Db) -> NewUnbondingRequest {
    let api = db.api();
    let staking = Txid::from_byte_array([7; 32]);
    let delegation = Delegation {
        staking_tx_hash: staking,
        staker_pk: key(1),
        finality_provider_pk: key(2),
        staking_value: Amount::from_sat(100_000),
        state: DelegationState::Active,
        staking_tx: TxInfo {
            tx_hex: "00".into(),
            output_index: 0,
            start_timestamp: 1_700_000_000,
            start_height: 100,
            timelock: 1_000,
        },
        unbonding_tx: None,
        is_overflow: false,
    };
    let mapping = AddressMapping {
        staker_pk: key(1),
        taproot: "tp".into(),
        native_segwit_odd: "odd".into(),
        native_segwit_even: "even".into(),
    };
    let consumed = ConsumedKey {
        queue: "active_staking_queue".into(),
        body_sha256: "00".repeat(32),
    };
    api.apply_active(&consumed, &delegation, &mapping)
        .await
        .unwrap();
    let request = NewUnbondingRequest {
        staking_tx_hash: staking,
        unbonding_tx_hash: Txid::from_byte_array([8; 32]),
        unbonding_tx_hex: "00".into(),
        staker_pk: key(1),
        finality_provider_pk: key(2),
        staker_signature_hex: "00".into(),
        staking_tx_hex: "00".into(),
        staking_output_index: 0,
        staking_timelock: 1_000,
        staking_amount: Amount::from_sat(100_000),
    };
    assert_eq!(
        api.request_unbonding(&request).await.unwrap(),
        RequestOutcome::Accepted
    );
    request
}

pub async fn a_signers_nul_laden_overlong_error_is_stored_escaped_and_cut(db: &TestDb) {
    let db = db.open().await;
    accepted_request(&db).await;
    let queue = db.unbonding();
    let lease = Duration::from_secs(60);
    let claimed = queue.claim("pipeline-a", lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let id = claimed[0].id;

    // What a hostile committee member can put in its error body: a NUL (PostgreSQL refuses it
    // in text), a terminal escape sequence, and far more bytes than anyone needs.
    let answer = format!(
        "signer 2 answered 500: bad\0body\u{1b}[2J{}",
        "y".repeat(5_000)
    );
    let released = queue
        .release_for_retry(id, "pipeline-a", 0, &answer, false)
        .await
        .unwrap();
    assert_eq!(released, Recorded::Yes);
    // 44 bytes of escaped head, then `y` up to the 2,048-byte limit (2,004 of them); the
    // original's remaining 5,035 − 2,039 bytes are cut.
    let head = "signer 2 answered 500: bad\\u{0}body\\u{1b}[2J";
    let want = format!("{head}{}… [2996 bytes cut]", "y".repeat(2_004));
    let progress = queue.progress().await.unwrap();
    assert_eq!(progress[0].state, "accepted");
    assert_eq!(progress[0].last_error.as_deref(), Some(want.as_str()));

    // The terminal reason too, and `retry-failed` moves it to `last_error` as it is.
    let claimed = queue.claim("pipeline-b", lease, 10).await.unwrap();
    assert_eq!(claimed[0].id, id);
    let reason = "gave up after 5 attempts: node said \0\r\nbye";
    let failed = queue.record_failed(id, "pipeline-b", reason).await.unwrap();
    assert_eq!(failed, Recorded::Yes);
    let stored = "gave up after 5 attempts: node said \\u{0}\\u{d}\nbye";
    let progress = queue.progress().await.unwrap();
    assert_eq!(progress[0].failure_reason.as_deref(), Some(stored));
    assert_eq!(queue.requeue_failed(Some(id)).await.unwrap(), 1);
    let progress = queue.progress().await.unwrap();
    assert_eq!(progress[0].last_error.as_deref(), Some(stored));
    assert_eq!(progress[0].failure_reason, None);
}

pub async fn an_unprocessable_message_with_a_nul_is_kept_readable(db: &TestDb) {
    let api = db.open().await.api();
    let body = "{\"staking_tx_hash_hex\":\0}";
    let reason = format!("expected value at line 1\0{}", "z".repeat(3_000));
    api.insert_unprocessable("active_staking_queue", body, "7", &reason)
        .await
        .unwrap();
    let parked = api.unprocessable().await.unwrap();
    assert_eq!(parked.len(), 1);
    // The body is kept as received but for the NUL, so a replay publishes the same message.
    assert_eq!(parked[0].message_body, "{\"staking_tx_hash_hex\":\u{fffd}}");
    // 29 bytes of escaped head and 2,019 `z` make the 2,048-byte limit; the original's
    // remaining 3,025 − 2,044 bytes are cut.
    let head = "expected value at line 1\\u{0}";
    let want = format!("{head}{}… [981 bytes cut]", "z".repeat(2_019));
    assert_eq!(parked[0].reason, want);
}
