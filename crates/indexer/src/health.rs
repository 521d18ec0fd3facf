//! The indexer's operations endpoint ([`net::Ops`]): its registry on `/metrics`, and readiness
//! (`/health/ready`) that fails when the database, the node or the broker does not answer, or
//! when the indexer is more than `max_lag_blocks` behind the node's tip beyond the
//! confirmation window (a stuck or slow indexer serves stale data even though it "runs").

use bitcoin_rpc::RpcClient;
use events::Transport;
use prometheus::Registry;
use store::Db;

use crate::config::IndexerConfig;

/// How many blocks the indexer is behind: the node's tip minus the confirmation window
/// (`depth − 1` unconfirmed blocks the indexer keeps in memory by design) minus the last
/// processed height (`first_activation − 1` before the first block). Zero while the node is
/// below the activation height.
pub fn blocks_behind(
    node_tip: u32,
    last_processed: Option<u32>,
    first_activation: u32,
    depth: u16,
) -> u32 {
    let confirmable = node_tip.saturating_sub(u32::from(depth).saturating_sub(1));
    let processed = last_processed.unwrap_or(first_activation.saturating_sub(1));
    confirmable.saturating_sub(processed)
}

/// The endpoint of one indexer: `registry`, and checks of `db`, the node behind `rpc`, the
/// broker of `transport` (RabbitMQ only) and the lag.
pub(crate) fn ops(
    registry: &Registry,
    db: &Db,
    rpc: &RpcClient,
    transport: Option<&Transport>,
    config: &IndexerConfig,
) -> net::Ops {
    let mut ops = net::Ops::builder().registry(registry);
    let (db1, rpc1) = (db.clone(), rpc.clone());
    ops = ops
        .check("database", move || {
            let db = db1.clone();
            async move { db.ping().await.map_err(|e| e.to_string()) }
        })
        .check("node", move || {
            let rpc = rpc1.clone();
            async move {
                rpc.get_block_count()
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        });
    if let Some(t @ Transport::RabbitMq(_)) = transport {
        let t = t.clone();
        ops = ops.check("broker", move || {
            let t = t.clone();
            async move { t.ping().await.map_err(|e| e.to_string()) }
        });
    }
    let (store, rpc) = (db.indexer(), rpc.clone());
    let max = config.max_lag_blocks;
    let depth = config.params.confirmation_depth();
    let first = u32::try_from(config.params.first_activation_height().0).unwrap_or(u32::MAX);
    ops.check("lag", move || {
        let (store, rpc) = (store.clone(), rpc.clone());
        async move {
            let tip = rpc
                .get_block_count()
                .await
                .map_err(|e| format!("cannot read the node's tip: {e}"))?;
            let last = store
                .tip()
                .await
                .map_err(|e| format!("cannot read the indexer's tip: {e}"))?
                .map(|t| t.height);
            let behind = blocks_behind(tip, last, first, depth);
            if behind > max {
                return Err(format!(
                    "the indexer is {behind} blocks behind the node's tip {tip} beyond the \
                     {depth}-block confirmation window (last processed {}; max_lag_blocks = {max})",
                    last.map_or("none".to_owned(), |h| h.to_string())
                ));
            }
            Ok(())
        }
    })
    .build()
}

#[cfg(test)]
mod tests {
    use super::blocks_behind;

    #[test]
    fn an_indexer_at_the_confirmed_tip_is_not_behind() {
        // depth 6: with the node at 110, blocks up to 105 are confirmed.
        assert_eq!(blocks_behind(110, Some(105), 100, 6), 0);
        assert_eq!(blocks_behind(110, Some(100), 100, 6), 5);
    }

    #[test]
    fn below_activation_nothing_is_behind_and_above_it_the_wait_counts() {
        assert_eq!(blocks_behind(50, None, 100, 6), 0);
        assert_eq!(blocks_behind(105, None, 100, 6), 1);
        assert_eq!(blocks_behind(120, None, 100, 6), 16);
    }

    #[test]
    fn depth_one_confirms_the_tip_itself() {
        assert_eq!(blocks_behind(10, Some(10), 1, 1), 0);
        assert_eq!(blocks_behind(12, Some(10), 1, 1), 2);
    }
}
