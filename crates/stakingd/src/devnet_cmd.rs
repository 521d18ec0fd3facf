//! `stakingd devnet`: the all-in-one devnet (embedded chain, covenant committee, indexer, API,
//! expiry checker and unbonding pipeline in one process), or with `--chain-only` the chain and
//! its RPC server alone.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

/// Default data directory of the all-in-one devnet (relative to the working directory).
pub const DEFAULT_DATADIR: &str = "devnet-data";

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    stakingd devnet                         # everything, data in ./devnet-data, API on 127.0.0.1:8092\n  \
    stakingd devnet --demo                  # ... and walk demo stakers through stake, unbond, expiry, withdraw\n  \
    stakingd devnet --demo --exit-after-demo --datadir /tmp/d --api-port 0 --rpc-port 0\n  \
    stakingd devnet --database-url postgres://postgres@127.0.0.1/devnet --amqp-url amqp://guest:guest@127.0.0.1:5672\n  \
    stakingd devnet --chain-only            # the chain and its RPC server alone (in memory without --datadir)\n\n\
    Restarting with the same --datadir resumes the chain, the database and the committee's keys.")]
pub struct DevnetArgs {
    /// Run only the chain and its RPC server (no committee, indexer, API or other services).
    #[arg(long)]
    chain_only: bool,
    /// Chain RPC port (0 picks a free one).
    #[arg(long, default_value_t = 18443, env = "STAKINGD_DEVNET_RPC_PORT")]
    pub rpc_port: u16,
    /// RPC bind address. Keep it on loopback: the devnet is for local tools and tests.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST), env = "STAKINGD_DEVNET_RPC_BIND")]
    pub rpc_bind: IpAddr,
    /// RPC user.
    #[arg(long, default_value = "devnet", env = "STAKINGD_DEVNET_RPC_USER")]
    pub rpc_user: String,
    /// RPC password.
    #[arg(
        long,
        default_value = "devnet",
        env = "STAKINGD_DEVNET_RPC_PASSWORD",
        hide_env_values = true
    )]
    pub rpc_password: String,
    /// Data directory (chain, database, committee keys, generated config). All-in-one default:
    /// ./devnet-data; with --chain-only and no --datadir the chain lives in memory.
    #[arg(long, env = "STAKINGD_DEVNET_DATADIR")]
    pub datadir: Option<PathBuf>,
    /// Mine one block every this many seconds so time moves (0: only on request). Default: 5
    /// for the all-in-one devnet, 0 with --chain-only.
    #[arg(long, value_name = "SECS")]
    pub block_interval: Option<u64>,
    /// Esplora / mempool.space-compatible REST port on 127.0.0.1 (0 picks a free one): what
    /// the staking dApp takes as NEXT_PUBLIC_MEMPOOL_API and Esplora wallets as `URL/api`.
    #[arg(long, default_value_t = 8093, env = "STAKINGD_DEVNET_ESPLORA_PORT")]
    pub esplora_port: u16,
    /// Staking API port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8092, env = "STAKINGD_DEVNET_API_PORT")]
    pub api_port: u16,
    /// Port on 127.0.0.1 of the one `/metrics` (and `/health/ready`) of every service the
    /// devnet runs (0 picks a free one).
    #[arg(long, default_value_t = 0, env = "STAKINGD_DEVNET_METRICS_PORT")]
    pub metrics_port: u16,
    /// Covenant committee size (each member is a signing server on its own loopback port).
    /// Fixed when the data directory is created.
    #[arg(long, value_name = "N")]
    pub signers: Option<usize>,
    /// Covenant signatures an unbonding needs. Fixed when the data directory is created.
    #[arg(long, value_name = "Q")]
    pub quorum: Option<u32>,
    /// First port of the covenant signers (member i listens on PORT + i); 0 picks free ports.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub signer_base_port: u16,
    /// Fund demo stakers and walk them through stake → unbond → withdraw and
    /// stake → expiry → withdraw, checking each state through the API.
    #[arg(long)]
    pub demo: bool,
    /// With --demo: stop everything and exit (0 on success) when the demo is complete.
    #[arg(long, requires = "demo")]
    pub exit_after_demo: bool,
    /// Use PostgreSQL instead of SQLite in the data directory (postgres://user@host/db).
    #[arg(long, env = "STAKINGD_DEVNET_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Use RabbitMQ instead of the in-process queues (amqp://user:password@host:port). The
    /// in-process queues live in memory: a clean stop (Ctrl-C, SIGTERM) first lets the API
    /// consume everything queued; after a crash (kill -9) the next start re-publishes, before
    /// anything runs, every event the API had not consumed, so no event is lost either way
    /// (the mempool of a crash is lost, as in Bitcoin Core).
    #[arg(long, env = "STAKINGD_DEVNET_AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,
    /// Prefix of every RabbitMQ queue name (empty: the reference names).
    #[arg(long, default_value = "", requires = "amqp_url")]
    pub queue_prefix: String,
    /// (--chain-only) Before serving, append this many mainnet-sized blocks.
    #[arg(long, value_name = "N", default_value_t = 0)]
    generate_blocks: u32,
    /// (--chain-only) Transactions per generated block.
    #[arg(long, default_value_t = 2_500)]
    generate_txs_per_block: usize,
}

pub async fn run(args: DevnetArgs) -> anyhow::Result<ExitCode> {
    if !args.rpc_bind.is_loopback() {
        tracing::warn!(bind = %args.rpc_bind, "devnet RPC is listening beyond loopback");
    }
    if args.chain_only {
        chain_only(args).await
    } else {
        crate::devnet_stack::run(args).await
    }
}

async fn chain_only(args: DevnetArgs) -> anyhow::Result<ExitCode> {
    let config = devnet::DevnetConfig {
        rpc_addr: SocketAddr::new(args.rpc_bind, args.rpc_port),
        rpc_user: args.rpc_user,
        rpc_password: args.rpc_password,
        datadir: args.datadir.clone(),
        block_interval: args
            .block_interval
            .filter(|s| *s > 0)
            .map(Duration::from_secs),
        ..devnet::DevnetConfig::default()
    };
    // Held until the chain has stopped: one process per data directory.
    let mut lock = match &args.datadir {
        Some(dir) => Some(crate::devnet_lock::DatadirLock::acquire(dir)?),
        None => None,
    };
    let shutdown = super::shutdown_on_signal();
    let handle = devnet::spawn(config, shutdown.clone())
        .await
        .context("starting the devnet")?;
    if args.generate_blocks > 0 {
        let node = std::sync::Arc::clone(&handle.chain);
        let gen_config = devnet::generator::GeneratorConfig {
            blocks: args.generate_blocks,
            txs_per_block: args.generate_txs_per_block,
        };
        let started = std::time::Instant::now();
        let generated =
            tokio::task::spawn_blocking(move || devnet::generator::generate(&node, gen_config))
                .await
                .context("block generator panicked")?
                .context("generating blocks")?;
        tracing::info!(
            blocks = generated.blocks.len(),
            txs = generated.txs,
            mb = generated.bytes as f64 / 1e6,
            secs = started.elapsed().as_secs_f64(),
            "generated mainnet-sized blocks"
        );
    }
    if let Some(lock) = lock.as_mut() {
        lock.record_holder(&format!("RPC {}", handle.rpc_url))?;
    }
    let esplora = devnet::esplora::spawn(
        SocketAddr::from((Ipv4Addr::LOCALHOST, args.esplora_port)),
        std::sync::Arc::clone(&handle.chain),
        shutdown.clone(),
    )
    .await
    .context("starting the Esplora REST (is its port in use? try --esplora-port 0)")?;
    let tip = handle.chain.tip();
    println!(
        "devnet (regtest) chain at height {} ({})",
        tip.height, tip.hash
    );
    println!("RPC URL:      {}", handle.rpc_url);
    println!("RPC user:     {}", handle.rpc_user);
    println!("RPC password: {}", handle.rpc_password);
    println!(
        "Esplora REST: {0}/api (also {0}/signet/api; bcrt1… and tb1… addresses)",
        esplora.url
    );
    println!(
        "try: curl -s --user {}:{} -d '{{\"method\":\"getblockchaininfo\",\"params\":[],\"id\":1}}' {}",
        handle.rpc_user, handle.rpc_password, handle.rpc_url
    );
    match &args.datadir {
        Some(d) => println!("data directory: {}", d.display()),
        None => println!("no --datadir: the chain lives in memory and is gone on exit"),
    }
    println!("faucet: {{\"method\":\"faucet\",\"params\":[\"<bcrt1… or tb1… address>\", <BTC amount>, <confirm=true>]}}");
    shutdown.cancelled().await;
    handle.stopped().await;
    if let Err(e) = esplora.task.await {
        tracing::error!(error = %e, "the Esplora REST ended abnormally");
    }
    Ok(ExitCode::SUCCESS)
}
