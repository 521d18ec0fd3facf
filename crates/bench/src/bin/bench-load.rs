//! HTTP load generator for `bench/run`: a fixed number of keep-alive HTTP/1.1 connections, each
//! sending its next request as soon as the previous answer is read (closed loop), for a fixed
//! duration after a warm-up. Prints one JSON line (`bench::Summary`) on stdout.
//!
//! Two plans: `--path P` requests one path over and over (throughput against the bare axum);
//! `--stakers FILE` browses `/v1/staker/delegations` like the dApp: pick a tier at random, a
//! staker of that tier at random, optionally the `state=active` filter, then follow
//! `pagination.next_key` up to `--max-pages` pages before moving to the next staker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench::{Rng, StakerLine, Summary};
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;

#[derive(Debug, Parser)]
#[command(
    about = "closed-loop HTTP load generator: fixed connections, fixed duration, latency percentiles"
)]
struct Args {
    /// Server address (HTTP/1.1, plain TCP).
    #[arg(long, default_value = "127.0.0.1:28701")]
    addr: SocketAddr,
    /// Request this path repeatedly (e.g. `/v1/stats`).
    #[arg(long, conflicts_with = "stakers")]
    path: Option<String>,
    /// Stakers file written by `bench-seed`: browse their delegations instead.
    #[arg(long)]
    stakers: Option<std::path::PathBuf>,
    /// Follow at most this many pages per staker.
    #[arg(long, default_value_t = 10)]
    max_pages: u32,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds before that (connections open, caches and pools warm).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seed of the staker choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// What to ask next.
#[derive(Debug)]
enum Plan {
    Fixed(String),
    /// Stakers grouped by tier.
    Browse {
        tiers: Vec<Vec<String>>,
        max_pages: u32,
    },
}

/// One connection's browsing position.
#[derive(Debug, Default)]
struct Session {
    base: String,
    next_key: String,
    pages_left: u32,
}

impl Plan {
    fn next_path(&self, s: &mut Session, rng: &mut Rng) -> String {
        match self {
            Plan::Fixed(p) => p.clone(),
            Plan::Browse { tiers, max_pages } => {
                if s.pages_left == 0 || s.next_key.is_empty() {
                    let tier = &tiers[rng.below(tiers.len() as u64) as usize];
                    let staker = &tier[rng.below(tier.len() as u64) as usize];
                    s.base = format!("/v1/staker/delegations?staker_btc_pk={staker}");
                    if rng.below(4) == 0 {
                        s.base.push_str("&state=active");
                    }
                    s.pages_left = *max_pages;
                    s.next_key.clear();
                    return s.base.clone();
                }
                format!("{}&pagination_key={}", s.base, s.next_key)
            }
        }
    }

    /// Reads the page token of a delegations answer (nothing for fixed paths).
    fn after_response(&self, s: &mut Session, body: &[u8]) -> anyhow::Result<()> {
        if let Plan::Browse { .. } = self {
            // Only the row count and the token are needed: `IgnoredAny` checks the rows are
            // well-formed JSON without building them, so the load generator's own CPU (it
            // shares the machine with the server) stays small.
            let page: Page =
                serde_json::from_slice(body).context("delegations answer is not JSON")?;
            let rows = page.data.len();
            s.next_key = page.pagination.next_key;
            if !s.next_key.is_empty() && rows == 0 {
                bail!("a page with a next_key but no rows");
            }
            s.pages_left = s.pages_left.saturating_sub(1);
        }
        Ok(())
    }
}

/// The parts of a `/v1/staker/delegations` answer the browser follows.
#[derive(serde::Deserialize)]
struct Page {
    data: Vec<serde::de::IgnoredAny>,
    pagination: PageToken,
}

#[derive(serde::Deserialize)]
struct PageToken {
    next_key: String,
}

struct Outcome {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn connection(
    args: Arc<Args>,
    plan: Arc<Plan>,
    index: usize,
    start_measuring: Instant,
    stop: Instant,
) -> anyhow::Result<Outcome> {
    let stream = tokio::net::TcpStream::connect(args.addr)
        .await
        .with_context(|| format!("connecting to {}", args.addr))?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(conn);
    let host = args.addr.to_string();
    let mut rng = Rng::new(args.seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
    let mut session = Session::default();
    let mut out = Outcome {
        latencies_us: Vec::with_capacity(1 << 16),
        errors: 0,
    };
    loop {
        let path = plan.next_path(&mut session, &mut rng);
        let req = Request::get(path.as_str())
            .header(hyper::header::HOST, host.as_str())
            .body(Empty::<Bytes>::new())?;
        let t0 = Instant::now();
        if t0 >= stop {
            break;
        }
        sender.ready().await.context("connection closed")?;
        let resp = sender.send_request(req).await.context("sending")?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading")?
            .to_bytes();
        let dt = t0.elapsed();
        let ok = status.is_success() && plan.after_response(&mut session, &body).is_ok();
        if !ok {
            // Start a fresh staker after any failure rather than repeating a bad token.
            session.pages_left = 0;
        }
        if t0 >= start_measuring {
            if ok {
                out.latencies_us
                    .push(u32::try_from(dt.as_micros()).unwrap_or(u32::MAX));
            } else {
                out.errors += 1;
            }
        }
    }
    Ok(out)
}

fn load_plan(args: &Args) -> anyhow::Result<Plan> {
    if let Some(p) = &args.path {
        return Ok(Plan::Fixed(p.clone()));
    }
    let Some(file) = &args.stakers else {
        bail!("give --path /some/path or --stakers FILE (written by bench-seed)");
    };
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading stakers file {}", file.display()))?;
    let mut tiers: Vec<Vec<String>> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let l = StakerLine::parse(line)
            .with_context(|| format!("bad line in {}: {line:?}", file.display()))?;
        let t = l.tier as usize;
        if tiers.len() <= t {
            tiers.resize_with(t + 1, Vec::new);
        }
        tiers[t].push(l.staker_hex);
    }
    tiers.retain(|t| !t.is_empty());
    if tiers.is_empty() {
        bail!("stakers file {} lists no staker", file.display());
    }
    Ok(Plan::Browse {
        tiers,
        max_pages: args.max_pages.max(1),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let plan = Arc::new(load_plan(&args)?);
    let begin = Instant::now();
    let start_measuring = begin + Duration::from_secs_f64(args.warmup);
    let stop = start_measuring + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        tasks.push(tokio::spawn(connection(
            args.clone(),
            plan.clone(),
            i,
            start_measuring,
            stop,
        )));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let o = t.await.context("load task panicked")??;
        latencies.extend(o.latencies_us);
        errors += o.errors;
    }
    let summary = Summary::from_micros(&mut latencies, errors, args.duration);
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
