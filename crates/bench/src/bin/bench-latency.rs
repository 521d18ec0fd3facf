//! Block-to-API latency: how long after a block is mined its stake is visible in the API.
//!
//! One process runs the devnet (embedded regtest chain + RPC server), the indexer
//! (`indexer::run_with`, talking to the devnet over RPC with its default poll interval) and the
//! API (`api::run_with`, HTTP on loopback), both over one PostgreSQL database and one queue
//! transport (RabbitMQ by default, as a deployment runs them; `--queue-url in-process` for the
//! `stakingd devnet` wiring). For each of `--stakes` stakes: a signed staking tx is mined, the
//! chain is extended to one block short of the confirmation depth, and after a random pause
//! (so the block lands at a random phase of the indexer's poll) the confirming block is mined;
//! the clock starts just before that block is mined and stops at the first
//! `GET /v1/delegation` that answers 200 for the staking tx. Prints one JSON line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench::{Rng, Summary};
use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin::{Amount, OutPoint, Sequence, Transaction, TxOut};
use clap::Parser;
use devnet::wallet::Wallet;
use devnet::{DevnetConfig, Node};
use sqlx::{Connection, Executor};
use staking_core::keys::SECP;
use staking_core::op_return::V0OpReturn;
use staking_core::params::GlobalParams;
use staking_core::script::StakingOutput;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "block mined on the devnet → stake visible in the API: latency distribution")]
struct Args {
    /// Number of stakes (one measurement each).
    #[arg(long, default_value_t = 30)]
    stakes: u32,
    /// Confirmation depth of the generated params (mainnet uses 10).
    #[arg(long, default_value_t = 10)]
    depth: u16,
    /// PostgreSQL server URL without a database; database `bench_latency` is recreated.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    server_url: String,
    /// `amqp://…` (a fresh queue prefix is used) or `in-process`; default: RabbitMQ's guest
    /// account on 127.0.0.1:5672 (not printed: no password in --help).
    #[arg(
        long,
        env = "AMQP_URL",
        hide_env_values = true,
        hide_default_value = true,
        default_value = "amqp://guest:guest@127.0.0.1:5672"
    )]
    queue_url: String,
    /// Indexer poll interval in ms; unset keeps the indexer's default.
    #[arg(long)]
    poll_interval_ms: Option<u64>,
    /// Finality-providers file for the API.
    #[arg(
        long,
        default_value = "testdata/api-fixtures/finality-providers-test.json"
    )]
    finality_providers: std::path::PathBuf,
    /// API port.
    #[arg(long, default_value_t = 28702)]
    api_port: u16,
}

const ACTIVATION: u32 = 120;
const STAKE: u64 = 100_000;
const FEE: u64 = 2_000;
const STAKING_TIME: u16 = 1_000;

fn keypair(byte: u8) -> anyhow::Result<Keypair> {
    Ok(Keypair::from_secret_key(
        &SECP,
        &SecretKey::from_slice(&[byte; 32])?,
    ))
}

fn params_json(depth: u16) -> anyhow::Result<String> {
    let pks: Vec<String> = (1..=3)
        .map(|b| keypair(b).map(|k| k.public_key().to_string()))
        .collect::<anyhow::Result<_>>()?;
    Ok(serde_json::json!({ "versions": [{
        "version": 0,
        "activation_height": ACTIVATION,
        "staking_cap": 1_000_000_000_000u64,
        "cap_height": 0,
        "tag": "74657374",
        "covenant_pks": pks,
        "covenant_quorum": 2,
        "unbonding_time": 5,
        "unbonding_fee": 1_000,
        "max_staking_amount": 1_000_000,
        "min_staking_amount": 10_000,
        "max_staking_time": 65_535,
        "min_staking_time": 5,
        "confirmation_depth": depth,
    }]})
    .to_string())
}

async fn fresh_database(server: &str) -> anyhow::Result<String> {
    let server = server.trim_end_matches('/');
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .context("connecting to PostgreSQL (see --server-url)")?;
    admin
        .execute("DROP DATABASE IF EXISTS bench_latency WITH (FORCE)")
        .await?;
    admin.execute("CREATE DATABASE bench_latency").await?;
    Ok(format!("{server}/bench_latency"))
}

async fn transport(url: &str) -> anyhow::Result<events::Transport> {
    if url == "in-process" {
        return Ok(events::Transport::InProcess(
            events::InProcessTransport::new(events::EventsMetrics::default()),
        ));
    }
    let mut rc = events::RabbitMqConfig::from_uri(url);
    rc.queue_prefix = format!("bench_latency_{}_", std::process::id());
    let t = events::RabbitMqTransport::connect(rc, events::EventsMetrics::default())
        .await
        .context("connecting to RabbitMQ (see --queue-url)")?;
    Ok(events::Transport::RabbitMq(t))
}

async fn mine(node: &Arc<Node>, txs: Vec<Transaction>) -> anyhow::Result<()> {
    let node = Arc::clone(node);
    tokio::task::spawn_blocking(move || {
        let payout = node.faucet_wallet().script_pubkey().clone();
        node.mine_block_with(txs, &payout, None).map(|_| ())
    })
    .await?
    .context("mining a block")
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shutdown = CancellationToken::new();
    let dir = std::env::temp_dir().join(format!("bench-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let params_path = dir.join("params.json");
    let params_text = params_json(args.depth)?;
    std::fs::write(&params_path, &params_text)?;
    let (params, _) = GlobalParams::from_json(&params_text).context("generated params")?;
    let db_url = fresh_database(&args.server_url).await?;

    let devnet = devnet::spawn(DevnetConfig::default(), shutdown.clone()).await?;
    let node = Arc::clone(&devnet.chain);
    let staker = Wallet::from_seed(b"bench latency staker");
    let fp = keypair(9)?.x_only_public_key().0;
    node.mine_blocks(1, staker.script_pubkey())?;
    node.mine_blocks(ACTIVATION - 2, node.faucet_wallet().script_pubkey())?;
    let rpc = bitcoin_rpc::RpcClient::new(bitcoin_rpc::RpcConfig::new(
        devnet.rpc_url.clone(),
        bitcoin_rpc::RpcAuth::UserPass {
            user: devnet.rpc_user.clone(),
            password: devnet.rpc_password.clone(),
        },
    ))?;
    let cb = rpc
        .get_block(&rpc.get_block_hash(1).await?)
        .await?
        .txdata
        .swap_remove(0);
    let mut funding = (OutPoint::new(cb.compute_txid(), 0), cb.output[0].clone());

    let transport = transport(&args.queue_url).await?;
    let mut raw = indexer::RawConfig::from_toml(&format!(
        "network = \"regtest\"\nparams = \"{}\"\ndatabase_url = \"{db_url}\"\nmetrics_addr = \"off\"\n\
         [bitcoind]\nurl = \"{}\"\nuser = \"{}\"\npassword = \"{}\"\n",
        params_path.display(),
        devnet.rpc_url,
        devnet.rpc_user,
        devnet.rpc_password
    ))?;
    raw.bitcoind.poll_interval_ms = args.poll_interval_ms;
    let ix_config = raw.validate()?;
    let poll = ix_config.poll_interval;
    let registry = prometheus::Registry::new();
    let ix_token = shutdown.clone();
    let ix_transport = transport.clone();
    let indexer = tokio::spawn(async move {
        indexer::run_with(ix_config, Some(ix_transport), &registry, ix_token).await
    });

    let api_config = api::Config::from_toml(&format!(
        "params = \"{}\"\nfinality_providers = \"{}\"\n[server]\nlisten = \"127.0.0.1:{}\"\n\
         network = \"regtest\"\n[db]\nurl = \"{db_url}\"\n[queue]\nurl = \"in-process\"\n",
        params_path.display(),
        args.finality_providers.display(),
        args.api_port
    ))?;
    let service = api::Service::build(&api_config).await?;
    let listen = api_config.server.listen;
    let consumer = api_config.consumer();
    let api_token = shutdown.clone();
    let api_task = tokio::spawn(async move {
        api::run_with(service, transport, listen, None, consumer, api_token).await
    });

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", args.api_port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{base}/healthcheck"))
        .send()
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        if Instant::now() > deadline {
            bail!("the API did not come up on {base}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let version = params
        .for_height(u64::from(ACTIVATION).into())
        .context("params version at activation")?
        .clone();
    let mut rng = Rng::new(42);
    let mut latencies = Vec::new();
    for i in 0..args.stakes {
        if indexer.is_finished() || api_task.is_finished() {
            bail!("the indexer or the API stopped during the run");
        }
        let staking = StakingOutput::new(version.staking_keys(staker.x_only(), fp)?, STAKING_TIME)?;
        let op_return = V0OpReturn {
            tag: version.tag,
            staker: staker.x_only(),
            finality_provider: fp,
            staking_time: STAKING_TIME,
        };
        let change = funding.1.value.to_sat() - STAKE - FEE;
        let tx = staker.spend(
            std::slice::from_ref(&funding),
            vec![
                TxOut {
                    value: Amount::from_sat(STAKE),
                    script_pubkey: staking.script_pubkey().clone(),
                },
                op_return.tx_out(),
                TxOut {
                    value: Amount::from_sat(change),
                    script_pubkey: staker.script_pubkey().clone(),
                },
            ],
            Sequence::MAX,
        );
        let txid = tx.compute_txid();
        funding = (OutPoint::new(txid, 2), tx.output[2].clone());
        mine(&node, vec![tx]).await?;
        for _ in 1..args.depth.saturating_sub(1) {
            mine(&node, vec![]).await?;
        }
        // A random phase against the indexer's poll.
        let pause = poll.as_millis() as u64 + rng.below(poll.as_millis() as u64 + 1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let t0 = Instant::now();
        if args.depth > 1 {
            mine(&node, vec![]).await?;
        }
        let url = format!("{base}/v1/delegation?staking_tx_hash_hex={txid}");
        loop {
            let r = client.get(&url).send().await?;
            if r.status().is_success() {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("stake {txid} not visible in the API 30 s after its confirming block");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let dt = t0.elapsed();
        eprintln!("stake {}/{}: {} ms", i + 1, args.stakes, dt.as_millis());
        latencies.push(u32::try_from(dt.as_micros()).unwrap_or(u32::MAX));
    }
    let mut summary = serde_json::to_value(Summary::from_micros(&mut latencies, 0, 0.0))?;
    summary["peak_rss_mb"] = serde_json::json!((peak_rss_mb() * 10.0).round() / 10.0);
    summary["description"] = serde_json::json!(format!(
        "{} stakes; confirmation depth {}; indexer poll interval {} ms (its default unless --poll-interval-ms); \
         queue: {}; PostgreSQL store. Clock from just before the confirming block is mined to the first \
         `GET /v1/delegation` answering 200 (polled every 2 ms). Devnet, indexer and API run in one process \
         (bench-latency), talking over RPC, the queue and HTTP as separate services would.",
        args.stakes,
        args.depth,
        poll.as_millis(),
        if args.queue_url == "in-process" { "in-process" } else { "RabbitMQ" },
    ));
    println!("{summary}");
    shutdown.cancel();
    let _ = indexer.await;
    let _ = api_task.await;
    devnet.stopped().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
