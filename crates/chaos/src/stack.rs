//! The back-end's services of one run as `stakingd` processes: indexer, API, expiry checker
//! and, for the disturbed run, the unbonding pipeline, on their own databases (indexer; API,
//! shared by the API, expiry checker and pipeline) and their own queue prefix.

use std::path::Path;

use crate::scenario::Ctx;
use crate::service::Service;

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Where the services reach the chain and what they are configured with.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub rpc_url: &'a str,
    pub params: &'a Path,
    pub fps: &'a Path,
}

/// The services of one run.
#[derive(Debug)]
pub struct Stack {
    pub indexer: Service,
    pub api: Service,
    pub expiry: Service,
    pub pipeline: Option<Service>,
    /// `http://127.0.0.1:PORT` of the API.
    pub base: String,
    /// The API's database (also the expiry checker's and the pipeline's).
    pub api_db: String,
}

/// The pipeline's timing in the harness: a signer call times out after 1 s (so a stopped
/// member is a slow one after 1 s), a claim lasts 6 s (the minimum, three signer timeouts: a
/// killed pipeline's requests are taken over quickly), 5 attempts with backoff 2 s doubling
/// (the defaults) before a request is failed.
pub const SIGNER_TIMEOUT_MS: u64 = 1_000;
pub const LEASE_SECS: u64 = 6;
pub const MAX_ATTEMPTS: u32 = 5;
pub const BACKOFF_BASE_MS: u64 = 2_000;

impl Stack {
    /// Starts the indexer, API and expiry checker; with `signers_toml` (the `[[signers]]`
    /// entries) the unbonding pipeline too.
    pub async fn start(
        ctx: &Ctx,
        dir: &Path,
        label: &str,
        inputs: Inputs<'_>,
        signers_toml: Option<&str>,
    ) -> anyhow::Result<Stack> {
        let Inputs {
            rpc_url,
            params,
            fps,
        } = inputs;
        let idx_db = ctx.pg.create_database(&format!("{label}_idx")).await?;
        let api_db = ctx.pg.create_database(&format!("{label}_api")).await?;
        let amqp = ctx.rabbit.url();
        let bitcoind =
            format!("[bitcoind]\nurl = \"{rpc_url}\"\nuser = \"devnet\"\npassword = \"devnet\"\n");
        let queue = format!("[queue]\nurl = \"{amqp}\"\nqueue_prefix = \"{label}_\"\n");
        let service = |name: &str, toml: String| -> anyhow::Result<Service> {
            let path = dir.join(format!("{label}-{name}.toml"));
            std::fs::write(&path, toml)?;
            let mut s = Service::new(
                &format!("{label}-{name}"),
                &ctx.stakingd,
                &[
                    name.to_owned(),
                    "--config".to_owned(),
                    path.display().to_string(),
                ],
                dir,
            );
            s.start()?;
            Ok(s)
        };
        let indexer = service(
            "indexer",
            format!(
                "network = \"regtest\"\nparams = \"{}\"\ndatabase_url = \"{idx_db}\"\nmetrics_addr = \"off\"\n\
                 {bitcoind}poll_interval_ms = 50\n{queue}",
                params.display()
            ),
        )?;
        let port = free_port()?;
        let api = service(
            "api",
            format!(
                "params = \"{}\"\nfinality_providers = \"{}\"\n\
                 [server]\nlisten = \"127.0.0.1:{port}\"\nnetwork = \"regtest\"\n\
                 [db]\nurl = \"{api_db}\"\nmax_connections = 4\n\
                 {queue}requeue_delay_secs = 1\nmax_retry_attempts = 100\n",
                params.display(),
                fps.display()
            ),
        )?;
        let expiry = service(
            "expiry-checker",
            format!(
                "database_url = \"{api_db}\"\nmax_connections = 2\nnetwork = \"regtest\"\n\
                 poll_interval_ms = 200\nmetrics_addr = \"off\"\n{bitcoind}{queue}"
            ),
        )?;
        let pipeline = match signers_toml {
            Some(signers) => Some(service(
                "unbonding-pipeline",
                format!(
                    "network = \"regtest\"\nparams = \"{}\"\ndatabase_url = \"{api_db}\"\n\
                     db_max_connections = 4\nmetrics_addr = \"off\"\npoll_interval_ms = 200\n\
                     lease_secs = {LEASE_SECS}\nsigner_timeout_ms = {SIGNER_TIMEOUT_MS}\n\
                     max_attempts = {MAX_ATTEMPTS}\nbackoff_base_ms = {BACKOFF_BASE_MS}\n\
                     backoff_max_ms = 30000\n{bitcoind}{signers}",
                    params.display()
                ),
            )?),
            None => None,
        };
        Ok(Stack {
            indexer,
            api,
            expiry,
            pipeline,
            base: format!("http://127.0.0.1:{port}"),
            api_db,
        })
    }

    /// Every service, for faults and supervision.
    pub fn services(&mut self) -> Vec<&mut Service> {
        let mut all = vec![&mut self.indexer, &mut self.api, &mut self.expiry];
        if let Some(p) = self.pipeline.as_mut() {
            all.push(p);
        }
        all
    }

    pub fn supervise(&mut self) -> anyhow::Result<()> {
        for s in self.services() {
            s.supervise()?;
        }
        Ok(())
    }

    /// (SIGKILLs, SIGSTOPs, self-exits) over every service.
    pub fn counts(&mut self) -> (u32, u32, u32) {
        self.services().iter().fold((0, 0, 0), |(k, p, e), s| {
            (k + s.kills, p + s.pauses, e + s.exits)
        })
    }

    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(p) = self.pipeline.as_mut() {
            p.stop().await?;
        }
        self.expiry.stop().await?;
        self.api.stop().await?;
        self.indexer.stop().await
    }
}
