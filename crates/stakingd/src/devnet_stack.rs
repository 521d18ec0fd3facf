//! The all-in-one `stakingd devnet`: the embedded chain, the covenant committee, the indexer,
//! the API, the expiry checker and the unbonding pipeline in one process, on SQLite and the
//! in-process queues by default (PostgreSQL / RabbitMQ with `--database-url` / `--amqp-url`).
//!
//! Shutdown (Ctrl-C, SIGTERM, or the end of `--demo --exit-after-demo`) stops the producers
//! first (indexer, expiry checker, pipeline: their unsent events stay in the outbox for the next
//! start), lets the API consume what is already queued, then stops the API, the signers and
//! the chain, so a clean stop loses nothing. After an unclean stop (`kill -9`, power loss) on
//! the in-process queues, the next start re-publishes the events the API had not consumed
//! (`devnet_redelivery`) before any service runs; only the mempool of such a stop is lost.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bitcoin_rpc::{RpcAuth, RpcClient, RpcConfig};
use events::{EventsMetrics, QueueName, Transport};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::devnet_cmd::{DevnetArgs, DEFAULT_DATADIR};
use crate::devnet_committee::{self, ChainAccess, Setup, ACTIVATION_HEIGHT};

const DEFAULT_BLOCK_INTERVAL_SECS: u64 = 5;
/// How long a clean stop waits for the API to consume what is already queued.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// A service task; it reports its end on the exit channel.
pub type Service = JoinHandle<()>;
pub type Exits = mpsc::UnboundedSender<(&'static str, anyhow::Result<()>)>;

pub fn spawn_service<F>(name: &'static str, exits: &Exits, fut: F) -> Service
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let exits = exits.clone();
    tokio::spawn(async move {
        let result = fut.await;
        let _ignored = exits.send((name, result));
    })
}

/// A free loopback port for a listener that takes an address, not a socket (the API).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn database_url(args: &DevnetArgs, datadir: &Path) -> anyhow::Result<String> {
    match &args.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(url.clone())
        }
        Some(url) if url.starts_with("sqlite:") => Ok(url.clone()),
        Some(_) => anyhow::bail!(
            "--database-url must be postgres://user@host/db (or sqlite:PATH); without it the devnet uses SQLite in its data directory"
        ),
        None => Ok(format!("sqlite:{}", datadir.join("stakingd.db").display())),
    }
}

/// Messages published to the in-process queues and not yet finished by a consumer.
fn in_flight(metrics: &EventsMetrics) -> u64 {
    QueueName::ALL
        .into_iter()
        .map(|q| {
            let name = q.as_str();
            metrics
                .published_count(name)
                .saturating_sub(metrics.finished_count(name))
        })
        .sum()
}

/// The registries of the services the devnet runs, served together by `devnet_ops`.
#[derive(Debug)]
pub struct Registries {
    pub indexer: prometheus::Registry,
    pub expiry: prometheus::Registry,
    pub pipeline: unbonding_pipeline::metrics::Metrics,
    signers: Vec<prometheus::Registry>,
}

impl Registries {
    fn new(signers: &[devnet_committee::RunningSigner]) -> anyhow::Result<Self> {
        Ok(Registries {
            indexer: prometheus::Registry::new(),
            expiry: prometheus::Registry::new(),
            pipeline: unbonding_pipeline::metrics::Metrics::new()
                .context("creating the pipeline's metrics")?,
            signers: signers.iter().map(|s| s.registry.clone()).collect(),
        })
    }

    /// Every (service label, registry), the API's (which holds the queue metrics) included.
    fn sources(&self, api: &prometheus::Registry) -> Vec<(String, prometheus::Registry)> {
        let mut all = vec![
            ("indexer".to_owned(), self.indexer.clone()),
            ("api".to_owned(), api.clone()),
            ("expiry-checker".to_owned(), self.expiry.clone()),
            (
                "unbonding-pipeline".to_owned(),
                self.pipeline.registry().clone(),
            ),
        ];
        for (i, registry) in self.signers.iter().enumerate() {
            all.push((format!("signer-{i}"), registry.clone()));
        }
        all
    }
}

/// What the rest of the process needs to know about the running devnet.
#[derive(Debug, Clone)]
pub struct Running {
    pub datadir: PathBuf,
    pub rpc_url: String,
    pub rpc_user: String,
    pub rpc_password: String,
    pub api_url: String,
    /// The Esplora REST's base (`…/api`, `…/signet/api`, `…/ord/outputs` under it).
    pub esplora_url: String,
    pub database_url: String,
    pub queue: String,
    pub block_interval: Option<u64>,
    /// The `/metrics` of every service (set once it listens).
    pub metrics_url: String,
}

impl Running {
    pub fn rpc(&self) -> anyhow::Result<RpcClient> {
        RpcClient::new(RpcConfig::new(
            self.rpc_url.clone(),
            RpcAuth::UserPass {
                user: self.rpc_user.clone(),
                password: self.rpc_password.clone(),
            },
        ))
        .context("cannot make an RPC client for the devnet")
    }
}

fn indexer_config(
    run: &Running,
    setup: &Setup,
    amqp: Option<(&str, &str)>,
) -> anyhow::Result<indexer::IndexerConfig> {
    let queue = match amqp {
        Some((url, prefix)) => {
            format!("url = {url:?}\nqueue_type = \"classic\"\nqueue_prefix = {prefix:?}")
        }
        None => "url = \"inprocess\"".to_owned(),
    };
    let raw = indexer::RawConfig::from_toml(&format!(
        "network = \"regtest\"\nparams = {params:?}\ndatabase_url = {db:?}\nmetrics_addr = \"off\"\n\
         [bitcoind]\nurl = {url:?}\nuser = {user:?}\npassword = {pass:?}\npoll_interval_ms = 250\n\
         [queue]\n{queue}\n",
        params = setup.params_path.display().to_string(),
        db = run.database_url,
        url = run.rpc_url,
        user = run.rpc_user,
        pass = run.rpc_password,
    ))
    .context("building the indexer config")?;
    raw.validate().context("the devnet's indexer config")
}

fn api_config(
    run: &Running,
    setup: &Setup,
    listen: SocketAddr,
    amqp: Option<(&str, &str)>,
) -> anyhow::Result<api::Config> {
    let queue = match amqp {
        Some((url, prefix)) => format!(
            "url = {url:?}\nqueue_type = \"classic\"\nqueue_prefix = {prefix:?}\nrequeue_delay_secs = 2"
        ),
        None => "url = \"in-process\"\nrequeue_delay_secs = 2".to_owned(),
    };
    let config = api::Config::from_toml(&format!(
        "params = {params:?}\nfinality_providers = {fps:?}\n\
         [server]\nlisten = \"{listen}\"\nnetwork = \"regtest\"\n\
         [db]\nurl = {db:?}\nmax_connections = 8\n\
         [queue]\n{queue}\n\
         [ordinals]\nurl = \"{ord}/ord\"\n",
        params = setup.params_path.display().to_string(),
        fps = setup.fps_path.display().to_string(),
        db = run.database_url,
        // The chain's REST stands in for `ord` (no inscriptions on a devnet), so the dApp's
        // `POST /v1/ordinals/verify-utxos` answers as in production.
        ord = run.esplora_url,
    ))
    .context("building the API config")?;
    config.validate().context("the devnet's API config")?;
    Ok(config)
}

async fn connect_transport(
    args: &DevnetArgs,
    metrics: &EventsMetrics,
) -> anyhow::Result<Transport> {
    match &args.amqp_url {
        None => Ok(Transport::InProcess(events::InProcessTransport::new(
            metrics.clone(),
        ))),
        Some(url) => {
            if !url.starts_with("amqp://") {
                anyhow::bail!("--amqp-url must be amqp://user:password@host:port");
            }
            let mut config = events::RabbitMqConfig::from_uri(url.clone());
            config.queue_type = events::QueueType::Classic;
            config.queue_prefix = args.queue_prefix.clone();
            let transport = events::RabbitMqTransport::connect(config, metrics.clone()).await?;
            Ok(Transport::RabbitMq(transport))
        }
    }
}

/// Waits until the API answers its health check (its consumers start with it).
async fn wait_api(api_url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("cannot make an HTTP client")?;
    let started = tokio::time::Instant::now();
    loop {
        match http.get(format!("{api_url}/healthcheck")).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            _ if started.elapsed() > Duration::from_secs(30) => {
                anyhow::bail!("the API at {api_url} did not answer its health check within 30 s")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Runs the all-in-one devnet until Ctrl-C / SIGTERM, a service failure, or the demo's end.
pub async fn run(args: DevnetArgs) -> anyhow::Result<ExitCode> {
    let signal = super::shutdown_on_signal();
    let datadir = args
        .datadir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATADIR));
    // Before anything is written in the data directory: one devnet per directory.
    let mut lock = crate::devnet_lock::DatadirLock::acquire(&datadir)?;
    let block_interval = match args.block_interval {
        None => Some(DEFAULT_BLOCK_INTERVAL_SECS),
        Some(0) => None,
        Some(s) => Some(s),
    };

    // Fail before starting anything when the API's port is taken.
    let api_port = match args.api_port {
        0 => free_port()?,
        p => {
            drop(
                std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p)).with_context(|| {
                    format!(
                    "the API port {p} is in use (another stakingd devnet?): stop that process, \
                     or pass --api-port with another port (0 picks a free one)"
                )
                })?,
            );
            p
        }
    };

    lock.record_holder(&format!(
        "API http://{}",
        SocketAddr::from((Ipv4Addr::LOCALHOST, api_port))
    ))?;

    // One token per stage, stopped in order: producers, consumers, then chain and signers.
    let producers = CancellationToken::new();
    let consumers = CancellationToken::new();
    let base = CancellationToken::new();
    let (exits, mut exited) = mpsc::unbounded_channel();

    let chain = devnet::spawn(
        devnet::DevnetConfig {
            rpc_addr: SocketAddr::new(args.rpc_bind, args.rpc_port),
            rpc_user: args.rpc_user.clone(),
            rpc_password: args.rpc_password.clone(),
            datadir: Some(datadir.join("chain")),
            block_interval: block_interval.map(Duration::from_secs),
            ..devnet::DevnetConfig::default()
        },
        base.clone(),
    )
    .await
    .context(
        "starting the devnet chain (is another devnet using the RPC port? try --rpc-port 0)",
    )?;
    let esplora = devnet::esplora::spawn(
        SocketAddr::from((Ipv4Addr::LOCALHOST, args.esplora_port)),
        std::sync::Arc::clone(&chain.chain),
        base.clone(),
    )
    .await
    .with_context(|| {
        format!(
            "starting the Esplora REST: port {} in use (another stakingd devnet?); \
             pass --esplora-port with another port (0 picks a free one)",
            args.esplora_port
        )
    })?;
    let node = std::sync::Arc::clone(&chain.chain);
    let premined = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let payout = node.faucet_wallet().script_pubkey().clone();
        while node.tip().height + 1 < ACTIVATION_HEIGHT as u32 {
            node.mine_blocks(1, &payout)
                .context("mining up to the activation height")?;
        }
        Ok(())
    });
    premined.await.context("the pre-mining task panicked")??;
    let restored = crate::devnet_mempool::restore(&chain.chain, &datadir)?;
    if restored > 0 {
        tracing::info!(
            restored,
            "mempool transactions saved at the last stop submitted again"
        );
    }

    let setup = devnet_committee::load_or_create(&datadir, args.signers, args.quorum)?;
    let access = ChainAccess {
        rpc_url: chain.rpc_url.clone(),
        user: chain.rpc_user.clone(),
        password: chain.rpc_password.clone(),
    };
    let signers =
        devnet_committee::start_signers(&setup, &access, args.signer_base_port, &base).await?;

    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, api_port));
    let mut run = Running {
        datadir: datadir.clone(),
        rpc_url: chain.rpc_url.clone(),
        rpc_user: chain.rpc_user.clone(),
        rpc_password: chain.rpc_password.clone(),
        api_url: format!("http://{listen}"),
        esplora_url: esplora.url.clone(),
        database_url: database_url(&args, &datadir)?,
        queue: args
            .amqp_url
            .clone()
            .unwrap_or_else(|| "in-process".to_owned()),
        block_interval,
        metrics_url: String::new(),
    };
    let amqp = args
        .amqp_url
        .as_deref()
        .map(|url| (url, args.queue_prefix.as_str()));
    let metrics = EventsMetrics::new();
    let transport = connect_transport(&args, &metrics).await?;

    // The API first, so its consumers are there when the indexer's relay publishes.
    let api_cfg = api_config(&run, &setup, listen, amqp)?;
    // The store's error names the database, the cause, and for a missing PostgreSQL database
    // the `createdb` command that makes it.
    let service = api::Service::build(&api_cfg)
        .await
        .context("starting the API")?;
    // Before any consumer or producer runs: what a `kill -9` left marked sent but unconsumed.
    if matches!(transport, Transport::InProcess(_)) {
        let republished = crate::devnet_redelivery::republish(&run.database_url, &transport)
            .await
            .context("re-publishing events the last run did not deliver")?;
        if republished > 0 {
            tracing::info!(
                republished,
                "events sent but not consumed before an unclean stop published again"
            );
        }
    }
    let registries = Registries::new(&signers)?;
    run.metrics_url = format!(
        "http://{}/metrics",
        crate::devnet_ops::spawn(
            args.metrics_port,
            &registries.sources(&service.metrics.registry),
            run.rpc()?,
            service.store.clone(),
            base.clone(),
        )
        .await?
    );
    let api_task = {
        let transport = transport.clone();
        let token = consumers.clone();
        let consumer = api_cfg.consumer();
        spawn_service("API", &exits, async move {
            api::run_with(service, transport, listen, None, consumer, token).await
        })
    };

    let mut producer_tasks = Vec::new();
    let indexer_cfg = indexer_config(&run, &setup, amqp)?;
    {
        let transport = transport.clone();
        let token = producers.clone();
        let registry = registries.indexer.clone();
        producer_tasks.push(spawn_service("indexer", &exits, async move {
            indexer::run_with(indexer_cfg, Some(transport), &registry, token)
                .await
                .context("indexer")
        }));
    }
    producer_tasks.extend(crate::devnet_services::start(
        &run,
        &setup,
        &signers,
        &transport,
        &registries,
        &producers,
        &exits,
    )?);

    crate::devnet_banner::write_summary(&run, &setup, &signers)?;
    wait_api(&run.api_url).await?;
    // The start-up lines are done: the banner comes last, below them, and from here on the
    // default logs say only what needs acting on.
    crate::logs::quiet_after_start();
    crate::devnet_banner::print_banner(&run, &setup, &signers);

    let mut demo: Option<JoinHandle<anyhow::Result<()>>> = args.demo.then(|| {
        let run = run.clone();
        let params = setup.params.clone();
        let fps = setup.finality_providers.clone();
        let token = signal.clone();
        tokio::spawn(async move { crate::devnet_demo::run(&run, &params, &fps, token).await })
    });

    let failed = |name: &str, result: anyhow::Result<()>| match result {
        Ok(()) => anyhow::anyhow!("the {name} stopped unexpectedly"),
        Err(e) => e.context(format!("the {name} failed")),
    };
    let mut outcome: anyhow::Result<ExitCode> = Ok(ExitCode::SUCCESS);
    let mut keep_serving = true;
    tokio::select! {
        () = signal.cancelled() => keep_serving = false,
        Some((name, result)) = exited.recv() => {
            outcome = Err(failed(name, result));
            keep_serving = false;
        }
        result = async {
            match demo.as_mut() {
                Some(task) => task.await,
                None => std::future::pending().await,
            }
        } => {
            demo = None;
            match result {
                Ok(Ok(())) if args.exit_after_demo => {
                    println!("demo complete; stopping (--exit-after-demo)");
                    keep_serving = false;
                }
                Ok(Ok(())) => println!("demo complete; the devnet keeps running (Ctrl-C stops it)"),
                Ok(Err(e)) => {
                    outcome = Err(e.context("the demo failed"));
                    keep_serving = false;
                }
                Err(e) => {
                    outcome = Err(anyhow::anyhow!("the demo task panicked: {e}"));
                    keep_serving = false;
                }
            }
        }
    }
    if keep_serving {
        tokio::select! {
            () = signal.cancelled() => {}
            Some((name, result)) = exited.recv() => outcome = Err(failed(name, result)),
        }
    }
    if let Some(task) = demo {
        task.abort();
    }

    tracing::info!("stopping: indexer, expiry checker and unbonding pipeline first");
    producers.cancel();
    for task in producer_tasks {
        let _ignored = task.await;
    }
    if matches!(transport, Transport::InProcess(_)) {
        let started = tokio::time::Instant::now();
        while in_flight(&metrics) > 0 && started.elapsed() < DRAIN_TIMEOUT {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = in_flight(&metrics);
        if left > 0 {
            tracing::warn!(left, "queued messages not consumed before the stop (the next start publishes them again)");
        }
    }
    consumers.cancel();
    let _ignored = api_task.await;
    base.cancel();
    for s in signers {
        let _ignored = s.task.await;
    }
    let node = std::sync::Arc::clone(&chain.chain);
    chain.stopped().await;
    let _ignored = esplora.task.await;
    match crate::devnet_mempool::save(&node, &datadir) {
        Ok(0) => {}
        Ok(saved) => tracing::info!(saved, "mempool saved for the next start"),
        Err(e) => tracing::error!(error = %format!("{e:#}"), "cannot save the mempool"),
    }
    while let Ok((name, result)) = exited.try_recv() {
        if let Err(e) = result {
            tracing::error!(error = %format!("{e:#}"), "the {name} ended with an error");
        }
    }
    println!("stakingd devnet stopped");
    outcome
}
