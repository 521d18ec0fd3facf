//! Starting a signing server on loopback for the HTTP-level tests.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, Transaction, Txid};
use covenant_signer::chain::{ChainView, MemoryChain};
use covenant_signer::config::Config;
use covenant_signer::fixture::{Fixture, FixtureShape};
use covenant_signer::keystore::KeyBackend;
use covenant_signer::request::SignRequest;
use staking_core::params::GlobalParams;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A config listening on ephemeral loopback ports; `extra` is appended TOML.
pub fn config(extra: &str) -> Config {
    let text = format!(
        r#"
        [server]
        port = 0
        [metrics]
        port = 0
        [btc-config]
        url = "http://127.0.0.1:1"
        user = "user"
        pass = "unused-rpc-password"
        [signer]
        backend = "file"
        key-file = "/nonexistent/key.json"
        {extra}
        "#
    );
    Config::from_toml(&text).expect("test config is valid")
}

/// A running server.
pub struct Running {
    pub base: String,
    pub metrics: String,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops the server and checks it ended cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .expect("server task")
            .expect("server ended cleanly");
    }

    pub fn sign_url(&self) -> String {
        format!("{}/v1/sign-unbonding-tx", self.base)
    }
}

/// Starts `serve` and waits until it listens.
pub async fn start(
    config: Config,
    params: GlobalParams,
    chain: Arc<dyn ChainView>,
    backend: KeyBackend,
) -> Running {
    let shutdown = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(covenant_signer::serve(
        config,
        params,
        chain,
        backend,
        shutdown.clone(),
        move |bound| {
            let _ = tx.send(bound);
        },
    ));
    let bound = rx.await.expect("server bound its ports");
    Running {
        base: format!("http://{}", bound.api),
        metrics: format!("http://{}/metrics", bound.metrics.expect("metrics enabled")),
        shutdown,
        task,
    }
}

/// The JSON body of a request.
pub fn body(request: &SignRequest) -> String {
    serde_json::to_string(&request.to_json()).expect("serialisable")
}

/// The staking tx's timelock and amount in [`setup`].
pub const TIME: u16 = 1000;
pub const AMOUNT: Amount = Amount::from_sat(100_000);

/// A committee fixture and an in-memory chain in which one staking tx is confirmed.
pub struct Setup {
    pub fx: Fixture,
    pub chain: Arc<MemoryChain>,
    pub staking_tx: Transaction,
}

pub fn setup() -> Setup {
    let fx = Fixture::new(FixtureShape::default(), 11).unwrap();
    let funding = OutPoint::new(Txid::from_byte_array([3; 32]), 0);
    let staking_tx = fx.staking_tx(funding, AMOUNT, TIME, None).unwrap();
    let chain = Arc::new(MemoryChain::new(300));
    chain.confirm(staking_tx.clone(), 200);
    Setup {
        fx,
        chain,
        staking_tx,
    }
}

/// A server holding committee member 0's key over `s`'s chain; `extra` is appended TOML.
pub async fn start_member_0(s: &Setup, extra: &str) -> Running {
    let backend = KeyBackend::File(s.fx.member_covenant_key(0).unwrap());
    start(config(extra), s.fx.params.clone(), s.chain.clone(), backend).await
}
