//! `chaos`: fault injection against the staking back-end's services as real processes.
//!
//! For each fault kind it starts a fresh devnet chain, a covenant committee of `covenant-signer`
//! processes, `stakingd indexer`, `api`, `expiry-checker` and `unbonding-pipeline` on a private
//! PostgreSQL cluster and a private RabbitMQ node (never the machine's shared ones), drives
//! staking, expiring, on-chain unbonding and API unbonding-request load while injecting the
//! fault at random moments, then checks that the system settles to the chain's ledger (no event
//! lost, no delegation or request stuck) and to exactly the API state of an undisturbed indexer
//! + API + expiry checker run over the same chain.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

mod committee;
mod faults;
mod infra;
mod load;
mod observe;
mod requests;
mod scenario;
mod service;
mod stack;

use faults::Fault;
use scenario::{Ctx, Plan};

#[derive(Debug, Parser)]
#[command(
    name = "chaos",
    about = "Inject faults into stakingd's services under load and check they settle to the state of an undisturbed run",
    long_about = "Inject faults into stakingd's services under load and check they settle to the state \
of an undisturbed run.\n\nThe bounded form (the default: 60 ticks of 250 ms, 5 faults per scenario, a 30 s \
RabbitMQ outage) runs in CI in a few minutes; --long runs 600 ticks with 30 faults per scenario.\n\
Needs PostgreSQL 15 server binaries (/usr/lib/postgresql/15/bin) and RabbitMQ (/usr/lib/rabbitmq/bin); \
private instances are started in a temp dir and stopped at the end.\n\n\
Examples:\n  cargo build -p stakingd -p covenant-signer -p chaos && target/debug/chaos\n  \
target/debug/chaos --fault reorg --long --seed 7"
)]
struct Cli {
    /// Fault kinds to run (repeatable); all five by default.
    #[arg(long, value_enum)]
    fault: Vec<Fault>,
    /// The longer, on-demand form: 600 ticks and 30 faults per scenario.
    #[arg(long)]
    long: bool,
    /// Ticks of load per scenario (each: 1–3 stakings, maybe an on-chain unbonding, maybe an
    /// unbonding request through the API, one block).
    #[arg(long)]
    ticks: Option<u32>,
    /// Fault injections per scenario (5 by default, 30 with --long).
    #[arg(long)]
    faults: Option<u32>,
    /// RabbitMQ outage length in seconds.
    #[arg(long, default_value_t = 30)]
    outage_secs: u64,
    /// Random seed (fault moments, load); a failure is reproduced with the same seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long the system may take to settle after the load, per run, in seconds.
    #[arg(long, default_value_t = 180)]
    settle_secs: u64,
    /// The stakingd binary; by default the one next to this executable.
    #[arg(long)]
    stakingd: Option<PathBuf>,
    /// The covenant-signer binary; by default the one next to this executable.
    #[arg(long)]
    covenant_signer: Option<PathBuf>,
    /// Keep the work directory (logs, configs, databases' data) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

/// `given`, or the binary `name` next to this executable; it must exist.
fn binary_path(given: Option<&PathBuf>, name: &str) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the chaos executable has no directory")?
            .join(name),
    };
    if !path.exists() {
        anyhow::bail!(
            "{name} not found at {}: build it first (`cargo build -p {name}`) or pass --{name} PATH",
            path.display()
        );
    }
    Ok(path)
}

fn free_ports() -> anyhow::Result<(u16, u16, u16)> {
    let a = std::net::TcpListener::bind("127.0.0.1:0")?;
    let b = std::net::TcpListener::bind("127.0.0.1:0")?;
    let c = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok((
        a.local_addr()?.port(),
        b.local_addr()?.port(),
        c.local_addr()?.port(),
    ))
}

async fn main_async(cli: Cli) -> anyhow::Result<bool> {
    let stakingd = binary_path(cli.stakingd.as_ref(), "stakingd")?;
    let signer = binary_path(cli.covenant_signer.as_ref(), "covenant-signer")?;
    let faults = if cli.fault.is_empty() {
        Fault::ALL.to_vec()
    } else {
        cli.fault.clone()
    };
    let plan = Plan {
        ticks: cli.ticks.unwrap_or(if cli.long { 600 } else { 60 }),
        tick: Duration::from_millis(250),
        faults: cli.faults.unwrap_or(if cli.long { 30 } else { 5 }),
        outage: Duration::from_secs(cli.outage_secs),
        settle_timeout: Duration::from_secs(cli.settle_secs),
        seed: cli.seed,
    };
    let tmp = tempfile::Builder::new().prefix("chaos-").tempdir()?;
    let dir = tmp.path().to_owned();
    eprintln!("chaos: work directory {} ({:?})", dir.display(), plan);
    let (pg_port, amqp_port, dist_port) = free_ports()?;
    let pg = infra::PrivatePostgres::start(&dir, pg_port).await?;
    let rabbit = match infra::PrivateRabbit::start(&dir, amqp_port, dist_port).await {
        Ok(r) => r,
        Err(e) => {
            pg.stop().await.ok();
            return Err(e);
        }
    };
    let mut ctx = Ctx {
        stakingd,
        signer,
        dir: dir.clone(),
        pg,
        rabbit,
    };
    let mut reports = Vec::new();
    let mut harness_error = None;
    for fault in faults {
        eprintln!("chaos: scenario {fault:?}");
        match scenario::run(&mut ctx, fault, &plan).await {
            Ok(r) => {
                eprintln!(
                    "chaos: {} {} in {:.0}s",
                    r.fault,
                    if r.failure.is_none() {
                        "passed"
                    } else {
                        "FAILED"
                    },
                    r.wall.as_secs_f64()
                );
                reports.push(r);
            }
            Err(e) => {
                harness_error = Some(e.context(format!("scenario {fault:?}")));
                break;
            }
        }
    }
    let Ctx { pg, rabbit, .. } = ctx;
    rabbit.stop().await.ok();
    pg.stop().await.ok();
    if cli.keep {
        let kept = tmp.keep();
        eprintln!("chaos: kept {}", kept.display());
    }

    println!("| fault | injected | stakes sent (short) | on-chain unbondings | requests accepted (max attempts) | delegations on chain | active / unbonding / unbonded | expired | SIGKILLs | SIGSTOPs | self-exits restarted | drain (s) | settle (s) | undisturbed settle (s) | scenario (s) | result |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut ok = true;
    for r in &reports {
        println!(
            "| {} | {} | {} ({}) | {} | {} ({}) | {} | {} / {} / {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} |",
            r.fault,
            r.injected.len(),
            r.stakes,
            r.short_stakes,
            r.unbondings,
            r.requests_accepted,
            r.max_attempts,
            r.delegations,
            r.active,
            r.unbonding,
            r.unbonded,
            r.expired,
            r.kills,
            r.pauses,
            r.exits,
            r.drain.as_secs_f64(),
            r.settle.as_secs_f64(),
            r.reference_settle.as_secs_f64(),
            r.wall.as_secs_f64(),
            if r.failure.is_none() { "pass" } else { "FAIL" }
        );
    }
    for r in &reports {
        for line in &r.injected {
            eprintln!("chaos: {}: {line}", r.fault);
        }
        if let Some(f) = &r.failure {
            ok = false;
            eprintln!("chaos: {} FAILED: {f}", r.fault);
        }
        if r.requests_after_lost_answer > 0 || r.requests_unanswered > 0 {
            eprintln!(
                "chaos: {}: {} request(s) known accepted only from a later refusal (answer lost); {} never accepted by the end of the load",
                r.fault, r.requests_after_lost_answer, r.requests_unanswered
            );
        }
        if r.rejected > 0 {
            eprintln!(
                "chaos: {}: {} load txs rejected by the devnet",
                r.fault, r.rejected
            );
        }
    }
    if let Some(e) = harness_error {
        return Err(e);
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_async(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
