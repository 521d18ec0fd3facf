//! The devnet's expiry checker and unbonding pipeline, wired to the same chain, database,
//! queues and committee as the rest of the all-in-one process.

use tokio_util::sync::CancellationToken;

use crate::devnet_committee::{RunningSigner, Setup};
use crate::devnet_stack::{Running, Service};

/// Starts the expiry checker and the unbonding pipeline; their tasks end when `shutdown` fires.
pub fn start(
    _run: &Running,
    _setup: &Setup,
    _signers: &[RunningSigner],
    _transport: &events::Transport,
    _shutdown: &CancellationToken,
    _exits: &crate::devnet_stack::Exits,
) -> anyhow::Result<Vec<Service>> {
    tracing::warn!(
        "the expiry checker and the unbonding pipeline are not wired into the devnet yet"
    );
    Ok(Vec::new())
}
