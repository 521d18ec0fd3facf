//! The key file cannot be opened without its passphrase, and neither the passphrase, the
//! covenant secret key, the HMAC key nor the RPC password ever reaches a log line or an error
//! text: every log line of a full run (unlock, serve, sign, refuse, fail) is captured and
//! searched.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::SecretKey;
use bitcoin::{Amount, OutPoint, Txid};
use covenant_signer::auth::HmacKey;
use covenant_signer::chain::{ChainError, MemoryChain};
use covenant_signer::fixture::{Fixture, FixtureShape};
use covenant_signer::keyfile::{CovenantKey, KdfCost, Passphrase};

const PASSPHRASE: &str = "PASSPHRASE-never-in-logs-4711";
const HMAC_KEY: &str = "HMACKEY-never-in-logs-0815-at-least-32-bytes";
/// The RPC password of `common::config`.
const RPC_PASSWORD: &str = "unused-rpc-password";
const FAST: KdfCost = KdfCost {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_never_appear_in_logs_or_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fx = Fixture::new(FixtureShape::default(), 21).unwrap();
    let secret: SecretKey = fx.members[0].secret_key();
    let secret_hex = hex::encode(secret.secret_bytes());
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("member0.json");
    CovenantKey::from_secret_key(&secret)
        .save_throwaway(&key_path, &Passphrase::new(PASSPHRASE.into()), FAST)
        .unwrap();
    let file_text = std::fs::read_to_string(&key_path).unwrap();
    assert!(
        !file_text.contains(&secret_hex),
        "the key file holds the secret in clear"
    );
    assert!(!file_text.contains(PASSPHRASE));

    let pass_env = "COVENANT_SIGNER_TEST_SECRETS_PASSPHRASE";
    let hmac_env = "COVENANT_SIGNER_TEST_SECRETS_HMAC";
    let extra = format!("passphrase-env = \"{pass_env}\"\n[auth]\nhmac-key-env = \"{hmac_env}\"\n");
    let mut config = common::config(&extra);
    config.signer.key_file = Some(key_path.clone());
    let config_text = format!("{config:?}");
    let mut errors = Vec::new();

    // Without the passphrase, and with a wrong one, the file does not open.
    std::env::remove_var(pass_env);
    let missing = covenant_signer::open_backend(&config).unwrap_err();
    assert!(format!("{missing:#}").contains(pass_env), "{missing:#}");
    errors.push(format!("{missing:#} {missing:?}"));
    std::env::set_var(pass_env, "a wrong passphrase, long enough");
    let wrong = covenant_signer::open_backend(&config).unwrap_err();
    assert!(
        format!("{wrong:#}").contains("wrong passphrase"),
        "{wrong:#}"
    );
    errors.push(format!("{wrong:#} {wrong:?}"));

    std::env::set_var(pass_env, PASSPHRASE);
    std::env::set_var(hmac_env, HMAC_KEY);
    let backend = covenant_signer::open_backend(&config).unwrap();
    tracing::info!(?config, ?backend, "what an operator might log");

    let funding = OutPoint::new(Txid::from_byte_array([5; 32]), 0);
    let staking_tx = fx
        .staking_tx(funding, Amount::from_sat(100_000), 1000, None)
        .unwrap();
    let chain = Arc::new(MemoryChain::new(300));
    chain.confirm(staking_tx.clone(), 200);
    let server = common::start(config, fx.params.clone(), chain.clone(), backend).await;

    let key = HmacKey::new(HMAC_KEY.as_bytes());
    let client = reqwest::Client::new();
    let valid = common::body(&fx.request(&staking_tx, 1000, 0).unwrap());
    let mut refused_request = fx.request(&staking_tx, 1000, 0).unwrap();
    refused_request.unbonding_tx.lock_time = bitcoin::absolute::LockTime::from_consensus(5);
    let refused = common::body(&refused_request);
    for (body, mac) in [
        (valid.clone(), Some(key.sign(valid.as_bytes()))),
        (refused.clone(), Some(key.sign(refused.as_bytes()))),
        ("{}".to_owned(), Some(key.sign(b"{}"))),
        (
            valid.clone(),
            Some(HmacKey::new(b"wrong").sign(valid.as_bytes())),
        ),
        (valid.clone(), None),
    ] {
        let mut request = client.post(server.sign_url()).body(body);
        if let Some(mac) = mac {
            request = request.header("X-Covenant-HMAC", mac);
        }
        errors.push(request.send().await.unwrap().text().await.unwrap());
    }
    chain.fail_with(Some(ChainError::Permanent(format!(
        "node said: bad auth for password {}",
        "<not the password>"
    ))));
    let internal = client
        .post(server.sign_url())
        .header("X-Covenant-HMAC", key.sign(valid.as_bytes()))
        .body(valid)
        .send()
        .await
        .unwrap();
    assert_eq!(
        internal.status(),
        reqwest::StatusCode::INTERNAL_SERVER_ERROR
    );
    errors.push(internal.text().await.unwrap());
    server.stop().await;

    let logs = captured.text();
    assert!(
        logs.contains("covenant key unlocked"),
        "logs were not captured:\n{logs}"
    );
    assert!(logs.contains("signing request refused"), "{logs}");
    assert!(logs.contains("signing request failed"), "{logs}");
    for haystack in [&logs, &errors.join("\n"), &config_text] {
        for secret in [PASSPHRASE, HMAC_KEY, secret_hex.as_str()] {
            assert!(!haystack.contains(secret), "a secret leaked:\n{haystack}");
        }
    }
    assert!(
        !config_text.contains("unused-rpc-password"),
        "{config_text}"
    );
    assert!(!logs.contains(RPC_PASSWORD));
}
