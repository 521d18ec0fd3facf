#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
//! The queue messages are byte-compatible with the reference's Go `encoding/json` output: golden
//! strings written field by field in the order of the reference structs, the examples of
//! `docs/reference.md#queue-messages`, real transactions from testdata/, and round trips.

use std::str::FromStr;

use bitcoin::consensus::encode::deserialize_hex;
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Amount, Transaction, Txid};
use events::{
    ActiveStakingEvent, BtcInfoEvent, ConfirmedInfoEvent, Event, EventType, ExpiredStakingEvent,
    ExpiredTxType, QueueName, StatsEvent, StatsState, UnbondingStakingEvent, WithdrawStakingEvent,
    WithdrawTx,
};
use serde_json::Value;

const SPEC_TXID: &str = "9764a21549914b4879f1b4e7ea0092fb28d30b17361e66f53c4d6031f367a11b";
const SPEC_WITHDRAW_EXAMPLE: &str = r#"{"event_type":3,"staking_tx_hash_hex":"9764a21549914b4879f1b4e7ea0092fb28d30b17361e66f53c4d6031f367a11b"}"#;
const SPEC_EXPIRED_EXAMPLE: &str = r#"{"event_type":4,"staking_tx_hash_hex":"9764a21549914b4879f1b4e7ea0092fb28d30b17361e66f53c4d6031f367a11b","tx_type":"active"}"#;

fn testdata(path: &str) -> Value {
    let full = format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).expect(&full)).unwrap()
}

/// The first signet finality-provider deposit: txid, staker key, FP key, 10 000 000 sat at
/// output 1, staking time 52560 (testdata/realtx/signet-fp-deposits).
struct Deposit {
    txid: &'static str,
    staker_pk: &'static str,
    fp_pk: &'static str,
    hex: String,
}

fn first_deposit() -> Deposit {
    let deposits = testdata("realtx/signet-fp-deposits/deposits.json");
    let first = &deposits["deposits"][0];
    assert_eq!(first["moniker"], "007dba");
    Deposit {
        txid: "b913401d91069ef1033f8600c947699a46770905fc41ae70e37167b79046a5f1",
        staker_pk: "3afc02011ea9bf02a9a36ed55f4d3c58cf25ed7f382f15c7fafbf1114b458702",
        fp_pk: "48cff6be4cc49d09fbdb22d89b254152c278f08703169e4b3f5148a96aa05810",
        hex: first["signed_tx"].as_str().unwrap().to_owned(),
    }
}

/// The Go staker CLI's unbonding tx (testdata/realtx/other-staking-txs/candidates.json entry 18).
fn go_unbonding_tx_hex() -> String {
    let candidates = testdata("realtx/other-staking-txs/candidates.json");
    assert_eq!(candidates[18]["kind"], "unbonding");
    candidates[18]["hex"].as_str().unwrap().to_owned()
}

fn tx(hex: &str) -> Transaction {
    deserialize_hex(hex).unwrap()
}

fn txid(hex: &str) -> Txid {
    Txid::from_str(hex).unwrap()
}

fn key(hex: &str) -> XOnlyPublicKey {
    XOnlyPublicKey::from_str(hex).unwrap()
}

fn active_event(d: &Deposit) -> ActiveStakingEvent {
    ActiveStakingEvent {
        staking_tx_hash: txid(d.txid),
        staker_pk: key(d.staker_pk),
        finality_provider_pk: key(d.fp_pk),
        staking_value: Amount::from_sat(10_000_000),
        staking_start_height: 200_665,
        staking_start_timestamp: 1_716_283_800,
        staking_timelock: 52_560,
        staking_output_index: 1,
        staking_tx: tx(&d.hex),
        is_overflow: false,
    }
}

#[test]
fn active_staking_event_matches_the_go_field_order_byte_for_byte() {
    let d = first_deposit();
    assert_eq!(
        tx(&d.hex).compute_txid().to_string(),
        d.txid,
        "the fixture's txid"
    );
    let golden = format!(
        concat!(
            r#"{{"schema_version":0,"event_type":1,"staking_tx_hash_hex":"{}","staker_pk_hex":"{}","#,
            r#""finality_provider_pk_hex":"{}","staking_value":10000000,"staking_start_height":200665,"#,
            r#""staking_start_timestamp":1716283800,"staking_timelock":52560,"staking_output_index":1,"#,
            r#""staking_tx_hex":"{}","is_overflow":false}}"#
        ),
        d.txid, d.staker_pk, d.fp_pk, d.hex
    );
    let event = Event::from(active_event(&d));
    assert_eq!(event.to_json(), golden);
    assert_eq!(event.queue(), QueueName::ActiveStaking);
    assert_eq!(
        Event::decode(QueueName::ActiveStaking, golden.as_bytes()).unwrap(),
        event
    );
}

#[test]
fn an_overflow_stake_says_is_overflow_true() {
    let d = first_deposit();
    let event = ActiveStakingEvent {
        is_overflow: true,
        ..active_event(&d)
    };
    assert!(Event::from(event)
        .to_json()
        .ends_with(r#","is_overflow":true}"#));
}

#[test]
fn unbonding_staking_event_matches_the_go_field_order_byte_for_byte() {
    let unbonding_hex = go_unbonding_tx_hex();
    let unbonding = tx(&unbonding_hex);
    let staking_txid = unbonding.input[0].previous_output.txid;
    let golden = format!(
        concat!(
            r#"{{"schema_version":0,"event_type":2,"staking_tx_hash_hex":"{}","unbonding_start_height":200700,"#,
            r#""unbonding_start_timestamp":1716300000,"unbonding_timelock":1008,"unbonding_output_index":0,"#,
            r#""unbonding_tx_hex":"{}","unbonding_tx_hash_hex":"{}"}}"#
        ),
        staking_txid,
        unbonding_hex,
        unbonding.compute_txid()
    );
    let event = Event::from(UnbondingStakingEvent {
        staking_tx_hash: staking_txid,
        unbonding_start_height: 200_700,
        unbonding_start_timestamp: 1_716_300_000,
        unbonding_timelock: 1008,
        unbonding_output_index: 0,
        unbonding_tx_hash: unbonding.compute_txid(),
        unbonding_tx: unbonding,
    });
    assert_eq!(event.to_json(), golden);
    assert_eq!(
        Event::decode(QueueName::UnbondingStaking, golden.as_bytes()).unwrap(),
        event
    );
}

#[test]
fn withdraw_event_carries_the_withdraw_tx_in_schema_version_1() {
    let d = first_deposit();
    let withdraw_tx = tx(&d.hex);
    let golden = format!(
        concat!(
            r#"{{"schema_version":1,"event_type":3,"staking_tx_hash_hex":"{}","withdraw_tx_hash_hex":"{}","#,
            r#""withdraw_tx_btc_height":201000,"withdraw_tx_hex":"{}"}}"#
        ),
        SPEC_TXID, d.txid, d.hex
    );
    let event = Event::from(WithdrawStakingEvent {
        staking_tx_hash: txid(SPEC_TXID),
        withdraw: Some(WithdrawTx {
            txid: withdraw_tx.compute_txid(),
            btc_height: 201_000,
            tx: withdraw_tx,
        }),
    });
    assert_eq!(event.to_json(), golden);
    assert_eq!(
        Event::decode(QueueName::WithdrawStaking, golden.as_bytes()).unwrap(),
        event
    );
}

#[test]
fn the_spec_withdraw_example_from_a_reference_indexer_decodes_without_the_withdraw_tx() {
    let decoded =
        Event::decode(QueueName::WithdrawStaking, SPEC_WITHDRAW_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(
        decoded,
        Event::WithdrawStaking(WithdrawStakingEvent {
            staking_tx_hash: txid(SPEC_TXID),
            withdraw: None
        })
    );
    // Written back, it is the example with `schema_version` 0 in front: same fields, same order.
    assert_eq!(
        decoded.to_json(),
        format!(r#"{{"schema_version":0,{}"#, &SPEC_WITHDRAW_EXAMPLE[1..])
    );
}

#[test]
fn a_withdraw_tx_hash_that_is_not_the_txid_of_the_withdraw_tx_is_rejected() {
    let d = first_deposit();
    let body = format!(
        r#"{{"schema_version":1,"event_type":3,"staking_tx_hash_hex":"{SPEC_TXID}","withdraw_tx_hash_hex":"{SPEC_TXID}","withdraw_tx_btc_height":1,"withdraw_tx_hex":"{}"}}"#,
        d.hex
    );
    let error = Event::decode(QueueName::WithdrawStaking, body.as_bytes()).unwrap_err();
    assert!(error.to_string().contains("is not the txid"), "{error}");
}

#[test]
fn the_spec_expired_example_decodes_and_re_encodes_with_schema_version_first() {
    let decoded =
        Event::decode(QueueName::ExpiredStaking, SPEC_EXPIRED_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(
        decoded,
        Event::ExpiredStaking(ExpiredStakingEvent {
            staking_tx_hash: txid(SPEC_TXID),
            tx_type: ExpiredTxType::Active
        })
    );
    assert_eq!(
        decoded.to_json(),
        format!(r#"{{"schema_version":0,{}"#, &SPEC_EXPIRED_EXAMPLE[1..])
    );
}

#[test]
fn an_unbonding_expiry_says_tx_type_unbonding_and_unknown_tx_types_are_rejected() {
    let event = Event::from(ExpiredStakingEvent {
        staking_tx_hash: txid(SPEC_TXID),
        tx_type: ExpiredTxType::Unbonding,
    });
    assert!(event.to_json().ends_with(r#""tx_type":"unbonding"}"#));
    let unknown = SPEC_EXPIRED_EXAMPLE.replace("active", "slashed");
    assert!(Event::decode(QueueName::ExpiredStaking, unknown.as_bytes()).is_err());
}

fn stats_event(is_overflow: Option<bool>) -> StatsEvent {
    let d = first_deposit();
    StatsEvent {
        staking_tx_hash: txid(d.txid),
        staker_pk: key(d.staker_pk),
        finality_provider_pk: key(d.fp_pk),
        staking_value: Amount::from_sat(10_000_000),
        state: StatsState::Unbonded,
        is_overflow,
    }
}

#[test]
fn stats_event_is_schema_version_1_with_is_overflow_last() {
    let d = first_deposit();
    let golden = format!(
        concat!(
            r#"{{"schema_version":1,"event_type":5,"staking_tx_hash_hex":"{}","staker_pk_hex":"{}","#,
            r#""finality_provider_pk_hex":"{}","staking_value":10000000,"state":"unbonded","is_overflow":true}}"#
        ),
        d.txid, d.staker_pk, d.fp_pk
    );
    let event = Event::from(stats_event(Some(true)));
    assert_eq!(event.to_json(), golden);
    assert_eq!(
        Event::decode(QueueName::StakingStats, golden.as_bytes()).unwrap(),
        event
    );
}

#[test]
fn a_stats_event_from_an_old_producer_has_no_is_overflow() {
    let d = first_deposit();
    let old = format!(
        concat!(
            r#"{{"event_type":5,"staking_tx_hash_hex":"{}","staker_pk_hex":"{}","#,
            r#""finality_provider_pk_hex":"{}","staking_value":10000000,"state":"unbonded"}}"#
        ),
        d.txid, d.staker_pk, d.fp_pk
    );
    let decoded = Event::decode(QueueName::StakingStats, old.as_bytes()).unwrap();
    assert_eq!(decoded, Event::Stats(stats_event(None)));
    assert_eq!(
        decoded.to_json(),
        format!(r#"{{"schema_version":0,{}"#, &old[1..])
    );
}

#[test]
fn btc_info_and_confirmed_info_events_match_the_go_field_order() {
    let btc_info = Event::from(BtcInfoEvent {
        height: 864_790,
        confirmed_tvl: Amount::from_sat(100_000_000_000),
        unconfirmed_tvl: Amount::from_sat(100_030_000_000),
    });
    let golden = r#"{"schema_version":0,"event_type":6,"height":864790,"confirmed_tvl":100000000000,"unconfirmed_tvl":100030000000}"#;
    assert_eq!(btc_info.to_json(), golden);
    assert_eq!(
        Event::decode(QueueName::BtcInfo, golden.as_bytes()).unwrap(),
        btc_info
    );

    let confirmed = Event::from(ConfirmedInfoEvent {
        height: 864_781,
        tvl: Amount::from_sat(99_000),
    });
    let golden = r#"{"schema_version":0,"event_type":7,"height":864781,"tvl":99000}"#;
    assert_eq!(confirmed.to_json(), golden);
    assert_eq!(
        Event::decode(QueueName::ConfirmedInfo, golden.as_bytes()).unwrap(),
        confirmed
    );
}

#[test]
fn an_absent_schema_version_and_unknown_fields_are_tolerated() {
    let body =
        r#"{"event_type":6,"height":5,"confirmed_tvl":1,"unconfirmed_tvl":2,"future_field":[1,2]}"#;
    let decoded = Event::decode(QueueName::BtcInfo, body.as_bytes()).unwrap();
    assert_eq!(
        decoded,
        Event::BtcInfo(BtcInfoEvent {
            height: 5,
            confirmed_tvl: Amount::from_sat(1),
            unconfirmed_tvl: Amount::from_sat(2)
        })
    );
}

#[test]
fn upper_case_hex_is_accepted_and_written_back_lower_case() {
    let body = SPEC_EXPIRED_EXAMPLE.replace(SPEC_TXID, &SPEC_TXID.to_uppercase());
    let decoded = Event::decode(QueueName::ExpiredStaking, body.as_bytes()).unwrap();
    assert!(decoded.to_json().contains(SPEC_TXID));
}

#[test]
fn malformed_messages_are_errors_that_name_the_queue() {
    for body in [
        "",
        "{}",
        r#"{"event_type":3}"#,
        r#"{"event_type":3,"staking_tx_hash_hex":"zz"}"#,
        r#"{"event_type":6,"height":-1,"confirmed_tvl":1,"unconfirmed_tvl":2}"#,
    ] {
        let queue = if body.contains("\"event_type\":6") {
            QueueName::BtcInfo
        } else {
            QueueName::WithdrawStaking
        };
        let error = Event::decode(queue, body.as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains(queue.as_str()),
            "{body}: {error}"
        );
    }
}

#[test]
fn a_bad_key_or_transaction_hex_is_rejected() {
    let d = first_deposit();
    let good = Event::from(active_event(&d)).to_json();
    let bad_key = good.replace(d.staker_pk, &"ff".repeat(32));
    assert!(
        Event::decode(QueueName::ActiveStaking, bad_key.as_bytes()).is_err(),
        "not a curve point"
    );
    let bad_tx = good.replace(&d.hex, &d.hex[..d.hex.len() - 2]);
    assert!(
        Event::decode(QueueName::ActiveStaking, bad_tx.as_bytes()).is_err(),
        "truncated tx"
    );
}

#[test]
fn decoding_by_event_type_finds_the_right_shape() {
    let decoded = Event::decode_by_event_type(SPEC_EXPIRED_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(decoded.event_type(), EventType::ExpiredStaking);
    let decoded = Event::decode_by_event_type(SPEC_WITHDRAW_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(decoded.event_type(), EventType::WithdrawStaking);
    let not_quite = br#"{"event_type":2,"staking_tx_hash_hex":"not hex"}"#;
    assert_eq!(
        EventType::of_body(not_quite).unwrap(),
        EventType::UnbondingStaking
    );
    assert!(Event::decode_by_event_type(not_quite).is_err());
    let error = Event::decode_by_event_type(br#"{"event_type":9}"#).unwrap_err();
    assert_eq!(error.to_string(), "unknown event_type 9");
}

#[test]
fn queue_names_and_event_type_numbers_are_those_of_the_reference() {
    let expected = [
        ("active_staking_queue", 1),
        ("unbonding_staking_queue", 2),
        ("withdraw_staking_queue", 3),
        ("expired_staking_queue", 4),
        ("staking_stats_queue", 5),
        ("btc_info_queue", 6),
        ("confirmed_info_queue", 7),
    ];
    let actual: Vec<(&str, u8)> = QueueName::ALL
        .iter()
        .map(|q| (q.as_str(), q.event_type().number()))
        .collect();
    assert_eq!(actual, expected);
    for q in QueueName::ALL {
        assert_eq!(q.as_str().parse::<QueueName>().unwrap(), q);
        assert_eq!(q.event_type().queue(), q);
        assert_eq!(
            EventType::from_number(q.event_type().number()),
            Some(q.event_type())
        );
    }
    assert!("active_staking_queue_delay".parse::<QueueName>().is_err());
    assert_eq!(EventType::from_number(0), None);
}
