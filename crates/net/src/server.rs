//! The accept loop: admission under the caps, the TLS handshake under its timeout, one task per
//! connection, `accept` errors waited out, and a graceful end.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::{Refusal, Registry, Ticket};
use crate::conn::{self, Clock, ConnContext};
use crate::limits::ServerLimits;
use crate::stats::ServerStats;
use crate::tls::TlsServer;

/// How long the accept loop pauses after an error such as running out of file descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// At most one log line per this for a repeating problem (refusals, `accept` errors).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// An HTTP/1.1 server for an axum [`Router`] with the protections of [`ServerLimits`] and
/// optional TLS. Handlers can extract `ConnectInfo<SocketAddr>`.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    tls: Option<TlsServer>,
    stats: ServerStats,
}

/// Serves `router` on `listener` until `shutdown`, with `limits` and optional `tls`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    tls: Option<TlsServer>,
    shutdown: CancellationToken,
) {
    Server::new(listener, router)
        .limits(limits)
        .tls(tls)
        .serve(shutdown)
        .await;
}

impl Server {
    /// A server with the default [`ServerLimits`] and no TLS.
    pub fn new(listener: TcpListener, router: Router) -> Self {
        Self {
            listener,
            router,
            limits: ServerLimits::default(),
            tls: None,
            stats: ServerStats::default(),
        }
    }

    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn tls(mut self, tls: Option<TlsServer>) -> Self {
        self.tls = tls;
        self
    }

    /// The counters this server will update.
    pub fn stats(&self) -> ServerStats {
        self.stats.clone()
    }

    /// Accepts until `shutdown`, then lets requests in flight finish (at most
    /// `shutdown_grace`) and returns. A client can never make it return: refused connections
    /// are closed, failed `accept`s are logged (at most once per 10 s) and retried.
    pub async fn serve(self, shutdown: CancellationToken) {
        let Server {
            listener,
            router,
            limits,
            tls,
            stats,
        } = self;
        let local = listener.local_addr().ok();
        warn_if_fd_limit_low(&limits, local);
        let registry = Arc::new(Registry::new(
            limits.max_connections,
            limits.max_connections_per_client,
            Clock::new(),
            stats.clone(),
        ));
        let ctx = Arc::new(ConnContext {
            router,
            limits: Arc::new(limits),
            stats: stats.clone(),
            shutdown: shutdown.clone(),
        });
        let tracker = TaskTracker::new();
        let refusals = Throttle::default();
        let errors = Throttle::default();
        loop {
            let accepted = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => match registry.admit(peer.ip()) {
                    Ok(ticket) => {
                        stats.c().accepted.fetch_add(1, Ordering::Relaxed);
                        let ctx = Arc::clone(&ctx);
                        let tls = tls.clone();
                        tracker.spawn(connection(stream, peer, ticket, tls, ctx));
                    }
                    Err(refusal) => {
                        let (counter, why) = match refusal {
                            Refusal::PerClient => (
                                &stats.c().refused_per_client,
                                "the client holds its connection cap, all busy",
                            ),
                            Refusal::Total => (
                                &stats.c().refused_total,
                                "the server holds its connection cap, all busy",
                            ),
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                        if let Some(suppressed) = refusals.hit() {
                            tracing::warn!(server = ?local, client = %peer.ip(), suppressed, "connection refused: {why}");
                        }
                    }
                },
                Err(e) if is_per_connection(&e) => {}
                Err(e) => {
                    stats.c().accept_errors.fetch_add(1, Ordering::Relaxed);
                    if let Some(suppressed) = errors.hit() {
                        tracing::warn!(server = ?local, error = %e, suppressed, "accept failed; pausing {ACCEPT_PAUSE:?}");
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_PAUSE) => {}
                    }
                }
            }
        }
        drop(listener);
        tracker.close();
        tracker.wait().await;
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    tls: Option<TlsServer>,
    ctx: Arc<ConnContext>,
) {
    // Small answers go out at once (no Nagle delay); failure only costs latency.
    let _ = stream.set_nodelay(true);
    match tls {
        None => conn::drive(stream, peer, &ticket, &ctx).await,
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.config));
            let handshake = tokio::select! {
                () = ticket.close.cancelled() => return,
                () = ctx.shutdown.cancelled() => return,
                done = tokio::time::timeout(ctx.limits.tls_handshake_timeout, acceptor.accept(stream)) => done,
            };
            match handshake {
                Ok(Ok(stream)) => {
                    ticket.state.restart_head();
                    conn::drive(stream, peer, &ticket, &ctx).await;
                }
                Ok(Err(e)) => {
                    ctx.stats.c().tls_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(client = %peer, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    ctx.stats.c().tls_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(client = %peer, "TLS handshake timed out");
                }
            }
        }
    }
}

/// `accept` errors that concern only the connection being accepted (it went away first).
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    )
}

/// At most one log line per [`LOG_EVERY`]; counts what it suppressed in between.
#[derive(Default)]
struct Throttle(Mutex<(Option<Instant>, u64)>);

impl Throttle {
    /// `Some(suppressed since the last line)` when a line may be logged now.
    fn hit(&self) -> Option<u64> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, suppressed) = &mut *state;
        if last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            *suppressed += 1;
            return None;
        }
        *last = Some(Instant::now());
        Some(std::mem::take(suppressed))
    }
}

/// The connection cap is only real if the process may open that many sockets.
fn warn_if_fd_limit_low(limits: &ServerLimits, local: Option<SocketAddr>) {
    if let Ok((soft, _hard)) = rlimit::Resource::NOFILE.get() {
        let needed = limits.max_connections as u64 + 64;
        if soft < needed {
            tracing::warn!(
                server = ?local,
                fd_limit = soft,
                max_connections = limits.max_connections,
                "the open-file limit is below max_connections + 64: accept will fail before the cap (raise `ulimit -n`, or lower max_connections)"
            );
        }
    }
}
