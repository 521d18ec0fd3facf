//! The devnet's one operations endpoint: the metrics of everything the all-in-one process runs
//! on one `/metrics` (each service's series labelled `service="indexer"`, `"api"`,
//! `"expiry-checker"`, `"unbonding-pipeline"`, `"signer-<i>"`), so Prometheus and the
//! dashboards in `deploy/` can be pointed at a local devnet; readiness checks the chain and the
//! database.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;
use bitcoin_rpc::RpcClient;
use prometheus::Registry;
use store::api::ApiStore;
use tokio_util::sync::CancellationToken;

/// Serves `sources` (service label, registry) on `127.0.0.1:port` (0 picks a free port) until
/// `shutdown`; returns the bound address.
pub async fn spawn(
    port: u16,
    sources: &[(String, Registry)],
    rpc: RpcClient,
    store: ApiStore,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let mut ops = net::Ops::builder();
    for (service, registry) in sources {
        ops = ops.labelled_registry(&[("service", service)], registry);
    }
    let ops = ops
        .check("node", move || {
            let rpc = rpc.clone();
            async move {
                rpc.get_block_count()
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        })
        .check("database", move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        })
        .build();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (local, _task) = ops.spawn(addr, shutdown).await.with_context(|| {
        format!("the metrics port {port} is in use: pass --metrics-port with another port (0 picks a free one)")
    })?;
    Ok(local)
}
