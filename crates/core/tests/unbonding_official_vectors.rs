//! The reference Go vectors' `unbonding_transaction_hex` and the derived unbonding txids, leaf
//! hashes, sighashes and control blocks of `docs/formats.md#derived-vectors`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, XOnlyPublicKey};
use bitcoin::{Amount, OutPoint, Txid};
use serde_json::Value;
use staking_core::script::{StakingKeys, StakingLeaf, StakingOutput};
use staking_core::unbonding::{
    canonical_unbonding_tx, check_pre_signed, unbonding_sighash, UnbondingTerms,
};

/// Appendix B, in vector order: unbonding txid, unbonding-leaf hash, unbonding sighash.
const APPENDIX_B: [(&str, &str, &str); 5] = [
    (
        "515e664e8875b0f74cb3dc029b4bcc20f17e2197a4b641a1d9d4e9676e2bff0e",
        "fe3df6b5b769cf3c2998c4926ba925b6637060c0cc8b6801db040946e9c4eb4c",
        "a4ee4436d7348b6ad24318bf65bd0b324aa38a17be9868d9765fc2b498718115",
    ),
    (
        "4d81f29dc643ccadc1e58f85dbc9992340d28095737f36836caf3b5c91a755e0",
        "1008c3c95007cd0679e24d5897d8986e98e6ceee4f16473c646c97f0b9804ca1",
        "fbb467b523cee4955f7a926b1288c6d44a71fa1c574ecdd99993c7530c4f2506",
    ),
    (
        "89d7066a65b70c2beda33117fdb19824a9b31add12a7b391d3d0fc3b768b0fc1",
        "bc102b98cef52c89cf9c662bd152bd90b26f709d8fe3e2ec40987d6162b98fa4",
        "2f754ab1bc65a290c5e9e5f61e204a99e9701cb81e84b9ac4d3932dc4843b142",
    ),
    (
        "51d43e777f2422b02dfbf5befd11fbf0219e7c76bbe8654855845c0eb5d3e7dd",
        "79a7ba2c02bce4ca8c26693ceea702dab52e99a4e7152855618db54f88f627e3",
        "ff23bcec69117c4670658632e12455fd513af1d2fe62b2ade80439c15bae0c34",
    ),
    (
        "b474973bf948aa6483987ac17d3a29382cf2adababdfd12657fe0368d84c8521",
        "1489c1de9a712429bb44b06b7cda683216c40733e0bc0c153d3672123f8eb7a5",
        "5d7bf8355baa150e6495273f3a80075a9846bc5120db1b5b110c25be68ee3fb6",
    ),
];

/// Appendix B unbonding-leaf control blocks of vectors 1 and 2.
const CONTROL_BLOCKS: [&str; 2] = [
    "c150929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac030e4435099fb45aa450e2484303044c8ec189adb6dce1c49e5d6bb5535a0b58282859000b8bc683a0fc85e7b3d38ff0acb9444a50d80e51cafd969930867644d",
    "c050929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac03daa8f8233ff4c81f9b03df3fcecc9aa61afb87498776cd4939f4288716749cd3a8f5efd55d86a621aa9be0e9c487f7b8c1d80cd1e3a5d9eeaf63fa5e0ac810f",
];

fn vectors() -> Vec<Value> {
    let path = format!(
        "{}/../../testdata/vectors/babylon-btcstaking-vectors.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["vectors"].as_array().unwrap().clone()
}

fn x_only(hex: &Value) -> XOnlyPublicKey {
    hex.as_str()
        .unwrap()
        .parse::<PublicKey>()
        .unwrap()
        .x_only_public_key()
        .0
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

#[test]
fn canonical_unbonding_txs_match_the_official_vectors_and_appendix_b() {
    let vectors = vectors();
    assert_eq!(vectors.len(), APPENDIX_B.len());
    for (i, (vector, (txid, leaf_hash, sighash))) in vectors.iter().zip(APPENDIX_B).enumerate() {
        let p = &vector["parameters"];
        let keys = StakingKeys::new(
            x_only(&p["staker_public_key"]),
            p["finality_provider_public_keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(x_only)
                .collect(),
            p["covenant_public_keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(x_only)
                .collect(),
            num(&p["covenant_quorum"]) as u32,
        )
        .unwrap();
        let staking = StakingOutput::new(keys, num(&p["staking_time"]) as u16).unwrap();
        let terms = UnbondingTerms {
            unbonding_time: num(&p["unbonding_time"]) as u16,
            unbonding_fee: Amount::from_sat(num(&p["unbonding_fee"])),
        };
        let staking_txid: Txid = p["staking_tx_hash"].as_str().unwrap().parse().unwrap();
        let outpoint = OutPoint::new(staking_txid, num(&p["staking_output_index"]) as u32);
        let value = Amount::from_sat(num(&p["staking_value"]));

        let tx = canonical_unbonding_tx(&staking, outpoint, value, &terms).unwrap();
        assert_eq!(
            serialize_hex(&tx),
            vector["expected"]["unbonding_transaction_hex"]
                .as_str()
                .unwrap(),
            "vector {}",
            i + 1
        );
        assert_eq!(tx.version.0 as u64, num(&p["unbonding_tx_version"]));
        assert_eq!(tx.compute_txid().to_string(), txid, "vector {}", i + 1);
        assert_eq!(
            staking.leaf_hash(StakingLeaf::Unbonding).to_string(),
            leaf_hash,
            "vector {}",
            i + 1
        );
        assert_eq!(
            unbonding_sighash(&tx, &staking, value).unwrap().to_string(),
            sighash,
            "vector {}",
            i + 1
        );
        check_pre_signed(&tx).unwrap();
        if let Some(cb) = CONTROL_BLOCKS.get(i) {
            assert_eq!(
                hex::encode(staking.control_block(StakingLeaf::Unbonding).serialize()),
                *cb,
                "vector {}",
                i + 1
            );
        }
    }
}

fn committee(file: &str, version: usize) -> (Vec<XOnlyPublicKey>, u32, u16, u64) {
    let path = format!(
        "{}/../../testdata/params/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let params: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = &params["versions"][version];
    (
        v["covenant_pks"]
            .as_array()
            .unwrap()
            .iter()
            .map(x_only)
            .collect(),
        num(&v["covenant_quorum"]) as u32,
        num(&v["unbonding_time"]) as u16,
        num(&v["unbonding_fee"]),
    )
}

#[test]
fn unbonding_outputs_for_the_real_committees_match_appendix_a() {
    let staker: XOnlyPublicKey = "aff94eb65a2fe773a57c5bd54e62d8436a5467573565214028422b41bd43e29b"
        .parse()
        .unwrap();
    let fp: XOnlyPublicKey = "c333bf065809ed12b162dc3c849f8cf65219125fdfde98770c2b285f04ff9960"
        .parse()
        .unwrap();
    let cases = [
        (
            "bbn-test-4.global-params.json",
            1,
            50_000,
            "5120942ab85318eb8be1394545b84eae9df0715ab3c8d168ed76f2e1dc264eaaa5d3",
            40_000,
        ),
        (
            "bbn-1.global-params.json",
            0,
            500_000,
            "5120af8964471750a84d2adef85d0930ae1c03ac644bbb6ca50421fc7baaf0b7880b",
            436_000,
        ),
    ];
    for (file, version, value, pk_script, unbonding_value) in cases {
        let (covenants, quorum, unbonding_time, fee) = committee(file, version);
        let keys = StakingKeys::new(staker, vec![fp], covenants, quorum).unwrap();
        let staking = StakingOutput::new(keys, 64000).unwrap();
        let terms = UnbondingTerms {
            unbonding_time,
            unbonding_fee: Amount::from_sat(fee),
        };
        let outpoint = OutPoint::new(Txid::from_byte_array([0xab; 32]), 0);
        let tx =
            canonical_unbonding_tx(&staking, outpoint, Amount::from_sat(value), &terms).unwrap();
        assert_eq!(
            tx.output[0].script_pubkey.to_hex_string(),
            pk_script,
            "{file}"
        );
        assert_eq!(tx.output[0].value.to_sat(), unbonding_value, "{file}");
        check_pre_signed(&tx).unwrap();
    }
}
