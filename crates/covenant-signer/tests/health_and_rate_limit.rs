//! The unauthenticated edges of the signing server (issue 15): the rate limit counts an IPv6
//! client by its /64 (one subscriber holds 2^64 addresses), and `/health` costs the node one
//! call per `HEALTH_TTL` however often it is asked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use bitcoin::{OutPoint, Txid};
use covenant_signer::chain::{ChainError, ChainView, MemoryChain, TxLookup};
use covenant_signer::fixture::{Fixture, FixtureShape};
use covenant_signer::keystore::KeyBackend;
use covenant_signer::metrics::Metrics;
use covenant_signer::server::{router, AppState, HttpOptions, RateLimit};
use covenant_signer::signer::Signer;
use futures::future::BoxFuture;
use tower::ServiceExt;

/// A chain that counts how often the tip is asked for.
struct CountingChain {
    inner: MemoryChain,
    tip_calls: AtomicU64,
}

impl ChainView for CountingChain {
    fn transaction(&self, txid: Txid) -> BoxFuture<'_, Result<TxLookup, ChainError>> {
        self.inner.transaction(txid)
    }
    fn tip_height(&self) -> BoxFuture<'_, Result<u32, ChainError>> {
        self.tip_calls.fetch_add(1, Ordering::Relaxed);
        self.inner.tip_height()
    }
    fn is_unspent(&self, outpoint: OutPoint) -> BoxFuture<'_, Result<bool, ChainError>> {
        self.inner.is_unspent(outpoint)
    }
}

fn state(chain: Arc<CountingChain>, rate_limit: Option<RateLimit>) -> Arc<AppState> {
    let fx = Fixture::new(FixtureShape::default(), 31).unwrap();
    let backend = KeyBackend::File(fx.member_covenant_key(0).unwrap());
    let signer = Signer::new(fx.params.clone(), chain, backend, u32::MAX);
    let options = HttpOptions {
        rate_limit,
        ..HttpOptions::default()
    };
    Arc::new(AppState::new(signer, Metrics::new().unwrap(), options))
}

fn counting_chain() -> Arc<CountingChain> {
    Arc::new(CountingChain {
        inner: MemoryChain::new(300),
        tip_calls: AtomicU64::new(0),
    })
}

/// One request as if from `peer`.
async fn call(state: &Arc<AppState>, peer: &str, method: &str, path: &str) -> StatusCode {
    let peer: SocketAddr = peer.parse().unwrap();
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from("not json"))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    router(Arc::clone(state))
        .oneshot(request)
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_rate_limit_counts_an_ipv6_client_by_its_64_prefix() {
    let limit = RateLimit {
        per_second: NonZeroU32::new(1).unwrap(),
        burst: NonZeroU32::new(2).unwrap(),
    };
    let state = state(counting_chain(), Some(limit));
    let sign = "/v1/sign-unbonding-tx";
    // The burst, from one address (the body is malformed: refused after the limit).
    for _ in 0..2 {
        let status = call(&state, "[2001:db8:0:7::1]:4000", "POST", sign).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    // Other addresses of the same /64 share that budget.
    for peer in ["[2001:db8:0:7::2]:4000", "[2001:db8:0:7:ffff:1:2:3]:5000"] {
        let status = call(&state, peer, "POST", sign).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{peer}");
    }
    // Another /64 and an IPv4 client have their own.
    for peer in ["[2001:db8:0:8::1]:4000", "192.0.2.7:4000"] {
        let status = call(&state, peer, "POST", sign).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{peer}");
    }
    // An IPv4-mapped IPv6 address is that IPv4 client.
    call(&state, "192.0.2.7:4001", "POST", sign).await;
    let status = call(&state, "[::ffff:192.0.2.7]:4002", "POST", sign).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn health_asks_the_node_once_per_period_however_often_it_is_called() {
    let chain = counting_chain();
    let state = state(Arc::clone(&chain), None);
    for i in 0..200 {
        let peer = format!("198.51.100.{}:4000", i % 250);
        assert_eq!(call(&state, &peer, "GET", "/health").await, StatusCode::OK);
    }
    let concurrent: Vec<_> = (0..50)
        .map(|_| {
            let state = Arc::clone(&state);
            tokio::spawn(async move { call(&state, "198.51.100.1:4000", "GET", "/health").await })
        })
        .collect();
    for task in concurrent {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(chain.tip_calls.load(Ordering::Relaxed), 1);

    // A node that stops answering shows once the answer is older than the period.
    chain
        .inner
        .fail_with(Some(ChainError::Transient("connection refused".into())));
    tokio::time::sleep(covenant_signer::health::HEALTH_TTL).await;
    for _ in 0..20 {
        let status = call(&state, "198.51.100.1:4000", "GET", "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(chain.tip_calls.load(Ordering::Relaxed), 2);
}
