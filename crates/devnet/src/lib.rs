//! An embedded Bitcoin regtest chain with Bitcoin Core's script rules and its RPC server.
//!
//! * [`Node`]: the chain in-process — blocks with real serialisation and regtest proof of work,
//!   a UTXO set, coinbase maturity, absolute and BIP68 relative locktimes, fee / dust /
//!   double-spend policy, and every input's script checked by libbitcoinconsensus (Bitcoin
//!   Core's interpreter) with P2SH, witness, taproot, CLTV and CSV flags.
//! * [`spawn`]: the same node behind a bitcoind-compatible JSON-RPC server (HTTP, basic auth,
//!   loopback), for any tool that speaks to Bitcoin Core.
//! * [`esplora`]: an Esplora / mempool.space-compatible REST over the same node, from an
//!   address index kept as blocks connect and disconnect ([`script_index`]).
//! * [`wallet`]: a single-key wallet that builds and signs real transactions for tests.
//! * [`generator`]: chains of mainnet-sized blocks for benchmarks.
//!
//! Differences from Bitcoin Core are listed in the crate README.

pub mod chain;
pub mod checks;
pub mod coins;
pub mod error;
pub mod esplora;
pub mod generator;
pub mod mempool;
pub mod miner;
pub mod node;
pub mod params;
pub mod rpc;
pub mod script_index;
pub mod store;
pub mod wallet;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::{BlockReject, DevnetError, RejectReason, TxReject};
pub use mempool::Accepted;
pub use node::{Node, Tip};

/// How to run a devnet.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Where the RPC server listens; port 0 picks a free port. Keep it on loopback.
    pub rpc_addr: SocketAddr,
    /// RPC user name (HTTP basic auth).
    pub rpc_user: String,
    /// RPC password.
    pub rpc_password: String,
    /// Data directory; `None` keeps the chain in memory only.
    pub datadir: Option<PathBuf>,
    /// Mine one block (to the faucet) every interval; `None` mines only on request.
    pub block_interval: Option<Duration>,
    /// Connection protections of the RPC server ([`rpc::server::default_limits`]).
    pub limits: net::ServerLimits,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            rpc_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            rpc_user: "devnet".to_owned(),
            rpc_password: "devnet".to_owned(),
            datadir: None,
            block_interval: None,
            limits: rpc::server::default_limits(),
        }
    }
}

/// A running devnet.
#[derive(Debug)]
pub struct DevnetHandle {
    /// `http://127.0.0.1:PORT/`.
    pub rpc_url: String,
    /// The address actually bound.
    pub rpc_addr: SocketAddr,
    /// RPC user.
    pub rpc_user: String,
    /// RPC password.
    pub rpc_password: String,
    /// The node, for in-process use by tests and benches.
    pub chain: Arc<Node>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl DevnetHandle {
    /// Waits until the server and the block timer have stopped (after the shutdown token
    /// passed to [`spawn`] is cancelled).
    pub async fn stopped(self) {
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "devnet task ended abnormally");
            }
        }
    }

    /// Cancels the shutdown token and waits for the server to stop.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.stopped().await;
    }
}

/// Opens (or creates) the chain and starts its RPC server. Cancelling `shutdown` stops it.
pub async fn spawn(
    config: DevnetConfig,
    shutdown: CancellationToken,
) -> Result<DevnetHandle, DevnetError> {
    let node = match &config.datadir {
        Some(dir) => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || Node::open(&dir))
                .await
                .map_err(|e| DevnetError::Faucet(format!("chain loader panicked: {e}")))??
        }
        None => Node::in_memory(),
    };
    let node = Arc::new(node);
    let listener = tokio::net::TcpListener::bind(config.rpc_addr)
        .await
        .map_err(|source| DevnetError::Bind {
            addr: config.rpc_addr,
            source,
        })?;
    let rpc_addr = listener.local_addr().map_err(|source| DevnetError::Bind {
        addr: config.rpc_addr,
        source,
    })?;
    let auth = rpc::server::Auth::new(&config.rpc_user, &config.rpc_password);
    let server = rpc::server::serve(
        listener,
        Arc::clone(&node),
        auth,
        config.limits.clone(),
        shutdown.clone(),
    );
    let mut tasks = vec![tokio::spawn(server)];
    if let Some(interval) = config.block_interval {
        let node = Arc::clone(&node);
        let token = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    _ = ticker.tick() => {
                        let node = Arc::clone(&node);
                        let mined = tokio::task::spawn_blocking(move || {
                            let payout = node.faucet_wallet().script_pubkey().clone();
                            node.mine_blocks(1, &payout)
                        })
                        .await;
                        match mined {
                            Ok(Ok(hashes)) => tracing::debug!(?hashes, "mined on timer"),
                            Ok(Err(e)) => tracing::error!(error = %e, "timer mining failed"),
                            Err(e) => tracing::error!(error = %e, "timer mining panicked"),
                        }
                    }
                }
            }
        }));
    }
    Ok(DevnetHandle {
        rpc_url: format!("http://{rpc_addr}/"),
        rpc_addr,
        rpc_user: config.rpc_user,
        rpc_password: config.rpc_password,
        chain: node,
        shutdown,
        tasks,
    })
}
