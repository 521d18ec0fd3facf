//! Configuration: a TOML file, then `STAKINGD_…` environment variables, then command-line flags
//! (each layer overrides the one before), validated into [`Config`] with messages that say what
//! to fix. [`Config::new`] builds one in code (the all-in-one devnet, tests). Secrets never
//! appear in `Debug` output.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::Network;
use bitcoin_rpc::{default_rpc_port, RpcAuth, RpcConfig};
use events::{QueueType, RabbitMqConfig};
use net::redact_url;
use serde::Deserialize;

use crate::error::ConfigError;

/// Default Prometheus address (the indexer uses 2112).
pub const DEFAULT_METRICS_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 2113);

/// Where the chain tip comes from.
#[derive(Debug, Clone)]
pub enum TipSource {
    /// `getblockcount` on a Bitcoin Core node (as the reference checker).
    Rpc(RpcConfig),
    /// A height set by the embedding process (a test, or a devnet that knows its own tip).
    Manual(ManualTip),
}

/// A tip height shared with the process that sets it. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ManualTip(Arc<AtomicU64>);

impl ManualTip {
    /// A tip at `height`.
    pub fn new(height: u64) -> Self {
        ManualTip(Arc::new(AtomicU64::new(height)))
    }

    /// Moves the tip (the next poll sees it).
    pub fn set(&self, height: u64) {
        self.0.store(height, Ordering::SeqCst);
    }

    /// The current tip.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Where the expired events go.
#[derive(Debug, Clone)]
pub enum QueueConfig {
    /// In-process queues: only meaningful inside `stakingd devnet` or a test that hands the
    /// transport to [`crate::run_with`]; a standalone checker keeps events in its outbox.
    InProcess,
    /// RabbitMQ with the reference topology (`expired_staking_queue`).
    RabbitMq(RabbitMqConfig),
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite:PATH` or `postgres://…`: the API's database (timelock queue, expiry outbox).
    pub database_url: String,
    /// Pool size (PostgreSQL).
    pub max_connections: u32,
    pub tip: TipSource,
    /// Time between polls (the reference ships 5 s).
    pub poll_interval: Duration,
    /// Timelock rows claimed per database transaction (the reference takes 100).
    pub batch_size: u32,
    pub queue: QueueConfig,
    /// How long a relay owns the outbox rows it is publishing.
    pub relay_lease: Duration,
    /// Prometheus `/metrics` and `/health`; `None` disables them.
    pub metrics_addr: Option<SocketAddr>,
}

impl Config {
    /// Defaults for everything but the database and the tip: 5 s polls, batches of 100,
    /// in-process queue, no metrics endpoint.
    pub fn new(database_url: impl Into<String>, tip: TipSource) -> Self {
        Config {
            database_url: database_url.into(),
            max_connections: 4,
            tip,
            poll_interval: Duration::from_secs(5),
            batch_size: 100,
            queue: QueueConfig::InProcess,
            relay_lease: store::expiry::ExpiryOutbox::DEFAULT_LEASE,
            metrics_addr: None,
        }
    }
}

/// The `[bitcoind]` section as written.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBitcoind {
    pub url: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub cookie_file: Option<PathBuf>,
    pub timeout_secs: Option<u64>,
}

impl fmt::Debug for RawBitcoind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawBitcoind")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("cookie_file", &self.cookie_file)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// The `[queue]` section as written.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    /// `inprocess` or `amqp://user:password@host:port`.
    pub url: Option<String>,
    /// `quorum` (default) or `classic`.
    pub queue_type: Option<String>,
    /// Prefix of every queue name (tests); empty gives the reference names.
    pub queue_prefix: Option<String>,
}

impl fmt::Debug for RawQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawQueue")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("queue_type", &self.queue_type)
            .field("queue_prefix", &self.queue_prefix)
            .finish()
    }
}

/// The configuration as written, every field optional so layers can be merged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `sqlite:PATH` or `postgres://…` (the API's database).
    pub database_url: Option<String>,
    pub max_connections: Option<u32>,
    /// `mainnet`, `signet`, `testnet`, `testnet4` or `regtest`: picks the default RPC port.
    pub network: Option<String>,
    pub poll_interval_ms: Option<u64>,
    pub batch_size: Option<u32>,
    /// `host:port` of the Prometheus endpoint; `off` disables it.
    pub metrics_addr: Option<String>,
    #[serde(default)]
    pub bitcoind: RawBitcoind,
    #[serde(default)]
    pub queue: RawQueue,
}

fn pick<T>(over: Option<T>, base: Option<T>) -> Option<T> {
    over.or(base)
}

impl RawConfig {
    /// Parses a TOML file's text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text)
            .map_err(|e| ConfigError(format!("config file: {}", plumbing::explain_toml_error(&e))))
    }

    /// Reads a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| ConfigError(format!("{} ({})", e.0, path.display())))
    }

    /// `self` with every field set in `over` replaced by it.
    pub fn overridden_by(self, over: RawConfig) -> RawConfig {
        RawConfig {
            database_url: pick(over.database_url, self.database_url),
            max_connections: pick(over.max_connections, self.max_connections),
            network: pick(over.network, self.network),
            poll_interval_ms: pick(over.poll_interval_ms, self.poll_interval_ms),
            batch_size: pick(over.batch_size, self.batch_size),
            metrics_addr: pick(over.metrics_addr, self.metrics_addr),
            bitcoind: RawBitcoind {
                url: pick(over.bitcoind.url, self.bitcoind.url),
                user: pick(over.bitcoind.user, self.bitcoind.user),
                password: pick(over.bitcoind.password, self.bitcoind.password),
                cookie_file: pick(over.bitcoind.cookie_file, self.bitcoind.cookie_file),
                timeout_secs: pick(over.bitcoind.timeout_secs, self.bitcoind.timeout_secs),
            },
            queue: RawQueue {
                url: pick(over.queue.url, self.queue.url),
                queue_type: pick(over.queue.queue_type, self.queue.queue_type),
                queue_prefix: pick(over.queue.queue_prefix, self.queue.queue_prefix),
            },
        }
    }

    /// The layer given by `STAKINGD_…` variables (pass `std::env::vars()`); the names are the
    /// indexer's where the setting is the same (`STAKINGD_DATABASE_URL`, `STAKINGD_BITCOIND_URL`).
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut c = RawConfig::default();
        for (key, value) in vars {
            let Some(name) = key.strip_prefix("STAKINGD_") else {
                continue;
            };
            let err =
                |what: &str| ConfigError(format!("environment variable {key}={value:?}: {what}"));
            match name {
                "DATABASE_URL" => c.database_url = Some(value),
                "DB_MAX_CONNECTIONS" => {
                    c.max_connections = Some(value.parse().map_err(|_| err("expected a count"))?);
                }
                "NETWORK" => c.network = Some(value),
                "EXPIRY_POLL_INTERVAL_MS" => {
                    c.poll_interval_ms =
                        Some(value.parse().map_err(|_| err("expected milliseconds"))?);
                }
                "EXPIRY_BATCH_SIZE" => {
                    c.batch_size = Some(value.parse().map_err(|_| err("expected a row count"))?);
                }
                "METRICS_ADDR" => c.metrics_addr = Some(value),
                "BITCOIND_URL" => c.bitcoind.url = Some(value),
                "BITCOIND_USER" => c.bitcoind.user = Some(value),
                "BITCOIND_PASSWORD" => c.bitcoind.password = Some(value),
                "BITCOIND_COOKIE_FILE" => c.bitcoind.cookie_file = Some(PathBuf::from(value)),
                "BITCOIND_TIMEOUT_SECS" => {
                    c.bitcoind.timeout_secs =
                        Some(value.parse().map_err(|_| err("expected seconds"))?);
                }
                "QUEUE_URL" => c.queue.url = Some(value),
                "QUEUE_TYPE" => c.queue.queue_type = Some(value),
                "QUEUE_PREFIX" => c.queue.queue_prefix = Some(value),
                _ => {}
            }
        }
        Ok(c)
    }

    /// Validates every field; the first problem found is reported.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let database_url = self.database_url.ok_or_else(|| {
            ConfigError(
                "database_url is not set: point it at the API's database (the one `stakingd api` \
                 uses), e.g. postgres://user@host/staking or sqlite:/var/lib/stakingd/api.db"
                    .into(),
            )
        })?;
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError(format!(
                "database_url {:?} is not supported: use sqlite:PATH or postgres://user@host/db",
                redact_url(&database_url)
            )));
        }
        let max_connections = self.max_connections.unwrap_or(4);
        if max_connections == 0 {
            return Err(ConfigError("max_connections must be at least 1".into()));
        }
        let network = self.network.as_deref().map(parse_network).transpose()?;
        let url =
            match (self.bitcoind.url, network) {
                (Some(u), _) => u,
                (None, Some(n)) => format!("http://127.0.0.1:{}", default_rpc_port(n)),
                (None, None) => return Err(ConfigError(
                    "bitcoind.url is not set: set bitcoind.url (e.g. http://127.0.0.1:38332), or \
                     network to use the local node's default port"
                        .into(),
                )),
            };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError(format!(
                "bitcoind.url {:?} must start with http:// or https:// (a TLS proxy in front of the node)",
                redact_url(&url)
            )));
        }
        let auth =
            match (
                self.bitcoind.user,
                self.bitcoind.password,
                self.bitcoind.cookie_file,
            ) {
                (Some(user), Some(password), None) => RpcAuth::UserPass { user, password },
                (None, None, Some(cookie)) => RpcAuth::Cookie(cookie),
                (None, None, None) => return Err(ConfigError(
                    "bitcoind credentials are missing: set bitcoind.user and bitcoind.password, \
                     or bitcoind.cookie_file (e.g. ~/.bitcoin/signet/.cookie)"
                        .into(),
                )),
                (Some(_), None, _) | (None, Some(_), _) => return Err(ConfigError(
                    "set both bitcoind.user and bitcoind.password (or neither and use cookie_file)"
                        .into(),
                )),
                (Some(_), Some(_), Some(_)) => {
                    return Err(ConfigError(
                        "set either bitcoind.user/password or bitcoind.cookie_file, not both"
                            .into(),
                    ))
                }
            };
        let mut rpc = RpcConfig::new(url, auth);
        if let Some(secs) = self.bitcoind.timeout_secs {
            if secs == 0 {
                return Err(ConfigError(
                    "bitcoind.timeout_secs must be at least 1".into(),
                ));
            }
            rpc.timeout = Duration::from_secs(secs);
        }
        let poll_interval = match self.poll_interval_ms {
            None => Duration::from_secs(5),
            Some(ms) if ms >= 10 => Duration::from_millis(ms),
            Some(ms) => {
                return Err(ConfigError(format!(
                    "poll_interval_ms {ms} is too short: use at least 10 (the reference polls every 5000)"
                )))
            }
        };
        let batch_size = match self.batch_size {
            None => 100,
            Some(n @ 1..=10_000) => n,
            Some(n) => {
                return Err(ConfigError(format!(
                    "batch_size {n} is out of range: use 1 to 10000 (default 100)"
                )))
            }
        };
        let metrics_addr = match self.metrics_addr.as_deref() {
            None => Some(DEFAULT_METRICS_ADDR),
            Some("off" | "") => None,
            Some(a) => Some(a.parse().map_err(|_| {
                ConfigError(format!(
                    "metrics_addr {a:?} is not host:port (e.g. 127.0.0.1:2113), or `off`"
                ))
            })?),
        };
        let queue = match self.queue.url.as_deref() {
            None | Some("inprocess" | "in-process") => QueueConfig::InProcess,
            Some(u) if u.starts_with("amqp://") => {
                let mut c = RabbitMqConfig::from_uri(u);
                c.queue_type = match self.queue.queue_type.as_deref() {
                    None | Some("quorum") => QueueType::Quorum,
                    Some("classic") => QueueType::Classic,
                    Some(other) => {
                        return Err(ConfigError(format!(
                            "queue.queue_type {other:?} is not quorum or classic"
                        )))
                    }
                };
                c.queue_prefix = self.queue.queue_prefix.unwrap_or_default();
                QueueConfig::RabbitMq(c)
            }
            Some(u) => {
                return Err(ConfigError(format!(
                "queue.url {:?} is neither `inprocess` nor an amqp://user:password@host:port URL",
                redact_url(u)
            )))
            }
        };
        Ok(Config {
            database_url,
            max_connections,
            tip: TipSource::Rpc(rpc),
            poll_interval,
            batch_size,
            queue,
            relay_lease: store::expiry::ExpiryOutbox::DEFAULT_LEASE,
            metrics_addr,
        })
    }
}

fn parse_network(n: &str) -> Result<Network, ConfigError> {
    match n {
        "mainnet" | "main" | "bitcoin" => Ok(Network::Bitcoin),
        "signet" => Ok(Network::Signet),
        "testnet" | "testnet3" => Ok(Network::Testnet),
        "testnet4" => Ok(Network::Testnet4),
        "regtest" => Ok(Network::Regtest),
        other => Err(ConfigError(format!(
            "network {other:?} is unknown: use mainnet, signet, testnet, testnet4 or regtest"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;

    fn base() -> RawConfig {
        RawConfig::from_toml(
            r#"
            database_url = "postgres://p@h/db"
            [bitcoind]
            url = "http://127.0.0.1:38332"
            user = "u"
            password = "secret-pass"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn a_minimal_file_validates_with_the_reference_defaults() {
        let c = base().validate().unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(5));
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.metrics_addr, Some(DEFAULT_METRICS_ADDR));
        assert!(matches!(c.queue, QueueConfig::InProcess));
        assert!(matches!(c.tip, TipSource::Rpc(ref r) if r.url == "http://127.0.0.1:38332"));
    }

    #[test]
    fn env_overrides_the_file_and_flags_override_env() {
        let env = RawConfig::from_env([
            ("STAKINGD_EXPIRY_BATCH_SIZE".to_owned(), "7".to_owned()),
            (
                "STAKINGD_DATABASE_URL".to_owned(),
                "sqlite:/tmp/e.db".to_owned(),
            ),
            ("HOME".to_owned(), "/root".to_owned()),
        ])
        .unwrap();
        let flags = RawConfig {
            batch_size: Some(9),
            ..RawConfig::default()
        };
        let c = base()
            .overridden_by(env)
            .overridden_by(flags)
            .validate()
            .unwrap();
        assert_eq!(c.batch_size, 9);
        assert_eq!(c.database_url, "sqlite:/tmp/e.db");
    }

    #[test]
    fn a_bad_env_value_names_the_variable() {
        let e = RawConfig::from_env([(
            "STAKINGD_EXPIRY_POLL_INTERVAL_MS".to_owned(),
            "5s".to_owned(),
        )])
        .unwrap_err();
        assert!(e.0.contains("STAKINGD_EXPIRY_POLL_INTERVAL_MS"), "{e}");
    }

    #[test]
    fn the_rpc_port_follows_the_network_when_no_url_is_given() {
        let mut raw = base();
        raw.bitcoind.url = None;
        let e = raw.clone().validate().unwrap_err();
        assert!(e.0.contains("bitcoind.url"), "{e}");
        raw.network = Some("signet".into());
        let c = raw.validate().unwrap();
        assert!(matches!(c.tip, TipSource::Rpc(ref r) if r.url == "http://127.0.0.1:38332"));
    }

    #[test]
    fn out_of_range_values_and_unknown_keys_are_explained() {
        let mut raw = base();
        raw.batch_size = Some(0);
        assert!(raw.validate().unwrap_err().0.contains("batch_size"));
        let mut raw = base();
        raw.poll_interval_ms = Some(1);
        assert!(raw.validate().unwrap_err().0.contains("poll_interval_ms"));
        let e = RawConfig::from_toml("bach_size = 3").unwrap_err();
        assert!(e.0.contains("bach_size"), "{e}");
    }

    #[test]
    fn passwords_never_appear_in_errors_or_debug_output() {
        let mut raw = base();
        raw.queue.url = Some("kafka://u:hunter2@h".into());
        assert!(!raw.clone().validate().unwrap_err().0.contains("hunter2"));
        let printed = format!("{raw:?}");
        assert!(
            !printed.contains("secret-pass") && !printed.contains("hunter2"),
            "{printed}"
        );
    }
}
