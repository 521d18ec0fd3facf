//! The staking and unbonding outputs reproduce the reference Go vectors and the derived vectors of
//! `docs/formats.md#derived-vectors`, byte for byte.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
use bitcoin::secp256k1::{PublicKey, XOnlyPublicKey};
use bitcoin::Network;
use serde_json::Value;
use staking_core::script::{
    StakingKeys, StakingLeaf, StakingOutput, UnbondingLeaf, UnbondingOutput,
};

fn data(path: &str) -> Value {
    let full = format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap()).unwrap()
}

fn x_only_of_compressed(hex: &str) -> XOnlyPublicKey {
    hex.parse::<PublicKey>().unwrap().x_only_public_key().0
}

fn x_only(hex: &str) -> XOnlyPublicKey {
    hex.parse().unwrap()
}

fn keys_of(list: &Value) -> Vec<XOnlyPublicKey> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|k| x_only_of_compressed(k.as_str().unwrap()))
        .collect()
}

#[test]
fn official_vectors_reproduce_every_script_and_pk_script() {
    let vectors = data("vectors/babylon-btcstaking-vectors.json");
    for vector in vectors["vectors"].as_array().unwrap() {
        let p = &vector["parameters"];
        let e = &vector["expected"];
        let name = vector["name"].as_str().unwrap();
        let keys = StakingKeys::new(
            x_only_of_compressed(p["staker_public_key"].as_str().unwrap()),
            keys_of(&p["finality_provider_public_keys"]),
            keys_of(&p["covenant_public_keys"]),
            p["covenant_quorum"].as_u64().unwrap() as u32,
        )
        .unwrap();
        let staking =
            StakingOutput::new(keys.clone(), p["staking_time"].as_u64().unwrap() as u16).unwrap();
        let hex = |s: &bitcoin::ScriptBuf| s.to_hex_string();
        assert_eq!(
            hex(staking.script_pubkey()),
            e["staking_output_pkscript_hex"],
            "{name}"
        );
        assert_eq!(
            hex(staking.leaf_script(StakingLeaf::Timelock)),
            e["staking_transaction_timelock_script_hex"],
            "{name}"
        );
        assert_eq!(
            hex(staking.leaf_script(StakingLeaf::Unbonding)),
            e["staking_transaction_unbonding_script_hex"],
            "{name}"
        );
        assert_eq!(
            hex(staking.leaf_script(StakingLeaf::Slashing)),
            e["staking_transaction_slashing_script_hex"],
            "{name}"
        );
        let unbonding =
            UnbondingOutput::new(&keys, p["unbonding_time"].as_u64().unwrap() as u16).unwrap();
        assert_eq!(
            hex(unbonding.leaf_script(UnbondingLeaf::Timelock)),
            e["unbonding_transaction_time_lock_script_hex"],
            "{name}"
        );
        assert_eq!(
            hex(unbonding.leaf_script(UnbondingLeaf::Slashing)),
            e["unbonding_transaction_slashing_script_hex"],
            "{name}"
        );
    }
}

#[test]
fn official_vectors_unbonding_leaf_hashes_and_control_blocks_match_appendix_b() {
    let expected_leaf_hashes = [
        "fe3df6b5b769cf3c2998c4926ba925b6637060c0cc8b6801db040946e9c4eb4c",
        "1008c3c95007cd0679e24d5897d8986e98e6ceee4f16473c646c97f0b9804ca1",
        "bc102b98cef52c89cf9c662bd152bd90b26f709d8fe3e2ec40987d6162b98fa4",
        "79a7ba2c02bce4ca8c26693ceea702dab52e99a4e7152855618db54f88f627e3",
        "1489c1de9a712429bb44b06b7cda683216c40733e0bc0c153d3672123f8eb7a5",
    ];
    let vectors = data("vectors/babylon-btcstaking-vectors.json");
    for (i, vector) in vectors["vectors"].as_array().unwrap().iter().enumerate() {
        let p = &vector["parameters"];
        let keys = StakingKeys::new(
            x_only_of_compressed(p["staker_public_key"].as_str().unwrap()),
            keys_of(&p["finality_provider_public_keys"]),
            keys_of(&p["covenant_public_keys"]),
            p["covenant_quorum"].as_u64().unwrap() as u32,
        )
        .unwrap();
        let staking = StakingOutput::new(keys, p["staking_time"].as_u64().unwrap() as u16).unwrap();
        assert_eq!(
            staking.leaf_hash(StakingLeaf::Unbonding).to_string(),
            expected_leaf_hashes[i]
        );
        let cb = hex::encode(staking.control_block(StakingLeaf::Unbonding).serialize());
        match i {
            0 => assert_eq!(cb, "c150929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac030e4435099fb45aa450e2484303044c8ec189adb6dce1c49e5d6bb5535a0b58282859000b8bc683a0fc85e7b3d38ff0acb9444a50d80e51cafd969930867644d"),
            1 => assert_eq!(cb, "c050929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac03daa8f8233ff4c81f9b03df3fcecc9aa61afb87498776cd4939f4288716749cd3a8f5efd55d86a621aa9be0e9c487f7b8c1d80cd1e3a5d9eeaf63fa5e0ac810f"),
            _ => assert_eq!(cb.len(), 97 * 2),
        }
    }
}

const STAKER: &str = "aff94eb65a2fe773a57c5bd54e62d8436a5467573565214028422b41bd43e29b";
const FP: &str = "c333bf065809ed12b162dc3c849f8cf65219125fdfde98770c2b285f04ff9960";
const NUMS: &str = "50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0";

fn params_version_keys(file: &str, version: usize) -> (Vec<XOnlyPublicKey>, u32) {
    let params = data(file);
    let v = &params["versions"][version];
    (
        keys_of(&v["covenant_pks"]),
        v["covenant_quorum"].as_u64().unwrap() as u32,
    )
}

#[test]
fn bbn_test_4_version_1_matches_appendix_a1() {
    let (covenants, quorum) = params_version_keys("params/bbn-test-4.global-params.json", 1);
    let keys = StakingKeys::new(x_only(STAKER), vec![x_only(FP)], covenants, quorum).unwrap();
    let staking = StakingOutput::new(keys.clone(), 64000).unwrap();
    assert_eq!(
        staking.leaf_script(StakingLeaf::Timelock).to_hex_string(),
        "20aff94eb65a2fe773a57c5bd54e62d8436a5467573565214028422b41bd43e29bad0300fa00b2"
    );
    assert_eq!(
        staking.leaf_hash(StakingLeaf::Timelock).to_string(),
        "d2956573f010fa1a3c135279c5eb465ec2250205dcdfe2122637677f639b1021"
    );
    assert_eq!(
        staking.leaf_hash(StakingLeaf::Unbonding).to_string(),
        "c813b43846852a7c1b40337f59c2c33c965bfee68ac01d51a56250735da52a20"
    );
    assert_eq!(
        staking.leaf_hash(StakingLeaf::Slashing).to_string(),
        "296169352ad24e4b6ac5e15f92e86d630cf22458c2a0a1c0effdb2f415168587"
    );
    assert_eq!(
        staking.merkle_root().to_string(),
        "c505653ac761cf15b7df93009bfe40e4beb31d250ad88b5d0ba4e5c4d4865fea"
    );
    assert_eq!(
        staking.script_pubkey().to_hex_string(),
        "5120326c983f992efe39a22b5568b7565ca953116470e6d88177aa41eddf2ee04420"
    );
    assert_eq!(
        staking.address(Network::Signet).to_string(),
        "tb1pxfkfs0ue9mlrng3t245tw4ju49f3zersumvgzaa2g8ka7thqgssq4hqdcj"
    );
    let cb = |leaf| hex::encode(staking.control_block(leaf).serialize());
    assert_eq!(cb(StakingLeaf::Timelock), format!("c1{NUMS}c813b43846852a7c1b40337f59c2c33c965bfee68ac01d51a56250735da52a20296169352ad24e4b6ac5e15f92e86d630cf22458c2a0a1c0effdb2f415168587"));
    assert_eq!(cb(StakingLeaf::Unbonding), format!("c1{NUMS}d2956573f010fa1a3c135279c5eb465ec2250205dcdfe2122637677f639b1021296169352ad24e4b6ac5e15f92e86d630cf22458c2a0a1c0effdb2f415168587"));
    assert_eq!(
        cb(StakingLeaf::Slashing),
        format!("c1{NUMS}ee81248494685d822a4129a9511631493d89115e04d0fef8ef5fda32d16a84eb")
    );
    let unbonding = UnbondingOutput::new(&keys, 1008).unwrap();
    assert_eq!(
        unbonding
            .leaf_script(UnbondingLeaf::Timelock)
            .to_hex_string(),
        "20aff94eb65a2fe773a57c5bd54e62d8436a5467573565214028422b41bd43e29bad02f003b2"
    );
    assert_eq!(
        unbonding.merkle_root().to_string(),
        "0518566610ee31e4c0816b033d1908c6e5fb0d215aa1f31150eb34f3d5c3eb04"
    );
    assert_eq!(
        unbonding.script_pubkey().to_hex_string(),
        "5120942ab85318eb8be1394545b84eae9df0715ab3c8d168ed76f2e1dc264eaaa5d3"
    );
    assert_eq!(
        hex::encode(unbonding.control_block(UnbondingLeaf::Timelock).serialize()),
        format!("c0{NUMS}296169352ad24e4b6ac5e15f92e86d630cf22458c2a0a1c0effdb2f415168587")
    );
    assert_eq!(
        hex::encode(unbonding.control_block(UnbondingLeaf::Slashing).serialize()),
        format!("c0{NUMS}bf8ee95983017583e72e7d64253b536f3ba1e0b21081265733b039bd84783383")
    );
}

#[test]
fn bbn_1_version_0_matches_appendix_a2() {
    let (covenants, quorum) = params_version_keys("params/bbn-1.global-params.json", 0);
    let keys = StakingKeys::new(x_only(STAKER), vec![x_only(FP)], covenants, quorum).unwrap();
    let staking = StakingOutput::new(keys.clone(), 64000).unwrap();
    assert_eq!(staking.leaf_script(StakingLeaf::Unbonding).len(), 342);
    assert_eq!(staking.leaf_script(StakingLeaf::Slashing).len(), 376);
    assert_eq!(
        staking.leaf_hash(StakingLeaf::Unbonding).to_string(),
        "2b8ae782a5421c5404992c3e6344683711a065708d5dfb4a689ecb1899ec22a0"
    );
    assert_eq!(
        staking.leaf_hash(StakingLeaf::Slashing).to_string(),
        "3206b85b2cfe46aadfe0cd2aac39699bbab84b425e6bbeeb5f121773139a2e7b"
    );
    assert_eq!(
        staking.merkle_root().to_string(),
        "03c88da550f542d725f79b1c8cc8d936d0aac833e37672373ea796733723d2db"
    );
    assert_eq!(
        staking.script_pubkey().to_hex_string(),
        "5120284989c5958a2adda1ac39c98e97f1ccd9b45cc029b09a70fadcdf26e9dbfb56"
    );
    assert_eq!(
        staking.address(Network::Bitcoin).to_string(),
        "bc1p9pycn3v43g4dmgdv88yca9l3envmghxq9xcf5u86mn0jd6wmldtqz94haj"
    );
    assert_eq!(
        hex::encode(staking.control_block(StakingLeaf::Slashing).serialize()),
        format!("c0{NUMS}0f484eb8bc0df4e7a7e0ac973af6ca7228d6842a762a87ec74b036f60e2ce7d1")
    );
    let unbonding = UnbondingOutput::new(&keys, 1008).unwrap();
    assert_eq!(
        unbonding.merkle_root().to_string(),
        "1ed5662ab601b77dc57a6bcfbb5e04e46631de55b141aaa83a3164dcb58945dd"
    );
    assert_eq!(
        unbonding.script_pubkey().to_hex_string(),
        "5120af8964471750a84d2adef85d0930ae1c03ac644bbb6ca50421fc7baaf0b7880b"
    );
}

#[test]
fn duplicate_keys_make_the_output_unbuildable() {
    let (covenants, quorum) = params_version_keys("params/bbn-1.global-params.json", 0);
    let err = StakingKeys::new(
        x_only(STAKER),
        vec![x_only(STAKER)],
        covenants.clone(),
        quorum,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        staking_core::script::ScriptError::DuplicateKey(_)
    ));
    let err = StakingKeys::new(covenants[0], vec![x_only(FP)], covenants, quorum).unwrap_err();
    assert!(matches!(
        err,
        staking_core::script::ScriptError::DuplicateKey(_)
    ));
}
