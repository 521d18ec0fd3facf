//! `stakingd api`: the v1 staking API and its queue consumers, from a TOML config file;
//! `stakingd api replay-unprocessable` puts messages that kept failing back on their queues.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// TOML config file: `params`, `finality_providers`, `[server]` (listen, network,
    /// allowed_origins, page_size, max_content_length, …), `[db]` (url: sqlite:PATH or
    /// postgres://…), `[queue]` (url: `in-process` or amqp://user:password@host:port,
    /// queue_type, queue_prefix). See `crates/api/src/config.rs` for every key and default.
    #[arg(long, value_name = "FILE", env = "STAKINGD_API_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    action: Option<ApiAction>,
}

#[derive(Debug, Subcommand)]
enum ApiAction {
    /// Re-publish every stored unprocessable message to its queue, delete the records, exit.
    ReplayUnprocessable,
}

fn load(path: &PathBuf) -> anyhow::Result<api::Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the API config {}", path.display()))?;
    let config = api::Config::from_toml(&text).with_context(|| {
        format!(
            "the API config {} is not valid TOML for the API",
            path.display()
        )
    })?;
    config
        .validate()
        .with_context(|| format!("the API config {} needs fixing", path.display()))?;
    Ok(config)
}

pub async fn run(args: ApiArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    if let Some(ApiAction::ReplayUnprocessable) = args.action {
        let service = api::Service::build(&config).await?;
        let transport = api::connect_transport(&config).await?;
        let replayed = api::consumer::replay_unprocessable(&service.store, &transport)
            .await
            .context("replaying unprocessable messages")?;
        println!("replayed {replayed} unprocessable message(s)");
        return Ok(ExitCode::SUCCESS);
    }
    let shutdown = super::shutdown_on_signal();
    api::run(config, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
