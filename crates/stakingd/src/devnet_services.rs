//! The devnet's expiry checker and unbonding pipeline, wired to the same chain, database,
//! queues and committee as the rest of the all-in-one process.

use std::time::Duration;

use anyhow::Context;
use bitcoin_rpc::{RpcAuth, RpcConfig};
use tokio_util::sync::CancellationToken;

use crate::devnet_committee::{RunningSigner, Setup};
use crate::devnet_stack::{spawn_service, Exits, Registries, Running, Service};

fn rpc_config(run: &Running) -> RpcConfig {
    RpcConfig::new(
        run.rpc_url.clone(),
        RpcAuth::UserPass {
            user: run.rpc_user.clone(),
            password: run.rpc_password.clone(),
        },
    )
}

/// Starts the expiry checker and the unbonding pipeline; their tasks end when `shutdown` fires.
pub fn start(
    run: &Running,
    setup: &Setup,
    signers: &[RunningSigner],
    transport: &events::Transport,
    registries: &Registries,
    shutdown: &CancellationToken,
    exits: &Exits,
) -> anyhow::Result<Vec<Service>> {
    let mut services = Vec::new();

    let mut expiry = expiry_checker::Config::new(
        run.database_url.clone(),
        expiry_checker::TipSource::Rpc(rpc_config(run)),
    );
    // Blocks come every few seconds on the devnet: look often.
    expiry.poll_interval = Duration::from_millis(500);
    {
        let transport = transport.clone();
        let token = shutdown.clone();
        let registry = registries.expiry.clone();
        services.push(spawn_service("expiry checker", exits, async move {
            expiry_checker::run_with(expiry, Some(transport), &registry, token)
                .await
                .context("expiry checker")
        }));
    }

    let hmac = std::fs::read(&setup.hmac_key_path)
        .with_context(|| format!("reading {}", setup.hmac_key_path.display()))?;
    let endpoints = signers
        .iter()
        .map(|s| {
            let mut endpoint = unbonding_pipeline::SignerEndpoint::new(s.public_key, s.url());
            endpoint.hmac_key = Some(covenant_signer::auth::HmacKey::new(&hmac));
            endpoint
        })
        .collect();
    let mut pipeline = unbonding_pipeline::Config::new(
        run.database_url.clone(),
        rpc_config(run),
        setup.params.clone(),
        endpoints,
    );
    pipeline.poll_interval = Duration::from_millis(500);
    pipeline.db_max_connections = 4;
    pipeline
        .check()
        .context("the devnet's unbonding pipeline config")?;
    {
        let token = shutdown.clone();
        let metrics = registries.pipeline.clone();
        services.push(spawn_service("unbonding pipeline", exits, async move {
            unbonding_pipeline::run_with(pipeline, metrics, token)
                .await
                .context("unbonding pipeline")
        }));
    }
    Ok(services)
}
