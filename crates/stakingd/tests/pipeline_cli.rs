//! `stakingd unbonding-pipeline` as an operator meets it: help that teaches, configuration
//! errors that say what to set, `retry-failed` on a database.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::process::{Command, Output};

fn stakingd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stakingd"))
        .args(args)
        .env_remove("STAKINGD_PARAMS")
        .env_remove("STAKINGD_DATABASE_URL")
        .env_remove("STAKINGD_BITCOIND_URL")
        .env_remove("STAKINGD_PIPELINE_SIGNERS")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_explains_what_the_pipeline_does_and_how_to_configure_it() {
    let out = stakingd(&["unbonding-pipeline", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in [
        "--once",
        "retry-failed",
        "claim it with a lease",
        "exactly `quorum` signatures",
        "[[signers]]",
        "hmac_key_env",
        "http://<key hex>@signer-1:9791",
        "--signer <URL>",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
    }
}

#[test]
fn once_without_params_says_what_to_set_and_fails() {
    let out = stakingd(&["unbonding-pipeline", "--once"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("params is not set"), "{err}");
    assert!(err.contains("STAKINGD_PARAMS or --params"), "{err}");
}

#[test]
fn a_committee_that_cannot_reach_quorum_is_refused_at_start() {
    let out = stakingd(&[
        "unbonding-pipeline",
        "--once",
        "--params",
        "bbn-test-4",
        "--bitcoind-url",
        "http://127.0.0.1:1",
        "--bitcoind-user",
        "u",
        "--bitcoind-password",
        "p",
        "--signer",
        "http://03ffeaec52a9b407b355ef6967a7ffc15fd6c3fe07de2844d61550475e7a5233e5@127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("cannot reach the quorum"), "{err}");
    let out = stakingd(&[
        "unbonding-pipeline",
        "--once",
        "--params",
        "bbn-test-4",
        "--bitcoind-url",
        "http://127.0.0.1:1",
        "--bitcoind-user",
        "u",
        "--bitcoind-password",
        "p",
        "--signer",
        "http://not-a-key@127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("is not hex"), "{err}");
}

#[test]
fn retry_failed_requeues_on_the_given_database_and_names_a_missing_id() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("api.db").display());
    let out = stakingd(&["unbonding-pipeline", "retry-failed", "--database-url", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "re-queued 0 failed unbonding request(s)"
    );
    let out = stakingd(&[
        "unbonding-pipeline",
        "retry-failed",
        "--database-url",
        &url,
        "--id",
        "5",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("request 5 is not in state failed"));
}
