//! One scenario: a fresh devnet chain, the indexer and the API as `stakingd` processes on the
//! private PostgreSQL and RabbitMQ, load every tick, one kind of fault injected at random ticks,
//! then settling and the comparison with an undisturbed indexer + API run over the same chain.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bitcoin_rpc::{RpcAuth, RpcClient, RpcConfig};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::infra::{PrivatePostgres, PrivateRabbit};
use crate::load::{Fixture, Load, DEPTH};
use crate::observe::{differences, ledger, settle, Snapshot};
use crate::service::Service;

/// The kinds of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// SIGKILL the indexer or the API (chosen at random), restart it after 0–1.5 s.
    Kill,
    /// Shut the RabbitMQ node down for `--outage-secs` (30 by default), then start it again.
    Rabbitmq,
    /// Stop PostgreSQL in immediate mode (crash recovery on start), start it after 3 s.
    Postgres,
    /// Reorg the devnet by 1 to 12 blocks (invalidateblock + a longer branch).
    Reorg,
}

impl Fault {
    pub const ALL: [Fault; 4] = [Fault::Kill, Fault::Rabbitmq, Fault::Postgres, Fault::Reorg];

    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Rabbitmq => "rabbitmq",
            Fault::Postgres => "postgres",
            Fault::Reorg => "reorg",
        }
    }
}

/// How long and how hard.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ticks: u32,
    pub tick: Duration,
    /// Fault injections per scenario (the RabbitMQ outage is capped by the run's length).
    pub faults: u32,
    pub outage: Duration,
    pub settle_timeout: Duration,
    pub seed: u64,
}

/// Shared by every scenario of a run.
#[derive(Debug)]
pub struct Ctx {
    pub stakingd: PathBuf,
    pub dir: PathBuf,
    pub pg: PrivatePostgres,
    pub rabbit: PrivateRabbit,
}

/// What one scenario did and saw.
#[derive(Debug, Default)]
pub struct Report {
    pub fault: String,
    pub injected: Vec<String>,
    pub stakes: u32,
    pub unbondings: u32,
    pub rejected: u32,
    pub delegations: usize,
    pub unbonded: usize,
    pub kills: u32,
    pub exits: u32,
    pub settle: Duration,
    pub reference_settle: Duration,
    pub wall: Duration,
    pub failure: Option<String>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// An indexer + API pair on their own databases and queue prefix.
struct Pair {
    indexer: Service,
    api: Service,
    base: String,
}

impl Pair {
    async fn start(
        ctx: &Ctx,
        dir: &Path,
        label: &str,
        rpc_url: &str,
        params: &Path,
        fps: &Path,
    ) -> anyhow::Result<Pair> {
        let idx_db = ctx.pg.create_database(&format!("{label}_idx")).await?;
        let api_db = ctx.pg.create_database(&format!("{label}_api")).await?;
        let amqp = ctx.rabbit.url();
        let indexer_toml = dir.join(format!("{label}-indexer.toml"));
        std::fs::write(
            &indexer_toml,
            format!(
                "network = \"regtest\"\nparams = \"{}\"\ndatabase_url = \"{idx_db}\"\nmetrics_addr = \"off\"\n\
                 [bitcoind]\nurl = \"{rpc_url}\"\nuser = \"devnet\"\npassword = \"devnet\"\npoll_interval_ms = 50\n\
                 [queue]\nurl = \"{amqp}\"\nqueue_prefix = \"{label}_\"\n",
                params.display()
            ),
        )?;
        let port = free_port()?;
        let api_toml = dir.join(format!("{label}-api.toml"));
        std::fs::write(
            &api_toml,
            format!(
                "params = \"{}\"\nfinality_providers = \"{}\"\n\
                 [server]\nlisten = \"127.0.0.1:{port}\"\nnetwork = \"regtest\"\n\
                 [db]\nurl = \"{api_db}\"\nmax_connections = 4\n\
                 [queue]\nurl = \"{amqp}\"\nqueue_prefix = \"{label}_\"\nrequeue_delay_secs = 1\nmax_retry_attempts = 100\n",
                params.display(),
                fps.display()
            ),
        )?;
        let mut indexer = Service::new(
            &format!("{label}-indexer"),
            &ctx.stakingd,
            &[
                "indexer".to_owned(),
                "--config".to_owned(),
                indexer_toml.display().to_string(),
            ],
            dir,
        );
        let mut api = Service::new(
            &format!("{label}-api"),
            &ctx.stakingd,
            &[
                "api".to_owned(),
                "--config".to_owned(),
                api_toml.display().to_string(),
            ],
            dir,
        );
        indexer.start()?;
        api.start()?;
        Ok(Pair {
            indexer,
            api,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    fn supervise(&mut self) -> anyhow::Result<()> {
        self.indexer.supervise()?;
        self.api.supervise()
    }

    async fn stop(&mut self) -> anyhow::Result<()> {
        self.api.stop().await?;
        self.indexer.stop().await
    }
}

async fn start_devnet(ctx: &Ctx, dir: &Path) -> anyhow::Result<(Service, RpcClient)> {
    let port = free_port()?;
    let mut devnet = Service::new(
        "devnet",
        &ctx.stakingd,
        &[
            "devnet".to_owned(),
            "--chain-only".to_owned(),
            "--rpc-port".to_owned(),
            port.to_string(),
        ],
        dir,
    );
    devnet.start()?;
    let rpc = RpcClient::new(RpcConfig::new(
        format!("http://127.0.0.1:{port}"),
        RpcAuth::UserPass {
            user: "devnet".to_owned(),
            password: "devnet".to_owned(),
        },
    ))?;
    let started = Instant::now();
    while rpc.get_block_count().await.is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "the devnet did not answer RPC within 60 s (see its log in {})",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((devnet, rpc))
}

/// Runs one scenario; a failed check is reported in `Report::failure`, an `Err` is a harness
/// problem (could not start something).
pub async fn run(ctx: &mut Ctx, fault: Fault, plan: &Plan) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut report = Report {
        fault: fault.name().to_owned(),
        ..Report::default()
    };
    let label = format!("{}_{}", fault.name(), plan.seed);
    let dir = ctx.dir.join(&label);
    std::fs::create_dir_all(&dir)?;
    let mut rng = StdRng::seed_from_u64(plan.seed ^ (fault as u64).wrapping_mul(0x9e37_79b9));
    let fx = Fixture::new()?;
    let params = dir.join("params.json");
    std::fs::write(&params, fx.params.to_json().to_string())?;
    let fps = dir.join("finality-providers.json");
    std::fs::write(&fps, fx.fp_file())?;

    let (mut devnet, rpc) = start_devnet(ctx, &dir).await?;
    let rpc_url = rpc.url().to_owned();
    let mut load = Load::setup(&fx, &rpc).await?;
    let mut pair = Pair::start(ctx, &dir, &label, &rpc_url, &params, &fps).await?;

    // Fault ticks: distinct, random, not in the first 5 ticks (services warming up).
    let mut ticks: Vec<u32> = (5..plan.ticks).collect();
    ticks.shuffle(&mut rng);
    let faults = match fault {
        Fault::Rabbitmq => plan.faults.min(1 + plan.ticks / 200),
        _ => plan.faults,
    };
    let mut fault_ticks: Vec<u32> = ticks.into_iter().take(faults as usize).collect();
    fault_ticks.sort_unstable();
    let mut outage_until: Option<Instant> = None;
    let mut restart_at: Option<(Instant, bool)> = None;

    let mut tick = 0;
    while tick < plan.ticks || outage_until.is_some() || restart_at.is_some() {
        if tick < plan.ticks {
            load.tick(&fx, &rpc, &mut rng)
                .await
                .with_context(|| format!("load at tick {tick}"))?;
            Load::mine(&fx, &rpc, 1)
                .await
                .with_context(|| format!("mining at tick {tick}"))?;
        }
        if fault == Fault::Kill && restart_at.is_some() {
            // One service down at a time: a kill due now waits for the pending restart.
            if let Some(t) = fault_ticks.first_mut().filter(|t| **t <= tick) {
                *t += 1;
            }
        }
        // `<=`: a deferred kill can land on the tick of the next one; neither may be skipped.
        if fault_ticks.first().is_some_and(|t| *t <= tick) {
            fault_ticks.remove(0);
            match fault {
                Fault::Kill => {
                    let on_api = rng.gen_bool(0.5);
                    let s = if on_api {
                        &mut pair.api
                    } else {
                        &mut pair.indexer
                    };
                    s.kill().await?;
                    let delay = Duration::from_millis(rng.gen_range(0..1_500));
                    report.injected.push(format!(
                        "tick {tick}: SIGKILL {} (restart after {} ms)",
                        s.name,
                        delay.as_millis()
                    ));
                    restart_at = Some((Instant::now() + delay, on_api));
                }
                Fault::Rabbitmq => {
                    ctx.rabbit.down().await?;
                    report.injected.push(format!(
                        "tick {tick}: RabbitMQ down for {}s",
                        plan.outage.as_secs()
                    ));
                    outage_until = Some(Instant::now() + plan.outage);
                }
                Fault::Postgres => {
                    ctx.pg.restart(Duration::from_secs(3)).await?;
                    report.injected.push(format!(
                        "tick {tick}: PostgreSQL stopped (immediate) for 3s"
                    ));
                }
                Fault::Reorg => {
                    let depth = rng.gen_range(1..=12);
                    load.reorg(&rpc, depth)
                        .await
                        .with_context(|| format!("reorg of depth {depth} at tick {tick}"))?;
                    report
                        .injected
                        .push(format!("tick {tick}: reorg of depth {depth}"));
                }
            }
        }
        if let Some(until) = outage_until {
            if Instant::now() >= until {
                ctx.rabbit.up().await?;
                outage_until = None;
            }
        }
        match restart_at {
            Some((at, on_api)) if Instant::now() >= at => {
                if on_api {
                    pair.api.start()?;
                } else {
                    pair.indexer.start()?;
                }
                restart_at = None;
            }
            Some(_) => {}
            None => pair.supervise()?,
        }
        tokio::time::sleep(plan.tick).await;
        tick += 1;
    }

    // Bury the load under the confirmation depth, then wait for the system to settle.
    Load::mine(&fx, &rpc, u32::from(DEPTH) + 3).await?;
    let ledger = ledger(&rpc, &load).await?;
    report.stakes = load.sent_stakes;
    report.unbondings = load.sent_unbondings;
    report.rejected = load.rejected;
    report.delegations = ledger.states.len();
    report.unbonded = ledger
        .states
        .values()
        .filter(|s| **s == "unbonding")
        .count();
    let disturbed = settle_supervised(&mut pair, &fx, &ledger, plan.settle_timeout).await;
    report.kills = pair.indexer.kills + pair.api.kills;
    report.exits = pair.indexer.exits + pair.api.exits;
    pair.stop().await?;

    // The undisturbed run: a fresh indexer + API over the same, now still, chain.
    let reference_label = format!("{label}_ref");
    let mut reference = Pair::start(ctx, &dir, &reference_label, &rpc_url, &params, &fps).await?;
    let undisturbed = settle_supervised(&mut reference, &fx, &ledger, plan.settle_timeout).await;
    reference.stop().await?;
    devnet.stop().await?;

    match (disturbed, undisturbed) {
        (Ok((a, t_a)), Ok((b, t_b))) => {
            report.settle = t_a;
            report.reference_settle = t_b;
            let diff = differences(&a, &b);
            if !diff.is_empty() {
                report.failure = Some(format!(
                    "the disturbed run differs from the undisturbed one in {} place(s): {:#?}",
                    diff.len(),
                    diff.iter().take(10).collect::<Vec<_>>()
                ));
            }
        }
        (Err(e), Ok(_)) => {
            report.failure = Some(format!(
                "disturbed run (the undisturbed run settled): {e:#}"
            ))
        }
        (Ok(_), Err(e)) => report.failure = Some(format!("undisturbed run: {e:#}")),
        (Err(a), Err(b)) => {
            report.failure = Some(format!(
                "neither run settled; disturbed: {a:#}; undisturbed: {b:#}"
            ))
        }
    }
    report.wall = started.elapsed();
    Ok(report)
}

/// [`settle`] while still restarting services that exit.
async fn settle_supervised(
    pair: &mut Pair,
    fx: &Fixture,
    ledger: &crate::observe::Ledger,
    timeout: Duration,
) -> anyhow::Result<(Snapshot, Duration)> {
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    loop {
        pair.supervise()?;
        let left = timeout.saturating_sub(started.elapsed());
        let step = left.min(Duration::from_secs(5));
        match settle(&http, &pair.base, fx, ledger, step).await {
            Ok((s, _)) => return Ok((s, started.elapsed())),
            Err(e) if started.elapsed() >= timeout => {
                return Err(e.context(format!("not settled after {}s", timeout.as_secs())))
            }
            Err(_) => {}
        }
    }
}
