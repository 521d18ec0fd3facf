//! The tip follower against a fake node whose chain grows and reorganises: events come in
//! chain order, reorgs are reported as disconnects then connects, and a consumer applying the
//! events always mirrors the node's active chain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::BlockHash;
use bitcoin_rpc::{
    ChainEvent, FollowerConfig, RpcAuth, RpcClient, RpcConfig, StartPoint, TipFollower,
};
use proptest::prelude::*;
use support::{serve_chain, FakeChain};
use tokio_util::sync::CancellationToken;

const FAST_POLL: Duration = Duration::from_millis(10);
/// Long enough that a follower that should be idle would have reported something.
const QUIET: Duration = Duration::from_millis(300);

async fn follower(chain: &Arc<Mutex<FakeChain>>, start: StartPoint) -> TipFollower {
    follower_with(chain, start, 1).await
}

/// A follower with up to `prefetch` blocks in flight while catching up.
async fn follower_with(
    chain: &Arc<Mutex<FakeChain>>,
    start: StartPoint,
    prefetch: usize,
) -> TipFollower {
    let url = serve_chain(Arc::clone(chain)).await;
    let client = RpcClient::new(RpcConfig::new(
        url,
        RpcAuth::UserPass {
            user: "u".into(),
            password: "p".into(),
        },
    ))
    .unwrap();
    TipFollower::new(
        client,
        FollowerConfig {
            poll_interval: FAST_POLL,
            zmq_endpoint: None,
            start,
            prefetch,
        },
    )
}

/// An event reduced to what the assertions compare: (connected?, height, hash).
fn summary(event: &ChainEvent) -> (bool, u32, BlockHash) {
    match event {
        ChainEvent::Connected { height, block } => (true, *height, block.block_hash()),
        ChainEvent::Disconnected { height, hash } => (false, *height, *hash),
    }
}

async fn take(follower: &mut TipFollower, n: usize) -> Vec<(bool, u32, BlockHash)> {
    let mut events = Vec::new();
    for _ in 0..n {
        let event = tokio::time::timeout(Duration::from_secs(5), follower.next())
            .await
            .expect("an event within 5 s")
            .expect("no RPC error");
        events.push(summary(&event));
    }
    events
}

async fn assert_quiet(follower: &mut TipFollower) {
    if let Ok(event) = tokio::time::timeout(QUIET, follower.next()).await {
        panic!("expected no event, got {event:?}");
    }
}

fn connected(
    chain: &Arc<Mutex<FakeChain>>,
    heights: std::ops::RangeInclusive<u32>,
) -> Vec<(bool, u32, BlockHash)> {
    let chain = chain.lock().unwrap();
    heights
        .map(|h| (true, h, chain.active[h as usize]))
        .collect()
}

#[tokio::test]
async fn from_a_height_it_reports_every_block_up_to_the_tip_then_each_new_block() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(5)));
    let mut follower = follower(&chain, StartPoint::FromHeight(2)).await;

    assert_eq!(take(&mut follower, 3).await, connected(&chain, 2..=4));
    assert_quiet(&mut follower).await;

    chain.lock().unwrap().mine(2);
    assert_eq!(take(&mut follower, 2).await, connected(&chain, 5..=6));
    assert_eq!(
        follower.last_connected(),
        Some((6, chain.lock().unwrap().active[6]))
    );
}

#[tokio::test]
async fn a_start_height_above_the_tip_waits_for_the_chain_to_reach_it() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(3)));
    let mut follower = follower(&chain, StartPoint::FromHeight(5)).await;

    assert_quiet(&mut follower).await;
    chain.lock().unwrap().mine(3);

    assert_eq!(take(&mut follower, 1).await, connected(&chain, 5..=5));
}

#[tokio::test]
async fn a_reorg_is_reported_as_disconnects_from_the_top_then_connects_of_the_new_branch() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(6)));
    let mut follower = follower(&chain, StartPoint::FromHeight(0)).await;
    take(&mut follower, 6).await;
    let old: Vec<BlockHash> = chain.lock().unwrap().active.clone();

    {
        let mut chain = chain.lock().unwrap();
        chain.truncate_to(3);
        chain.mine(3);
    }

    let mut expected = vec![(false, 5, old[5]), (false, 4, old[4])];
    expected.extend(connected(&chain, 4..=6));
    assert_eq!(take(&mut follower, 5).await, expected);
    assert_quiet(&mut follower).await;
}

#[tokio::test]
async fn a_shorter_chain_after_invalidation_is_reported_as_disconnects_only() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(6)));
    let mut follower = follower(&chain, StartPoint::FromHeight(0)).await;
    take(&mut follower, 6).await;
    let old: Vec<BlockHash> = chain.lock().unwrap().active.clone();

    chain.lock().unwrap().truncate_to(2);

    assert_eq!(
        take(&mut follower, 3).await,
        vec![(false, 5, old[5]), (false, 4, old[4]), (false, 3, old[3])]
    );
    assert_quiet(&mut follower).await;
    assert_eq!(follower.last_connected(), Some((2, old[2])));
}

#[tokio::test]
async fn a_tip_replaced_at_the_same_height_is_disconnected_then_its_rival_connected() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(4)));
    let mut follower = follower(&chain, StartPoint::FromHeight(0)).await;
    take(&mut follower, 4).await;
    let old_tip = chain.lock().unwrap().active[3];

    {
        let mut chain = chain.lock().unwrap();
        chain.truncate_to(2);
        chain.mine(1);
    }

    let mut expected = vec![(false, 3, old_tip)];
    expected.extend(connected(&chain, 3..=3));
    assert_eq!(take(&mut follower, 2).await, expected);
}

#[tokio::test]
async fn a_reorg_below_the_start_height_disconnects_the_base_blocks_too() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(5)));
    let mut follower = follower(&chain, StartPoint::FromHeight(3)).await;
    take(&mut follower, 2).await;
    let old: Vec<BlockHash> = chain.lock().unwrap().active.clone();

    {
        let mut chain = chain.lock().unwrap();
        chain.truncate_to(1);
        chain.mine(4);
    }

    let mut expected = vec![(false, 4, old[4]), (false, 3, old[3]), (false, 2, old[2])];
    expected.extend(connected(&chain, 2..=5));
    assert_eq!(take(&mut follower, 7).await, expected);
}

#[tokio::test]
async fn resuming_after_a_block_that_was_reorged_away_disconnects_it_first() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(5)));
    let stale = chain.lock().unwrap().active[4];
    {
        let mut chain = chain.lock().unwrap();
        chain.truncate_to(3);
        chain.mine(2);
    }
    let mut follower = follower(
        &chain,
        StartPoint::After {
            height: 4,
            hash: stale,
        },
    )
    .await;

    let mut expected = vec![(false, 4, stale)];
    expected.extend(connected(&chain, 4..=5));
    assert_eq!(take(&mut follower, 3).await, expected);
}

#[tokio::test]
async fn resuming_after_the_current_tip_reports_nothing_until_a_new_block() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(3)));
    let tip = chain.lock().unwrap().active[2];
    let mut follower = follower(
        &chain,
        StartPoint::After {
            height: 2,
            hash: tip,
        },
    )
    .await;

    assert_quiet(&mut follower).await;
    chain.lock().unwrap().mine(1);

    assert_eq!(take(&mut follower, 1).await, connected(&chain, 3..=3));
}

#[tokio::test]
async fn a_transient_error_is_returned_and_the_next_call_resumes_where_it_was() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(3)));
    let mut follower = follower(&chain, StartPoint::FromHeight(0)).await;
    take(&mut follower, 1).await;
    chain.lock().unwrap().fail_next.push("getblock".into());

    let err = follower.next().await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");

    assert_eq!(take(&mut follower, 2).await, connected(&chain, 1..=2));
}

#[tokio::test]
async fn next_until_returns_none_once_shutdown_is_cancelled() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(1)));
    let mut follower = follower(&chain, StartPoint::FromHeight(1)).await;
    let shutdown = CancellationToken::new();
    let canceller = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        canceller.cancel();
    });

    let outcome = tokio::time::timeout(Duration::from_secs(5), follower.next_until(&shutdown))
        .await
        .expect("returns promptly after cancellation");

    assert!(outcome.is_none(), "{outcome:?}");
}

#[tokio::test]
async fn with_blocks_fetched_ahead_each_block_is_still_reported_once_in_height_order() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(40)));
    let mut follower = follower_with(&chain, StartPoint::FromHeight(3), 6).await;

    assert_eq!(take(&mut follower, 37).await, connected(&chain, 3..=39));
    assert_quiet(&mut follower).await;

    chain.lock().unwrap().mine(2);
    assert_eq!(take(&mut follower, 2).await, connected(&chain, 40..=41));
}

#[tokio::test]
async fn blocks_fetched_ahead_from_a_branch_that_was_reorged_away_are_disconnected_again() {
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(20)));
    let mut follower = follower_with(&chain, StartPoint::FromHeight(0), 8).await;
    // Blocks 5..=12 are requested while block 4 is reported.
    take(&mut follower, 5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    {
        let mut chain = chain.lock().unwrap();
        chain.truncate_to(6);
        chain.mine(4);
    }
    let expected = chain.lock().unwrap().active.clone();

    let mut mirror: Vec<BlockHash> = chain.lock().unwrap().active[..5].to_vec();
    let mut stale_reported = 0;
    while mirror != expected {
        let event = tokio::time::timeout(Duration::from_secs(5), follower.next())
            .await
            .expect("the follower converges")
            .expect("no RPC error");
        apply(&mut mirror, event);
        if mirror.len() > 7 && mirror[7] != expected[7] {
            stale_reported += 1;
        }
    }
    assert_quiet(&mut follower).await;
    assert!(
        stale_reported > 0,
        "the fetched-ahead blocks of the old branch were reported before the reorg was seen"
    );
}

/// Applies one event to a mirror of the chain, checking that it fits on top of it.
fn apply(mirror: &mut Vec<BlockHash>, event: ChainEvent) {
    match event {
        ChainEvent::Connected { height, block } => {
            assert_eq!(height as usize, mirror.len(), "connected out of order");
            if let Some(parent) = mirror.last() {
                assert_eq!(block.header.prev_blockhash, *parent, "does not link");
            }
            mirror.push(block.block_hash());
        }
        ChainEvent::Disconnected { height, hash } => {
            assert_eq!(
                height as usize + 1,
                mirror.len(),
                "disconnected below the top"
            );
            assert_eq!(mirror.pop(), Some(hash));
        }
    }
}

/// A chain change the property test applies.
#[derive(Clone, Debug)]
enum Change {
    Mine(u32),
    Reorg { depth: u32, mine: u32 },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (1u32..4).prop_map(Change::Mine),
        (1u32..5, 0u32..5).prop_map(|(depth, mine)| Change::Reorg { depth, mine }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the node does, even while the follower is catching up with blocks fetched
    /// ahead, a consumer that pushes on `Connected` and pops on `Disconnected` ends up with
    /// exactly the node's active chain.
    #[test]
    fn applying_the_events_always_reproduces_the_nodes_active_chain(
        changes in proptest::collection::vec((change(), 0usize..6), 1..8),
        prefetch in prop_oneof![Just(1usize), Just(4usize)],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let chain = Arc::new(Mutex::new(FakeChain::with_blocks(3)));
            let mut follower = follower_with(&chain, StartPoint::FromHeight(0), prefetch).await;
            let mut mirror: Vec<BlockHash> = Vec::new();
            for (change, events_before) in changes {
                // Take some events (possibly mid catch-up), then change the chain under the
                // follower.
                for _ in 0..events_before {
                    if mirror == chain.lock().unwrap().active {
                        break;
                    }
                    let event = tokio::time::timeout(Duration::from_secs(5), follower.next())
                        .await
                        .expect("an event while behind")
                        .expect("no RPC error");
                    apply(&mut mirror, event);
                }
                let mut chain = chain.lock().unwrap();
                match change {
                    Change::Mine(n) => { chain.mine(n); }
                    Change::Reorg { depth, mine } => {
                        let tip = chain.tip_height();
                        chain.truncate_to(tip.saturating_sub(depth).max(1));
                        chain.mine(mine);
                    }
                }
            }
            let expected = chain.lock().unwrap().active.clone();
            while mirror != expected {
                let event = tokio::time::timeout(Duration::from_secs(5), follower.next())
                    .await
                    .expect("the follower converges")
                    .expect("no RPC error");
                apply(&mut mirror, event);
            }
        });
    }
}

/// With a poll interval of a minute, only the ZMQ notification can deliver the block in time.
#[cfg(feature = "zmq")]
#[tokio::test]
async fn a_zmq_hashblock_wakes_the_follower_long_before_the_next_poll() {
    use zeromq::{PubSocket, Socket, SocketSend, ZmqMessage};

    let mut publisher = PubSocket::new();
    let endpoint = publisher.bind("tcp://127.0.0.1:0").await.unwrap();
    let chain = Arc::new(Mutex::new(FakeChain::with_blocks(1)));
    let url = serve_chain(Arc::clone(&chain)).await;
    let client = RpcClient::new(RpcConfig::new(
        url,
        RpcAuth::UserPass {
            user: "u".into(),
            password: "p".into(),
        },
    ))
    .unwrap();
    let mut follower = TipFollower::new(
        client,
        FollowerConfig {
            poll_interval: Duration::from_secs(60),
            zmq_endpoint: Some(endpoint.to_string()),
            start: StartPoint::FromHeight(0),
            prefetch: 1,
        },
    );
    assert_eq!(take(&mut follower, 1).await, connected(&chain, 0..=0));

    chain.lock().unwrap().mine(1);
    let waiting = tokio::spawn(async move { follower.next().await });
    // The subscription reaches the publisher asynchronously: publish until the follower wakes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !waiting.is_finished() && tokio::time::Instant::now() < deadline {
        publisher.send(ZmqMessage::from("hashblock")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert!(
        waiting.is_finished(),
        "the follower did not wake on hashblock"
    );
    let event = waiting.await.unwrap().unwrap();
    assert_eq!(vec![summary(&event)], connected(&chain, 1..=1));
}
