//! The real params files (`bbn-test-4`, `bbn-1`) are valid, ship as presets, say what
//! `docs/formats.md#params-presets` says they say, and select versions by height.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
use staking_core::bitcoin::{Amount, Network};
use staking_core::params::{BlockHeight, GlobalParams, StakingCap};
use staking_core::presets::Preset;

fn testdata(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../testdata/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn both_real_params_files_are_valid_without_warnings() {
    for file in [
        "params/bbn-test-4.global-params.json",
        "params/bbn-1.global-params.json",
    ] {
        let (params, warnings) = GlobalParams::from_json(&testdata(file)).unwrap();
        assert!(warnings.is_empty(), "{file}: {warnings:?}");
        assert!(!params.versions().is_empty());
    }
}

#[test]
fn presets_are_the_published_files_byte_for_byte() {
    assert_eq!(
        Preset::BbnTest4.json(),
        testdata("params/bbn-test-4.global-params.json")
    );
    assert_eq!(
        Preset::Bbn1.json(),
        testdata("params/bbn-1.global-params.json")
    );
    assert_eq!(Preset::BbnTest4.network(), Network::Signet);
    assert_eq!(Preset::Bbn1.network(), Network::Bitcoin);
    assert_eq!(GlobalParams::preset("bbn-1"), Some(Preset::Bbn1.params()));
    assert_eq!(
        GlobalParams::preset("bbn-test-4"),
        Some(Preset::BbnTest4.params())
    );
    assert_eq!(GlobalParams::preset("bbn-2"), None);
    assert_eq!(
        "nope".parse::<Preset>().unwrap_err().to_string(),
        "unknown params preset `nope` (known: bbn-test-4, bbn-1)"
    );
}

#[test]
fn bbn_1_versions_have_the_documented_values() {
    let params = Preset::Bbn1.params();
    let rows: Vec<_> = params
        .versions()
        .iter()
        .map(|v| {
            (
                v.version,
                v.activation_height.0,
                v.cap,
                v.unbonding_fee.to_sat(),
                v.max_staking_amount.to_sat(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                0,
                857910,
                StakingCap::Amount(Amount::from_sat(100_000_000_000)),
                64000,
                5_000_000
            ),
            (
                1,
                864790,
                StakingCap::Height(BlockHeight(864799)),
                32000,
                50_000_000_000
            ),
            (
                2,
                874088,
                StakingCap::Height(BlockHeight(875087)),
                32000,
                500_000_000_000
            ),
        ]
    );
    for v in params.versions() {
        assert_eq!(v.tag, *b"bbn1");
        assert_eq!((v.covenant_quorum, v.covenant_pks.len()), (6, 9));
        assert_eq!(v.unbonding_time, 1008);
        assert_eq!(v.min_staking_amount.to_sat(), 500_000);
        assert_eq!((v.min_staking_time, v.max_staking_time), (64000, 64000));
        assert_eq!(v.confirmation_depth, 10);
    }
    assert_eq!(params.confirmation_depth(), 10);
}

#[test]
fn bbn_test_4_versions_have_the_documented_values() {
    let params = Preset::BbnTest4.params();
    let rows: Vec<_> = params
        .versions()
        .iter()
        .map(|v| {
            (
                v.version,
                v.activation_height.0,
                v.staking_cap().map(Amount::to_sat),
                v.cap_height().map(|h| h.0),
                v.unbonding_fee.to_sat(),
                v.max_staking_amount.to_sat(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, 197535, Some(500_000_000), None, 2000, 5_000_000),
            (1, 198665, Some(5_000_000_000), None, 10000, 5_000_000),
            (2, 200665, None, Some(201385), 10000, 5_000_000),
            (3, 215968, None, Some(220000), 5000, 50_000_000),
            (4, 220637, None, Some(223661), 5000, 50_000_000),
        ]
    );
    for v in params.versions() {
        assert_eq!(v.tag, *b"bbt4");
        assert_eq!((v.covenant_quorum, v.covenant_pks.len()), (6, 9));
        assert_eq!(v.min_staking_amount.to_sat(), 50_000);
    }
    // Committees A, B, C differ only in their last two keys.
    let v0 = params.version(0).unwrap().covenant_x_only();
    let v1 = params.version(1).unwrap().covenant_x_only();
    let v2 = params.version(2).unwrap().covenant_x_only();
    assert_ne!(v0, v1);
    assert_ne!(v1, v2);
    assert_eq!(
        params.version(3).unwrap().covenant_pks,
        params.version(2).unwrap().covenant_pks
    );
}

#[test]
fn the_version_in_force_is_the_last_one_activated_at_or_below_the_height() {
    let params = Preset::Bbn1.params();
    let at = |h: u64| params.for_height(BlockHeight(h)).map(|v| v.version);
    assert_eq!(at(0), None);
    assert_eq!(at(857_909), None);
    assert_eq!(at(857_910), Some(0));
    assert_eq!(at(864_789), Some(0));
    assert_eq!(at(864_790), Some(1));
    assert_eq!(at(874_087), Some(1));
    assert_eq!(at(874_088), Some(2));
    assert_eq!(at(u64::MAX), Some(2));
    assert_eq!(params.first_activation_height(), BlockHeight(857_910));
}

#[test]
fn params_serialise_back_to_the_reference_format_and_reparse_identically() {
    for preset in Preset::ALL {
        let params = preset.params();
        let json = params.to_json();
        let (again, warnings) = GlobalParams::from_json(&json.to_string()).unwrap();
        assert_eq!(again, params, "{preset}");
        assert!(warnings.is_empty());
        let first = &json["versions"][0];
        assert_eq!(first["covenant_pks"][0].as_str().unwrap().len(), 66);
        assert!(first["tag"].is_string());
    }
    let v0 = &Preset::Bbn1.params().to_json()["versions"][0];
    assert_eq!(v0["tag"], "62626e31");
    assert_eq!(v0["staking_cap"], 100_000_000_000u64);
    assert!(
        v0.get("cap_height").is_none(),
        "unused cap omitted as with omitempty"
    );
    let v1 = &Preset::Bbn1.params().to_json()["versions"][1];
    assert_eq!(v1["cap_height"], 864_799);
    assert!(v1.get("staking_cap").is_none());
    assert_eq!(
        v0["covenant_pks"][0],
        "03d45c70d28f169e1f0c7f4a78e2bc73497afe585b70aa897955989068f3350aaa"
    );
}

#[test]
fn versions_built_in_code_pass_the_same_rules_as_files() {
    let mut versions = Preset::Bbn1.params().versions().to_vec();
    assert!(GlobalParams::from_versions(versions.clone()).is_ok());
    versions[1].activation_height = versions[0].activation_height;
    assert_eq!(
        GlobalParams::from_versions(versions).unwrap_err().to_string(),
        "invalid params with version 1. activation height cannot be overlapping between earlier and later versions"
    );
}
