//! Counters of what a server did to its connections, for tests, benchmarks and metrics.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Shared counters of one server (cheap to clone: every clone sees the same numbers).
#[derive(Debug, Clone, Default)]
pub struct ServerStats(Arc<Counters>);

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) open: AtomicUsize,
    pub(crate) accepted: AtomicU64,
    pub(crate) refused_per_client: AtomicU64,
    pub(crate) refused_total: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) header_timeouts: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
    pub(crate) stalled: AtomicU64,
    pub(crate) tls_failures: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
}

impl ServerStats {
    pub(crate) fn c(&self) -> &Counters {
        &self.0
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.0.open.load(Ordering::Relaxed)
    }
    /// Connections admitted since the start.
    pub fn accepted(&self) -> u64 {
        self.0.accepted.load(Ordering::Relaxed)
    }
    /// Connections closed at once because their client held its cap with busy connections.
    pub fn refused_per_client(&self) -> u64 {
        self.0.refused_per_client.load(Ordering::Relaxed)
    }
    /// Connections closed at once because the server held its cap with busy connections.
    pub fn refused_total(&self) -> u64 {
        self.0.refused_total.load(Ordering::Relaxed)
    }
    /// Idle connections closed to make room for a new one.
    pub fn evicted(&self) -> u64 {
        self.0.evicted.load(Ordering::Relaxed)
    }
    /// Connections closed because a request head did not arrive in time.
    pub fn header_timeouts(&self) -> u64 {
        self.0.header_timeouts.load(Ordering::Relaxed)
    }
    /// Kept-alive connections closed for being idle too long.
    pub fn idle_timeouts(&self) -> u64 {
        self.0.idle_timeouts.load(Ordering::Relaxed)
    }
    /// Connections closed because nothing moved while a request was open.
    pub fn stalled(&self) -> u64 {
        self.0.stalled.load(Ordering::Relaxed)
    }
    /// TLS handshakes that failed or timed out.
    pub fn tls_failures(&self) -> u64 {
        self.0.tls_failures.load(Ordering::Relaxed)
    }
    /// `accept` errors (e.g. out of file descriptors) the server paused on and went past.
    pub fn accept_errors(&self) -> u64 {
        self.0.accept_errors.load(Ordering::Relaxed)
    }
}
