//! What the operations tests need besides the harness and `testkit::Proxy`: a bare HTTP GET,
//! readiness polling, one sample of `/metrics`, and a free loopback port.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    reason = "test code: a panic is a failed test"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub use testkit::http_get as get;

/// `/health/ready` as (status, JSON body).
pub async fn ready(addr: SocketAddr) -> Option<(u16, serde_json::Value)> {
    let (status, body) = get(addr, "/health/ready").await?;
    Some((status, serde_json::from_str(&body).ok()?))
}

/// Polls `/health/ready` until `want(status, body)`, at most `timeout`; returns the last body.
pub async fn ready_until(
    addr: SocketAddr,
    what: &str,
    timeout: Duration,
    want: impl Fn(u16, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Some((status, body)) = ready(addr).await {
            if want(status, &body) {
                return body;
            }
            last = Some((status, body));
        }
        assert!(
            Instant::now() < deadline,
            "readiness never became {what} within {timeout:?}; last answer {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of `series` in `/metrics` on `addr` (0 when absent).
pub async fn sample(addr: SocketAddr, series: &str) -> f64 {
    let (_, text) = get(addr, "/metrics").await.expect("/metrics answers");
    testkit::sample(&text, series).unwrap_or(0.0)
}
