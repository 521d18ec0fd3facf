//! Retrying what fails transiently (a database or node that is briefly away) with a capped
//! backoff, and giving up at once on what will not get better.

use std::future::Future;
use std::time::Duration;

use bitcoin_rpc::RpcError;
use prometheus::IntCounter;
use store::StoreError;
use tokio_util::sync::CancellationToken;

pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Retries `op` while it fails with a transient error (backoff up to 10 s); `Ok(None)` if
/// `shutdown` fires meanwhile. Every failure, transient or not, counts in `failures` (the
/// operator's signal that the node or the database is away while the indexer waits).
pub(crate) async fn retry<T, E, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    transient: impl Fn(&E) -> bool,
    failures: &IntCounter,
    mut op: F,
) -> Result<Option<T>, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) if transient(&e) => {
                failures.inc();
                tracing::warn!(error = %e, ?delay, "{what} failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(None),
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
            Err(e) => {
                failures.inc();
                return Err(e);
            }
        }
    }
}

pub(crate) fn store_transient(e: &StoreError) -> bool {
    e.is_transient()
}

pub(crate) fn rpc_transient(e: &RpcError) -> bool {
    e.is_transient()
}
