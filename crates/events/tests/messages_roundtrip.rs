#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
//! Every event survives encode then decode, and every encoding starts with `schema_version`
//! then `event_type`, for arbitrary field values.

use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Amount, Transaction, Txid};
use events::{
    ActiveStakingEvent, BtcInfoEvent, ConfirmedInfoEvent, Event, ExpiredStakingEvent,
    ExpiredTxType, StatsEvent, StatsState, UnbondingStakingEvent, WithdrawStakingEvent, WithdrawTx,
};

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{OutPoint, ScriptBuf, Sequence, TxIn, TxOut, Witness};
use proptest::prelude::*;

fn any_txid() -> impl Strategy<Value = Txid> {
    any::<[u8; 32]>().prop_map(Txid::from_byte_array)
}

fn any_key() -> impl Strategy<Value = XOnlyPublicKey> {
    (1u64..u64::MAX).prop_map(|n| {
        let mut bytes = [0u8; 32];
        bytes[24..].copy_from_slice(&n.to_be_bytes());
        let secret = SecretKey::from_slice(&bytes).unwrap();
        Keypair::from_secret_key(&Secp256k1::signing_only(), &secret)
            .x_only_public_key()
            .0
    })
}

fn any_tx() -> impl Strategy<Value = Transaction> {
    (
        any_txid(),
        any::<u32>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        any::<bool>(),
    )
        .prop_map(|(prev, vout, value, script, witness)| Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::new(prev, vout),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: if witness {
                    Witness::from_slice(&[vec![1u8; 64]])
                } else {
                    Witness::new()
                },
            }],
            output: vec![TxOut {
                value: Amount::from_sat(value % 2_100_000_000_000_000),
                script_pubkey: ScriptBuf::from_bytes(script),
            }],
        })
}

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (
            any_txid(),
            any_key(),
            any_key(),
            any::<u64>(),
            any::<u64>(),
            any::<i64>(),
            any::<u64>(),
            any::<u64>(),
            any_tx(),
            any::<bool>()
        )
            .prop_map(|(h, s, f, v, height, ts, tl, idx, tx, o)| Event::from(
                ActiveStakingEvent {
                    staking_tx_hash: h,
                    staker_pk: s,
                    finality_provider_pk: f,
                    staking_value: Amount::from_sat(v),
                    staking_start_height: height,
                    staking_start_timestamp: ts,
                    staking_timelock: tl,
                    staking_output_index: idx,
                    staking_tx: tx,
                    is_overflow: o,
                }
            )),
        (
            any_txid(),
            any::<u64>(),
            any::<i64>(),
            any::<u64>(),
            any::<u64>(),
            any_tx()
        )
            .prop_map(
                |(h, height, ts, tl, idx, tx)| Event::from(UnbondingStakingEvent {
                    staking_tx_hash: h,
                    unbonding_start_height: height,
                    unbonding_start_timestamp: ts,
                    unbonding_timelock: tl,
                    unbonding_output_index: idx,
                    unbonding_tx_hash: tx.compute_txid(),
                    unbonding_tx: tx,
                })
            ),
        (any_txid(), proptest::option::of((any::<u64>(), any_tx()))).prop_map(|(h, w)| {
            Event::from(WithdrawStakingEvent {
                staking_tx_hash: h,
                withdraw: w.map(|(height, tx)| WithdrawTx {
                    txid: tx.compute_txid(),
                    btc_height: height,
                    tx,
                }),
            })
        }),
        (any_txid(), any::<bool>()).prop_map(|(h, active)| Event::from(ExpiredStakingEvent {
            staking_tx_hash: h,
            tx_type: if active {
                ExpiredTxType::Active
            } else {
                ExpiredTxType::Unbonding
            },
        })),
        (
            any_txid(),
            any_key(),
            any_key(),
            any::<u64>(),
            any::<bool>(),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(h, s, f, v, active, o)| Event::from(StatsEvent {
                staking_tx_hash: h,
                staker_pk: s,
                finality_provider_pk: f,
                staking_value: Amount::from_sat(v),
                state: if active {
                    StatsState::Active
                } else {
                    StatsState::Unbonded
                },
                is_overflow: o,
            })),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(h, c, u)| Event::from(
            BtcInfoEvent {
                height: h,
                confirmed_tvl: Amount::from_sat(c),
                unconfirmed_tvl: Amount::from_sat(u),
            }
        )),
        (any::<u64>(), any::<u64>()).prop_map(|(h, t)| Event::from(ConfirmedInfoEvent {
            height: h,
            tvl: Amount::from_sat(t)
        })),
    ]
}

proptest! {
    #[test]
    fn every_event_survives_encode_then_decode(event in any_event()) {
        let json = event.to_json();
        prop_assert_eq!(&Event::decode(event.queue(), json.as_bytes()).unwrap(), &event);
        prop_assert_eq!(&Event::decode_by_event_type(json.as_bytes()).unwrap(), &event);
    }

    #[test]
    fn every_event_starts_with_schema_version_then_its_event_type(event in any_event()) {
        let json = event.to_json();
        let n = event.event_type().number();
        let v0 = format!(r#"{{"schema_version":0,"event_type":{n},"#);
        let v1 = format!(r#"{{"schema_version":1,"event_type":{n},"#);
        prop_assert!(json.starts_with(&v0) || json.starts_with(&v1), "{}", json);
    }
}
