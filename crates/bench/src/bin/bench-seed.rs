//! Seeds a dedicated PostgreSQL database with the API schema and N delegations (default one
//! million) for the delegation-query benchmark, fast: keys are generated in Rust (they must be
//! valid BIP340 keys, which SQL cannot make), rows are streamed with `COPY … FROM STDIN`, and the
//! statistics tables are derived with `INSERT … SELECT … GROUP BY`.
//!
//! Stakers come in tiers so pagination matters (page size 10): tier 0 are whales with
//! `--whale-delegations` each, tier 1 active stakers with 100 each, tier 2 everyone else with 1
//! to 7. The stakers file (`<tier> <key> <count>` per line) tells the load generator whom to ask.

use std::io::Write as _;
use std::str::FromStr;

use anyhow::{bail, Context};
use bench::{Rng, StakerLine};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use clap::Parser;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Executor};

#[derive(Debug, Parser)]
#[command(about = "seed a PostgreSQL database with N delegations for the API benchmark")]
struct Args {
    /// Server URL without a database name, e.g. postgres://postgres@127.0.0.1:5432
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    server_url: String,
    /// Database to (re)create.
    #[arg(long, default_value = "bench_api")]
    database: String,
    /// Number of delegations.
    #[arg(long, default_value_t = 1_000_000)]
    delegations: u64,
    /// Tier-0 stakers ("whales") and how many delegations each holds.
    #[arg(long, default_value_t = 20)]
    whales: u64,
    #[arg(long, default_value_t = 10_000)]
    whale_delegations: u64,
    /// Tier-1 stakers with 100 delegations each.
    #[arg(long, default_value_t = 2_000)]
    regulars: u64,
    /// Staking tx hex stored in every row (the API returns it verbatim).
    #[arg(long)]
    staking_tx_hex: String,
    /// Where to write the stakers file.
    #[arg(long)]
    stakers_out: std::path::PathBuf,
    /// Keep an existing database that already holds exactly N delegations.
    #[arg(long)]
    reuse: bool,
}

const STATES: [(&str, u64); 5] = [
    ("active", 70),
    ("unbonding_requested", 5),
    ("unbonding", 5),
    ("unbonded", 15),
    ("withdrawn", 5),
];

fn pick_state(rng: &mut Rng) -> &'static str {
    let mut r = rng.below(100);
    for (s, w) in STATES {
        if r < w {
            return s;
        }
        r -= w;
    }
    "active"
}

/// Staker keys per tier with their delegation counts, summing to `args.delegations`.
fn plan_stakers(args: &Args, rng: &mut Rng) -> anyhow::Result<Vec<StakerLine>> {
    let secp = Secp256k1::signing_only();
    let mut key = || loop {
        if let Ok(sk) = SecretKey::from_slice(&rng.bytes32()) {
            return sk.x_only_public_key(&secp).0.to_string();
        }
    };
    let big = args.whales * args.whale_delegations + args.regulars * 100;
    if big > args.delegations {
        bail!(
            "{} whales × {} + {} regulars × 100 = {big} exceeds --delegations {}",
            args.whales,
            args.whale_delegations,
            args.regulars,
            args.delegations
        );
    }
    let mut out = Vec::new();
    for _ in 0..args.whales {
        let staker_hex = key();
        out.push(StakerLine {
            tier: 0,
            staker_hex,
            delegations: u32::try_from(args.whale_delegations)?,
        });
    }
    for _ in 0..args.regulars {
        let staker_hex = key();
        out.push(StakerLine {
            tier: 1,
            staker_hex,
            delegations: 100,
        });
    }
    let mut left = args.delegations - big;
    let mut counter = 0u64;
    while left > 0 {
        // 1..=7 delegations, mean 4.
        counter += 1;
        let n = (1 + (counter * 2_654_435_761 % 7)).min(left);
        let staker_hex = key();
        out.push(StakerLine {
            tier: 2,
            staker_hex,
            delegations: u32::try_from(n)?,
        });
        left -= n;
    }
    Ok(out)
}

async fn existing_rows(args: &Args) -> Option<i64> {
    let opts = PgConnectOptions::from_str(&args.server_url)
        .ok()?
        .database(&args.database);
    let mut conn = opts.connect().await.ok()?;
    sqlx::query_scalar("SELECT COUNT(*) FROM api_delegations")
        .fetch_one(&mut conn)
        .await
        .ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args
        .database
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        bail!("--database must be lower-case letters, digits and _");
    }
    let mut rng = Rng::new(0x5eed);
    let stakers = plan_stakers(&args, &mut rng)?;
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&args.stakers_out)
            .with_context(|| format!("creating {}", args.stakers_out.display()))?,
    );
    for s in &stakers {
        writeln!(file, "{}", s.render())?;
    }
    file.flush()?;
    let want = i64::try_from(args.delegations)?;
    if args.reuse && existing_rows(&args).await == Some(want) {
        eprintln!(
            "database {} already holds {want} delegations; reusing it",
            args.database
        );
        return Ok(());
    }

    let admin = PgConnectOptions::from_str(&args.server_url)
        .with_context(|| format!("--server-url {} is not a PostgreSQL URL", args.server_url))?;
    let mut conn = admin
        .connect()
        .await
        .context("connecting to PostgreSQL (is it running? see --server-url)")?;
    conn.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", args.database).as_str())
        .await?;
    conn.execute(format!("CREATE DATABASE {}", args.database).as_str())
        .await?;
    let url = format!(
        "{}/{}",
        args.server_url.trim_end_matches('/'),
        args.database
    );
    let db = store::Db::connect(&store::DbOptions::new(url.as_str()).max_connections(2))
        .await
        .context("connecting the API store")?;
    db.migrate().await.context("migrating")?;
    let mut conn = PgConnection::connect(&url).await?;

    let secp = Secp256k1::signing_only();
    let fps: Vec<String> = (0..60)
        .map(|_| loop {
            if let Ok(sk) = SecretKey::from_slice(&rng.bytes32()) {
                break sk.x_only_public_key(&secp).0.to_string();
            }
        })
        .collect();
    let started = std::time::Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY api_delegations (staking_tx_hash, staker_pk, finality_provider_pk, \
             staking_value, state, staking_tx_hex, staking_output_index, staking_start_timestamp, \
             staking_start_height, staking_timelock, is_overflow) FROM STDIN",
        )
        .await?;
    let mut buf = String::with_capacity(4 << 20);
    let mut written = 0u64;
    for s in &stakers {
        for _ in 0..s.delegations {
            let hash = hex::encode(rng.bytes32());
            let fp = &fps[rng.below(fps.len() as u64) as usize];
            let value = 50_000 + rng.below(50_000_000);
            let state = pick_state(&mut rng);
            let height = 857_910 + rng.below(60_000);
            let ts = 1_724_000_000 + (height - 857_910) * 600;
            let overflow = if rng.below(10) == 0 { "t" } else { "f" };
            buf.push_str(&format!(
                "{hash}\t{}\t{fp}\t{value}\t{state}\t{}\t0\t{ts}\t{height}\t64000\t{overflow}\n",
                s.staker_hex, args.staking_tx_hex
            ));
            written += 1;
            if buf.len() > (4 << 20) - 2048 {
                copy.send(buf.as_bytes()).await?;
                buf.clear();
            }
            if written.is_multiple_of(100_000) {
                eprintln!(
                    "seeded {written}/{} delegations ({:.0} s)",
                    args.delegations,
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_bytes()).await?;
    }
    copy.finish().await?;
    eprintln!("deriving statistics");
    for sql in [
        "INSERT INTO api_staker_stats SELECT staker_pk, \
         SUM(CASE WHEN state = 'active' THEN staking_value ELSE 0 END), SUM(staking_value), \
         SUM(CASE WHEN state = 'active' THEN 1 ELSE 0 END), COUNT(*) \
         FROM api_delegations GROUP BY staker_pk",
        "INSERT INTO api_fp_stats SELECT finality_provider_pk, \
         SUM(CASE WHEN state = 'active' THEN staking_value ELSE 0 END), SUM(staking_value), \
         SUM(CASE WHEN state = 'active' THEN 1 ELSE 0 END), COUNT(*) \
         FROM api_delegations GROUP BY finality_provider_pk",
        "INSERT INTO api_overall_stats SELECT 0, SUM(active_tvl), SUM(total_tvl), \
         SUM(active_delegations), SUM(total_delegations), COUNT(*) FROM api_staker_stats",
        "INSERT INTO api_btc_info VALUES (0, 917910, 0, 0)",
        "ANALYZE",
    ] {
        conn.execute(sql)
            .await
            .with_context(|| format!("running {sql}"))?;
    }
    eprintln!(
        "seeded {written} delegations of {} stakers in {:.1} s",
        stakers.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
