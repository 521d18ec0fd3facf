//! `stakingd migrate`: applies every embedded database migration (indexer, outbox and API
//! tables) to a PostgreSQL or SQLite database and says what it applied. Idempotent: a second
//! run applies nothing. The services also migrate at start; this lets an operator do it ahead
//! of a deployment, with a database role that may alter the schema.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// sqlite:PATH or postgres://user@host/db. Also read from STAKINGD_DATABASE_URL or, failing
    /// that, from --config.
    #[arg(long, env = "STAKINGD_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// A service's TOML config file to take the database from: the indexer's (`database_url`)
    /// or the API's (`[db] url`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The database URL from a service's config file.
fn url_from_config(path: &PathBuf) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    let value: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let indexer = value.get("database_url").and_then(toml::Value::as_str);
    let api = value
        .get("db")
        .and_then(|db| db.get("url"))
        .and_then(toml::Value::as_str);
    indexer.or(api).map(str::to_owned).with_context(|| {
        format!(
            "{} has neither `database_url` (indexer) nor `[db] url` (API)",
            path.display()
        )
    })
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let url = match (args.database_url, &args.config) {
        (Some(url), _) => url,
        (None, Some(path)) => url_from_config(path)?,
        (None, None) => anyhow::bail!(
            "no database given: pass --database-url sqlite:PATH or postgres://user@host/db, set \
             STAKINGD_DATABASE_URL, or pass --config with the indexer's or the API's config file"
        ),
    };
    let shown = net::redact_url(&url);
    // The store's error names the database (redacted) and the cause.
    let store = store::Db::connect(&store::DbOptions::new(url.as_str())).await?;
    let applied = store
        .migrate_reporting()
        .await
        .with_context(|| format!("migrating {shown}"))?;
    if applied.is_empty() {
        println!(
            "{shown} ({}): up to date, no migration to apply",
            store.backend()
        );
    } else {
        println!(
            "{shown} ({}): applied {} migration(s):",
            store.backend(),
            applied.len()
        );
        for m in &applied {
            println!("  {:04} {}", m.version, m.description);
        }
    }
    Ok(ExitCode::SUCCESS)
}
