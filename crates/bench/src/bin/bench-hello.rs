//! The baseline of the API benchmark: a bare axum hello-world on the same runtime settings as
//! the API (tokio multi-thread, one worker per core), no middleware, no database.

use std::net::SocketAddr;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use clap::Parser;

/// Serves `GET /` → `Hello, World!` until killed.
#[derive(Debug, Parser)]
#[command(about = "bare axum hello-world: the baseline of bench/run's API throughput ratio")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:28700")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let app = Router::new().route("/", get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await.context("serving")?;
    Ok(())
}
