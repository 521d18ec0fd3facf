//! End to end on the devnet: stake → mined → `tx inspect` says staking; withdraw too early →
//! blocks remaining; after the staking time → withdrawn. PSBT export for an external wallet.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use common::{params, stderr, Env, FP, STAKING_TIME};
use serde_json::Value;
use staking_core::bitcoin::psbt::Psbt;
use staking_core::bitcoin::OutPoint;
use staking_core::params::BlockHeight;
use staking_core::staking_tx::{classify, StakingTxClass};

#[test]
fn stake_is_mined_and_inspected_then_withdraw_waits_for_the_staking_time() {
    let env = Env::new();
    let (key, utxo) = env.funded_key(1_000_000);
    // A chain mined every 5 s, as `stakingd devnet` does: time estimates follow it.
    for _ in 0..11 {
        env.mine_paced(Vec::new(), 5);
    }
    let tip = env.tip();
    let v = env.staker_json(&[
        "stake",
        "--fp-pk",
        FP,
        "--amount",
        "200000",
        "--staking-time",
        &STAKING_TIME.to_string(),
        "--fee-rate",
        "2",
        "--utxo",
        &format!("{}:{}", utxo.txid, utxo.vout),
    ]);
    assert_eq!(v["broadcast"], true);
    // Confirmation depth 2: mined at tip + 1 at the earliest, counted when the tip reaches tip + 2.
    assert_eq!(v["counted_at_tip"], tip + 2);
    let when = v["confirmed_when"].as_str().unwrap();
    assert!(
        when.contains(&format!(
            "if it is mined in the next block ({}), when the tip reaches {} (2 block(s) from now: \
             about 10 seconds at the chain's recent pace of one block every 5 s)",
            tip + 1,
            tip + 2
        )),
        "{when}"
    );
    let txid: staking_core::bitcoin::Txid = v["txid"].as_str().unwrap().parse().unwrap();
    assert!(
        !env.unspent(utxo),
        "the funding output is spent by the staking tx"
    );
    env.mine_paced(vec![env.tx(&txid)], 5);
    let mined_at = env.tip();

    let hex = staking_core::bitcoin::consensus::encode::serialize_hex(&env.tx(&txid));
    let params_path = env.params_path.to_str().unwrap().to_owned();
    let inspect = env.staker_json(&[
        "tx",
        "inspect",
        "--params",
        &params_path,
        "--height",
        &mined_at.to_string(),
        &hex,
    ]);
    assert_eq!(inspect["kind"], "staking");
    assert_eq!(inspect["staker_pk"], key["staker_pk_hex"]);
    assert_eq!(inspect["staking_time"], STAKING_TIME);
    assert_eq!(inspect["staking_value"], 200_000);

    // Too early: unlocks in block mined_at + STAKING_TIME; the next block is tip + 1.
    let txid_arg = txid.to_string();
    let o = env.staker(&[
        "--json",
        "withdraw",
        "--staking-txid",
        &txid_arg,
        "--fee-rate",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let remaining = u64::from(STAKING_TIME) - 1;
    assert_eq!(v["allowed"], false);
    assert_eq!(v["blocks_remaining"], remaining);
    assert_eq!(v["unlock_height"], mined_at + u64::from(STAKING_TIME));
    assert!(
        stderr(&o).contains(&format!(
            "{remaining} more block(s) must be mined (about 45 seconds at the chain's recent \
             pace of one block every 5 s)"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(v["block_interval_secs"], 5.0);
    assert_eq!(v["estimated_wait_secs"], 45.0);

    env.mine(u32::from(STAKING_TIME) - 2);
    let o = env.staker(&["withdraw", "--staking-txid", &txid_arg, "--fee-rate", "2"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 more block(s)"), "{}", stderr(&o));

    env.mine(1);
    let v = env.staker_json(&["withdraw", "--staking-txid", &txid_arg, "--fee-rate", "2"]);
    assert_eq!(v["allowed"], true);
    assert_eq!(v["broadcast"], true);
    let withdraw_txid = v["txid"].as_str().unwrap().parse().unwrap();
    env.mine(1);
    assert!(!env.unspent(OutPoint::new(txid, 0)));
    let withdraw = env.tx(&withdraw_txid);
    let address: staking_core::bitcoin::Address<_> =
        key["p2tr_address"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        withdraw.output[0].script_pubkey,
        address.assume_checked().script_pubkey()
    );
    assert_eq!(
        v["value"].as_u64().unwrap() + v["fee"].as_u64().unwrap(),
        200_000
    );

    // Spent: a clear message, not a second spend.
    let o = env.staker(&["withdraw", "--staking-txid", &txid_arg, "--fee-rate", "2"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("already spent"), "{}", stderr(&o));
}

#[test]
fn stake_with_psbt_exports_a_bip371_psbt_and_broadcasts_nothing() {
    let env = Env::new();
    let (key, utxo) = env.funded_key(500_000);
    let v = env.staker_json(&[
        "stake",
        "--fp-pk",
        FP,
        "--amount",
        "100000",
        "--staking-time",
        "20",
        "--fee-rate",
        "3",
        "--utxo",
        &format!("{}:{}", utxo.txid, utxo.vout),
        "--psbt",
    ]);
    let psbt: Psbt = v["psbt_base64"].as_str().unwrap().parse().unwrap();
    assert_eq!(psbt.inputs.len(), 1);
    let input = &psbt.inputs[0];
    let address: staking_core::bitcoin::Address<_> =
        key["p2tr_address"].as_str().unwrap().parse().unwrap();
    let witness_utxo = input.witness_utxo.as_ref().unwrap();
    assert_eq!(
        witness_utxo.script_pubkey,
        address.assume_checked().script_pubkey()
    );
    assert_eq!(witness_utxo.value.to_sat(), 500_000);
    assert_eq!(
        input.tap_internal_key.unwrap().to_string(),
        key["staker_pk_hex"].as_str().unwrap()
    );
    assert_eq!(psbt.unsigned_tx.input[0].previous_output, utxo);
    let class = classify(&psbt.unsigned_tx, &params(), BlockHeight(env.tip() + 1));
    assert!(matches!(class, StakingTxClass::Valid(_)), "{class:?}");
    assert!(env.unspent(utxo), "a PSBT export must not spend anything");
}

#[test]
fn stake_refuses_an_amount_outside_the_params_and_a_spent_utxo() {
    let env = Env::new();
    let (_, utxo) = env.funded_key(500_000);
    let utxo_arg = format!("{}:{}", utxo.txid, utxo.vout);
    let o = env.staker(&[
        "stake",
        "--fp-pk",
        FP,
        "--amount",
        "5000",
        "--staking-time",
        "10",
        "--fee-rate",
        "2",
        "--utxo",
        &utxo_arg,
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o)
            .contains("--amount 5000 sat is outside params version 0's range 10000..=10000000 sat"),
        "{}",
        stderr(&o)
    );
    env.stake(utxo, 100_000);
    let o = env.staker(&[
        "stake",
        "--fp-pk",
        FP,
        "--amount",
        "100000",
        "--staking-time",
        "10",
        "--fee-rate",
        "2",
        "--utxo",
        &utxo_arg,
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("is spent or unknown to the node"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn stake_without_utxo_flags_funds_from_the_key_addresses_found_with_scantxoutset() {
    let env = Env::new();
    let o = env.staker(&["--json", "keys", "generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Nothing funded yet: the CLI says what to do.
    let o = env.staker(&[
        "stake",
        "--fp-pk",
        FP,
        "--amount",
        "100000",
        "--staking-time",
        "10",
        "--fee-rate",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("fund the address first (`staker keys show` prints it)"),
        "{}",
        stderr(&o)
    );
    let key = env.staker_json(&["keys", "show"]);
    let p2tr: staking_core::bitcoin::Address<_> =
        key["p2tr_address"].as_str().unwrap().parse().unwrap();
    let p2wpkh: staking_core::bitcoin::Address<_> =
        key["p2wpkh_address"].as_str().unwrap().parse().unwrap();
    let a = env.fund(&p2tr.assume_checked().script_pubkey(), 60_000);
    let b = env.fund(&p2wpkh.assume_checked().script_pubkey(), 70_000);
    let v = env.staker_json(&[
        "stake",
        "--fp-pk",
        FP,
        "--amount",
        "100000",
        "--staking-time",
        "10",
        "--fee-rate",
        "2",
    ]);
    let mut inputs: Vec<String> = v["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect();
    inputs.sort();
    let mut expected = vec![a.to_string(), b.to_string()];
    expected.sort();
    assert_eq!(inputs, expected, "both of the key's outputs fund the stake");
    assert!(!env.unspent(a) && !env.unspent(b));
}

#[test]
fn stake_with_psbt_out_writes_the_psbt_for_an_external_wallet_funded_from_its_address() {
    let env = Env::new();
    // The external wallet's address and key; no key file at all.
    let wallet = devnet::wallet::Wallet::from_seed(b"an external wallet");
    let funded = env.fund(wallet.script_pubkey(), 400_000);
    let file = env.dir.path().join("stake.psbt");
    let o = env.staker(&[
        "--json",
        "stake",
        "--fp-pk",
        FP,
        "--amount",
        "100000",
        "--staking-time",
        "10",
        "--fee-rate",
        "2",
        "--staker-pk",
        &wallet.x_only().to_string(),
        "--change-address",
        &wallet.address().to_string(),
        "--from",
        &wallet.address().to_string(),
        "--psbt-out",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.trim(), v["psbt_base64"].as_str().unwrap());
    assert_eq!(v["confirmation_depth"], 2);
    let psbt: Psbt = text.trim().parse().unwrap();
    assert_eq!(psbt.unsigned_tx.input.len(), 1);
    assert_eq!(psbt.unsigned_tx.input[0].previous_output, funded);
    let class = classify(&psbt.unsigned_tx, &params(), BlockHeight(env.tip() + 1));
    let StakingTxClass::Valid(parsed) = class else {
        panic!("{class:?}")
    };
    assert_eq!(parsed.staker, wallet.x_only());
    assert!(env.unspent(funded), "a PSBT export must not spend anything");
    assert!(!env.key_file.exists(), "no key file is needed or made");
}

#[test]
fn stake_signs_p2wpkh_and_p2tr_inputs_together_and_waits_for_the_confirmation_depth() {
    let env = Env::new();
    let (key, p2tr) = env.funded_key(60_000);
    let address: staking_core::bitcoin::Address<_> =
        key["p2wpkh_address"].as_str().unwrap().parse().unwrap();
    let p2wpkh = env.fund(&address.assume_checked().script_pubkey(), 70_000);
    let node = env.node.clone();
    let miner = std::thread::spawn(move || {
        for _ in 0..4 {
            std::thread::sleep(std::time::Duration::from_millis(700));
            node.mine_blocks(1, devnet::wallet::Wallet::faucet().script_pubkey())
                .unwrap();
        }
    });
    let o = env.staker(&[
        "--json",
        "stake",
        "--fp-pk",
        FP,
        "--amount",
        "100000",
        "--staking-time",
        "10",
        "--fee-rate",
        "2",
        "--utxo",
        &format!("{}:{}", p2tr.txid, p2tr.vout),
        "--utxo",
        &format!("{}:{}", p2wpkh.txid, p2wpkh.vout),
        "--wait",
    ]);
    miner.join().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["inputs"].as_array().unwrap().len(), 2);
    assert!(v["confirmations"].as_u64().unwrap() >= 2, "{v}");
    assert!(
        stderr(&o).contains("has 0 of 2 confirmations"),
        "progress is shown: {}",
        stderr(&o)
    );
    assert!(!env.unspent(p2tr) && !env.unspent(p2wpkh));
}

#[test]
fn withdraw_with_psbt_exports_the_timelock_path_spend_without_broadcasting() {
    let env = Env::new();
    let (_, utxo) = env.funded_key(1_000_000);
    let txid = env.stake(utxo, 200_000);
    env.mine(u32::from(STAKING_TIME));
    let v = env.staker_json(&[
        "withdraw",
        "--staking-txid",
        &txid.to_string(),
        "--fee-rate",
        "2",
        "--psbt",
    ]);
    let psbt: Psbt = v["psbt_base64"].as_str().unwrap().parse().unwrap();
    let input = &psbt.inputs[0];
    assert_eq!(input.witness_utxo.as_ref().unwrap().value.to_sat(), 200_000);
    assert_eq!(input.tap_scripts.len(), 1);
    assert_eq!(input.tap_internal_key, Some(staking_core::keys::nums_key()));
    assert_eq!(
        psbt.unsigned_tx.input[0].sequence.0,
        u32::from(STAKING_TIME)
    );
    assert!(env.unspent(OutPoint::new(txid, 0)));
}
