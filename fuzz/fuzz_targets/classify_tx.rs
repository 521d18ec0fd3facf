//! Raw bytes → transaction → classification under every real params version and a 1-of-1
//! committee whose tag the fuzzer can hit. Must never panic; a decoded tx that classifies as
//! staking must point at an output that exists and carries the OP_RETURN it names.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use staking_core::params::{BlockHeight, GlobalParams};
use staking_core::presets::Preset;
use staking_core::staking_tx::{classify, decode_transaction, StakingTxClass};

static PARAMS: LazyLock<Vec<GlobalParams>> = LazyLock::new(|| {
    let nums = r#"{"versions":[{"version":0,"activation_height":1,"staking_cap":1000000000,
        "tag":"00000000","covenant_pks":["0250929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0"],
        "covenant_quorum":1,"unbonding_time":10,"unbonding_fee":1000,"max_staking_amount":100000000,
        "min_staking_amount":2000,"max_staking_time":65535,"min_staking_time":1,"confirmation_depth":2}]}"#;
    let (nums, _) = GlobalParams::from_json(nums).expect("fuzz params are valid");
    vec![Preset::Bbn1.params(), Preset::BbnTest4.params(), nums]
});

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = decode_transaction(data) else {
        return;
    };
    for params in PARAMS.iter() {
        for version in params.versions() {
            let class = classify(&tx, params, version.activation_height);
            if let StakingTxClass::Valid(s) | StakingTxClass::Invalid { staking: s, .. } = class {
                assert!((s.staking_output_index as usize) < tx.output.len());
                assert!((s.op_return_index as usize) < tx.output.len());
                assert_ne!(s.staking_output_index, s.op_return_index);
                assert_eq!(
                    tx.output[s.op_return_index as usize].script_pubkey.len(),
                    73
                );
            }
        }
        let _ = classify(&tx, params, BlockHeight(0));
    }
});
