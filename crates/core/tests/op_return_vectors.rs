//! The V0 OP_RETURN: the official vectors' scripts, the examples of `docs/formats.md#v0-op_return`,
//! the reference's recognition rules, and build→parse round trips.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
use proptest::prelude::*;
use serde_json::Value;
use staking_core::bitcoin::secp256k1::{PublicKey, SecretKey, XOnlyPublicKey};
use staking_core::bitcoin::{Amount, ScriptBuf};
use staking_core::keys::SECP;
use staking_core::op_return::{v0_payload, OpReturnError, V0OpReturn};

fn data(path: &str) -> Value {
    let full = format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
}

fn x_only(hex: &str) -> XOnlyPublicKey {
    hex.parse().unwrap()
}

fn script(hex: &str) -> ScriptBuf {
    ScriptBuf::from_hex(hex).unwrap()
}

const STAKER: &str = "aff94eb65a2fe773a57c5bd54e62d8436a5467573565214028422b41bd43e29b";
const FP: &str = "c333bf065809ed12b162dc3c849f8cf65219125fdfde98770c2b285f04ff9960";

#[test]
fn official_vectors_op_returns_are_built_and_parsed_byte_for_byte() {
    let vectors = data("vectors/babylon-btcstaking-vectors.json");
    let mut checked = 0;
    for vector in vectors["vectors"].as_array().unwrap() {
        let expected = vector["expected"]["op_return_script_hex"].as_str().unwrap();
        if expected.is_empty() {
            continue; // multi-FP vectors have no V0 OP_RETURN
        }
        let p = &vector["parameters"];
        let key = |hex: &str| hex.parse::<PublicKey>().unwrap().x_only_public_key().0;
        let tag: [u8; 4] = hex::decode(p["magic_bytes"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let op = V0OpReturn {
            tag,
            staker: key(p["staker_public_key"].as_str().unwrap()),
            finality_provider: key(p["finality_provider_public_keys"][0].as_str().unwrap()),
            staking_time: p["staking_time"].as_u64().unwrap() as u16,
        };
        assert_eq!(op.script().to_hex_string(), expected);
        assert_eq!(V0OpReturn::parse(&script(expected)).unwrap(), op);
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn spec_examples_for_bbn_1_and_bbn_test_4_match() {
    for (tag, expected) in [
        (*b"bbn1", "6a4762626e3100aff94eb65a2fe773a57c5bd54e62d8436a5467573565214028422b41bd43e29bc333bf065809ed12b162dc3c849f8cf65219125fdfde98770c2b285f04ff9960fa00"),
        (*b"bbt4", "6a476262743400aff94eb65a2fe773a57c5bd54e62d8436a5467573565214028422b41bd43e29bc333bf065809ed12b162dc3c849f8cf65219125fdfde98770c2b285f04ff9960fa00"),
    ] {
        let op = V0OpReturn { tag, staker: x_only(STAKER), finality_provider: x_only(FP), staking_time: 64000 };
        assert_eq!(op.script().to_hex_string(), expected);
        let out = op.tx_out();
        assert_eq!(out.value, Amount::ZERO);
        assert_eq!(out.script_pubkey.len(), 73);
    }
}

#[test]
fn staking_time_is_big_endian() {
    let op = V0OpReturn {
        tag: *b"bbt4",
        staker: x_only(STAKER),
        finality_provider: x_only(FP),
        staking_time: 0x0102,
    };
    assert_eq!(&op.payload()[69..], &[0x01, 0x02]);
}

fn payload_hex() -> String {
    format!("6262743400{STAKER}{FP}fa00")
}

#[test]
fn non_minimal_pushes_of_73_bytes_are_recognised_as_the_reference_recognises_them() {
    // btcd's IsNullData accepts any single push; the payload is read from byte 2 regardless.
    let p = payload_hex();
    let rest = &p[2..]; // 70 bytes after the first payload byte
    assert!(v0_payload(script(&format!("6a47{p}")).as_bytes()).is_some());
    let pushdata1 = script(&format!("6a4c46{rest}"));
    assert_eq!(v0_payload(pushdata1.as_bytes()).unwrap()[0], 0x46);
    let pushdata2 = script(&format!("6a4d4500{}", &p[4..]));
    assert_eq!(v0_payload(pushdata2.as_bytes()).unwrap()[..2], [0x45, 0x00]);
    let pushdata4 = script(&format!("6a4e43000000{}", &p[8..]));
    assert_eq!(
        v0_payload(pushdata4.as_bytes()).unwrap()[..4],
        [0x43, 0, 0, 0]
    );
    // A push length that does not end exactly at byte 73 is not null data.
    assert!(v0_payload(script(&format!("6a4c45{rest}")).as_bytes()).is_none());
    assert!(v0_payload(script(&format!("6a46{p}")).as_bytes()).is_none());
}

#[test]
fn scripts_of_other_shapes_are_not_v0_op_returns() {
    let p = payload_hex();
    for bad in [
        format!("6a47{p}00"),         // 74 bytes
        format!("6a46{}", &p[..140]), // 72 bytes
        format!("6b47{p}"),           // not OP_RETURN
        String::new(),
    ] {
        let s = script(&bad);
        assert_eq!(
            V0OpReturn::parse(&s),
            Err(OpReturnError::NotV0Shaped { len: s.len() }),
            "{bad}"
        );
    }
}

#[test]
fn a_version_other_than_0_is_refused() {
    let s = script(&format!("6a476262743401{STAKER}{FP}fa00"));
    assert_eq!(V0OpReturn::parse(&s), Err(OpReturnError::Version(1)));
}

#[test]
fn keys_off_the_curve_are_refused_with_the_key_named() {
    let off = (0u8..)
        .map(|i| {
            let mut x = [0u8; 32];
            x[31] = i;
            x
        })
        .find(|x| XOnlyPublicKey::from_slice(x).is_err())
        .unwrap();
    let off_hex: String = off.iter().map(|b| format!("{b:02x}")).collect();
    let s = script(&format!("6a476262743400{off_hex}{FP}fa00"));
    let err = V0OpReturn::parse(&s).unwrap_err();
    assert_eq!(err, OpReturnError::StakerKey(off));
    assert!(err.to_string().contains(&off_hex));
    let s = script(&format!("6a476262743400{STAKER}{off_hex}fa00"));
    assert_eq!(
        V0OpReturn::parse(&s),
        Err(OpReturnError::FinalityProviderKey(off))
    );
}

fn key_strategy() -> impl Strategy<Value = XOnlyPublicKey> {
    any::<[u8; 32]>().prop_filter_map("valid secret key", |b| {
        SecretKey::from_slice(&b)
            .ok()
            .map(|s| s.x_only_public_key(&SECP).0)
    })
}

proptest! {
    #[test]
    fn build_then_parse_returns_the_same_fields(
        tag in any::<[u8; 4]>(), staker in key_strategy(), fp in key_strategy(), time in any::<u16>()
    ) {
        let op = V0OpReturn { tag, staker, finality_provider: fp, staking_time: time };
        let s = op.script();
        prop_assert_eq!(s.len(), 73);
        prop_assert_eq!(V0OpReturn::parse(&s), Ok(op));
    }

    #[test]
    fn parsing_arbitrary_scripts_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let s = ScriptBuf::from_bytes(bytes);
        let _ = V0OpReturn::parse(&s);
    }

    #[test]
    fn parsing_arbitrary_payloads_never_panics(payload in proptest::collection::vec(any::<u8>(), 71)) {
        let mut bytes = vec![0x6a, 0x47];
        bytes.extend(payload);
        let _ = V0OpReturn::parse(&ScriptBuf::from_bytes(bytes));
    }
}
