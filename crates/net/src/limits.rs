//! What a server allows one client and all of them together: [`ServerLimits`], embeddable in a
//! service's config as a sub-table (`[server.limits]`, `[http]`, …).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Connection-level protections of a server, each with a default that is safe on the public
/// internet. Durations are written in seconds (fractions allowed: `0.5`); keys are snake_case,
/// and the kebab-case spelling (`header-read-timeout-secs`) is accepted for configs written in
/// that style.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimits {
    /// From accepting a connection (or the first byte of a later request on it) until the whole
    /// request head has arrived; a client that sends nothing, or drips a header, is cut off.
    #[serde(alias = "header-read-timeout-secs", deserialize_with = "secs")]
    #[serde(rename = "header_read_timeout_secs")]
    pub header_read_timeout: Duration,
    /// From the request head until the answer: the handler, and reading the body, get this long
    /// (`408 Request Timeout` after it). A connection on which nothing moves for this long while a
    /// request is open (a client that stops reading the answer) is closed.
    #[serde(alias = "request-timeout-secs", deserialize_with = "secs")]
    #[serde(rename = "request_timeout_secs")]
    pub request_timeout: Duration,
    /// A kept-alive connection with no request in flight and no byte received for this long is
    /// closed.
    #[serde(alias = "idle-timeout-secs", deserialize_with = "secs")]
    #[serde(rename = "idle_timeout_secs")]
    pub idle_timeout: Duration,
    /// TLS only: the handshake must complete within this.
    #[serde(alias = "tls-handshake-timeout-secs", deserialize_with = "secs")]
    #[serde(rename = "tls_handshake_timeout_secs")]
    pub tls_handshake_timeout: Duration,
    /// Open connections overall. At the cap, a new connection takes the place of the connection
    /// that has been idle longest; if every connection is busy, the new one is closed at once.
    #[serde(alias = "max-connections")]
    pub max_connections: usize,
    /// Open connections per client address (IPv4 by address, IPv6 by /64 prefix). Over it, the
    /// client's own longest-idle connection makes room, or the new one is closed at once.
    #[serde(alias = "max-connections-per-client")]
    pub max_connections_per_client: usize,
    /// Largest request body in bytes; reading past it fails (`413` from axum's extractors).
    #[serde(alias = "max-body-bytes")]
    pub max_body_bytes: usize,
    /// After shutdown is asked for: how long requests in flight may still finish.
    #[serde(alias = "shutdown-grace-secs", deserialize_with = "secs")]
    #[serde(rename = "shutdown_grace_secs")]
    pub shutdown_grace: Duration,
}

/// Default [`ServerLimits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ServerLimits::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ServerLimits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`ServerLimits::tls_handshake_timeout`].
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ServerLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default [`ServerLimits::max_connections_per_client`].
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;
/// Default [`ServerLimits::max_body_bytes`] (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default [`ServerLimits::shutdown_grace`].
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// A limit that cannot work, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server limit {key} {problem}")]
pub struct LimitsError {
    pub key: &'static str,
    pub problem: String,
}

impl ServerLimits {
    /// Every timeout above zero, every cap at least one, the per-client cap within the overall
    /// one.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let bad = |key: &'static str, problem: &str| {
            Err(LimitsError {
                key,
                problem: problem.to_owned(),
            })
        };
        for (key, d) in [
            ("header_read_timeout_secs", self.header_read_timeout),
            ("request_timeout_secs", self.request_timeout),
            ("idle_timeout_secs", self.idle_timeout),
            ("tls_handshake_timeout_secs", self.tls_handshake_timeout),
        ] {
            if d.is_zero() {
                return bad(key, "must be above 0");
            }
        }
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if self.max_connections_per_client == 0 {
            return bad("max_connections_per_client", "must be at least 1");
        }
        if self.max_connections_per_client > self.max_connections {
            return bad(
                "max_connections_per_client",
                &format!(
                    "({}) must not exceed max_connections ({})",
                    self.max_connections_per_client, self.max_connections
                ),
            );
        }
        if self.max_body_bytes == 0 {
            return bad("max_body_bytes", "must be at least 1");
        }
        Ok(())
    }

    /// `self` with the body limit and request timeout a service already had its own keys for
    /// (e.g. the API's `max_content_length`), so the two never disagree.
    pub fn with_request_limits(mut self, max_body_bytes: usize, request_timeout: Duration) -> Self {
        self.max_body_bytes = max_body_bytes;
        self.request_timeout = request_timeout;
        self
    }
}

/// Seconds as an integer or a fraction (`10`, `0.5`).
fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = f64::deserialize(d)?;
    Duration::try_from_secs_f64(value).map_err(|_| {
        serde::de::Error::custom(format!(
            "{value} is not a number of seconds (0 or more, e.g. 10 or 0.5)"
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Service {
        #[serde(default)]
        limits: ServerLimits,
    }

    #[test]
    fn an_absent_table_gives_the_documented_defaults() {
        let s: Service = toml::from_str("").unwrap();
        assert_eq!(s.limits, ServerLimits::default());
        assert_eq!(s.limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(s.limits.request_timeout, Duration::from_secs(30));
        assert_eq!(s.limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.limits.max_connections, 1024);
        assert_eq!(s.limits.max_connections_per_client, 64);
        assert_eq!(s.limits.max_body_bytes, 1 << 20);
        assert!(s.limits.validate().is_ok());
    }

    #[test]
    fn keys_are_read_in_seconds_in_either_spelling() {
        let s: Service = toml::from_str(
            "[limits]\nheader_read_timeout_secs = 0.5\nidle-timeout-secs = 5\nmax-connections = 9\nmax_connections_per_client = 3\n",
        )
        .unwrap();
        assert_eq!(s.limits.header_read_timeout, Duration::from_millis(500));
        assert_eq!(s.limits.idle_timeout, Duration::from_secs(5));
        assert_eq!(s.limits.max_connections, 9);
        assert_eq!(s.limits.max_connections_per_client, 3);
        assert_eq!(s.limits.request_timeout, DEFAULT_REQUEST_TIMEOUT);
    }

    #[test]
    fn an_unknown_key_or_a_negative_duration_is_refused() {
        let typo = toml::from_str::<Service>("[limits]\nidle_timeout = 5\n").unwrap_err();
        assert!(typo.to_string().contains("idle_timeout"), "{typo}");
        let negative = toml::from_str::<Service>("[limits]\nidle_timeout_secs = -1\n").unwrap_err();
        assert!(negative.to_string().contains("seconds"), "{negative}");
    }

    #[test]
    fn impossible_limits_are_named() {
        let zero = ServerLimits {
            idle_timeout: Duration::ZERO,
            ..ServerLimits::default()
        };
        assert_eq!(zero.validate().unwrap_err().key, "idle_timeout_secs");
        let inverted = ServerLimits {
            max_connections: 10,
            max_connections_per_client: 20,
            ..ServerLimits::default()
        };
        assert_eq!(
            inverted.validate().unwrap_err().key,
            "max_connections_per_client"
        );
    }
}
