//! Follows the node's active chain and reports blocks connected and disconnected, in order.
//!
//! The follower remembers the blocks it reported. A new block is reported only if its
//! `prev_blockhash` is the last reported block; otherwise that block left the active chain and
//! is reported disconnected first. So a consumer that applies `Connected` and undoes
//! `Disconnected` always mirrors a prefix of the node's active chain, however deep the reorg.

use std::collections::VecDeque;
use std::time::Duration;

use bitcoin::{Block, BlockHash};
use futures::Stream;
use tokio_util::sync::CancellationToken;

use crate::client::RpcClient;
use crate::error::{codes, RpcError};

/// Poll interval used by [`FollowerConfig::new`].
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How many reported blocks are remembered. Deeper reorgs still work: the parent of the oldest
/// remembered block is known, and further parents are asked from the node (`getblockheader`).
const MAX_REMEMBERED: usize = 2_016;

/// Blocks in flight used by [`FollowerConfig::new`]: one at a time.
pub const DEFAULT_PREFETCH: usize = 1;

/// Where to start following.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartPoint {
    /// Resume after a block the caller already processed: the first event is the block at
    /// `height + 1`, or `Disconnected` for this block if it is no longer on the active chain.
    After {
        /// The block's height.
        height: u32,
        /// The block's hash.
        hash: BlockHash,
    },
    /// Start with the active chain's block at this height (waiting until the chain has it).
    /// The blocks below are the caller's base: should a reorg ever reach below this height,
    /// they are reported `Disconnected` like any other block.
    FromHeight(u32),
}

/// How to follow.
#[derive(Clone, Debug)]
pub struct FollowerConfig {
    /// How often the node is asked for its tip when nothing is pending.
    pub poll_interval: Duration,
    /// A ZMQ endpoint publishing `hashblock` (bitcoind's `-zmqpubhashblock`), e.g.
    /// `tcp://127.0.0.1:28332`, to learn of new blocks without waiting for the next poll.
    /// Needs the `zmq` feature; polling continues regardless, so a missed or broken ZMQ
    /// connection only costs latency.
    pub zmq_endpoint: Option<String>,
    /// Where to start.
    pub start: StartPoint,
    /// How many blocks may be in flight (requested or fetched, not yet reported) while the
    /// follower is behind the node's tip; each is `getblockhash` + `getblock` in a task of its
    /// own, so fetching and decoding overlap with the consumer's work and with each other.
    /// Memory grows by up to this many decoded blocks. `0` counts as `1` (one at a time).
    pub prefetch: usize,
}

impl FollowerConfig {
    /// Poll every [`DEFAULT_POLL_INTERVAL`], no ZMQ, one block at a time.
    pub fn new(start: StartPoint) -> Self {
        Self {
            poll_interval: DEFAULT_POLL_INTERVAL,
            zmq_endpoint: None,
            start,
            prefetch: DEFAULT_PREFETCH,
        }
    }
}

/// A change of the node's active chain.
#[derive(Clone, Debug, PartialEq)]
pub enum ChainEvent {
    /// `block` is now on the active chain at `height`, on top of the last connected block.
    Connected {
        /// The block's height.
        height: u32,
        /// The whole block.
        block: Block,
    },
    /// The last connected block, at `height`, left the active chain; the one below it is now
    /// the last connected block.
    Disconnected {
        /// The block's height.
        height: u32,
        /// The block's hash.
        hash: BlockHash,
    },
}

/// A reported block.
#[derive(Clone, Copy, Debug)]
struct Seen {
    height: u32,
    hash: BlockHash,
    /// Its parent, when known without asking the node.
    prev: Option<BlockHash>,
}

/// A block being fetched: `None` when the height was above the node's tip by then.
type Fetch = tokio::task::JoinHandle<Result<Option<(BlockHash, Block)>, RpcError>>;

/// Blocks requested ahead, at consecutive heights from the next one to report. Dropping it
/// aborts the fetches.
#[derive(Debug, Default)]
struct Ahead {
    fetches: VecDeque<(u32, Fetch)>,
}

impl Ahead {
    /// Requests the blocks from `next` on, up to `limit` in flight and `tip`, keeping the ones
    /// already requested if they start at `next`.
    fn fill(&mut self, client: &RpcClient, next: u32, tip: u32, limit: usize) {
        if self.fetches.front().is_some_and(|(h, _)| *h != next) {
            self.clear();
        }
        let mut height = self
            .fetches
            .back()
            .map_or(next, |(h, _)| h.saturating_add(1));
        // The next block is always requested: the caller saw the tip at or above it.
        while self.fetches.is_empty() || (self.fetches.len() < limit && height <= tip) {
            let client = client.clone();
            let fetch = tokio::spawn(async move {
                let hash = match client.get_block_hash(height).await {
                    Ok(hash) => hash,
                    // The chain got shorter since we polled.
                    Err(RpcError::Rpc { code, .. }) if code == codes::INVALID_PARAMETER => {
                        return Ok(None)
                    }
                    Err(e) => return Err(e),
                };
                Ok(Some((hash, client.get_block(&hash).await?)))
            });
            self.fetches.push_back((height, fetch));
            height = height.saturating_add(1);
        }
    }

    /// The first block's result. Cancel-safe: the fetch stays queued until it has finished.
    async fn first(&mut self) -> Result<Option<(BlockHash, Block)>, RpcError> {
        let result = match self.fetches.front_mut() {
            Some((_, fetch)) => fetch.await,
            None => return Ok(None),
        };
        self.fetches.pop_front();
        match result {
            Ok(fetched) => fetched,
            Err(e) => Err(RpcError::Decode {
                method: "getblock".to_owned(),
                reason: format!("the fetching task failed: {e}"),
            }),
        }
    }

    fn clear(&mut self) {
        for (_, fetch) in self.fetches.drain(..) {
            fetch.abort();
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.clear();
    }
}

/// What one look at the node produced.
enum Step {
    Event(ChainEvent),
    /// Nothing new: wait for the next poll or notification.
    Idle,
    /// The chain moved under us between two calls: look again at once.
    Again,
}

/// Follows the active chain of a node, reporting each block connected or disconnected in order
/// (the reasoning is in `follower.rs`'s module docs).
///
/// [`TipFollower::next`] is cancel-safe: the chain it reported changes only when it returns an
/// event, and blocks fetched ahead stay queued, so dropping the future (e.g. in
/// `tokio::select!`) or getting an error loses nothing; call it again to resume.
#[derive(Debug)]
pub struct TipFollower {
    client: RpcClient,
    poll_interval: Duration,
    /// Height to report first while nothing has been reported.
    start_height: u32,
    /// Reported, still-connected blocks, oldest first.
    chain: VecDeque<Seen>,
    /// Tip height from the last poll; while below it the follower fetches without polling.
    known_tip: Option<u32>,
    /// Blocks in flight, from the next height to report on.
    ahead: Ahead,
    prefetch: usize,
    wake: Wake,
}

impl TipFollower {
    /// A follower of `client`'s node. Does not contact the node.
    pub fn new(client: RpcClient, config: FollowerConfig) -> Self {
        let (start_height, chain) = match config.start {
            StartPoint::After { height, hash } => (
                height.saturating_add(1),
                VecDeque::from([Seen {
                    height,
                    hash,
                    prev: None,
                }]),
            ),
            StartPoint::FromHeight(height) => (height, VecDeque::new()),
        };
        Self {
            client,
            poll_interval: config.poll_interval,
            start_height,
            chain,
            known_tip: None,
            ahead: Ahead::default(),
            prefetch: config.prefetch.max(1),
            wake: Wake::new(config.zmq_endpoint),
        }
    }

    /// The last connected block (height, hash): persist it to resume with
    /// [`StartPoint::After`].
    pub fn last_connected(&self) -> Option<(u32, BlockHash)> {
        self.chain.back().map(|seen| (seen.height, seen.hash))
    }

    /// Waits for the next change of the active chain.
    pub async fn next(&mut self) -> Result<ChainEvent, RpcError> {
        loop {
            match self.step().await? {
                Step::Event(event) => return Ok(event),
                Step::Again => {}
                Step::Idle => self.wake.wait(self.poll_interval).await,
            }
        }
    }

    /// [`TipFollower::next`], or `None` once `shutdown` is cancelled.
    pub async fn next_until(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Option<Result<ChainEvent, RpcError>> {
        tokio::select! {
            () = shutdown.cancelled() => None,
            event = self.next() => Some(event),
        }
    }

    /// The events as an endless stream (errors included; the stream goes on after one).
    pub fn into_stream(self) -> impl Stream<Item = Result<ChainEvent, RpcError>> {
        futures::stream::unfold(self, |mut follower| async move {
            let event = follower.next().await;
            Some((event, follower))
        })
    }

    async fn step(&mut self) -> Result<Step, RpcError> {
        let Some(last) = self.chain.back().copied() else {
            let info = self.client.get_blockchain_info().await?;
            self.known_tip = Some(info.blocks);
            if info.blocks < self.start_height {
                return Ok(Step::Idle);
            }
            return self.connect_at(self.start_height, None).await;
        };
        let next_height = last.height.saturating_add(1);
        if self.known_tip.is_none_or(|tip| tip < next_height) {
            let info = self.client.get_blockchain_info().await?;
            self.known_tip = Some(info.blocks);
            if info.best_block_hash == last.hash {
                return Ok(Step::Idle);
            }
            if info.blocks < next_height {
                // The tip is at or below our last block and is not it: our block is off the
                // active chain.
                return self.disconnect(last).await;
            }
        }
        self.connect_at(next_height, Some(last)).await
    }

    async fn connect_at(&mut self, height: u32, last: Option<Seen>) -> Result<Step, RpcError> {
        let tip = self.known_tip.unwrap_or(height);
        self.ahead.fill(&self.client, height, tip, self.prefetch);
        let fetched = match self.ahead.first().await {
            Ok(fetched) => fetched,
            Err(e) => {
                // Start afresh at this height on the next call.
                self.ahead.clear();
                return Err(e);
            }
        };
        let Some((hash, block)) = fetched else {
            self.ahead.clear();
            self.known_tip = None;
            return Ok(Step::Again);
        };
        if let Some(last) = last {
            if block.header.prev_blockhash != last.hash {
                self.ahead.clear();
                return self.disconnect(last).await;
            }
        }
        self.chain.push_back(Seen {
            height,
            hash,
            prev: Some(block.header.prev_blockhash),
        });
        if self.chain.len() > MAX_REMEMBERED {
            self.chain.pop_front();
        }
        Ok(Step::Event(ChainEvent::Connected { height, block }))
    }

    async fn disconnect(&mut self, last: Seen) -> Result<Step, RpcError> {
        // Learn the parent before changing any state, so a failed call changes nothing.
        let parent = if self.chain.len() >= 2 || last.height == 0 {
            None
        } else {
            let prev = match last.prev {
                Some(prev) => prev,
                None => self
                    .client
                    .get_block_header_info(&last.hash)
                    .await?
                    .previous_block_hash
                    .ok_or_else(|| RpcError::Decode {
                        method: "getblockheader".to_owned(),
                        reason: format!(
                            "block {} at height {} has no parent",
                            last.hash, last.height
                        ),
                    })?,
            };
            Some(Seen {
                height: last.height - 1,
                hash: prev,
                prev: None,
            })
        };
        self.ahead.clear();
        self.chain.pop_back();
        if self.chain.is_empty() {
            match parent {
                Some(parent) => self.chain.push_back(parent),
                None => self.start_height = 0,
            }
        }
        self.known_tip = None;
        Ok(Step::Event(ChainEvent::Disconnected {
            height: last.height,
            hash: last.hash,
        }))
    }
}

/// Waits between polls, waking early on a ZMQ `hashblock` when configured.
#[derive(Debug)]
struct Wake {
    #[cfg(feature = "zmq")]
    zmq: Option<crate::zmq::HashBlockListener>,
}

impl Wake {
    fn new(endpoint: Option<String>) -> Self {
        #[cfg(feature = "zmq")]
        {
            Self {
                zmq: endpoint.map(crate::zmq::HashBlockListener::new),
            }
        }
        #[cfg(not(feature = "zmq"))]
        {
            if let Some(endpoint) = endpoint {
                tracing::warn!(
                    endpoint,
                    "ZMQ endpoint ignored: bitcoin-rpc was built without the `zmq` feature"
                );
            }
            Self {}
        }
    }

    async fn wait(&mut self, poll_interval: Duration) {
        #[cfg(feature = "zmq")]
        if let Some(zmq) = self.zmq.as_mut() {
            return zmq.wait(poll_interval).await;
        }
        tokio::time::sleep(poll_interval).await;
    }
}
