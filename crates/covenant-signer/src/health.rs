//! `GET /health` is unauthenticated and not rate limited, so it must not cost the node a call
//! per request: the answer (the node's tip height, or that the node is unreachable) is reused
//! for [`HEALTH_TTL`], and concurrent callers of a stale answer wait for one refresh instead
//! of each asking the node.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::signer::Signer;

/// How long one answer of the node serves `/health`: short enough for a load balancer to see a
/// dead node within seconds, long enough that a flood of `/health` is one RPC per period.
pub const HEALTH_TTL: Duration = Duration::from_secs(3);

/// The last answer of the node to "what is your tip?".
#[derive(Debug, Default)]
pub struct HealthCache {
    last: Mutex<Option<(Instant, Option<u32>)>>,
}

impl HealthCache {
    /// The node's tip height, `None` when it did not answer; from the node at most once per
    /// [`HEALTH_TTL`] (and a failure is logged at most that often).
    pub async fn tip(&self, signer: &Signer) -> Option<u32> {
        let mut last = self.last.lock().await;
        if let Some((at, tip)) = *last {
            if at.elapsed() < HEALTH_TTL {
                return tip;
            }
        }
        let tip = match signer.chain_tip().await {
            Ok(tip) => Some(tip),
            Err(e) => {
                tracing::warn!(error = %e, "health: bitcoin node unreachable");
                None
            }
        };
        *last = Some((Instant::now(), tip));
        tip
    }
}
