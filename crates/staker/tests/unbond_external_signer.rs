//! Unbonding with an external signer, as a hardware wallet, Bitcoin Core or a custodian would
//! do it: `staker unbond --psbt-out` writes the PSBT, an independent implementation —
//! bitcoinjs-lib in Node.js (`interop/psbt/sign.mjs`) — signs it knowing only the staker's
//! secret key, and `staker unbond --psbt-in` (or `--signature`) submits it without any key file.
//! The real API accepts it, the real covenant committee and unbonding pipeline execute it, and
//! the unbonding tx is confirmed on the devnet. PSBTs signed for another tx, by another key or
//! tampered are refused by the CLI with the reason and exit 4, and nothing reaches the API.
//!
//! Needs `npm ci --prefix interop/psbt` (Node.js ≥ 18; `.ci/run` does it). Without it these
//! tests fail saying so, unless `STAKINGD_TEST_ALLOW_SKIP=1` skips them (counted at the end;
//! never with `CI=true`), as for every service the tests need (`testkit`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::api::{publish_active, publish_unbonding, start_api, wait_state};
use common::committee::start_committee;
use common::{stderr, Env};
use serde_json::Value;
use staking_core::bitcoin::hex::{DisplayHex, FromHex};
use staking_core::bitcoin::psbt::Psbt;
use staking_core::bitcoin::{Amount, PrivateKey, Transaction, Txid};

/// Exit status of a refused input (`staker --help`).
const REFUSED: i32 = 4;

const INTEROP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../interop/psbt");

/// Whether the Node signer is installed; if not, the test fails saying how to install it, or
/// skips where the developer allowed skipping (`testkit::service_unreachable`).
fn node_signer_ready() -> bool {
    let library = Path::new(INTEROP).join("node_modules/bitcoinjs-lib/package.json");
    match std::fs::metadata(&library) {
        Ok(_) => true,
        Err(e) => {
            testkit::service_unreachable(testkit::Service::PsbtSigner, INTEROP, &e);
            false
        }
    }
}

/// What bitcoinjs-lib reports after signing.
struct Signed {
    pubkey: String,
    leaf_hash: String,
    signature: String,
}

/// Signs input 0 of the PSBT in `input` with `secret` (32-byte hex) through bitcoinjs-lib,
/// writing the signed PSBT to `output`.
fn bitcoinjs_sign(input: &Path, secret: &str, output: &Path) -> Signed {
    let o = Command::new("node")
        .arg(Path::new(INTEROP).join("sign.mjs"))
        .arg(input)
        .arg(secret)
        .arg(output)
        .output()
        .expect("node is on the PATH");
    assert!(o.status.success(), "bitcoinjs-lib: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let field = |k: &str| v[k].as_str().unwrap().to_owned();
    Signed {
        pubkey: field("pubkey"),
        leaf_hash: field("leaf_hash"),
        signature: field("signature"),
    }
}

/// The staker's secret (hex) from the key file, for the external signer.
fn staker_secret(env: &Env) -> String {
    let key: Value = serde_json::from_slice(&std::fs::read(&env.key_file).unwrap()).unwrap();
    let wif = key["wif"].as_str().unwrap();
    PrivateKey::from_wif(wif)
        .unwrap()
        .inner
        .secret_bytes()
        .to_lower_hex_string()
}

/// Stakes `sat`, mines it to the confirmation depth and makes the API show it `active`.
fn active_stake(env: &Env, api: &common::api::RealApi, sat: u64) -> Txid {
    let txid = env.stake_scanned(sat);
    env.mine(2);
    let height = env.tip() - 1;
    publish_active(env, api, &env.tx(&txid), height);
    wait_state(env, &txid, "active");
    txid
}

fn path(env: &Env, name: &str) -> PathBuf {
    env.dir.path().join(name)
}

/// `staker --json unbond --staking-txid TXID ARGS…` with a key file that does not exist: the
/// external-signer modes must not read one.
fn unbond(env: &Env, txid: &Txid, args: &[&str]) -> std::process::Output {
    let txid = txid.to_string();
    let no_key = path(env, "no-such-key-file.json");
    let mut all = vec![
        "--json",
        "unbond",
        "--staking-txid",
        &txid,
        "--key-file",
        no_key.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    env.staker(&all)
}

fn psbt_out(env: &Env, txid: &Txid, file: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--psbt-out", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = unbond(env, txid, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_unbonding_psbt_signed_by_bitcoinjs_is_accepted_executed_by_the_committee_and_confirmed() {
    if !node_signer_ready() {
        return;
    }
    let mut env = Env::new();
    let api = start_api(&mut env);
    let committee = start_committee(&env, &api);
    let (key, _) = env.funded_key(1_000_000);
    let staker = key["staker_pk_hex"].as_str().unwrap().to_owned();
    let txid = active_stake(&env, &api, 300_000);
    let secret = staker_secret(&env);

    // The PSBT, with the staker key's origin for a hardware wallet. The network plays no part
    // (no key file is read), so mainnet is no different.
    let unsigned = path(&env, "unbond.psbt");
    let v = psbt_out(
        &env,
        &txid,
        &unsigned,
        &[
            "--key-origin",
            "[d34db33f/86'/1'/0'/0/0]",
            "--network",
            "mainnet",
        ],
    );
    assert_eq!(v["key_origin"], "[d34db33f/86'/1'/0'/0/0]");
    assert_eq!(v["staker_pk_hex"], staker);
    let unbonding_txid: Txid = v["unbonding_tx_hash_hex"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let psbt: Psbt = std::fs::read_to_string(&unsigned)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(psbt.unsigned_tx.compute_txid(), unbonding_txid);
    assert_eq!(psbt.unsigned_tx.input[0].previous_output.txid, txid);

    // bitcoinjs-lib signs with the staker's key for the unbonding leaf it found in the PSBT.
    let signed_file = path(&env, "unbond-signed.psbt");
    let signed = bitcoinjs_sign(&unsigned, &secret, &signed_file);
    assert_eq!(signed.pubkey, staker);
    assert_eq!(
        signed.leaf_hash,
        v["unbonding_leaf_hash"].as_str().unwrap(),
        "bitcoinjs-lib and the PSBT agree on the leaf"
    );
    assert_eq!(signed.signature.len(), 128, "64 bytes: SIGHASH_DEFAULT");

    let o = unbond(&env, &txid, &["--psbt-in", signed_file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["submitted"], true);
    assert_eq!(v["signed_with"], "psbt");
    assert_eq!(
        v["request"]["staker_signed_signature_hex"],
        signed.signature
    );
    wait_state(&env, &txid, "unbonding_requested");

    // The committee signs, the pipeline broadcasts; the devnet mines the unbonding tx.
    let stored = env.rt.block_on(api.store.unbonding_requests()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].request.staker_signature_hex, signed.signature);
    let db = env
        .rt
        .block_on(store::Db::connect(&store::DbOptions::new(
            api.database_url.as_str(),
        )))
        .unwrap();
    wait_until("the pipeline to send the unbonding tx", || {
        env.rt
            .block_on(db.unbonding().progress())
            .unwrap()
            .iter()
            .any(|p| p.state == "sent")
    });
    assert_eq!(committee.pipeline.metrics().outcome_count("sent"), 1);
    env.mine(1);
    let info = env
        .rt
        .block_on(env.rpc.get_raw_transaction_info(&unbonding_txid))
        .unwrap();
    assert!(info.confirmed_in().is_some(), "the unbonding tx is mined");
    let mined: Transaction = info.transaction;
    let staking_outpoint = mined.input[0].previous_output;
    assert_eq!(staking_outpoint.txid, txid);
    assert!(!env.unspent(staking_outpoint));
    // [cov sig or empty ×3, staker sig, leaf, control block]: the staker's is bitcoinjs-lib's,
    // exactly the quorum (2) of covenant signatures.
    let witness: Vec<Vec<u8>> = mined.input[0].witness.iter().map(<[u8]>::to_vec).collect();
    assert_eq!(witness.len(), 6);
    assert_eq!(witness[3].to_lower_hex_string(), signed.signature);
    assert_eq!(witness[..3].iter().filter(|w| !w.is_empty()).count(), 2);

    // The indexer's event: the API shows the delegation unbonding with the mined tx.
    publish_unbonding(&env, &api, txid, &mined, env.tip());
    let d = wait_state(&env, &txid, "unbonding");
    assert_eq!(
        d["unbonding_tx"]["tx_hex"],
        staking_core::bitcoin::consensus::encode::serialize_hex(&mined)
    );
}

#[test]
fn psbts_signed_for_another_tx_by_another_key_or_tampered_are_refused_with_the_reason() {
    if !node_signer_ready() {
        return;
    }
    let mut env = Env::new();
    let api = start_api(&mut env);
    env.funded_key(1_000_000);
    let a = active_stake(&env, &api, 200_000);
    let b = active_stake(&env, &api, 150_000);
    let secret = staker_secret(&env);
    let a_psbt = path(&env, "a.psbt");
    let b_psbt = path(&env, "b.psbt");
    let a_out = psbt_out(&env, &a, &a_psbt, &[]);
    psbt_out(&env, &b, &b_psbt, &[]);
    assert_eq!(a_out["key_origin"], "[00000000]");

    let refused = |args: &[&str], reasons: &[&str]| {
        let o = unbond(&env, &a, args);
        assert_eq!(o.status.code(), Some(REFUSED), "{args:?}: {}", stderr(&o));
        for reason in reasons {
            assert!(stderr(&o).contains(reason), "{args:?}: {}", stderr(&o));
        }
    };

    // Signed for another tx: the staker's own PSBT of delegation B, given for A.
    let b_signed = path(&env, "b-signed.psbt");
    bitcoinjs_sign(&b_psbt, &secret, &b_signed);
    refused(
        &["--psbt-in", b_signed.to_str().unwrap()],
        &[&format!("signed for another tx: the PSBT's tx spends {b}:")],
    );

    // Signed with another key: a covenant member's key is in the unbonding leaf too, so
    // bitcoinjs-lib signs; the CLI names the key.
    let other = path(&env, "a-other-key.psbt");
    let by_covenant = bitcoinjs_sign(&a_psbt, &"01".repeat(32), &other);
    refused(
        &["--psbt-in", other.to_str().unwrap()],
        &[&format!(
            "signed with another key: the PSBT's signature is by {}",
            by_covenant.pubkey
        )],
    );
    refused(
        &["--signature", &by_covenant.signature],
        &["does not verify: the signature is not by the staker key"],
    );

    // Tampered, then signed by the staker over what it was given.
    let tampered = |name: &str, edit: &dyn Fn(&mut Psbt)| {
        let mut psbt: Psbt = std::fs::read_to_string(&a_psbt)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        edit(&mut psbt);
        let unsigned = path(&env, &format!("{name}.psbt"));
        std::fs::write(&unsigned, psbt.to_string()).unwrap();
        let signed = path(&env, &format!("{name}-signed.psbt"));
        bitcoinjs_sign(&unsigned, &secret, &signed);
        signed
    };
    let changed_output = tampered("changed-output", &|p| {
        p.unsigned_tx.output[0].value -= Amount::from_sat(1_000);
    });
    refused(
        &["--psbt-in", changed_output.to_str().unwrap()],
        &[
            "tampered: the PSBT's tx",
            "(output 0 is 198000 sat instead of 199000 sat)",
        ],
    );
    let changed_utxo = tampered("changed-utxo", &|p| {
        p.inputs[0].witness_utxo.as_mut().unwrap().value = Amount::from_sat(2_000_000);
    });
    refused(
        &["--psbt-in", changed_utxo.to_str().unwrap()],
        &["tampered: the PSBT's witness UTXO is 2000000 sat"],
    );

    // A good signature, truncated: in the PSBT it no longer parses; bare, it is 63 bytes.
    let a_signed = path(&env, "a-signed.psbt");
    let good = bitcoinjs_sign(&a_psbt, &secret, &a_signed);
    let mut bytes = std::fs::read_to_string(&a_signed)
        .unwrap()
        .trim()
        .parse::<Psbt>()
        .unwrap()
        .serialize();
    let mut value = vec![64u8];
    value.extend(Vec::<u8>::from_hex(&good.signature).unwrap());
    let at = bytes
        .windows(65)
        .position(|w| w == value.as_slice())
        .unwrap();
    bytes[at] = 63;
    bytes.remove(at + 64);
    let truncated = path(&env, "truncated.psbt");
    std::fs::write(&truncated, &bytes).unwrap();
    refused(
        &["--psbt-in", truncated.to_str().unwrap()],
        &["is not a valid PSBT"],
    );
    refused(
        &["--signature", &good.signature[..126]],
        &["truncated or padded: the signature is 63 bytes"],
    );

    // Nothing reached the API; the delegation is still active.
    assert!(env
        .rt
        .block_on(api.store.unbonding_requests())
        .unwrap()
        .is_empty());
    wait_state(&env, &a, "active");

    // The good signature, bare, is accepted by the API (no key file anywhere).
    let o = unbond(&env, &a, &["--signature", &good.signature]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["signed_with"], "signature");
    wait_state(&env, &a, "unbonding_requested");
    let stored = env.rt.block_on(api.store.unbonding_requests()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].request.staking_tx_hash, a);
    assert_eq!(stored[0].request.staker_signature_hex, good.signature);
}
