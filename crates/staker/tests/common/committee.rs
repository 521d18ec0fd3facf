//! The covenant committee of the test params (keys `covenant(1..=3)`, quorum 2) as real
//! `covenant-signer` servers on loopback, each checking requests against the devnet, and the
//! real unbonding pipeline reading the API's database: an unbonding request the API accepted is
//! signed by the committee and broadcast exactly as in production.

use std::sync::Arc;
use std::time::Duration;

use covenant_signer::keyfile::CovenantKey;
use covenant_signer::keystore::KeyBackend;
use covenant_signer::rpc_chain::RpcChain;
use staking_core::bitcoin::secp256k1::PublicKey;
use tokio_util::sync::CancellationToken;
use unbonding_pipeline::{Pipeline, SignerEndpoint};

use super::api::RealApi;
use super::{covenant, params, Env};

/// The running committee and pipeline; both stop when this is dropped.
pub struct Committee {
    pub pipeline: Pipeline,
    shutdown: CancellationToken,
}

impl Drop for Committee {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn signer_config() -> covenant_signer::config::Config {
    covenant_signer::config::Config::from_toml(
        r#"
        [server]
        port = 0
        [metrics]
        enabled = false
        [rate-limit]
        requests-per-second = 0
        burst = 0
        [btc-config]
        url = "http://127.0.0.1:1"
        user = "unused"
        pass = "unused"
        [signer]
        backend = "file"
        key-file = "/nonexistent/key.json"
        "#,
    )
    .unwrap()
}

/// Starts the three members and the pipeline daemon on the API's database.
pub fn start_committee(env: &Env, api: &RealApi) -> Committee {
    let shutdown = CancellationToken::new();
    let mut endpoints = Vec::new();
    for i in 1..=3u8 {
        let keypair = covenant(i);
        let backend = KeyBackend::File(CovenantKey::from_secret_key(&keypair.secret_key()));
        let chain = RpcChain::new(bitcoin_rpc::RpcClient::new(env.rpc_config()).unwrap());
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let token = shutdown.clone();
        env.rt.spawn(async move {
            covenant_signer::serve(
                signer_config(),
                params(),
                Arc::new(chain),
                backend,
                token,
                move |bound| {
                    let _ = bound_tx.send(bound);
                },
            )
            .await
            .unwrap();
        });
        let bound = env.rt.block_on(bound_rx).unwrap();
        endpoints.push(SignerEndpoint::new(
            PublicKey::from_keypair(&keypair),
            format!("http://{}", bound.api),
        ));
    }
    let mut config =
        unbonding_pipeline::Config::new(&api.database_url, env.rpc_config(), params(), endpoints);
    config.poll_interval = Duration::from_millis(100);
    config.lease = Duration::from_secs(10);
    config.backoff.base = Duration::from_millis(50);
    config.backoff.max = Duration::from_millis(200);
    let pipeline = env.rt.block_on(Pipeline::connect(config)).unwrap();
    {
        let pipeline = pipeline.clone();
        let token = shutdown.clone();
        env.rt.spawn(async move {
            pipeline.run_forever(&token).await.unwrap();
        });
    }
    Committee { pipeline, shutdown }
}
