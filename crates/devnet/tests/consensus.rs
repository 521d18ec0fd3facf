//! Consensus and policy through the RPC with real, signed transactions: relative and absolute
//! timelocks, script failures, double spends, coinbase maturity and reorgs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{absolute, Amount, OutPoint, Sequence, TxOut};
use devnet::wallet::{csv_witness_script, unsigned, ScriptLeafOutput, Wallet};
use serde_json::json;

fn staker() -> Wallet {
    Wallet::from_seed(b"consensus test staker")
}

/// The real staking timelock leaf under the NUMS key, from `staking-core`.
fn timelock_output(blocks: u16) -> ScriptLeafOutput {
    let leaf = staking_core::script::timelock_script(&staker().x_only(), blocks).unwrap();
    ScriptLeafOutput::new(staking_core::keys::nums_key(), leaf).unwrap()
}

fn spend_timelock(
    out: &ScriptLeafOutput,
    prev: (OutPoint, TxOut),
    blocks: u16,
    corrupt: bool,
) -> bitcoin::Transaction {
    let w = staker();
    let pay = TxOut {
        value: prev.1.value - Amount::from_sat(1_000),
        script_pubkey: w.script_pubkey().clone(),
    };
    let mut tx = unsigned([prev.0], vec![pay], Sequence::from_height(blocks));
    let mut sig = w.sign_script_path(&tx, &[prev.1], 0, out.leaf());
    if corrupt {
        sig[10] ^= 0x01;
    }
    tx.input[0].witness = out.witness(&[sig]);
    tx
}

#[tokio::test]
async fn csv_locked_taproot_script_spend_is_non_bip68_final_until_the_lock_matures() {
    let d = common::start().await;
    let out = timelock_output(5);
    let prev = d
        .rpc
        .fund(&out.script_pubkey(), Amount::from_sat(100_000))
        .await;
    let funded_at = d.rpc.height().await;
    let tx = spend_timelock(&out, prev, 5, false);

    // The output has 1 confirmation; a 5-block lock needs the spend in block funded_at + 5.
    for _ in 0..4 {
        let err = d.rpc.send(&tx).await.unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (-26, "non-BIP68-final"));
        let t = d
            .rpc
            .call("testmempoolaccept", json!([[serialize_hex(&tx)]]))
            .await;
        assert_eq!(t[0]["allowed"], false);
        assert_eq!(t[0]["reject-reason"], "non-BIP68-final");
        d.rpc.mine(1).await;
    }
    assert_eq!(d.rpc.height().await, funded_at + 4);
    let txid = d.rpc.send(&tx).await.unwrap();
    assert_eq!(txid, tx.compute_txid().to_string());
    let hashes = d.rpc.mine(1).await;
    let block = d.rpc.call("getblock", json!([hashes[0], 1])).await;
    assert!(block["tx"].as_array().unwrap().contains(&json!(txid)));
    // Verbosity 2 carries each transaction's fee (from the block's undo data).
    let full = d.rpc.call("getblock", json!([hashes[0], 2])).await;
    let mined = full["tx"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["txid"] == json!(txid))
        .unwrap();
    assert_eq!(mined["fee"], 0.00001);
}

#[tokio::test]
async fn csv_locked_p2wsh_spend_is_rejected_before_maturity_and_accepted_at_maturity() {
    let d = common::start().await;
    let w = staker();
    let script = csv_witness_script(&w.public_key(), 3);
    let spk = bitcoin::ScriptBuf::new_p2wsh(&script.wscript_hash());
    let (op, prev) = d.rpc.fund(&spk, Amount::from_sat(50_000)).await;
    let pay = TxOut {
        value: Amount::from_sat(49_000),
        script_pubkey: w.script_pubkey().clone(),
    };
    let mut tx = unsigned([op], vec![pay], Sequence::from_height(3));
    let sig = w.sign_p2wsh(&tx, 0, &script, prev.value);
    tx.input[0].witness = bitcoin::Witness::from_slice(&[sig, script.to_bytes()]);

    d.rpc.mine(1).await; // 2 confirmations: one short.
    let err = d.rpc.send(&tx).await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (-26, "non-BIP68-final"));
    d.rpc.mine(1).await;
    d.rpc.send(&tx).await.unwrap();
}

#[tokio::test]
async fn taproot_script_spend_with_a_bad_signature_fails_script_verification() {
    let d = common::start().await;
    let out = timelock_output(1);
    let prev = d
        .rpc
        .fund(&out.script_pubkey(), Amount::from_sat(100_000))
        .await;
    let bad = spend_timelock(&out, prev.clone(), 1, true);
    let err = d.rpc.send(&bad).await.unwrap_err();
    assert_eq!(err.code, -26);
    assert!(
        err.message
            .starts_with("mandatory-script-verify-flag-failed ("),
        "{}",
        err.message
    );
    let t = d
        .rpc
        .call("testmempoolaccept", json!([[serialize_hex(&bad)]]))
        .await;
    assert!(t[0]["reject-reason"]
        .as_str()
        .unwrap()
        .starts_with("mandatory-script-verify-flag-failed ("));
    // The same spend correctly signed passes: the failure was the signature.
    d.rpc
        .send(&spend_timelock(&out, prev, 1, false))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_double_spend_is_rejected_in_the_mempool_and_after_confirmation() {
    let d = common::start().await;
    let w = staker();
    let prev = d
        .rpc
        .fund(w.script_pubkey(), Amount::from_sat(100_000))
        .await;
    let to = |sats| {
        vec![TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: w.script_pubkey().clone(),
        }]
    };
    let first = w.spend(std::slice::from_ref(&prev), to(90_000), Sequence::MAX);
    let second = w.spend(&[prev], to(80_000), Sequence::MAX);
    d.rpc.send(&first).await.unwrap();
    let err = d.rpc.send(&second).await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (-26, "txn-mempool-conflict")
    );
    // Sending the same transaction again is not an error (Core returns the txid).
    assert_eq!(
        d.rpc.send(&first).await.unwrap(),
        first.compute_txid().to_string()
    );
    let t = d
        .rpc
        .call("testmempoolaccept", json!([[serialize_hex(&first)]]))
        .await;
    assert_eq!(t[0]["reject-reason"], "txn-already-in-mempool");

    d.rpc.mine(1).await;
    let err = d.rpc.send(&second).await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (-25, "bad-txns-inputs-missingorspent")
    );
    let t = d
        .rpc
        .call("testmempoolaccept", json!([[serialize_hex(&second)]]))
        .await;
    assert_eq!(t[0]["reject-reason"], "missing-inputs");
    let err = d.rpc.send(&first).await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (-27, "Transaction outputs already in utxo set")
    );
}

#[tokio::test]
async fn a_replacement_must_signal_and_pay_more() {
    let d = common::start().await;
    let w = staker();
    let prev = d
        .rpc
        .fund(w.script_pubkey(), Amount::from_sat(100_000))
        .await;
    let to = |sats| {
        vec![TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: w.script_pubkey().clone(),
        }]
    };
    let original = w.spend(
        std::slice::from_ref(&prev),
        to(99_000),
        Sequence::ENABLE_RBF_NO_LOCKTIME,
    );
    d.rpc.send(&original).await.unwrap();
    let cheaper = w.spend(
        std::slice::from_ref(&prev),
        to(99_500),
        Sequence::ENABLE_RBF_NO_LOCKTIME,
    );
    let err = d.rpc.send(&cheaper).await.unwrap_err();
    assert_eq!(err.code, -26);
    assert!(
        err.message
            .starts_with("insufficient fee, rejecting replacement"),
        "{}",
        err.message
    );
    let better = w.spend(&[prev], to(95_000), Sequence::ENABLE_RBF_NO_LOCKTIME);
    d.rpc.send(&better).await.unwrap();
    let pool = d.rpc.call("getrawmempool", json!([])).await;
    assert_eq!(pool, json!([better.compute_txid().to_string()]));
}

#[tokio::test]
async fn a_coinbase_spent_before_100_confirmations_is_rejected() {
    let d = common::start().await;
    let w = staker();
    let addr = w.address().to_string();
    let hashes = d.rpc.call("generatetoaddress", json!([1, addr])).await;
    let block = d.rpc.call("getblock", json!([hashes[0], 2])).await;
    let cb = &block["tx"][0];
    let txid: bitcoin::Txid = cb["txid"].as_str().unwrap().parse().unwrap();
    let prev = (
        OutPoint { txid, vout: 0 },
        TxOut {
            value: Amount::from_btc(50.0).unwrap(),
            script_pubkey: w.script_pubkey().clone(),
        },
    );
    let tx = w.spend(
        &[prev],
        vec![TxOut {
            value: Amount::from_btc(49.999).unwrap(),
            script_pubkey: w.script_pubkey().clone(),
        }],
        Sequence::MAX,
    );

    d.rpc.mine(98).await; // tip 99: the next block is at depth 99 from the coinbase.
    let err = d.rpc.send(&tx).await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            -26,
            "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth 99"
        )
    );
    d.rpc.mine(1).await;
    d.rpc.send(&tx).await.unwrap();
}

#[tokio::test]
async fn absolute_locktime_is_non_final_until_the_height_is_reached() {
    let d = common::start().await;
    let w = staker();
    let prev = d
        .rpc
        .fund(w.script_pubkey(), Amount::from_sat(100_000))
        .await;
    let lock_height = d.rpc.height().await as u32 + 3;
    let mut tx = unsigned(
        [prev.0],
        vec![TxOut {
            value: Amount::from_sat(99_000),
            script_pubkey: w.script_pubkey().clone(),
        }],
        Sequence::ENABLE_LOCKTIME_NO_RBF,
    );
    tx.lock_time = absolute::LockTime::from_height(lock_height).unwrap();
    let sig = w.sign_key_path(&tx, &[prev.1], 0);
    tx.input[0].witness = bitcoin::Witness::from_slice(&[sig]);
    // Final once the next block's height is above the locktime.
    d.rpc.mine(2).await;
    let err = d.rpc.send(&tx).await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (-26, "non-final"));
    d.rpc.mine(1).await;
    d.rpc.send(&tx).await.unwrap();
}

#[tokio::test]
async fn fee_and_dust_policy_follow_core() {
    let d = common::start().await;
    let w = staker();
    let prev = d
        .rpc
        .fund(w.script_pubkey(), Amount::from_sat(100_000))
        .await;
    let no_fee = w.spend(
        std::slice::from_ref(&prev),
        vec![TxOut {
            value: Amount::from_sat(100_000),
            script_pubkey: w.script_pubkey().clone(),
        }],
        Sequence::MAX,
    );
    let err = d.rpc.send(&no_fee).await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            -26,
            format!("min relay fee not met, 0 < {}", no_fee.vsize()).as_str()
        )
    );
    let dust = w.spend(
        std::slice::from_ref(&prev),
        vec![
            TxOut {
                value: Amount::from_sat(90_000),
                script_pubkey: w.script_pubkey().clone(),
            },
            TxOut {
                value: Amount::from_sat(329),
                script_pubkey: w.script_pubkey().clone(),
            },
        ],
        Sequence::MAX,
    );
    assert_eq!(d.rpc.send(&dust).await.unwrap_err().message, "dust");
    let too_much = w.spend(
        std::slice::from_ref(&prev),
        vec![TxOut {
            value: Amount::from_sat(200_000),
            script_pubkey: w.script_pubkey().clone(),
        }],
        Sequence::MAX,
    );
    assert_eq!(
        d.rpc.send(&too_much).await.unwrap_err().message,
        "bad-txns-in-belowout, value in (0.001) < value out (0.002)"
    );
    // A fee far above maxfeerate (0.10 BTC/kvB) is refused unless the cap is lifted with 0.
    let rich = d
        .rpc
        .fund(w.script_pubkey(), Amount::from_btc(1.0).unwrap())
        .await;
    let huge_fee = w.spend(
        &[rich],
        vec![TxOut {
            value: Amount::from_sat(10_000),
            script_pubkey: w.script_pubkey().clone(),
        }],
        Sequence::MAX,
    );
    let err = d.rpc.send(&huge_fee).await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            -25,
            "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)"
        )
    );
    d.rpc
        .call("sendrawtransaction", json!([serialize_hex(&huge_fee), 0]))
        .await;
}

#[tokio::test]
async fn invalidateblock_reorgs_and_returns_the_block_transactions_to_the_mempool() {
    let d = common::start().await;
    let w = staker();
    let prev = d
        .rpc
        .fund(w.script_pubkey(), Amount::from_sat(100_000))
        .await;
    let tx = w.spend(
        std::slice::from_ref(&prev),
        vec![TxOut {
            value: Amount::from_sat(99_000),
            script_pubkey: w.script_pubkey().clone(),
        }],
        Sequence::MAX,
    );
    let txid = tx.compute_txid().to_string();
    d.rpc.send(&tx).await.unwrap();
    let mined = d.rpc.mine(2).await;
    let height = d.rpc.height().await;
    let confirmed = d.rpc.call("getrawtransaction", json!([txid, true])).await;
    assert_eq!(confirmed["blockhash"], json!(mined[0]));

    d.rpc.call("invalidateblock", json!([mined[0]])).await;
    assert_eq!(d.rpc.height().await, height - 2);
    assert_eq!(d.rpc.call("getrawmempool", json!([])).await, json!([txid]));
    let back = d.rpc.call("getrawtransaction", json!([txid, true])).await;
    assert!(back.get("blockhash").is_none());
    assert_eq!(
        d.rpc.call("getblockheader", json!([mined[0]])).await["confirmations"],
        -1
    );
    // The spent output is unspent again on the chain but spent in the mempool.
    assert_eq!(
        d.rpc
            .call(
                "gettxout",
                json!([prev.0.txid.to_string(), prev.0.vout, false])
            )
            .await["confirmations"],
        1
    );
    assert!(d
        .rpc
        .call("gettxout", json!([prev.0.txid.to_string(), prev.0.vout]))
        .await
        .is_null());

    // A new branch confirms it again; reconsidering the shorter old branch keeps the new one.
    let new_branch = d.rpc.mine(3).await;
    assert_eq!(
        d.rpc.call("getrawtransaction", json!([txid, true])).await["blockhash"],
        json!(new_branch[0])
    );
    d.rpc.call("reconsiderblock", json!([mined[0]])).await;
    assert_eq!(
        d.rpc.call("getbestblockhash", json!([])).await,
        json!(new_branch[2])
    );

    // Invalidating the new branch makes the old one (now valid again) the best chain.
    d.rpc.call("invalidateblock", json!([new_branch[0]])).await;
    assert_eq!(
        d.rpc.call("getbestblockhash", json!([])).await,
        json!(mined[1])
    );
    assert_eq!(
        d.rpc.call("getrawtransaction", json!([txid, true])).await["blockhash"],
        json!(mined[0])
    );
    assert_eq!(d.rpc.call("getrawmempool", json!([])).await, json!([]));
}

#[tokio::test]
async fn a_block_with_a_chain_of_spends_can_be_reorged_out_and_mined_again() {
    let d = common::start().await;
    let w = staker();
    let prev = d
        .rpc
        .fund(w.script_pubkey(), Amount::from_sat(100_000))
        .await;
    let pay = |input: &(OutPoint, TxOut), value: u64| {
        w.spend(
            std::slice::from_ref(input),
            vec![TxOut {
                value: Amount::from_sat(value),
                script_pubkey: w.script_pubkey().clone(),
            }],
            Sequence::MAX,
        )
    };
    // parent and child in the same block: the child spends the parent's only output.
    let parent = pay(&prev, 99_000);
    let child = pay(
        &(
            OutPoint::new(parent.compute_txid(), 0),
            parent.output[0].clone(),
        ),
        98_000,
    );
    d.rpc.send(&parent).await.unwrap();
    d.rpc.send(&child).await.unwrap();
    let mined = d.rpc.mine(1).await;

    d.rpc.call("invalidateblock", json!([mined[0]])).await;
    // The parent's output is not resurrected on the chain by the disconnection.
    assert!(d
        .rpc
        .call(
            "gettxout",
            json!([parent.compute_txid().to_string(), 0, false])
        )
        .await
        .is_null());
    // A new branch mines both again (BIP30 must not see the parent as already present).
    let new_branch = d.rpc.mine(2).await;
    for tx in [&parent, &child] {
        assert_eq!(
            d.rpc
                .call(
                    "getrawtransaction",
                    json!([tx.compute_txid().to_string(), true])
                )
                .await["blockhash"],
            json!(new_branch[0])
        );
    }
}
