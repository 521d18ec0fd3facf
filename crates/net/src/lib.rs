//! The one hardened HTTP mechanism of every server and client we run.
//!
//! **Servers** ([`serve`], [`Server`]): HTTP/1.1 for an axum `Router`, optionally over TLS
//! (rustls, a cert/key PEM pair, optional client certificates), with the protections of
//! [`ServerLimits`]: a header-read timeout from accept (and from the first byte of each later
//! request), a request timeout (`408`), an idle keep-alive timeout, a body limit, and caps on
//! open connections overall and per client address (IPv4 address, IPv6 /64). At a cap the
//! longest-idle connection makes room; when all are busy the newcomer is closed at once — never
//! queued. `accept` errors (out of file descriptors) are logged at most once per 10 s and
//! retried after 100 ms: no client can stop a server. Shutdown lets requests in flight finish
//! within a grace period.
//!
//! **Clients** ([`ClientBuilder`]): reqwest over rustls with the system's roots plus an optional
//! CA file and client certificate ([`ClientTls`]), connect/read timeouts, no redirects, a
//! warning for plain `http://` to another machine, and [`read_limited`] to read an answer only
//! up to a size.
//!
//! **Operations** ([`Ops`]): the `/metrics`, `/health`, `/health/live` and `/health/ready`
//! endpoint of every service, with cached, time-bounded readiness checks.
//!
//! Everything uses rustls with the `ring` provider.
//!
//! **Redaction** ([`redact_url`]): the one way every crate shows a URL that may hold a password.

mod admission;
mod client;
mod conn;
mod fd;
#[cfg(feature = "flood")]
pub mod flood;
mod limits;
pub mod ops;
mod redact;
mod server;
mod stats;
mod tls;

pub use admission::ClientKey;
pub use client::{
    error_chain, read_limited, Client, ClientBuilder, ClientError, ReadError,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_READ_TIMEOUT,
};
pub use fd::raise_fd_limit;
pub use limits::{
    LimitsError, ServerLimits, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_SHUTDOWN_GRACE, DEFAULT_TLS_HANDSHAKE_TIMEOUT,
};
pub use ops::{Ops, OpsBuilder, OpsError, Readiness};
pub use redact::{redact_url, REDACTED};
pub use server::{serve, Server};
pub use stats::ServerStats;
pub use tls::{ClientTls, TlsError, TlsFiles, TlsServer};
