//! The `covenant-signer` binary: `keygen` creates a key file that only its passphrase opens
//! and prints the public key, never below the minimum Argon2id cost; passphrases come from the
//! environment or a file, never the command line; `check` validates a config and params with
//! messages that say what to fix; `start` warns about a weak key file, which `rekey` fixes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::process::{Command, Output};

use covenant_signer::keyfile::{CovenantKey, KdfCost, KeyFileError, Passphrase};

const PASSPHRASE: &str = "cli test passphrase, long enough";

fn signer() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_covenant-signer"));
    command.env_remove("COVENANT_SIGNER_PASSPHRASE");
    command.env("RUST_LOG", "debug");
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn keygen_prints_the_public_key_of_a_file_only_the_passphrase_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.json");
    let output = signer()
        .args(["keygen", "--out"])
        .arg(&path)
        .env("COVENANT_SIGNER_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let printed = String::from_utf8(output.stdout.clone()).unwrap();
    let printed = printed.trim();
    assert_eq!(printed.len(), 66, "{printed}");
    assert!(printed.starts_with("02") || printed.starts_with("03"));
    assert!(!text(&output).contains(PASSPHRASE));

    let key = CovenantKey::load(&path, &Passphrase::new(PASSPHRASE.into())).unwrap();
    assert_eq!(hex::encode(key.public_key().serialize()), printed);
    let wrong = CovenantKey::load(&path, &Passphrase::new("another passphrase!".into()));
    assert_eq!(wrong.unwrap_err(), KeyFileError::Decrypt);

    // A second keygen never overwrites the key.
    let again = signer()
        .args(["keygen", "--out"])
        .arg(&path)
        .env("COVENANT_SIGNER_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        text(&again).contains("refusing to overwrite"),
        "{}",
        text(&again)
    );
}

#[test]
fn keygen_without_a_passphrase_says_where_it_looked_and_there_is_no_passphrase_flag() {
    let dir = tempfile::tempdir().unwrap();
    let output = signer()
        .args(["keygen", "--out"])
        .arg(dir.path().join("k.json"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("COVENANT_SIGNER_PASSPHRASE"),
        "{}",
        text(&output)
    );
    let flag = signer()
        .args(["keygen", "--passphrase", "x", "--out"])
        .arg(dir.path().join("k.json"))
        .output()
        .unwrap();
    assert!(!flag.status.success());
    assert!(!dir.path().join("k.json").exists());
}

#[test]
fn keygen_reads_the_passphrase_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let pass_file = dir.path().join("pass");
    std::fs::write(&pass_file, format!("{PASSPHRASE}\n")).unwrap();
    let path = dir.path().join("key.json");
    let output = signer()
        .args(["keygen", "--passphrase-file"])
        .arg(&pass_file)
        .arg("--out")
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    CovenantKey::load(&path, &Passphrase::new(PASSPHRASE.into())).unwrap();
}

#[test]
fn check_accepts_a_valid_config_with_a_preset_and_explains_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("signer.toml");
    std::fs::write(
        &config,
        "[btc-config]\nurl = \"http://127.0.0.1:8332\"\ncookie-file = \"/var/lib/bitcoind/.cookie\"\nnetwork = \"mainnet\"\n[signer]\nbackend = \"file\"\nkey-file = \"/etc/signer/key.json\"\n",
    )
    .unwrap();
    let output = signer()
        .args(["check", "--params", "bbn-1", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("config ok"), "{}", text(&output));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[btc-config]\nurl = \"http://127.0.0.1:8332\"\n[signer]\nbackend = \"file\"\n",
    )
    .unwrap();
    let output = signer()
        .args(["check", "--params", "bbn-1", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("needs credentials"),
        "{}",
        text(&output)
    );

    let output = signer()
        .args(["check", "--params", "no-such-preset-or-file", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("neither a preset"),
        "{}",
        text(&output)
    );
}

#[test]
fn keygen_refuses_a_kdf_cost_below_the_minimum_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.json");
    for args in [
        ["--kdf-memory-kib", "8"],
        ["--kdf-memory-kib", "19455"],
        ["--kdf-iterations", "1"],
    ] {
        let output = signer()
            .arg("keygen")
            .args(args)
            .arg("--out")
            .arg(&path)
            .env("COVENANT_SIGNER_PASSPHRASE", PASSPHRASE)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}: {}", text(&output));
        let said = text(&output);
        assert!(
            said.contains("is below the minimum of 19456 KiB (19 MiB), 2 passes"),
            "{said}"
        );
        assert!(said.contains("OWASP"), "{said}");
        assert!(!path.exists(), "{args:?} wrote a key file");
    }
}

/// A key file made below the minimum (as before it was enforced): `start` opens it but warns
/// with the reason, and `rekey` re-encrypts the same key at the minimum.
#[test]
fn a_weak_key_file_is_warned_about_at_start_and_rekey_makes_it_strong() {
    let dir = tempfile::tempdir().unwrap();
    let weak = dir.path().join("weak.json");
    let key = CovenantKey::generate();
    let cheap = KdfCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    key.save_throwaway(&weak, &Passphrase::new(PASSPHRASE.into()), cheap)
        .unwrap();
    let config = dir.path().join("signer.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nport = 0\n[metrics]\nenabled = false\n[btc-config]\nurl = \"http://127.0.0.1:1\"\n\
             cookie-file = \"/nonexistent/.cookie\"\n[signer]\nbackend = \"file\"\nkey-file = {weak:?}\n"
        ),
    )
    .unwrap();
    // Its key is in no bbn-1 committee, so the start ends right after unlocking it.
    let output = signer()
        .args(["start", "--params", "bbn-1", "--config"])
        .arg(&config)
        .env("COVENANT_SIGNER_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    let said = text(&output);
    assert!(said.contains("64 KiB, 1 passes"), "{said}");
    assert!(said.contains("is below the minimum"), "{said}");
    assert!(said.contains("covenant-signer rekey"), "{said}");

    let strong = dir.path().join("strong.json");
    let output = signer()
        .args(["rekey", "--key-file"])
        .arg(&weak)
        .arg("--out")
        .arg(&strong)
        .env("COVENANT_SIGNER_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let rekeyed = CovenantKey::load(&strong, &Passphrase::new(PASSPHRASE.into())).unwrap();
    assert_eq!(rekeyed.public_key(), key.public_key());
    assert_eq!(rekeyed.file_weakness(), None);
}
