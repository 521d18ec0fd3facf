//! One scenario: a fresh devnet chain, the covenant committee and every service as processes on
//! the private PostgreSQL and RabbitMQ, load every tick, one kind of fault injected at random
//! ticks; then the pipeline drains, the load is buried under the confirmation depth, the system
//! must settle to the chain's ledger, and its API state must equal an undisturbed run's (a fresh
//! indexer, API and expiry checker over the same, now still, chain).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bitcoin_rpc::{RpcAuth, RpcClient, RpcConfig};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::committee::Committee;
use crate::faults::{self, Deck, Fault};
use crate::infra::{PrivatePostgres, PrivateRabbit};
use crate::load::{Fixture, Load, DEPTH, MAX_REORG};
use crate::observe::{
    chain_problems, differences, ledger, request_problems, request_states, settle, Ledger, Snapshot,
};
use crate::requests::Requests;
use crate::service::Service;
use crate::stack::{Inputs, Stack};

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
    pub signer: PathBuf,
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
    pub short_stakes: u32,
    pub unbondings: u32,
    pub requests_accepted: u32,
    pub requests_after_lost_answer: u32,
    pub requests_unanswered: usize,
    pub rejected: u32,
    pub delegations: usize,
    pub active: usize,
    pub unbonding: usize,
    pub unbonded: usize,
    pub expired: usize,
    pub kills: u32,
    pub pauses: u32,
    pub exits: u32,
    pub drain: Duration,
    pub max_attempts: i64,
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
            "--esplora-port".to_owned(),
            "0".to_owned(),
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

/// Distinct random fault ticks in `from..ticks`, in order.
fn fault_ticks(rng: &mut StdRng, from: u32, ticks: u32, n: u32) -> Vec<u32> {
    let mut all: Vec<u32> = (from.min(ticks)..ticks).collect();
    all.shuffle(rng);
    let mut chosen: Vec<u32> = all.into_iter().take(n as usize).collect();
    chosen.sort_unstable();
    chosen
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
    let inputs = Inputs {
        rpc_url: &rpc_url,
        params: &params,
        fps: &fps,
    };
    let mut load = Load::setup(&fx, &rpc).await?;
    // The highest tip of the run: a block per tick, one more per reorg, the final burial.
    load.horizon = load.tip + plan.ticks + plan.faults + u32::from(DEPTH) + 4;
    let mut committee = Committee::start(&ctx.signer, &dir, &fx.covenants, &rpc_url, &params)
        .await
        .context("starting the covenant committee")?;
    let mut stack =
        Stack::start(ctx, &dir, &label, inputs, Some(&committee.pipeline_toml())).await?;
    let mut requests = Requests::new(&stack.base)?;

    // Fault ticks: distinct, random, not in the first 5 ticks (services warming up); signer
    // faults once unbonding requests are flowing (stakes older than the confirmation depth).
    let faults = match fault {
        Fault::Rabbitmq => plan.faults.min(1 + plan.ticks / 200),
        _ => plan.faults,
    };
    let first = if fault == Fault::Signer {
        u32::from(DEPTH) + 6
    } else {
        5
    };
    let mut fault_ticks = fault_ticks(&mut rng, first, plan.ticks, faults);
    let mut outage_until: Option<Instant> = None;
    let mut deck = Deck::default();
    let mut signer_faults = 0;

    let mut tick = 0;
    loop {
        let holding = committee.members.iter().any(|m| m.service.held());
        let busy = outage_until.is_some() || faults::in_progress(&mut stack, &committee);
        if tick >= plan.ticks && fault_ticks.is_empty() && !busy && !holding {
            break;
        }
        if tick < plan.ticks {
            load.tick(&fx, &rpc, &mut rng)
                .await
                .with_context(|| format!("load at tick {tick}"))?;
            requests
                .tick(&fx, &mut load, &mut rng, 0.5)
                .await
                .with_context(|| format!("unbonding requests at tick {tick}"))?;
            Load::mine(&fx, &rpc, 1)
                .await
                .with_context(|| format!("mining at tick {tick}"))?;
        } else if fault_ticks.is_empty() && holding {
            // The end of the load (and of the faults): the dead signer comes back.
            for m in &mut committee.members {
                m.service.release();
            }
        }
        if busy {
            // One fault at a time (a RabbitMQ outage, a process down or stopped, besides the
            // held dead signer): every fault due now waits for the previous one to be over.
            for t in fault_ticks.iter_mut().filter(|t| **t <= tick) {
                *t = tick + 1;
            }
        }
        // `<=`: a deferred fault can land on the tick of the next one; neither may be skipped.
        if fault_ticks.first().is_some_and(|t| *t <= tick) {
            fault_ticks.remove(0);
            let what = match fault {
                Fault::Kill => {
                    let victim = deck.draw(&mut rng);
                    faults::kill(&mut stack, &mut committee, victim, &mut rng).await?
                }
                Fault::Signer => {
                    signer_faults += 1;
                    faults::signer(&mut committee, signer_faults - 1, &mut rng).await?
                }
                Fault::Rabbitmq => {
                    ctx.rabbit.down().await?;
                    outage_until = Some(Instant::now() + plan.outage);
                    format!("RabbitMQ down for {}s", plan.outage.as_secs())
                }
                Fault::Postgres => {
                    ctx.pg.restart(Duration::from_secs(3)).await?;
                    "PostgreSQL stopped (immediate) for 3s".to_owned()
                }
                Fault::Reorg => {
                    let depth = rng.gen_range(1..=MAX_REORG);
                    load.reorg(&rpc, depth)
                        .await
                        .with_context(|| format!("reorg of depth {depth} at tick {tick}"))?;
                    format!("reorg of depth {depth}")
                }
            };
            report.injected.push(format!("tick {tick}: {what}"));
        }
        if let Some(until) = outage_until {
            if Instant::now() >= until {
                ctx.rabbit.up().await?;
                outage_until = None;
            }
        }
        stack.supervise()?;
        committee.supervise()?;
        tokio::time::sleep(plan.tick).await;
        tick += 1;
    }

    let outcome = finish(
        &fx,
        &rpc,
        &load,
        &requests,
        &mut stack,
        &mut committee,
        plan,
    )
    .await;
    let (kills, pauses, exits) = committee
        .members
        .iter()
        .map(|m| &m.service)
        .fold(stack.counts(), |(k, p, e), s| {
            (k + s.kills, p + s.pauses, e + s.exits)
        });
    (report.kills, report.pauses, report.exits) = (kills, pauses, exits);
    stack.stop().await?;
    committee.stop().await?;
    report.stakes = load.sent_stakes;
    report.short_stakes = load.sent_short;
    report.unbondings = load.sent_unbondings;
    report.rejected = load.rejected;
    report.requests_accepted = requests.accepted;
    report.requests_after_lost_answer = requests.accepted_after_lost_answer;
    report.requests_unanswered = requests.unanswered();
    let (ledger, disturbed, mut problems) = match outcome {
        Ok(f) => {
            report.drain = f.drain;
            report.max_attempts = f.max_attempts;
            (f.ledger, f.settled, f.problems)
        }
        Err(e) => {
            devnet.stop().await?;
            report.failure = Some(format!("{e:#}"));
            report.wall = started.elapsed();
            return Ok(report);
        }
    };
    report.delegations = ledger.states.len();
    report.active = ledger.count("active");
    report.unbonding = ledger.count("unbonding");
    report.unbonded = ledger.count("unbonded");
    report.expired = ledger.expired;

    // The undisturbed run: a fresh indexer + API + expiry checker over the same, still chain.
    let reference_label = format!("{label}_ref");
    let mut reference = Stack::start(ctx, &dir, &reference_label, inputs, None).await?;
    let undisturbed = settle_supervised(&mut reference, &fx, &ledger, plan.settle_timeout).await;
    reference.stop().await?;
    devnet.stop().await?;

    match (disturbed, undisturbed) {
        (Ok((a, t_a)), Ok((b, t_b))) => {
            report.settle = t_a;
            report.reference_settle = t_b;
            let diff = differences(&a, &b);
            if !diff.is_empty() {
                problems.push(format!(
                    "the disturbed run differs from the undisturbed one in {} place(s): {:#?}",
                    diff.len(),
                    diff.iter().take(10).collect::<Vec<_>>()
                ));
            }
        }
        (Err(e), Ok(_)) => problems.push(format!(
            "disturbed run (the undisturbed run settled): {e:#}"
        )),
        (Ok(_), Err(e)) => problems.push(format!("undisturbed run: {e:#}")),
        (Err(a), Err(b)) => problems.push(format!(
            "neither run settled; disturbed: {a:#}; undisturbed: {b:#}"
        )),
    }
    if !problems.is_empty() {
        let shown: Vec<_> = problems.iter().take(12).collect();
        report.failure = Some(format!("{} problem(s): {shown:#?}", problems.len()));
    }
    report.wall = started.elapsed();
    Ok(report)
}

/// What the disturbed run ended with.
struct Finished {
    ledger: Ledger,
    /// From the end of the load until no request was `accepted` or `claimed`.
    drain: Duration,
    /// The most attempts any request took.
    max_attempts: i64,
    settled: anyhow::Result<(Snapshot, Duration)>,
    /// The chain's and the request table's problems.
    problems: Vec<String>,
}

/// After the load: waits for the pipeline to finish every stored request, buries everything
/// under the confirmation depth, then checks the chain, the request table and the settled API.
async fn finish(
    fx: &Fixture,
    rpc: &RpcClient,
    load: &Load,
    requests: &Requests,
    stack: &mut Stack,
    committee: &mut Committee,
    plan: &Plan,
) -> anyhow::Result<Finished> {
    let drain_started = Instant::now();
    loop {
        stack.supervise()?;
        committee.supervise()?;
        match request_states(&stack.api_db).await {
            Ok(states) => {
                let open: i64 = ["accepted", "claimed"]
                    .iter()
                    .filter_map(|s| states.get(*s))
                    .sum();
                if open == 0 {
                    break;
                }
                if drain_started.elapsed() >= plan.settle_timeout {
                    bail!(
                        "unbonding requests still open after {}s: {states:?}",
                        plan.settle_timeout.as_secs()
                    );
                }
            }
            Err(e) if drain_started.elapsed() >= plan.settle_timeout => {
                return Err(e.context("reading the unbonding request table"))
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drain = drain_started.elapsed();
    // Bury the load (and the pipeline's last unbondings) under the confirmation depth.
    Load::mine(fx, rpc, u32::from(DEPTH) + 3).await?;
    let ledger = ledger(rpc, load).await?;
    let mut problems = chain_problems(&ledger, &requests.accepted());
    let settled = settle_supervised(stack, fx, &ledger, plan.settle_timeout).await;
    let (request_problems, max_attempts) = request_problems(&stack.api_db, &ledger).await?;
    problems.extend(request_problems);
    Ok(Finished {
        ledger,
        drain,
        max_attempts,
        settled,
        problems,
    })
}

/// [`settle`] while still restarting services that exit.
async fn settle_supervised(
    stack: &mut Stack,
    fx: &Fixture,
    ledger: &Ledger,
    timeout: Duration,
) -> anyhow::Result<(Snapshot, Duration)> {
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    loop {
        stack.supervise()?;
        let left = timeout.saturating_sub(started.elapsed());
        let step = left.min(Duration::from_secs(5));
        match settle(&http, &stack.base, fx, ledger, step).await {
            Ok((s, _)) => return Ok((s, started.elapsed())),
            Err(e) if started.elapsed() >= timeout => {
                return Err(e.context(format!("not settled after {}s", timeout.as_secs())))
            }
            Err(_) => {}
        }
    }
}
