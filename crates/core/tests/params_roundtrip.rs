//! Property tests: any valid params (random committees, quorums, amounts, times, caps) survive
//! serialisation to the reference format; version selection picks the last activated version;
//! arbitrary JSON never panics the parser.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
use proptest::prelude::*;
use staking_core::bitcoin::secp256k1::{PublicKey, SecretKey};
use staking_core::bitcoin::Amount;
use staking_core::keys::SECP;
use staking_core::params::{BlockHeight, GlobalParams, ParamsVersion, StakingCap};

prop_compose! {
    fn version_strategy()(
        keys in proptest::collection::vec(any::<[u8; 32]>().prop_filter_map("key", |b| SecretKey::from_slice(&b).ok()), 1..=20),
        quorum_seed in any::<u32>(), tag in any::<[u8; 4]>(),
        fee in 1u64..1_000_000, min_extra in 0u64..1_000_000_000, span in 0u64..1_000_000_000_000,
        unbonding_time in 1u16.., t1 in 1u16.., t2 in 1u16.., depth in 2u16..,
        height_cap in any::<bool>(), cap_extra in 0u64..1_000_000,
    ) -> ParamsVersion {
        let covenant_pks: Vec<PublicKey> = keys.iter().map(|k| k.public_key(&SECP)).collect();
        let min = fee + 1000 + min_extra;
        let max = min + span;
        ParamsVersion {
            version: 0,
            activation_height: BlockHeight(1),
            cap: if height_cap { StakingCap::Height(BlockHeight(cap_extra)) } else { StakingCap::Amount(Amount::from_sat(max + cap_extra)) },
            tag,
            covenant_quorum: 1 + quorum_seed % covenant_pks.len() as u32,
            covenant_pks,
            unbonding_time,
            unbonding_fee: Amount::from_sat(fee),
            min_staking_amount: Amount::from_sat(min),
            max_staking_amount: Amount::from_sat(max),
            min_staking_time: t1.min(t2),
            max_staking_time: t1.max(t2),
            confirmation_depth: depth,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn valid_params_round_trip_through_the_reference_json(
        mut versions in proptest::collection::vec(version_strategy(), 1..5),
        gaps in proptest::collection::vec(1u64..100_000, 5),
    ) {
        let mut height = 0u64;
        let mut last_cap = 0u64;
        for (i, v) in versions.iter_mut().enumerate() {
            height += gaps[i];
            v.version = i as u64;
            v.activation_height = BlockHeight(height);
            match &mut v.cap {
                StakingCap::Height(h) => h.0 += height,
                StakingCap::Amount(a) => {
                    *a = (*a).max(Amount::from_sat(last_cap));
                    last_cap = a.to_sat();
                }
            }
        }
        let (params, _) = GlobalParams::from_versions(versions.clone()).unwrap();
        prop_assert_eq!(params.versions(), &versions[..]);
        let (again, _) = GlobalParams::from_json(&params.to_json().to_string()).unwrap();
        prop_assert_eq!(&again, &params);
        for (i, v) in versions.iter().enumerate() {
            prop_assert_eq!(params.for_height(v.activation_height).unwrap().version, i as u64);
            let before = BlockHeight(v.activation_height.0 - 1);
            prop_assert_eq!(params.for_height(before).map(|x| x.version), i.checked_sub(1).map(|p| p as u64));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = GlobalParams::from_json_bytes(&bytes);
    }

    #[test]
    fn arbitrary_field_values_get_an_error_or_valid_params(
        fields in proptest::collection::vec((0usize..14, prop_oneof![
            any::<u64>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            "[0-9a-fA-F]{0,10}".prop_map(serde_json::Value::from),
            Just(serde_json::json!([])),
        ]), 0..14),
    ) {
        let names = ["version", "activation_height", "staking_cap", "cap_height", "tag", "covenant_pks",
            "covenant_quorum", "unbonding_time", "unbonding_fee", "max_staking_amount",
            "min_staking_amount", "max_staking_time", "min_staking_time", "confirmation_depth"];
        let mut v = serde_json::Map::new();
        for (i, value) in fields {
            v.insert(names[i].to_owned(), value);
        }
        let json = serde_json::json!({ "versions": [v] }).to_string();
        match GlobalParams::from_json(&json) {
            Ok((p, _)) => prop_assert_eq!(p.versions().len(), 1),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
