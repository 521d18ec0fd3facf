//! Early wake-up on bitcoind's ZMQ `hashblock` notifications.
//!
//! Only a latency optimisation for the tip follower: the follower polls anyway, so a failed
//! connection or a lost message delays a block by at most one poll interval.

use std::fmt;
use std::time::Duration;

use tokio::time::{sleep_until, timeout_at, Instant};
use zeromq::{Socket, SocketRecv, SubSocket};

const TOPIC: &str = "hashblock";

/// A SUB socket on a `hashblock` publisher, (re)connected lazily.
pub(crate) struct HashBlockListener {
    endpoint: String,
    socket: Option<SubSocket>,
    /// Whether the last connection attempt failed (to warn once, not every poll).
    failing: bool,
}

impl fmt::Debug for HashBlockListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashBlockListener")
            .field("endpoint", &self.endpoint)
            .field("connected", &self.socket.is_some())
            .finish()
    }
}

impl HashBlockListener {
    pub(crate) fn new(endpoint: String) -> Self {
        Self {
            endpoint,
            socket: None,
            failing: false,
        }
    }

    /// Returns after `poll_interval`, or earlier when a `hashblock` message arrives.
    pub(crate) async fn wait(&mut self, poll_interval: Duration) {
        let deadline = Instant::now() + poll_interval;
        if self.socket.is_none() {
            self.connect(deadline).await;
        }
        let Some(socket) = self.socket.as_mut() else {
            sleep_until(deadline).await;
            return;
        };
        tokio::select! {
            () = sleep_until(deadline) => {}
            message = socket.recv() => match message {
                Ok(_) => tracing::trace!(endpoint = %self.endpoint, "ZMQ hashblock"),
                Err(e) => {
                    tracing::warn!(endpoint = %self.endpoint, error = %e, "ZMQ receive failed; polling until reconnected");
                    self.socket = None;
                    sleep_until(deadline).await;
                }
            },
        }
    }

    async fn connect(&mut self, deadline: Instant) {
        let endpoint = self.endpoint.clone();
        let attempt = timeout_at(deadline, async move {
            let mut socket = SubSocket::new();
            socket.connect(&endpoint).await?;
            socket.subscribe(TOPIC).await?;
            Ok::<_, zeromq::ZmqError>(socket)
        })
        .await;
        match attempt {
            Ok(Ok(socket)) => {
                tracing::info!(endpoint = %self.endpoint, "subscribed to ZMQ hashblock");
                self.socket = Some(socket);
                self.failing = false;
            }
            Ok(Err(e)) if !self.failing => {
                tracing::warn!(endpoint = %self.endpoint, error = %e, "cannot subscribe to ZMQ hashblock; polling");
                self.failing = true;
            }
            Err(_) if !self.failing => {
                tracing::warn!(endpoint = %self.endpoint, "ZMQ connection timed out; polling");
                self.failing = true;
            }
            Ok(Err(_)) | Err(_) => {}
        }
    }
}
