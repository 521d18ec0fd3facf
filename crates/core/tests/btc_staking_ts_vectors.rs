//! The btc-staking-ts 0.2.10 vectors (`testdata/vectors/btc-staking-ts/`) reproduce byte for
//! byte: staking tx and PSBT, canonical unbonding tx, PSBT, sighash, deterministic signatures
//! and witness, both withdrawals, and the `POST /v1/unbonding` payload; every signed input
//! passes libbitcoinconsensus with taproot flags.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use bitcoin::absolute::LockTime;
use bitcoin::consensus::encode::{deserialize, serialize_hex};
use bitcoin::key::TapTweak;
use bitcoin::secp256k1::{schnorr, Keypair, SecretKey, XOnlyPublicKey};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::{Amount, OutPoint, ScriptBuf, TapSighashType, Transaction, TxOut, Txid};
use serde_json::Value;
use staking_core::builder::{staking_tx, withdrawal_tx, StakingTxRequest, Utxo};
use staking_core::keys::SECP;
use staking_core::psbt::{script_path_psbt, staking_psbt, LeafSpend};
use staking_core::script::{StakingKeys, StakingLeaf, StakingOutput, UnbondingLeaf};
use staking_core::signing::{leaf_sighash, sign_with_aux_rand, verify};
use staking_core::spend::{
    recognise_staking_spend, recognise_unbonding_spend, KnownStaking, StakingSpend, UnbondingSpend,
};
use staking_core::unbonding::{
    canonical_unbonding_tx, check_pre_signed, unbonding_output, unbonding_sighash,
    verify_unbonding_request, UnbondingTerms,
};
use staking_core::witness::{
    staking_timelock_witness, unbonding_timelock_witness, unbonding_witness,
};

const FILES: [&str; 2] = ["vectors.default.json", "vectors.realsize.json"];

fn load(file: &str) -> Value {
    let path = format!(
        "{}/../../testdata/vectors/btc-staking-ts/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn keypair(hex_scalar: &Value) -> Keypair {
    let bytes: [u8; 32] = hex::decode(s(hex_scalar)).unwrap().try_into().unwrap();
    Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&bytes).unwrap())
}

fn script(hex: &Value) -> ScriptBuf {
    ScriptBuf::from_hex(s(hex)).unwrap()
}

fn tx(hex: &Value) -> Transaction {
    deserialize(&hex::decode(s(hex)).unwrap()).unwrap()
}

/// Everything derived from one vector file's config.
struct Case {
    v: Value,
    staker: Keypair,
    covenants: Vec<Keypair>,
    staking: StakingOutput,
    terms: UnbondingTerms,
}

fn case(file: &str) -> Case {
    let v = load(file);
    let c = &v["config"];
    let staker = keypair(&c["keys"]["stakerPriv"]);
    let fp = keypair(&c["keys"]["finalityProviderPriv"]);
    let covenants: Vec<Keypair> = c["keys"]["covenantPrivs"]
        .as_array()
        .unwrap()
        .iter()
        .map(keypair)
        .collect();
    let keys = StakingKeys::new(
        staker.x_only_public_key().0,
        vec![fp.x_only_public_key().0],
        covenants.iter().map(|k| k.x_only_public_key().0).collect(),
        u(&c["params"]["covenantQuorum"]) as u32,
    )
    .unwrap();
    let staking = StakingOutput::new(keys, u(&c["staking"]["timeBlocks"]) as u16).unwrap();
    let terms = UnbondingTerms {
        unbonding_time: u(&c["params"]["unbondingTime"]) as u16,
        unbonding_fee: Amount::from_sat(u(&c["params"]["unbondingFeeSat"])),
    };
    Case {
        v,
        staker,
        covenants,
        staking,
        terms,
    }
}

fn consensus_verifies(tx: &Transaction, prevouts: &[TxOut], input: usize) -> bool {
    let bytes = bitcoin::consensus::serialize(tx);
    let utxos: Vec<bitcoinconsensus::Utxo> = prevouts
        .iter()
        .map(|p| bitcoinconsensus::Utxo {
            script_pubkey: p.script_pubkey.as_bytes().as_ptr(),
            script_pubkey_len: p.script_pubkey.len() as u32,
            value: p.value.to_sat() as i64,
        })
        .collect();
    let prevout = &prevouts[input];
    bitcoinconsensus::verify_with_flags(
        prevout.script_pubkey.as_bytes(),
        prevout.value.to_sat(),
        &bytes,
        Some(&utxos),
        input,
        bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT,
    )
    .is_ok()
}

fn zero_aux_sign(sighash: &bitcoin::TapSighash, key: &Keypair) -> schnorr::Signature {
    sign_with_aux_rand(sighash, key, &[0; 32])
}

fn staking_outpoint(case: &Case) -> (OutPoint, Amount) {
    let sp = &case.v["unbondingTx"]["spends"];
    let txid: Txid = s(&sp["txid"]).parse().unwrap();
    (
        OutPoint::new(txid, u(&sp["vout"]) as u32),
        Amount::from_sat(u(&sp["value"])),
    )
}

#[test]
fn scripts_leaf_hashes_and_outputs_match() {
    for file in FILES {
        let case = case(file);
        let sc = &case.v["scripts"];
        let st = &case.staking;
        assert_eq!(
            st.leaf_script(StakingLeaf::Timelock),
            &script(&sc["timelockScript"]),
            "{file}"
        );
        assert_eq!(
            st.leaf_script(StakingLeaf::Unbonding),
            &script(&sc["unbondingScript"]),
            "{file}"
        );
        assert_eq!(
            st.leaf_script(StakingLeaf::Slashing),
            &script(&sc["slashingScript"]),
            "{file}"
        );
        let lh = &sc["leafHashes"];
        assert_eq!(
            st.leaf_hash(StakingLeaf::Timelock).to_string(),
            s(&lh["timelockScript"])
        );
        assert_eq!(
            st.leaf_hash(StakingLeaf::Unbonding).to_string(),
            s(&lh["unbondingScript"])
        );
        assert_eq!(
            st.leaf_hash(StakingLeaf::Slashing).to_string(),
            s(&lh["slashingScript"])
        );
        assert_eq!(
            st.script_pubkey(),
            &script(&case.v["stakingOutput"]["scriptPubKey"])
        );
        let unb = unbonding_output(st.keys(), &case.terms).unwrap();
        assert_eq!(
            unb.leaf_script(UnbondingLeaf::Timelock),
            &script(&sc["unbondingTimelockScript"])
        );
        assert_eq!(
            unb.leaf_hash(UnbondingLeaf::Timelock).to_string(),
            s(&lh["unbondingTimelockScript"])
        );
        assert_eq!(
            unb.script_pubkey(),
            &script(&case.v["unbondingOutput"]["scriptPubKey"])
        );
    }
}

#[test]
fn staking_tx_and_psbt_are_reproduced_byte_for_byte() {
    for file in FILES {
        let case = case(file);
        let c = &case.v["config"];
        let wallet_spk = script(&case.v["derived"]["stakerScriptPubKey"]);
        let utxos: Vec<Utxo> = c["staking"]["utxos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| Utxo {
                outpoint: OutPoint::new(s(&x["txid"]).parse().unwrap(), u(&x["vout"]) as u32),
                value: Amount::from_sat(u(&x["value"])),
                script_pubkey: wallet_spk.clone(),
            })
            .collect();
        let vt = &case.v["stakingTx"];
        let built = staking_tx(&StakingTxRequest {
            staking: &case.staking,
            amount: Amount::from_sat(u(&c["staking"]["amountSat"])),
            op_return: script(&case.v["scripts"]["dataEmbedScript"]),
            utxos: &utxos,
            change_script: wallet_spk.clone(),
            fee_rate: u(&c["staking"]["feeRate"]),
            lock_time: LockTime::from_height(u(&vt["lockHeight"]) as u32).unwrap(),
        })
        .unwrap();
        assert_eq!(serialize_hex(&built.tx), s(&vt["unsignedHex"]), "{file}");
        assert_eq!(built.fee.to_sat(), u(&vt["fee"]), "{file}");
        assert_eq!(
            built.tx.compute_txid().to_string(),
            s(&vt["decoded"]["txid"])
        );

        let wallet_key = case.staker.x_only_public_key().0;
        let psbt = staking_psbt(&built, Some(wallet_key), None).unwrap();
        assert_eq!(psbt.to_string(), s(&vt["psbtBase64"]), "{file}");

        // The wallet's key-path signature (BIP86 tweak, zero aux randomness) completes it.
        let prevouts: Vec<TxOut> = built
            .inputs
            .iter()
            .map(|u| TxOut {
                value: u.value,
                script_pubkey: u.script_pubkey.clone(),
            })
            .collect();
        let mut signed = built.tx.clone();
        for i in 0..signed.input.len() {
            let sighash = SighashCache::new(&built.tx)
                .taproot_key_spend_signature_hash(
                    i,
                    &Prevouts::All(&prevouts),
                    TapSighashType::Default,
                )
                .unwrap();
            assert_eq!(sighash.to_string(), s(&vt["sighashes"][i]), "{file}");
            let tweaked = case.staker.tap_tweak(&SECP, None).to_keypair();
            let sig = zero_aux_sign(&sighash, &tweaked);
            signed.input[i].witness.push(sig.as_ref());
        }
        assert_eq!(serialize_hex(&signed), s(&vt["signedHex"]), "{file}");
        for i in 0..signed.input.len() {
            assert!(
                consensus_verifies(&signed, &prevouts, i),
                "{file} input {i}"
            );
        }
    }
}

#[test]
fn unbonding_tx_sighash_signatures_witness_and_psbt_are_reproduced() {
    for file in FILES {
        let case = case(file);
        let vu = &case.v["unbondingTx"];
        let (outpoint, value) = staking_outpoint(&case);
        let unsigned = canonical_unbonding_tx(&case.staking, outpoint, value, &case.terms).unwrap();
        assert_eq!(serialize_hex(&unsigned), s(&vu["unsignedHex"]), "{file}");
        assert_eq!(
            unsigned.compute_txid().to_string(),
            s(&vu["decoded"]["txid"])
        );
        check_pre_signed(&unsigned).unwrap();

        let sighash = unbonding_sighash(&unsigned, &case.staking, value).unwrap();
        assert_eq!(sighash.to_string(), s(&vu["sighash"]), "{file}");
        assert_eq!(
            case.staking
                .control_block(StakingLeaf::Unbonding)
                .serialize(),
            hex::decode(s(&vu["controlBlock"])).unwrap()
        );

        let staker_sig = zero_aux_sign(&sighash, &case.staker);
        assert_eq!(
            hex::encode(staker_sig.as_ref()),
            s(&vu["stakerSignatureHex"]),
            "{file}"
        );
        let signers = case.v["config"]["keys"]["covenantSigners"]
            .as_array()
            .unwrap();
        let cov_sigs: Vec<(XOnlyPublicKey, schnorr::Signature)> = signers
            .iter()
            .map(|i| {
                let key = &case.covenants[u(i) as usize];
                (key.x_only_public_key().0, zero_aux_sign(&sighash, key))
            })
            .collect();
        for ((key, sig), expected) in cov_sigs
            .iter()
            .zip(vu["covenantSignatures"].as_array().unwrap())
        {
            assert_eq!(key.to_string(), s(&expected["btc_pk_hex"]));
            assert_eq!(hex::encode(sig.as_ref()), s(&expected["sig_hex"]), "{file}");
            verify(&sighash, sig.as_ref(), key).unwrap();
        }

        let mut signed = unsigned.clone();
        signed.input[0].witness = unbonding_witness(&case.staking, &staker_sig, &cov_sigs).unwrap();
        assert_eq!(serialize_hex(&signed), s(&vu["signedHex"]), "{file}");
        let prevout = TxOut {
            value,
            script_pubkey: case.staking.script_pubkey().clone(),
        };
        assert!(consensus_verifies(&signed, &[prevout], 0), "{file}");

        let spend = LeafSpend::staking(&case.staking, value, StakingLeaf::Unbonding);
        let psbt = script_path_psbt(unsigned.clone(), &spend, &[]).unwrap();
        assert_eq!(psbt.to_string(), s(&vu["psbtBase64"]), "{file}");

        let known = KnownStaking::from_output(&case.staking, outpoint, value, case.terms).unwrap();
        assert_eq!(
            recognise_staking_spend(&signed, 0, &known),
            StakingSpend::Unbonding
        );
    }
}

#[test]
fn api_payload_of_the_vectors_is_an_acceptable_unbonding_request() {
    for file in FILES {
        let case = case(file);
        let p = &case.v["unbondingTx"]["apiPayload"];
        let (outpoint, value) = staking_outpoint(&case);
        assert_eq!(s(&p["staking_tx_hash_hex"]), outpoint.txid.to_string());
        let unbonding = tx(&p["unbonding_tx_hex"]);
        verify_unbonding_request(
            &unbonding,
            s(&p["unbonding_tx_hash_hex"]).parse().unwrap(),
            &hex::decode(s(&p["staker_signed_signature_hex"])).unwrap(),
            &case.staking,
            outpoint,
            value,
            &case.terms,
        )
        .unwrap();
    }
}

#[test]
fn both_withdrawals_are_reproduced_and_recognised() {
    for file in FILES {
        let case = case(file);
        let dest = script(&case.v["derived"]["stakerScriptPubKey"]);
        let rate = u(&case.v["config"]["withdrawal"]["feeRate"]);
        let (staking_outpoint, staking_value) = staking_outpoint(&case);
        let known =
            KnownStaking::from_output(&case.staking, staking_outpoint, staking_value, case.terms)
                .unwrap();
        let unbonding = unbonding_output(case.staking.keys(), &case.terms).unwrap();

        for (name, from_unbonding) in [
            ("withdrawTimelockExpiredTx", false),
            ("withdrawEarlyUnbondedTx", true),
        ] {
            let vw = &case.v[name];
            let sp = &vw["spends"];
            let outpoint = OutPoint::new(s(&sp["txid"]).parse().unwrap(), u(&sp["vout"]) as u32);
            let value = Amount::from_sat(u(&sp["value"]));
            let (timelock, spend) = if from_unbonding {
                (
                    case.terms.unbonding_time,
                    LeafSpend::unbonding(&unbonding, value, UnbondingLeaf::Timelock),
                )
            } else {
                (
                    case.staking.staking_time(),
                    LeafSpend::staking(&case.staking, value, StakingLeaf::Timelock),
                )
            };
            let unsigned = withdrawal_tx(outpoint, value, timelock, dest.clone(), rate).unwrap();
            assert_eq!(
                serialize_hex(&unsigned),
                s(&vw["unsignedHex"]),
                "{file} {name}"
            );
            assert_eq!(
                spend.control_block.serialize(),
                hex::decode(s(&vw["controlBlock"])).unwrap()
            );
            let sighash = leaf_sighash(
                &unsigned,
                0,
                std::slice::from_ref(&spend.prevout),
                spend.leaf_hash(),
            )
            .unwrap();
            assert_eq!(sighash.to_string(), s(&vw["sighash"]), "{file} {name}");
            let sig = zero_aux_sign(&sighash, &case.staker);
            let mut signed = unsigned.clone();
            signed.input[0].witness = if from_unbonding {
                unbonding_timelock_witness(&unbonding, &sig)
            } else {
                staking_timelock_witness(&case.staking, &sig)
            };
            assert_eq!(serialize_hex(&signed), s(&vw["signedHex"]), "{file} {name}");
            assert!(
                consensus_verifies(&signed, std::slice::from_ref(&spend.prevout), 0),
                "{file} {name}"
            );

            // One block short of the timelock: CSV fails.
            let mut early = unsigned.clone();
            early.input[0].sequence = bitcoin::Sequence::from_height(timelock - 1);
            let early_sighash = leaf_sighash(
                &early,
                0,
                std::slice::from_ref(&spend.prevout),
                spend.leaf_hash(),
            )
            .unwrap();
            let early_sig = zero_aux_sign(&early_sighash, &case.staker);
            early.input[0].witness = {
                let mut w = bitcoin::Witness::new();
                w.push(early_sig.as_ref());
                w.push(spend.leaf_script.as_bytes());
                w.push(spend.control_block.serialize());
                w
            };
            assert!(
                !consensus_verifies(&early, std::slice::from_ref(&spend.prevout), 0),
                "{file} {name}"
            );

            if from_unbonding {
                assert_eq!(
                    recognise_unbonding_spend(&signed, 0, &known),
                    UnbondingSpend::Withdrawal
                );
                assert_eq!(
                    recognise_staking_spend(&signed, 0, &known),
                    StakingSpend::Other
                );
            } else {
                assert_eq!(
                    recognise_staking_spend(&signed, 0, &known),
                    StakingSpend::Withdrawal
                );
                assert_eq!(
                    recognise_unbonding_spend(&signed, 0, &known),
                    UnbondingSpend::Other
                );
            }
            let psbt = script_path_psbt(unsigned, &spend, &[]).unwrap();
            assert_eq!(psbt.inputs[0].tap_scripts.len(), 1);
            assert_eq!(psbt.inputs[0].witness_utxo.as_ref(), Some(&spend.prevout));
        }
    }
}
