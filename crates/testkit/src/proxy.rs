//! A TCP proxy a test can stop and start again on the same address, so a service under test
//! sees its node, database or broker go away (connections refused, open ones closed) and come
//! back, as when that service is stopped and restarted, without touching the shared server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards [`Proxy::addr`] to a target while up; while down nothing listens there.
#[derive(Debug)]
pub struct Proxy {
    /// Where the service under test connects.
    pub addr: SocketAddr,
    target: SocketAddr,
    stop: Option<watch::Sender<bool>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    ///
    /// # Panics
    /// When no loopback port can be bound (the test cannot run).
    pub async fn start(target: SocketAddr) -> Proxy {
        #[allow(clippy::expect_used, reason = "test support: no port means no test")]
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        #[allow(clippy::expect_used, reason = "a bound listener has an address")]
        let addr = listener.local_addr().expect("local address");
        let mut proxy = Proxy {
            addr,
            target,
            stop: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop, stopped) = watch::channel(false);
        let target = self.target;
        tokio::spawn(async move {
            let mut until_down = stopped.clone();
            loop {
                let inbound = tokio::select! {
                    _ = until_down.changed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((inbound, _)) => inbound,
                        Err(_) => continue,
                    },
                };
                let mut until_down = stopped.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = until_down.changed() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        self.stop = Some(stop);
    }

    /// Stops listening and closes every forwarded connection.
    pub fn down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }

    /// Listens on the same address again (retrying for up to 10 s while the port is released).
    ///
    /// # Panics
    /// When the address cannot be bound again within 10 s.
    pub async fn up(&mut self) {
        self.down();
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot listen on {} again: {e}",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.serve(listener);
    }

    /// `url` with its `host:port` replaced by this proxy's address.
    pub fn url_through(&self, url: &str) -> String {
        url.replacen(&authority(url), &self.addr.to_string(), 1)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}

/// The `host:port` of `url` (between `://`, after any `user:password@`, and the next `/`).
pub fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host_part = rest.split('/').next().unwrap_or(rest);
    host_part.rsplit('@').next().unwrap_or(host_part).to_owned()
}

/// The address `url`'s `host:port` resolves to.
///
/// # Panics
/// When it does not resolve.
pub async fn target_of(url: &str) -> SocketAddr {
    let authority = authority(url);
    #[allow(
        clippy::expect_used,
        reason = "test support: an unresolvable URL fails the test"
    )]
    tokio::net::lookup_host(authority.as_str())
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .expect("the URL's host:port resolves")
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn the_authority_skips_scheme_credentials_and_path() {
        assert_eq!(
            authority("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "127.0.0.1:5672"
        );
        assert_eq!(
            authority("postgres://postgres@127.0.0.1:5432/db"),
            "127.0.0.1:5432"
        );
        assert_eq!(authority("http://127.0.0.1:18443"), "127.0.0.1:18443");
    }
}
