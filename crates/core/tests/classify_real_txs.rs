//! Classification of real transactions: the 234 signet finality-provider deposits (positive under
//! their deposit params, *not staking* under every real bbn-test-4 version) and the other real
//! staking txs of `testdata/realtx/other-staking-txs` under every params set that could apply.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
use serde_json::{json, Value};
use staking_core::bitcoin::{Address, Network};
use staking_core::params::{BlockHeight, GlobalParams, ParamsVersion};
use staking_core::presets::Preset;
use staking_core::script::ScriptError;
use staking_core::staking_tx::{
    classify, classify_under, decode_transaction_hex, InvalidStakingReason, NotStakingReason,
    StakingTxClass,
};

fn data(path: &str) -> Value {
    let full = format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
}

/// The one deposit whose OP_RETURN carries the same key as staker and finality provider.
const HASHKEY_CLOUD: &str = "HashKey Cloud";

const NUMS: &str = "0250929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0";

/// A one-version params set with a 1-of-1 NUMS committee (the deposit and stakercli examples).
fn nums_params(tag: &str, min_amount: u64, min_time: u64, max_time: u64) -> ParamsVersion {
    let json = json!({"versions": [{
        "version": 0, "activation_height": 1, "staking_cap": 10_000_000_000_000u64, "tag": tag,
        "covenant_pks": [NUMS], "covenant_quorum": 1, "unbonding_time": 1008, "unbonding_fee": 1000,
        "max_staking_amount": 10_000_000_000_000u64, "min_staking_amount": min_amount,
        "max_staking_time": max_time, "min_staking_time": min_time, "confirmation_depth": 10
    }]});
    let (params, _) = GlobalParams::from_json(&json.to_string()).unwrap();
    params.versions()[0].clone()
}

/// The deposit params of `signet-fp-deposits/README.md`.
fn deposit_params() -> ParamsVersion {
    nums_params("62627434", 10_000_000, 52560, 52560)
}

#[test]
fn every_signet_deposit_parses_to_its_expected_fields_under_the_deposit_params() {
    let deposits = data("realtx/signet-fp-deposits/deposits.json");
    let parsed = data("realtx/signet-fp-deposits/parsed.json");
    let deposits = deposits["deposits"].as_array().unwrap();
    let results = parsed["results"].as_array().unwrap();
    assert_eq!(deposits.len(), 234);
    assert_eq!(results.len(), 234);
    let version = deposit_params();
    let (mut at_index_0, mut at_index_1, mut duplicate_keys) = (0, 0, 0);
    for (deposit, expected) in deposits.iter().zip(results) {
        let name = deposit["moniker"].as_str().unwrap();
        let tx = decode_transaction_hex(deposit["signed_tx"].as_str().unwrap()).unwrap();
        assert_eq!(tx.compute_txid().to_string(), expected["txid"], "{name}");
        if name == HASHKEY_CLOUD {
            // Staker key == FP key. btc-staking-ts built and parsed it (parsed.json), but the
            // reference's BuildStakingInfo refuses duplicate keys (`docs/formats.md#keys`), so the
            // indexer would never recognise it.
            let op = &expected["opReturn"];
            assert_eq!(op["stakerPk"], op["fpPk"]);
            assert!(matches!(
                classify_under(&tx, &version),
                StakingTxClass::NotStaking(NotStakingReason::InvalidKeys(ScriptError::DuplicateKey(k))) if k.to_string() == op["fpPk"]
            ));
            duplicate_keys += 1;
            continue;
        }
        let StakingTxClass::Valid(s) = classify_under(&tx, &version) else {
            panic!("{name}: {:?}", classify_under(&tx, &version));
        };
        let op = &expected["opReturn"];
        let out = &expected["stakingOutput"];
        assert_eq!(
            s.staking_output_index,
            out["index"].as_u64().unwrap() as u32,
            "{name}"
        );
        assert_eq!(
            s.staking_value.to_sat(),
            out["value"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            s.op_return_index,
            op["index"].as_u64().unwrap() as u32,
            "{name}"
        );
        assert_eq!(s.staker.to_string(), op["stakerPk"], "{name}");
        assert_eq!(s.finality_provider.to_string(), op["fpPk"], "{name}");
        assert_eq!(
            s.finality_provider.to_string(),
            deposit["fp_btc_pk"],
            "{name}"
        );
        assert_eq!(
            u64::from(s.staking_time),
            op["stakingTime"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(s.params_version, 0);
        let spk = &tx.output[s.staking_output_index as usize].script_pubkey;
        assert_eq!(spk.to_hex_string(), out["scriptPubKey"], "{name}");
        assert_eq!(
            Address::from_script(spk, Network::Signet)
                .unwrap()
                .to_string(),
            out["address"],
            "{name}"
        );
        match s.staking_output_index {
            0 => at_index_0 += 1,
            _ => at_index_1 += 1,
        }
    }
    // parsed.json counts 146 at index 0 and 88 at index 1, HashKey Cloud (index 0) included.
    assert_eq!((at_index_0, at_index_1, duplicate_keys), (145, 88, 1));
}

#[test]
fn no_signet_deposit_is_a_staking_tx_under_any_real_bbn_test_4_version() {
    let deposits = data("realtx/signet-fp-deposits/deposits.json");
    let params = Preset::BbnTest4.params();
    for deposit in deposits["deposits"].as_array().unwrap() {
        let tx = decode_transaction_hex(deposit["signed_tx"].as_str().unwrap()).unwrap();
        for version in params.versions() {
            // The tag matches, so the fast filter passes; the staking output is not found
            // (or, for the duplicate-key deposit, cannot even be built).
            let class = classify(&tx, &params, version.activation_height);
            let expected = if deposit["moniker"] == HASHKEY_CLOUD {
                "invalid_keys"
            } else {
                "no_staking_output"
            };
            assert!(
                matches!(&class, StakingTxClass::NotStaking(r) if r.code() == expected),
                "{} under version {}",
                deposit["moniker"],
                version.version
            );
        }
    }
}

/// Every params set named in `other-staking-txs/classified.json`.
fn candidate_params() -> Vec<(String, ParamsVersion)> {
    let mut all = Vec::new();
    for (name, preset) in [("bbn-test-4", Preset::BbnTest4), ("bbn-1", Preset::Bbn1)] {
        for v in preset.params().versions() {
            all.push((format!("{name} v{}", v.version), v.clone()));
        }
    }
    all.push(("bbn-test-4 FP-deposit params".into(), deposit_params()));
    all.push((
        "stakercli example params (tag 01020304, covenant NUMS, quorum 1)".into(),
        nums_params("01020304", 1_000_000, 1, 65535),
    ));
    all
}

#[test]
fn other_real_txs_classify_as_the_independent_derivation_found_under_every_params_set() {
    let cases = data("realtx/other-staking-txs/classified.json");
    let candidates = candidate_params();
    let mut verdicts = [0usize; 3];
    for case in cases.as_array().unwrap() {
        let txid = case["txid"].as_str().unwrap();
        let tx = decode_transaction_hex(case["hex"].as_str().unwrap()).unwrap();
        assert_eq!(tx.compute_txid().to_string(), txid);
        let matches = case["matches"].as_array().cloned().unwrap_or_default();
        for (name, version) in &candidates {
            let class = classify_under(&tx, version);
            let expected = matches.iter().find(|m| m["params"] == name.as_str());
            let (staking, reason) = match (&class, expected) {
                (StakingTxClass::NotStaking(_), None) => {
                    verdicts[0] += 1;
                    continue;
                }
                (StakingTxClass::Valid(s), Some(_)) => (s, None),
                (StakingTxClass::Invalid { staking, reason }, Some(_)) => (staking, Some(reason)),
                _ => panic!("{txid} under {name}: expected {expected:?}, got {class:?}"),
            };
            let m = expected.unwrap();
            assert_eq!(
                staking.staking_output_index as u64,
                m["stakingOutputIndex"].as_u64().unwrap(),
                "{txid} {name}"
            );
            assert_eq!(
                staking.staking_value.to_sat(),
                m["value"].as_u64().unwrap(),
                "{txid} {name}"
            );
            assert_eq!(
                staking.staker.to_string(),
                case["opReturn"]["stakerPk"],
                "{txid} {name}"
            );
            assert_eq!(
                staking.op_return_index as u64,
                case["opReturn"]["index"].as_u64().unwrap()
            );
            match (m["inBounds"].as_bool(), reason) {
                (Some(true), None) => verdicts[1] += 1,
                (Some(false), Some(InvalidStakingReason::AboveMaxStakingAmount { .. })) => {
                    verdicts[2] += 1
                }
                // Bounds not judged by the derivation (example params): either verdict.
                (None, None) => verdicts[1] += 1,
                (None, Some(_)) => verdicts[2] += 1,
                other => panic!("{txid} under {name}: bounds {other:?}"),
            }
        }
    }
    // 24 txs × 10 params sets = 240 verdicts; 37 parses (29 in bounds, 2 above the mainnet
    // cap-1 maximum, 6 not judged by the derivation: the 4 deposit examples of 0.05 BTC are
    // below the deposit minimum of 0.1 BTC, the 2 stakercli examples are in our bounds).
    assert_eq!(verdicts, [203, 31, 6]);
}

#[test]
fn a_tx_built_for_one_version_counts_only_from_that_versions_activation_height() {
    // Signed with nLockTime 200664 for bbn-test-4 v2 (activation 200665, committee C).
    let cases = data("realtx/other-staking-txs/classified.json");
    let hex = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["txid"] == "f2acf5f25cb63a411430e0413c797bdf057b2e3e50b7feca7a21f34302536287")
        .unwrap()["hex"]
        .as_str()
        .unwrap()
        .to_owned();
    let tx = decode_transaction_hex(&hex).unwrap();
    let params = Preset::BbnTest4.params();
    assert_eq!(
        classify(&tx, &params, BlockHeight(200_664)),
        StakingTxClass::NotStaking(NotStakingReason::NoStakingOutput)
    );
    let StakingTxClass::Valid(s) = classify(&tx, &params, BlockHeight(200_665)) else {
        panic!()
    };
    assert_eq!(
        (
            s.params_version,
            s.staking_output_index,
            s.staking_value.to_sat()
        ),
        (2, 0, 5_000_000)
    );
    assert_eq!(
        classify(&tx, &params, BlockHeight(197_534)),
        StakingTxClass::NotStaking(NotStakingReason::NoParamsForHeight {
            height: BlockHeight(197_534)
        })
    );
}

#[test]
fn the_300_btc_mainnet_stake_is_valid_under_cap_2_and_too_large_under_cap_1() {
    let cases = data("realtx/other-staking-txs/classified.json");
    let hex = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["txid"] == "7d90210b21aad480cd88fd8399aa6d47e6b3f2ecea2f9f9cfdd79598430e3003")
        .unwrap()["hex"]
        .as_str()
        .unwrap()
        .to_owned();
    let tx = decode_transaction_hex(&hex).unwrap();
    let params = Preset::Bbn1.params();
    let StakingTxClass::Valid(s) = classify(&tx, &params, BlockHeight(864_790)) else {
        panic!()
    };
    assert_eq!(
        (s.params_version, s.staking_value.to_sat(), s.staking_time),
        (1, 30_000_400_000, 64000)
    );
    let StakingTxClass::Invalid { staking, reason } = classify(&tx, &params, BlockHeight(864_789))
    else {
        panic!()
    };
    assert_eq!(staking.params_version, 0);
    assert_eq!(reason.code(), "above_max_staking_amount");
    assert_eq!(
        reason.to_string(),
        "staking value 30000400000 sat is above max_staking_amount 5000000 sat"
    );
}

#[test]
fn txs_without_a_phase_1_op_return_and_the_unbonding_tx_are_not_staking() {
    let cases = data("realtx/other-staking-txs/classified.json");
    let params = Preset::BbnTest4.params();
    let mut seen = 0;
    for case in cases
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["matches"].as_array().is_none_or(Vec::is_empty))
    {
        let tx = decode_transaction_hex(case["hex"].as_str().unwrap()).unwrap();
        let class = classify(&tx, &params, BlockHeight(220_637));
        let expected = if case["kind"] == "unbonding" {
            NotStakingReason::TooFewOutputs { outputs: 1 }
        } else {
            NotStakingReason::NoTaggedOpReturn
        };
        assert_eq!(
            class,
            StakingTxClass::NotStaking(expected),
            "{}",
            case["txid"]
        );
        seen += 1;
    }
    assert_eq!(seen, 5);
}
