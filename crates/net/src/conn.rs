//! One connection: its clock readings, the service that hands requests to the router (request
//! timeout, body limit, client address), and the watchdog that closes it when a client sends no
//! header, idles, or stalls.
//!
//! Why a watchdog of our own: hyper's `header_read_timeout` also bounds the wait *between*
//! kept-alive requests, so it cannot give a short header timeout next to a longer idle
//! timeout, and it knows nothing of a client that stops reading an answer. The watchdog reads
//! a few atomics that the connection's I/O and requests update, and sleeps until the earliest
//! moment one of the three limits could be reached: one timer per connection, re-armed only
//! when it fires.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::Frame;
use http_body_util::Limited;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::limits::ServerLimits;
use crate::stats::ServerStats;

/// Milliseconds since the server started: one epoch for every connection, so idle times compare.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn instant(&self, ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.epoch + Duration::from_millis(ms))
    }
}

/// What the watchdog found the connection doing when a limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for (the rest of) a request head.
    Header,
    /// Kept alive with nothing to do.
    Idle,
    /// A request is open and no byte moved.
    Stalled,
}

/// The connection's activity, written by its I/O and its requests, read by the watchdog and by
/// the registry when it looks for an idle connection to close.
#[derive(Debug)]
pub(crate) struct ConnState {
    clock: Clock,
    in_flight: AtomicU32,
    /// When `in_flight` last became 0.
    idle_since: AtomicU64,
    /// 1 + when the first byte of the next request head arrived (0: none yet since the last
    /// request). Set at accept, so the first head is bounded from the start.
    head_started: AtomicU64,
    /// The last byte read or written.
    last_io: AtomicU64,
}

impl ConnState {
    pub(crate) fn new(clock: Clock) -> Self {
        let now = clock.now_ms();
        Self {
            clock,
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(now),
            head_started: AtomicU64::new(now + 1),
            last_io: AtomicU64::new(now),
        }
    }

    /// The header timeout starts again (after a TLS handshake).
    pub(crate) fn restart_head(&self) {
        let now = self.clock.now_ms();
        self.head_started.store(now + 1, Ordering::Relaxed);
        self.last_io.store(now, Ordering::Relaxed);
    }

    fn on_read(&self) {
        let now = self.clock.now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started.store(now + 1, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_io.store(self.clock.now_ms(), Ordering::Relaxed);
    }

    /// A request head was read and goes to the router.
    pub(crate) fn begin_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// When the connection went quiet, `None` while a request is in flight: the registry closes
    /// the smallest first.
    pub(crate) fn quiet_since(&self) -> Option<u64> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        Some(
            self.idle_since
                .load(Ordering::Relaxed)
                .max(self.last_io.load(Ordering::Relaxed)),
        )
    }

    /// The moment the limit of the current phase runs out.
    fn deadline(&self, limits: &ServerLimits) -> (u64, Phase) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4);
        let last_io = self.last_io.load(Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            // The router's own timeout answers 408 at `request_timeout`; this only catches a
            // client that does not take the answer, so it waits a little longer.
            let grace = ms(limits.request_timeout).max(5_000);
            return (
                last_io.saturating_add(ms(limits.request_timeout) + grace),
                Phase::Stalled,
            );
        }
        let head = self.head_started.load(Ordering::Relaxed);
        if head != 0 {
            return (
                (head - 1).saturating_add(ms(limits.header_read_timeout)),
                Phase::Header,
            );
        }
        let quiet = self.idle_since.load(Ordering::Relaxed).max(last_io);
        (quiet.saturating_add(ms(limits.idle_timeout)), Phase::Idle)
    }
}

/// One request in flight; dropped when its answer has been written (or abandoned).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let state = &self.0;
        if state.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            state
                .idle_since
                .store(state.clock.now_ms(), Ordering::Relaxed);
        }
    }
}

/// The socket (or TLS stream), noting every byte that moves.
struct Tracked<T> {
    io: T,
    state: Arc<ConnState>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// An answer's body that keeps its request counted as in flight until it has been written.
pub(crate) struct GuardedBody {
    inner: Body,
    guard: Option<InFlight>,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Hands one connection's requests to the router: the client's address as
/// `ConnectInfo<SocketAddr>`, the body limited, the whole request timed out.
struct ConnService {
    router: Router,
    peer: SocketAddr,
    state: Arc<ConnState>,
    max_body: usize,
    timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<GuardedBody>;
    type Error = Infallible;
    type Future = ConnFuture;

    fn call(&self, req: Request<Incoming>) -> ConnFuture {
        let guard = self.state.begin_request();
        let max = self.max_body;
        let mut req = req.map(|body| Limited::new(body, max));
        req.extensions_mut().insert(ConnectInfo(self.peer));
        // `Router` is always ready (its `poll_ready` returns `Ready(Ok)`), so calling a fresh
        // clone directly is what `oneshot` would do.
        let inner = tower::Service::call(&mut self.router.clone(), req);
        ConnFuture {
            inner,
            sleep: tokio::time::sleep(self.timeout),
            guard: Some(guard),
        }
    }
}

pin_project! {
    /// The router's answer, or `408` when the request timeout runs out first.
    struct ConnFuture {
        #[pin]
        inner: axum::routing::future::RouteFuture<Infallible>,
        #[pin]
        sleep: tokio::time::Sleep,
        guard: Option<InFlight>,
    }
}

impl Future for ConnFuture {
    type Output = Result<Response<GuardedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => match this.sleep.poll(cx) {
                Poll::Ready(()) => {
                    let mut timed_out = Response::new(Body::empty());
                    *timed_out.status_mut() = StatusCode::REQUEST_TIMEOUT;
                    timed_out
                }
                Poll::Pending => return Poll::Pending,
            },
        };
        let guard = this.guard.take();
        Poll::Ready(Ok(response.map(|inner| GuardedBody { inner, guard })))
    }
}

/// Everything one connection needs besides its socket.
pub(crate) struct ConnContext {
    pub(crate) router: Router,
    pub(crate) limits: Arc<ServerLimits>,
    pub(crate) stats: ServerStats,
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
}

/// Serves HTTP/1.1 on `io` until the client leaves, a limit runs out, the registry evicts the
/// connection, or shutdown (then requests in flight get `shutdown_grace` to finish).
pub(crate) async fn drive<T>(
    io: T,
    peer: SocketAddr,
    ticket: &crate::admission::Ticket,
    ctx: &ConnContext,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = Arc::clone(&ticket.state);
    let service = ConnService {
        router: ctx.router.clone(),
        peer,
        state: Arc::clone(&state),
        max_body: ctx.limits.max_body_bytes,
        timeout: ctx.limits.request_timeout,
    };
    let io = TokioIo::new(Tracked {
        io,
        state: Arc::clone(&state),
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        let (deadline, phase) = state.deadline(&ctx.limits);
        let mut wake = state.clock.instant(deadline);
        if let Some(until) = drain_until {
            wake = wake.min(until);
        }
        tokio::select! {
            biased;
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(client = %peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = ticket.close.cancelled() => {
                tracing::debug!(client = %peer, "idle connection closed to make room");
                return;
            }
            () = ctx.shutdown.cancelled(), if drain_until.is_none() => {
                conn.as_mut().graceful_shutdown();
                drain_until = Some(tokio::time::Instant::now() + ctx.limits.shutdown_grace);
            }
            () = tokio::time::sleep_until(wake) => {
                if drain_until.is_some_and(|until| tokio::time::Instant::now() >= until) {
                    return;
                }
                let (deadline, now_phase) = state.deadline(&ctx.limits);
                if now_phase == phase && state.clock.now_ms() >= deadline {
                    let counter = match phase {
                        Phase::Header => &ctx.stats.c().header_timeouts,
                        Phase::Idle => &ctx.stats.c().idle_timeouts,
                        Phase::Stalled => &ctx.stats.c().stalled,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(client = %peer, ?phase, "connection closed: limit reached");
                    return;
                }
            }
        }
    }
}
