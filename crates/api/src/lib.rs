//! The staking API (v1, dApp-compatible) and its event consumers.
//!
//! * [`run`]: the `stakingd api` service — HTTP server, Prometheus listener and one consumer
//!   per queue, until the shutdown token fires.
//! * [`consumer::Consumer`]: applies queue messages to [`store::api::ApiStore`] (delegation
//!   state machine, stats, idempotency) in one transaction each.
//! * [`server::router`]: the axum application (for tests and embedding).
//!
//! Differences from the reference (design decisions): the state filter holds on every page;
//! `pending_tvl` never underflows; sorts are tie-broken so pagination is exact; timestamps are
//! UTC; `active_tvl` comes from our own counters, which fall on any exit from `active`; expiry
//! during `unbonding_requested` makes the delegation `unbonded`.

pub mod config;
pub mod consumer;
pub mod error;
pub mod handlers;
pub mod layers;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod ordinals;
pub mod query;
pub mod server;
pub mod state;
pub mod stats_cache;
pub mod unbonding;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use staking_core::params::GlobalParams;
use store::api::ApiStore;
use store::{Db, DbOptions};
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// Loads params by preset name or file path.
pub fn load_params(spec: &str) -> anyhow::Result<GlobalParams> {
    if let Some(p) = GlobalParams::preset(spec) {
        return Ok(p);
    }
    let text =
        std::fs::read_to_string(spec).with_context(|| format!("reading params file {spec}"))?;
    let (params, warnings) =
        GlobalParams::from_json(&text).with_context(|| format!("params file {spec} is invalid"))?;
    for w in warnings {
        tracing::warn!(warning = %w, "params file");
    }
    Ok(params)
}

/// Everything built from a config, ready to serve.
#[derive(Debug)]
pub struct Service {
    pub store: ApiStore,
    pub state: state::AppState,
    pub settings: server::ServerSettings,
    pub metrics: metrics::Metrics,
}

impl Service {
    /// Validates the config, loads files, connects and migrates the database.
    pub async fn build(config: &Config) -> anyhow::Result<Service> {
        config.validate()?;
        let params = load_params(&config.params)?;
        let fps = state::load_finality_providers(&config.finality_providers)?;
        let db = Db::connect(&DbOptions {
            url: config.db.url.clone(),
            max_connections: config.db.max_connections,
        })
        .await
        .context("connecting to the database")?;
        db.migrate().await.context("migrating the database")?;
        let store = db.api();
        let ordinals = config
            .ordinals
            .as_ref()
            .map(ordinals::Ordinals::new)
            .transpose()?;
        let state = state::AppState::new(
            store.clone(),
            params,
            fps,
            config.server.network,
            config.server.page_size,
            ordinals,
        );
        let settings = server::ServerSettings {
            allowed_origins: config.server.allowed_origins.clone(),
            max_content_length: config.server.max_content_length,
            request_timeout: Duration::from_secs(config.server.request_timeout_secs),
            rate_limit_per_second: config.server.rate_limit_per_second,
            terms_enabled: config.terms_acceptance_logging.enabled,
            limits: config.server.limits(),
            tls: config.server.tls.clone(),
        };
        Ok(Service {
            store,
            state,
            settings,
            metrics: metrics::Metrics::new(),
        })
    }

    /// The operations endpoint (`/metrics`, `/health`, `/health/live`, `/health/ready`): the
    /// API's registry, and readiness of the database and (RabbitMQ) the broker. `/healthcheck`
    /// on the API's own port keeps the reference's meaning.
    pub fn ops(&self, transport: &events::Transport) -> net::Ops {
        let store = self.store.clone();
        let mut ops =
            net::Ops::builder()
                .registry(&self.metrics.registry)
                .check("database", move || {
                    let store = store.clone();
                    async move { store.ping().await.map_err(|e| e.to_string()) }
                });
        if let events::Transport::RabbitMq(_) = transport {
            let transport = transport.clone();
            ops = ops.check("broker", move || {
                let transport = transport.clone();
                async move { transport.ping().await.map_err(|e| e.to_string()) }
            });
        }
        ops.build()
    }

    /// The consumer over this service's store.
    pub fn consumer(&self) -> consumer::Consumer {
        consumer::Consumer {
            store: self.store.clone(),
            network: self.state.inner.network,
        }
    }
}

/// Connects the configured transport (`in-process` gives a fresh, private one).
pub async fn connect_transport(config: &Config) -> anyhow::Result<events::Transport> {
    if config.queue.url == "in-process" {
        return Ok(events::Transport::InProcess(
            events::InProcessTransport::new(events::EventsMetrics::default()),
        ));
    }
    let mut rc = events::RabbitMqConfig::from_uri(config.queue.url.clone());
    rc.queue_type = config.queue.queue_type;
    rc.queue_prefix = config.queue.queue_prefix.clone();
    let t = events::RabbitMqTransport::connect(rc, events::EventsMetrics::default())
        .await
        .context("connecting to RabbitMQ")?;
    Ok(events::Transport::RabbitMq(t))
}

/// Serves the API and consumes the queues until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let service = Service::build(&config).await?;
    let transport = connect_transport(&config).await?;
    run_with(
        service,
        transport,
        config.server.listen,
        config.server.metrics_listen,
        config.consumer(),
        shutdown,
    )
    .await
}

/// [`run`] with a given transport and addresses (tests, devnet).
pub async fn run_with(
    service: Service,
    transport: events::Transport,
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    consumer_config: events::ConsumerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tls = service
        .settings
        .tls
        .as_ref()
        .map(net::TlsServer::from_files)
        .transpose()
        .context("[server.tls]")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the API to {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, tls = tls.is_some(), "staking API listening");
    let app = server::router(
        service.state.clone(),
        &service.settings,
        service.metrics.clone(),
    );
    // Header-read, idle and request timeouts and connection caps: idle connections cannot
    // take the API offline.
    let http = tokio::spawn(net::serve(
        listener,
        app,
        service.settings.limits.clone(),
        tls,
        shutdown.clone(),
    ));
    if let Err(e) = transport.metrics().register(&service.metrics.registry) {
        // Only when the caller registered the transport's metrics in this registry already.
        tracing::debug!(error = %e, "queue metrics not registered again");
    }
    if let Some(addr) = metrics_listen {
        let (local, _) = service
            .ops(&transport)
            .spawn(addr, shutdown.clone())
            .await
            .with_context(|| format!("serving metrics on {addr}"))?;
        tracing::info!(%local, "metrics at /metrics, readiness at /health/ready");
    }
    let consumers = consumer::run_consumers(
        service.consumer(),
        transport,
        consumer_config,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    http.await.context("HTTP server task")?;
    consumers.context("queue consumer")?;
    Ok(())
}
