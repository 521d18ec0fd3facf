//! A devnet node with its Esplora REST on a free loopback port.

use std::sync::Arc;

use bitcoin::{Amount, OutPoint, ScriptBuf, TxOut, Txid};
use devnet::esplora::EsploraHandle;
use devnet::Node;
use tokio_util::sync::CancellationToken;

pub struct Rest {
    pub node: Arc<Node>,
    pub handle: EsploraHandle,
    pub shutdown: CancellationToken,
}

impl Rest {
    /// An in-memory chain and its REST.
    pub async fn start() -> Rest {
        let node = Arc::new(Node::in_memory());
        let shutdown = CancellationToken::new();
        let handle = devnet::esplora::spawn(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&node),
            shutdown.clone(),
        )
        .await
        .expect("the REST starts");
        Rest {
            node,
            handle,
            shutdown,
        }
    }

    /// `http://ADDR/api`.
    pub fn api(&self) -> String {
        format!("{}/api", self.handle.url)
    }

    /// Runs a blocking node operation off the async workers.
    pub async fn with_node<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Node) -> T + Send + 'static,
    ) -> T {
        let node = Arc::clone(&self.node);
        tokio::task::spawn_blocking(move || f(&node)).await.unwrap()
    }

    /// Pays `sats` to `script` from the faucet; confirmed with one block when `confirm`.
    pub async fn fund(&self, script: &ScriptBuf, sats: u64, confirm: bool) -> Txid {
        let script = script.clone();
        self.with_node(move |n| n.faucet(&script, Amount::from_sat(sats), confirm))
            .await
            .unwrap()
    }

    /// Mines `n` blocks to a throw-away script.
    pub async fn mine(&self, n: u32) -> Vec<bitcoin::BlockHash> {
        self.with_node(move |node| node.mine_blocks(n, &ScriptBuf::from_bytes(vec![0x51])))
            .await
            .unwrap()
    }

    /// The output `outpoint`, from the chain or the mempool.
    pub fn output(&self, outpoint: OutPoint) -> TxOut {
        let state = self.node.lock();
        devnet::esplora::view::find_output(&state, &outpoint)
            .cloned()
            .expect("known output")
    }
}
