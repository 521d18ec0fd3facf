//! The one way to build an HTTP client: connect and read timeouts, no redirects, rustls with the
//! system's roots plus an optional CA file, an optional client certificate, a warning for
//! plain `http://` to another machine, and answers read only up to a limit.

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::{Method, Url};

use crate::tls::{ClientTls, TlsError};

/// Default time to establish a connection (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default longest wait for the next bytes of an answer.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Pooled connections unused this long are closed: below the servers' idle timeout (60 s by
/// default), so the client, not the server, closes an idle connection and no request is sent
/// on a connection the server is closing.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{what} {path}: {reason}")]
    Pem {
        what: &'static str,
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("set both cert_file and key_file for a client certificate, or neither")]
    HalfIdentity,
    #[error("cannot build the HTTP client for {purpose}: {source}")]
    Build {
        purpose: String,
        #[source]
        source: reqwest::Error,
    },
}

/// Builds a [`Client`]. `purpose` names the peer in logs ("bitcoin node", "covenant signers").
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    purpose: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    timeout: Option<Duration>,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    tls: ClientTls,
}

impl ClientBuilder {
    pub fn new(purpose: impl Into<String>) -> Self {
        Self {
            purpose: purpose.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            timeout: None,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: 32,
            tls: ClientTls::default(),
        }
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest wait for each next piece of an answer (a slow drip is bounded by
    /// [`ClientBuilder::timeout`]).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// A bound on each whole request, answer body included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn pool_max_idle_per_host(mut self, n: usize) -> Self {
        self.pool_max_idle_per_host = n;
        self
    }

    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = tls;
        self
    }

    pub fn build(self) -> Result<Client, ClientError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_native_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .tcp_nodelay(true);
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(path) = &self.tls.ca_file {
            let pem = read(path, "CA file")?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ClientError::Pem {
                    what: "CA file",
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(ClientError::Pem {
                    what: "CA file",
                    path: path.clone(),
                    reason: "holds no PEM CERTIFICATE".to_owned(),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&self.tls.cert_file, &self.tls.key_file) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                let mut pem = read(cert, "client certificate file")?;
                pem.push(b'\n');
                pem.extend(read(key, "client key file")?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| ClientError::Pem {
                    what: "client certificate and key",
                    path: cert.clone(),
                    reason: e.to_string(),
                })?;
                builder = builder.identity(identity);
            }
            _ => return Err(ClientError::HalfIdentity),
        }
        let http = builder.build().map_err(|source| ClientError::Build {
            purpose: self.purpose.clone(),
            source,
        })?;
        Ok(Client {
            http,
            purpose: self.purpose.into(),
            warned: Arc::new(AtomicBool::new(false)),
        })
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError::Pem {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A reqwest client built by [`ClientBuilder`]. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    purpose: Arc<str>,
    warned: Arc<AtomicBool>,
}

impl Client {
    /// A request to `url`. The first plain `http://` request to a host that is not this
    /// machine logs a warning (credentials and answers travel unencrypted).
    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        match Url::parse(url) {
            Ok(parsed) => {
                self.warn_if_plaintext(&parsed);
                self.http.request(method, parsed)
            }
            // reqwest reports the bad URL when the request is sent.
            Err(_) => self.http.request(method, url),
        }
    }

    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Whether this client has warned about plain `http://` to another machine.
    pub fn warned_plaintext(&self) -> bool {
        self.warned.load(Ordering::Relaxed)
    }

    fn warn_if_plaintext(&self, url: &Url) {
        if url.scheme() != "http" || is_loopback(url) || self.warned.load(Ordering::Relaxed) {
            return;
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                client = %self.purpose,
                host = url.host_str().unwrap_or_default(),
                "plain http:// to another machine: requests, credentials and answers travel unencrypted (use https://)"
            );
        }
    }
}

/// `localhost`, `*.localhost`, 127.0.0.0/8 and ::1.
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Reading an answer failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The answer is longer than the caller accepts; reading stopped there.
    #[error("answer larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The connection failed or timed out while reading.
    #[error("reading the answer failed: {0}")]
    Transport(#[source] reqwest::Error),
}

impl ReadError {
    /// Whether the client's timeout ran out while reading.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ReadError::Transport(e) if e.is_timeout())
    }
}

/// The answer's body, read chunk by chunk and abandoned as soon as it would pass `max_bytes`
/// (a declared `Content-Length` above it is refused before reading anything). Memory stays
/// within `max_bytes` plus one chunk whatever the peer sends.
pub async fn read_limited(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Bytes, ReadError> {
    let too_large = ReadError::TooLarge { limit: max_bytes };
    let declared = response.content_length();
    if declared.is_some_and(|n| n > max_bytes as u64) {
        return Err(too_large);
    }
    let capacity = declared
        .map_or(8 * 1024, |n| usize::try_from(n).unwrap_or(max_bytes))
        .min(max_bytes);
    let mut body = BytesMut::with_capacity(capacity);
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// An error and its causes on one line (`a: b: c`): reqwest's own message omits the cause
/// (such as "invalid peer certificate: UnknownIssuer").
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
