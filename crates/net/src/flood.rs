//! An idle-connection flood, for tests, benchmarks and the fault-injection harness: many TCP
//! connections that never send a byte, each reopened when the server closes it, spread over
//! several loopback source addresses (so the per-client cap does not stop them all). Targets
//! must be on this machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What to flood and how.
#[derive(Debug, Clone)]
pub struct FloodConfig {
    pub target: SocketAddr,
    /// Connections to hold open at once.
    pub connections: usize,
    /// Local addresses to connect from, in turn; empty: the system's choice.
    pub sources: Vec<IpAddr>,
    /// After the server closes a connection (or refuses one), wait this long and open it again.
    pub reopen_after: Duration,
}

impl FloodConfig {
    /// `connections` idle connections to `target`, from 127.0.0.2, 127.0.0.3, … (`sources`
    /// addresses; loopback only) when the target is IPv4 loopback.
    pub fn loopback(target: SocketAddr, connections: usize, sources: u8) -> Self {
        let sources = if target.ip().is_loopback() && target.is_ipv4() {
            (0..sources.max(1))
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 250))))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            target,
            connections,
            sources,
            reopen_after: Duration::from_millis(50),
        }
    }
}

/// Counts of a running flood.
#[derive(Debug, Default)]
struct Counts {
    open: AtomicUsize,
    opened: AtomicU64,
    closed_by_server: AtomicU64,
    connect_errors: AtomicU64,
}

/// A snapshot of a flood's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodCounts {
    /// Connections open now (from the client's side: established and not yet closed).
    pub open: usize,
    /// Connections established since the start.
    pub opened: u64,
    /// Connections the server closed (timeouts, caps, eviction).
    pub closed_by_server: u64,
    /// Connection attempts that failed.
    pub connect_errors: u64,
}

/// A running flood; [`IdleFlood::stop`] ends it.
#[derive(Debug)]
pub struct IdleFlood {
    stop: CancellationToken,
    tasks: JoinSet<()>,
    counts: Arc<Counts>,
}

impl IdleFlood {
    /// Starts holding `config.connections` idle connections.
    pub fn start(config: FloodConfig) -> Self {
        let stop = CancellationToken::new();
        let counts = Arc::new(Counts::default());
        let mut tasks = JoinSet::new();
        for slot in 0..config.connections {
            let source =
                (!config.sources.is_empty()).then(|| config.sources[slot % config.sources.len()]);
            tasks.spawn(hold(
                config.target,
                source,
                config.reopen_after,
                stop.clone(),
                Arc::clone(&counts),
            ));
        }
        Self {
            stop,
            tasks,
            counts,
        }
    }

    pub fn counts(&self) -> FloodCounts {
        FloodCounts {
            open: self.counts.open.load(Ordering::Relaxed),
            opened: self.counts.opened.load(Ordering::Relaxed),
            closed_by_server: self.counts.closed_by_server.load(Ordering::Relaxed),
            connect_errors: self.counts.connect_errors.load(Ordering::Relaxed),
        }
    }

    /// Waits until `n` connections are open at once, at most `timeout`; whether they were.
    pub async fn wait_open(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.counts.open.load(Ordering::Relaxed) < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Closes every connection; the final counts.
    pub async fn stop(mut self) -> FloodCounts {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.counts()
    }
}

async fn hold(
    target: SocketAddr,
    source: Option<IpAddr>,
    reopen_after: Duration,
    stop: CancellationToken,
    counts: Arc<Counts>,
) {
    while !stop.is_cancelled() {
        match connect(target, source).await {
            Ok(mut stream) => {
                counts.opened.fetch_add(1, Ordering::Relaxed);
                counts.open.fetch_add(1, Ordering::Relaxed);
                let mut byte = [0u8; 1];
                let closed = tokio::select! {
                    () = stop.cancelled() => false,
                    // Any answer or end of stream: the server is done with this connection.
                    _ = stream.read(&mut byte) => true,
                };
                counts.open.fetch_sub(1, Ordering::Relaxed);
                if closed {
                    counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                counts.connect_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(reopen_after) => {}
        }
    }
}

async fn connect(
    target: SocketAddr,
    source: Option<IpAddr>,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    tokio::time::timeout(Duration::from_secs(5), socket.connect(target))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}
