//! Every validation rule of the reference params parser rejects a broken file with the
//! reference's exact text (`docs/formats.md#params-validation`), in the reference's order;
//! documented rules it does not enforce are warnings; JSON is decoded as Go decodes it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
use serde_json::{json, Value};
use staking_core::bitcoin::secp256k1::XOnlyPublicKey;
use staking_core::params::{BlockHeight, GlobalParams, ParamsError, ParamsWarning, VersionError};

const KEYS: [&str; 9] = [
    "03d45c70d28f169e1f0c7f4a78e2bc73497afe585b70aa897955989068f3350aaa",
    "034b15848e495a3a62283daaadb3f458a00859fe48e321f0121ebabbdd6698f9fa",
    "0223b29f89b45f4af41588dcaf0ca572ada32872a88224f311373917f1b37d08d1",
    "02d3c79b99ac4d265c2f97ac11e3232c07a598b020cf56c6f055472c893c0967ae",
    "038242640732773249312c47ca7bdb50ca79f15f2ecc32b9c83ceebba44fb74df7",
    "03e36200aaa8dce9453567bba108bdc51f7f1174b97a65e4dc4402fc5de779d41c",
    "03cbdd028cfe32c1c1f2d84bfec71e19f92df509bba7b8ad31ca6c1a134fe09204",
    "03f178fcce82f95c524b53b077e6180bd2d779a9057fdff4255a0af95af918cee0",
    "03de13fc96ea6899acbdc5db3afaa683f62fe35b60ff6eb723dad28a11d2b12f8c",
];

/// A valid version shaped like bbn-1 version 0.
fn base() -> Value {
    json!({
        "version": 0,
        "activation_height": 100,
        "staking_cap": 100_000_000_000u64,
        "tag": "62626e31",
        "covenant_pks": KEYS,
        "covenant_quorum": 6,
        "unbonding_time": 1008,
        "unbonding_fee": 64000,
        "max_staking_amount": 5_000_000,
        "min_staking_amount": 500_000,
        "max_staking_time": 64000,
        "min_staking_time": 64000,
        "confirmation_depth": 10
    })
}

fn file(versions: Vec<Value>) -> String {
    json!({ "versions": versions }).to_string()
}

fn error_of(versions: Vec<Value>) -> String {
    GlobalParams::from_json(&file(versions))
        .unwrap_err()
        .to_string()
}

/// The error of a one-version file whose version is `base()` with `changes` applied.
fn broken(changes: Value) -> String {
    let mut v = base();
    for (k, val) in changes.as_object().unwrap() {
        if val.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = val.clone();
        }
    }
    error_of(vec![v])
}

const P: &str = "invalid params with version 0: ";

#[test]
fn the_base_file_is_valid() {
    let (params, warnings) = GlobalParams::from_json(&file(vec![base()])).unwrap();
    assert_eq!(params.versions().len(), 1);
    assert!(warnings.is_empty());
}

#[test]
fn rule_1_tag_must_be_hex() {
    assert_eq!(
        broken(json!({"tag": "zz626e31"})),
        format!("{P}invalid tag: encoding/hex: invalid byte: U+007A 'z'")
    );
    assert_eq!(
        broken(json!({"tag": "62626e3"})),
        format!("{P}invalid tag: encoding/hex: odd length hex string")
    );
}

#[test]
fn rule_2_tag_must_be_4_bytes() {
    assert_eq!(
        broken(json!({"tag": "626263"})),
        format!("{P}invalid tag length, expected 4, got 3")
    );
    assert_eq!(
        broken(json!({"tag": null})),
        format!("{P}invalid tag length, expected 4, got 0")
    );
}

#[test]
fn rule_3_covenant_keys_must_not_be_empty() {
    assert_eq!(
        broken(json!({"covenant_pks": []})),
        format!("{P}empty covenant public keys")
    );
    assert_eq!(
        broken(json!({"covenant_pks": null})),
        format!("{P}empty covenant public keys")
    );
}

#[test]
fn rule_4_quorum_must_not_exceed_the_committee() {
    assert_eq!(
        broken(json!({"covenant_pks": &KEYS[..5]})),
        format!("{P}covenant quorum 6 cannot be more than the amount of covenants 5")
    );
}

#[test]
fn rule_5_quorum_must_be_positive() {
    assert_eq!(
        broken(json!({"covenant_quorum": 0})),
        format!("{P}invalid covenant quorum: invalid value: value must be positive")
    );
}

#[test]
fn rule_6_every_covenant_key_must_parse_as_btcec_does() {
    let x_only = &KEYS[0][2..];
    let with = |key: &str| {
        let mut keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
        keys[3] = key.to_owned();
        broken(json!({ "covenant_pks": keys }))
    };
    assert_eq!(
        with(x_only),
        format!(
            "{P}invalid covenant public key {x_only}: malformed public key: invalid length: 32"
        )
    );
    assert_eq!(
        with("02zz"),
        format!("{P}invalid covenant public key 02zz: encoding/hex: invalid byte: U+007A 'z'")
    );
    let bad_format = format!("04{x_only}");
    assert_eq!(
        with(&bad_format),
        format!("{P}invalid covenant public key {bad_format}: invalid public key: unsupported format: 4")
    );
    let above_p = format!("02{}", "ff".repeat(32));
    assert_eq!(
        with(&above_p),
        format!("{P}invalid covenant public key {above_p}: invalid public key: x >= field prime")
    );
    // The smallest x with no curve point.
    let off_curve_x = (0u8..)
        .map(|i| {
            let mut x = [0u8; 32];
            x[31] = i;
            x
        })
        .find(|x| XOnlyPublicKey::from_slice(x).is_err())
        .unwrap();
    let x_hex: String = off_curve_x.iter().map(|b| format!("{b:02x}")).collect();
    let off_curve = format!("02{x_hex}");
    assert_eq!(
        with(&off_curve),
        format!("{P}invalid covenant public key {off_curve}: invalid public key: x coordinate {x_hex} is not on the secp256k1 curve")
    );
}

#[test]
fn uncompressed_covenant_keys_are_accepted_as_the_reference_accepts_them() {
    let uncompressed = KEYS[2]
        .parse::<staking_core::bitcoin::secp256k1::PublicKey>()
        .unwrap()
        .serialize_uncompressed();
    let mut keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    keys[2] = uncompressed.iter().map(|b| format!("{b:02x}")).collect();
    let mut v = base();
    v["covenant_pks"] = json!(keys);
    let (params, _) = GlobalParams::from_json(&file(vec![v])).unwrap();
    assert_eq!(params.versions()[0].covenant_pks[2].to_string(), KEYS[2]);
}

#[test]
fn rule_7_max_staking_amount_must_be_a_positive_int64() {
    assert_eq!(
        broken(json!({"max_staking_amount": 0})),
        format!("{P}invalid max_staking_amount: invalid btc value: value must be positive")
    );
    assert_eq!(
        broken(json!({"max_staking_amount": 9_223_372_036_854_775_808u64})),
        format!("{P}invalid max_staking_amount: value 9223372036854775808 is too large. Max: 9223372036854775807")
    );
}

#[test]
fn rule_8_min_staking_amount_must_be_a_positive_int64() {
    assert_eq!(
        broken(json!({"min_staking_amount": null})),
        format!("{P}invalid min_staking_amount: invalid btc value: value must be positive")
    );
    assert_eq!(
        broken(json!({"min_staking_amount": u64::MAX})),
        format!("{P}invalid min_staking_amount: value 18446744073709551615 is too large. Max: 9223372036854775807")
    );
}

#[test]
fn rule_9_max_staking_amount_must_not_be_below_min() {
    assert_eq!(
        broken(json!({"max_staking_amount": 300, "min_staking_amount": 400})),
        format!("{P}max-staking-amount 300 must be larger than or equal to min-staking-amount 400")
    );
}

#[test]
fn rule_10_unbonding_time_must_be_a_positive_u16() {
    assert_eq!(
        broken(json!({"unbonding_time": 0})),
        format!("{P}invalid unbonding_time: invalid timelock value: value must be positive")
    );
    assert_eq!(
        broken(json!({"unbonding_time": 65536})),
        format!("{P}invalid unbonding_time: timelock value 65536 is too large. Max: 65535")
    );
}

#[test]
fn rule_11_unbonding_fee_must_be_a_positive_int64() {
    assert_eq!(
        broken(json!({"unbonding_fee": 0})),
        format!("{P}invalid unbonding_fee: invalid btc value: value must be positive")
    );
    assert_eq!(
        broken(json!({"unbonding_fee": 9_223_372_036_854_775_808u64})),
        format!("{P}invalid unbonding_fee: value 9223372036854775808 is too large. Max: 9223372036854775807")
    );
}

#[test]
fn rule_12_min_staking_amount_must_cover_the_unbonding_fee_plus_1000() {
    assert_eq!(
        broken(json!({"unbonding_fee": 499_001})),
        format!(
            "{P}min_staking_amount 500000 should not be less than unbonding fee 499001 plus 1000"
        )
    );
    // Exactly fee + 1000 is enough.
    let mut v = base();
    v["unbonding_fee"] = json!(499_000);
    assert!(GlobalParams::from_json(&file(vec![v])).is_ok());
}

#[test]
fn rule_13_max_staking_time_must_be_a_positive_u16() {
    assert_eq!(
        broken(json!({"max_staking_time": 0})),
        format!("{P}invalid max_staking_time: invalid timelock value: value must be positive")
    );
    assert_eq!(
        broken(json!({"max_staking_time": 70000})),
        format!("{P}invalid max_staking_time: timelock value 70000 is too large. Max: 65535")
    );
}

#[test]
fn rule_14_min_staking_time_must_be_a_positive_u16() {
    assert_eq!(
        broken(json!({"min_staking_time": 0})),
        format!("{P}invalid min_staking_time: invalid timelock value: value must be positive")
    );
    assert_eq!(
        broken(json!({"min_staking_time": 65536})),
        format!("{P}invalid min_staking_time: timelock value 65536 is too large. Max: 65535")
    );
}

#[test]
fn rule_15_max_staking_time_must_not_be_below_min() {
    assert_eq!(
        broken(json!({"max_staking_time": 100, "min_staking_time": 200})),
        format!("{P}max-staking-time 100 must be larger than or equal to min-staking-time 200")
    );
}

#[test]
fn rule_16_confirmation_depth_must_be_between_2_and_65535() {
    assert_eq!(
        broken(json!({"confirmation_depth": null})),
        format!(
            "{P}invalid confirmation_depth: confirmation depth value should be at least 2, got 0"
        )
    );
    assert_eq!(
        broken(json!({"confirmation_depth": 1})),
        format!(
            "{P}invalid confirmation_depth: confirmation depth value should be at least 2, got 1"
        )
    );
    assert_eq!(
        broken(json!({"confirmation_depth": 65536})),
        format!("{P}invalid confirmation_depth: timelock value 65536 is too large. Max: 65535")
    );
}

#[test]
fn rule_17_activation_height_must_be_positive() {
    assert_eq!(
        broken(json!({"activation_height": 0})),
        format!("{P}activation_height: value must be positive")
    );
}

#[test]
fn rule_18_exactly_one_cap_must_be_set_and_fit_int64() {
    assert_eq!(
        broken(json!({"cap_height": 200})),
        format!("{P}invalid cap: only either of staking cap and cap height can be set")
    );
    assert_eq!(
        broken(json!({"staking_cap": null})),
        format!("{P}invalid cap: either of staking cap and cap height must be set")
    );
    assert_eq!(
        broken(json!({"staking_cap": 9_223_372_036_854_775_808u64})),
        format!("{P}invalid cap: value 9223372036854775808 is too large. Max: 9223372036854775807")
    );
}

#[test]
fn rule_19_staking_cap_must_not_be_below_max_staking_amount() {
    assert_eq!(
        broken(json!({"staking_cap": 4_999_999})),
        format!("{P}invalid staking_cap, should be larger than max_staking_amount: 5000000, got: 4999999")
    );
}

#[test]
fn a_height_cap_ending_before_its_version_starts_is_rejected_at_load() {
    let err = GlobalParams::from_json(&file(vec![{
        let mut v = base();
        v["staking_cap"] = json!(0);
        v["cap_height"] = json!(99);
        v
    }]))
    .unwrap_err();
    assert!(matches!(
        err,
        ParamsError::Version {
            version: 0,
            error: VersionError::CapHeightBelowActivation {
                cap_height: 99,
                activation_height: 100
            }
        }
    ));
    assert_eq!(
        err.to_string(),
        format!("{P}cap_height 99 is below activation_height 100: a height cap must not end before its version starts")
    );
}

#[test]
fn a_file_without_versions_is_rejected() {
    assert_eq!(
        error_of(vec![]),
        "global params must have at least one version"
    );
    assert_eq!(
        GlobalParams::from_json("{}").unwrap_err().to_string(),
        "global params must have at least one version"
    );
}

fn second(changes: Value) -> String {
    let mut v1 = base();
    v1["version"] = json!(1);
    v1["activation_height"] = json!(200);
    for (k, val) in changes.as_object().unwrap() {
        v1[k] = val.clone();
    }
    error_of(vec![base(), v1])
}

#[test]
fn versions_must_increase_by_exactly_one() {
    assert_eq!(
        second(json!({"version": 2})),
        "invalid params with version 2. versions should be monotonically increasing by 1"
    );
    assert_eq!(
        second(json!({"version": 0})),
        "invalid params with version 0. versions should be monotonically increasing by 1"
    );
}

#[test]
fn a_staking_cap_may_not_decrease_even_across_height_capped_versions() {
    assert_eq!(
        second(json!({"staking_cap": 99_999_999_999u64})),
        "invalid params with version 1. staking cap cannot be decreased in later versions, last non-zero staking cap: 100000000000, got: 99999999999"
    );
    let mut v1 = base();
    v1["version"] = json!(1);
    v1["activation_height"] = json!(200);
    v1["staking_cap"] = json!(0);
    v1["cap_height"] = json!(300);
    let mut v2 = base();
    v2["version"] = json!(2);
    v2["activation_height"] = json!(400);
    v2["staking_cap"] = json!(6_000_000);
    assert_eq!(
        error_of(vec![base(), v1, v2]),
        "invalid params with version 2. staking cap cannot be decreased in later versions, last non-zero staking cap: 100000000000, got: 6000000"
    );
}

#[test]
fn activation_heights_must_strictly_increase() {
    assert_eq!(
        second(json!({"activation_height": 100})),
        "invalid params with version 1. activation height cannot be overlapping between earlier and later versions"
    );
}

#[test]
fn the_first_broken_rule_in_reference_order_is_reported() {
    // Bad tag and bad quorum: the tag is checked first.
    assert_eq!(
        broken(json!({"tag": "00", "covenant_quorum": 0})),
        format!("{P}invalid tag length, expected 4, got 1")
    );
    // A version's own rules come before the cross-version rules.
    assert_eq!(
        second(json!({"version": 5, "unbonding_time": 0})),
        "invalid params with version 5: invalid unbonding_time: invalid timelock value: value must be positive"
    );
}

#[test]
fn json_syntax_and_type_errors_name_the_field() {
    let err = GlobalParams::from_json("{\"versions\": [").unwrap_err();
    assert!(matches!(err, ParamsError::Json(_)), "{err}");
    let mut v = base();
    v["unbonding_fee"] = json!("64000");
    let err = error_of(vec![v]);
    assert!(err.starts_with("invalid params JSON: "), "{err}");
    assert!(err.contains("unbonding_fee"), "{err}");
    let mut v = base();
    v["covenant_quorum"] = json!(-6);
    assert!(error_of(vec![v]).contains("covenant_quorum"));
}

#[test]
fn keys_match_case_insensitively_and_unknown_keys_are_ignored_as_in_go() {
    let mut v = serde_json::Map::new();
    for (k, val) in base().as_object().unwrap() {
        v.insert(k.to_uppercase(), val.clone());
    }
    v.insert("comment".into(), json!("ignored"));
    let json = json!({ "VERSIONS": [v], "extra": [1, 2] }).to_string();
    let (params, _) = GlobalParams::from_json(&json).unwrap();
    let (expected, _) = GlobalParams::from_json(&file(vec![base()])).unwrap();
    assert_eq!(params, expected);
}

#[test]
fn rules_the_reference_does_not_enforce_are_warnings() {
    let mut v0 = base();
    v0["version"] = json!(7);
    let mut dup_keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    dup_keys[1] = format!("02{}", &KEYS[0][2..]); // same x as key 0, other parity
    v0["covenant_pks"] = json!(dup_keys);
    v0["staking_cap"] = json!(5_000_000);
    let mut v1 = base();
    v1["version"] = json!(8);
    v1["activation_height"] = json!(200);
    v1["staking_cap"] = json!(0);
    v1["cap_height"] = json!(500);
    v1["confirmation_depth"] = json!(6);
    let mut v2 = base();
    v2["version"] = json!(9);
    v2["activation_height"] = json!(300);
    v2["staking_cap"] = json!(0);
    v2["cap_height"] = json!(400);
    let (params, warnings) = GlobalParams::from_json(&file(vec![v0, v1, v2])).unwrap();
    assert_eq!(params.confirmation_depth(), 10);
    let dup: XOnlyPublicKey = KEYS[0][2..].parse().unwrap();
    let texts: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        vec![
            ParamsWarning::FirstVersionNotZero { version: 7 },
            ParamsWarning::DuplicateCovenantKey {
                version: 7,
                key: dup
            },
            ParamsWarning::StakingCapNotAboveMax {
                version: 7,
                cap: staking_core::bitcoin::Amount::from_sat(5_000_000)
            },
            ParamsWarning::ConfirmationDepthIgnored {
                version: 8,
                depth: 6,
                used: 10
            },
            ParamsWarning::CapHeightDecreased {
                version: 9,
                cap_height: BlockHeight(400),
                previous: BlockHeight(500)
            },
        ],
        "{texts:#?}"
    );
    assert!(texts[1].contains("no staking tx can be recognised"));
}

#[test]
fn a_wrong_json_type_says_which_field_and_where() {
    let err = GlobalParams::from_json(r#"{"versions":[{"version":0,"unbonding_fee":"64000"}]}"#)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid params JSON: versions[0]: field `unbonding_fee`: invalid type: string \"64000\", expected an unsigned 64-bit integer at line 1 column 49"
    );
}
