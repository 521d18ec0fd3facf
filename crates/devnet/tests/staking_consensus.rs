//! Phase-1 staking transactions built by `staking-core`, sent through the devnet's RPC: the chain
//! enforces the staking timelock, the covenant quorum (`OP_NUMEQUAL`: exactly `quorum`
//! signatures) and the staker's signature, with Bitcoin Core's interpreter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{schnorr, Keypair, SecretKey, XOnlyPublicKey};
use bitcoin::{
    absolute, transaction, Amount, OutPoint, Sequence, Transaction, TxIn, TxOut, Witness,
};
use staking_core::keys::SECP;
use staking_core::script::{StakingKeys, StakingLeaf, StakingOutput};
use staking_core::signing::{leaf_sighash, sign};
use staking_core::unbonding::{canonical_unbonding_tx, unbonding_sighash, UnbondingTerms};
use staking_core::witness::{staking_timelock_witness, unbonding_witness};

const STAKING_TIME: u16 = 6;
const QUORUM: u32 = 6;
const STAKE: Amount = Amount::from_sat(200_000);

fn keypair(tag: &str, i: u8) -> Keypair {
    let seed = bitcoin::hashes::sha256::Hash::hash(format!("{tag}-{i}").as_bytes());
    Keypair::from_secret_key(&SECP, &SecretKey::from_slice(seed.as_ref()).unwrap())
}

/// A staker, a finality provider and a 9-member committee with quorum 6, as on mainnet.
struct Fixture {
    staker: Keypair,
    covenants: Vec<Keypair>,
    output: StakingOutput,
    terms: UnbondingTerms,
}

fn fixture() -> Fixture {
    let staker = keypair("staker", 0);
    let fp = keypair("fp", 0).x_only_public_key().0;
    let covenants: Vec<Keypair> = (0..9).map(|i| keypair("covenant", i)).collect();
    let covenant_keys = covenants.iter().map(|k| k.x_only_public_key().0).collect();
    let keys = StakingKeys::new(
        staker.x_only_public_key().0,
        vec![fp],
        covenant_keys,
        QUORUM,
    )
    .unwrap();
    let output = StakingOutput::new(keys, STAKING_TIME).unwrap();
    let terms = UnbondingTerms {
        unbonding_time: 5,
        unbonding_fee: Amount::from_sat(2_000),
    };
    Fixture {
        staker,
        covenants,
        output,
        terms,
    }
}

fn withdrawal(
    f: &Fixture,
    prev: (OutPoint, TxOut),
    sequence: u16,
    signer: &Keypair,
) -> Transaction {
    let pay_to = devnet::wallet::Wallet::from_seed(b"staking consensus payee");
    let mut tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: prev.0,
            sequence: Sequence::from_height(sequence),
            ..TxIn::default()
        }],
        output: vec![TxOut {
            value: prev.1.value - Amount::from_sat(1_000),
            script_pubkey: pay_to.script_pubkey().clone(),
        }],
    };
    let sighash =
        leaf_sighash(&tx, 0, &[prev.1], f.output.leaf_hash(StakingLeaf::Timelock)).unwrap();
    tx.input[0].witness = staking_timelock_witness(&f.output, &sign(&sighash, signer));
    tx
}

/// The canonical unbonding tx with the staker's signature and the covenant signatures of
/// `signers` (indices into the committee), placed in their descending-key slots.
fn unbonding(
    f: &Fixture,
    prev: &(OutPoint, TxOut),
    signers: &[usize],
    staker: &Keypair,
) -> Transaction {
    let mut tx = canonical_unbonding_tx(&f.output, prev.0, prev.1.value, &f.terms).unwrap();
    let sighash = unbonding_sighash(&tx, &f.output, prev.1.value).unwrap();
    let staker_sig = sign(&sighash, staker);
    let sigs: Vec<(XOnlyPublicKey, schnorr::Signature)> = signers
        .iter()
        .map(|&i| {
            (
                f.covenants[i].x_only_public_key().0,
                sign(&sighash, &f.covenants[i]),
            )
        })
        .collect();
    tx.input[0].witness = if signers.len() == QUORUM as usize {
        unbonding_witness(&f.output, &staker_sig, &sigs).unwrap()
    } else {
        // `unbonding_witness` refuses any count but the quorum; build the stack by hand to
        // show that the chain refuses it too.
        let mut slots = f.output.keys().sorted_covenants();
        slots.reverse();
        let mut witness = Witness::new();
        for key in &slots {
            match sigs.iter().find(|(k, _)| k == key) {
                Some((_, sig)) => witness.push(sig.as_ref()),
                None => witness.push([]),
            }
        }
        witness.push(staker_sig.as_ref());
        witness.push(f.output.leaf_script(StakingLeaf::Unbonding).as_bytes());
        witness.push(f.output.control_block(StakingLeaf::Unbonding).serialize());
        witness
    };
    tx
}

fn is_script_failure(message: &str) -> bool {
    message.starts_with("mandatory-script-verify-flag-failed")
}

#[tokio::test]
async fn a_withdrawal_through_the_staking_timelock_is_non_bip68_final_until_the_staking_time_passes(
) {
    let d = common::start().await;
    let f = fixture();
    let prev = d.rpc.fund(f.output.script_pubkey(), STAKE).await;

    // A withdrawal that claims a shorter lock than the script's CSV fails the script itself.
    let short = withdrawal(&f, prev.clone(), STAKING_TIME - 1, &f.staker);
    d.rpc.mine(STAKING_TIME as u32).await;
    let err = d.rpc.send(&short).await.unwrap_err();
    assert_eq!(err.code, -26);
    assert!(is_script_failure(&err.message), "{err:?}");

    // With the right sequence it is non-final until the output has STAKING_TIME confirmations.
    let d = common::start().await;
    let prev = d.rpc.fund(f.output.script_pubkey(), STAKE).await;
    let tx = withdrawal(&f, prev, STAKING_TIME, &f.staker);
    for _ in 1..STAKING_TIME {
        let err = d.rpc.send(&tx).await.unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (-26, "non-BIP68-final"));
        d.rpc.mine(1).await;
    }
    let txid = d.rpc.send(&tx).await.unwrap();
    assert_eq!(txid.as_str().unwrap(), tx.compute_txid().to_string());
}

#[tokio::test]
async fn a_withdrawal_signed_by_another_key_fails_script_verification() {
    let d = common::start().await;
    let f = fixture();
    let prev = d.rpc.fund(f.output.script_pubkey(), STAKE).await;
    d.rpc.mine(STAKING_TIME as u32).await;
    let tx = withdrawal(&f, prev, STAKING_TIME, &keypair("not the staker", 0));
    let err = d.rpc.send(&tx).await.unwrap_err();
    assert_eq!(err.code, -26);
    assert!(is_script_failure(&err.message), "{err:?}");
}

#[tokio::test]
async fn an_unbonding_needs_exactly_the_quorum_of_covenant_signatures() {
    let d = common::start().await;
    let f = fixture();
    let prev = d.rpc.fund(f.output.script_pubkey(), STAKE).await;

    for count in [QUORUM as usize - 1, QUORUM as usize + 1] {
        let signers: Vec<usize> = (0..count).collect();
        let tx = unbonding(&f, &prev, &signers, &f.staker);
        let err = d.rpc.send(&tx).await.unwrap_err();
        assert_eq!(err.code, -26, "{count} signatures");
        assert!(
            is_script_failure(&err.message),
            "{count} signatures: {err:?}"
        );
    }

    let signers: Vec<usize> = vec![8, 1, 4, 2, 7, 0];
    let tx = unbonding(&f, &prev, &signers, &f.staker);
    let txid = d.rpc.send(&tx).await.unwrap();
    assert_eq!(txid.as_str().unwrap(), tx.compute_txid().to_string());
    let hashes = d.rpc.mine(1).await;
    let block = d
        .rpc
        .call("getblock", serde_json::json!([hashes[0], 1]))
        .await;
    let mined: Vec<&str> = block["tx"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(mined.contains(&tx.compute_txid().to_string().as_str()));
}

#[tokio::test]
async fn an_unbonding_with_a_bad_staker_signature_fails_script_verification() {
    let d = common::start().await;
    let f = fixture();
    let prev = d.rpc.fund(f.output.script_pubkey(), STAKE).await;
    let tx = unbonding(
        &f,
        &prev,
        &[0, 1, 2, 3, 4, 5],
        &keypair("not the staker", 1),
    );
    let err = d.rpc.send(&tx).await.unwrap_err();
    assert_eq!(err.code, -26);
    assert!(is_script_failure(&err.message), "{err:?}");
}

#[tokio::test]
async fn covenant_signatures_in_the_wrong_slots_fail_script_verification() {
    let d = common::start().await;
    let f = fixture();
    let prev = d.rpc.fund(f.output.script_pubkey(), STAKE).await;
    let mut tx = unbonding(&f, &prev, &[0, 1, 2, 3, 4, 5], &f.staker);
    // Reverse the nine covenant slots: ascending instead of descending key order.
    let items: Vec<Vec<u8>> = tx.input[0].witness.iter().map(<[u8]>::to_vec).collect();
    let mut reordered: Vec<Vec<u8>> = items[..9].iter().rev().cloned().collect();
    reordered.extend_from_slice(&items[9..]);
    tx.input[0].witness = Witness::from_slice(&reordered);
    let err = d.rpc.send(&tx).await.unwrap_err();
    assert_eq!(err.code, -26);
    assert!(is_script_failure(&err.message), "{err:?}");
}
