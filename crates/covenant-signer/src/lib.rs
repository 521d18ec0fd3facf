//! One covenant committee member's signing server (`docs/reference.md#signer-wire-format`,
//! `docs/rules.md#signer-checks`).
//!
//! It signs only the canonical unbonding tx of a real, mature V0 staking output that the staker
//! already signed, for a committee key it holds, checked against its own full node and params.
//! Its own trust domain: it depends on `staking-core`, `bitcoin-rpc` and `net` only, never on the
//! store or the queues.
//!
//! [`run`] is the whole service; the `covenant-signer` binary only parses flags, loads the
//! config and params, and passes a shutdown token.

pub mod auth;
pub mod chain;
pub mod config;
pub mod env_secrets;
pub mod error;
pub mod fixture;
pub mod health;
pub mod keyfile;
pub mod keystore;
pub mod metrics;
pub mod request;
pub mod rpc_chain;
pub mod server;
pub mod signer;
pub mod wallet;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bitcoin_rpc::{RpcAuth, RpcClient, RpcConfig};
use staking_core::params::GlobalParams;
use tokio_util::sync::CancellationToken;

use crate::chain::{CachedChain, ChainView};
use crate::config::{Backend, Config, NodeConfig};
use crate::keyfile::CovenantKey;
use crate::keystore::KeyBackend;
use crate::metrics::Metrics;
use crate::rpc_chain::{RpcChain, RpcWallet};
use crate::server::{AppState, HttpOptions};
use crate::signer::Signer;
use crate::wallet::WalletSigner;

/// Where a running server listens (useful when the config asked for port 0), and its metrics
/// (an embedding process such as `stakingd devnet` serves them on its own `/metrics` too).
#[derive(Debug, Clone)]
pub struct Bound {
    pub api: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub registry: prometheus::Registry,
}

/// Builds an RPC client from a `[btc-config]`-style section.
pub fn rpc_client(node: &NodeConfig) -> anyhow::Result<RpcClient> {
    let auth = match (&node.cookie_file, &node.user) {
        (Some(path), _) => RpcAuth::Cookie(path.clone()),
        (None, Some(user)) => RpcAuth::UserPass {
            user: user.clone(),
            password: node.password()?.unwrap_or_default(),
        },
        (None, None) => anyhow::bail!(
            "no RPC credentials configured for {}",
            net::redact_url(&node.url)
        ),
    };
    let mut rpc = RpcConfig::new(node.url.clone(), auth);
    rpc.timeout = Duration::from_secs(node.timeout_seconds);
    rpc.tls.ca_file.clone_from(&node.ca_file);
    RpcClient::new(rpc).with_context(|| {
        format!(
            "cannot create an RPC client for {}",
            net::redact_url(&node.url)
        )
    })
}

/// Opens the configured key backend (unlocks the key file with its passphrase).
pub fn open_backend(config: &Config) -> anyhow::Result<KeyBackend> {
    match config.signer.backend {
        Backend::File => {
            let path = config
                .signer
                .key_file
                .as_ref()
                .context("[signer] key-file is required for backend = \"file\"")?;
            let passphrase = config
                .passphrase()
                .context("cannot read the key passphrase")?;
            let key = CovenantKey::load(path, &passphrase)
                .with_context(|| format!("cannot unlock key file {}", path.display()))?;
            Ok(KeyBackend::File(key))
        }
        Backend::Wallet => {
            let node = config
                .btc_signer_config
                .as_ref()
                .context("[btc-signer-config] is required for backend = \"wallet\"")?;
            Ok(KeyBackend::Wallet(WalletSigner::new(Arc::new(
                RpcWallet::new(rpc_client(node)?),
            ))))
        }
    }
}

/// Loads everything the config names and serves until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    params: GlobalParams,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let backend = open_backend(&config)?;
    if let KeyBackend::File(key) = &backend {
        if let Some(weakness) = key.file_weakness() {
            tracing::warn!(
                "key file {}: {weakness}; re-encrypt it (same key and passphrase) with `covenant-signer rekey --key-file <file> --out <new file>`",
                config
                    .signer
                    .key_file
                    .as_deref()
                    .unwrap_or(std::path::Path::new("?"))
                    .display()
            );
        }
    }
    let chain = CachedChain::new(
        RpcChain::new(rpc_client(&config.btc_config)?),
        config.cache_ttl(),
        config.cache.max_entries,
    );
    serve(config, params, Arc::new(chain), backend, shutdown, |_| {}).await
}

/// Serves with an explicit chain view and backend; `on_bound` learns the bound addresses.
/// Tests and benchmarks use this with a devnet or an in-memory chain.
pub async fn serve(
    config: Config,
    params: GlobalParams,
    chain: Arc<dyn ChainView>,
    backend: KeyBackend,
    shutdown: CancellationToken,
    on_bound: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    if let Some(key) = backend.known_key() {
        let member_of: Vec<u64> = params
            .versions()
            .iter()
            .filter(|v| v.covenant_pks.contains(&key))
            .map(|v| v.version)
            .collect();
        if member_of.is_empty() {
            anyhow::bail!(
                "covenant key {} is in no params version's covenant_pks: wrong key file or wrong params",
                hex::encode(key.serialize())
            );
        }
        tracing::info!(covenant_key = %hex::encode(key.serialize()), versions = %member_of.iter().map(ToString::to_string).collect::<Vec<_>>().join(","), "covenant key unlocked");
    }
    let metrics = Metrics::new().context("cannot register metrics")?;
    let options = HttpOptions {
        max_body_bytes: config.server.max_content_length,
        hmac: config.hmac_key()?,
        rate_limit: config.rate_limit(),
        request_timeout: Duration::from_secs(config.server.request_timeout),
    };
    if options.hmac.is_none() {
        tracing::warn!("HMAC request authentication is off: anyone who reaches the port can ask for signatures");
    }
    let signer = Signer::new(
        params,
        chain,
        backend,
        config.signer_app_config.max_staking_transaction_height,
    );
    let state = Arc::new(AppState::new(signer, metrics.clone(), options));

    let tls = config
        .server
        .tls
        .as_ref()
        .map(net::TlsServer::from_files)
        .transpose()
        .context("[server.tls]")?;
    let api = tokio::net::TcpListener::bind(config.server_addr())
        .await
        .with_context(|| format!("cannot listen on {}", config.server_addr()))?;
    let metrics_task = match config.metrics_addr() {
        Some(addr) => {
            let ready = Arc::clone(&state);
            let ops = net::Ops::builder()
                .registry(metrics.registry())
                .check("node", move || {
                    let state = Arc::clone(&ready);
                    async move {
                        state
                            .signer()
                            .chain_tip()
                            .await
                            .map(drop)
                            .map_err(|e| e.to_string())
                    }
                })
                .build();
            Some(
                ops.spawn(addr, shutdown.clone())
                    .await
                    .with_context(|| format!("cannot serve metrics on {addr}"))?,
            )
        }
        None => None,
    };
    let bound = Bound {
        api: api.local_addr()?,
        metrics: metrics_task.as_ref().map(|(local, _)| *local),
        registry: metrics.registry().clone(),
    };
    let tls_on = tls.is_some();
    match bound.metrics {
        Some(metrics) => {
            tracing::info!(api = %bound.api, %metrics, tls = tls_on, "covenant signer listening");
        }
        None => tracing::info!(api = %bound.api, tls = tls_on, "covenant signer listening"),
    }
    on_bound(bound);

    let pruner = {
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => state.prune_rate_limiter(),
                }
            }
        })
    };
    // Header-read, idle and request timeouts and connection caps: idle connections cannot
    // starve valid signing requests.
    net::serve(
        api,
        server::router(state),
        config.server_limits(),
        tls,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    pruner.await.context("rate-limiter task failed")?;
    if let Some((_, task)) = metrics_task {
        task.await.context("metrics task failed")?;
    }
    Ok(())
}
