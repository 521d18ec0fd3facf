//! Configuration: a TOML file, then `STAKINGD_…` environment variables, then command-line flags
//! (each layer overrides the one before), validated at start into [`IndexerConfig`] with
//! messages that say what to fix. Secrets never appear in `Debug` output.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use bitcoin::Network;
use bitcoin_rpc::{default_rpc_port, RpcAuth, RpcConfig};
use events::{QueueType, RabbitMqConfig};
use net::redact_url;
use serde::Deserialize;
use staking_core::params::GlobalParams;
use staking_core::presets::Preset;

use crate::error::ConfigError;

/// The `[bitcoind]` section as written.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBitcoind {
    pub url: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub cookie_file: Option<PathBuf>,
    pub timeout_secs: Option<u64>,
    pub poll_interval_ms: Option<u64>,
}

impl fmt::Debug for RawBitcoind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawBitcoind")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("cookie_file", &self.cookie_file)
            .finish_non_exhaustive()
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
    /// `mainnet`, `signet`, `testnet`, `testnet4` or `regtest`.
    pub network: Option<String>,
    /// A preset name (`bbn-test-4`, `bbn-1`) or the path of a params JSON file.
    pub params: Option<String>,
    /// `sqlite:PATH` or `postgres://…`.
    pub database_url: Option<String>,
    pub start_height: Option<u32>,
    pub extra_event_enabled: Option<bool>,
    /// `host:port` of the Prometheus endpoint; `off` disables it.
    pub metrics_addr: Option<String>,
    /// `/health/ready` answers 503 when the indexer is more than this many blocks behind the
    /// node's tip, beyond the confirmation window [default: 6].
    pub max_lag_blocks: Option<u32>,
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
            network: pick(over.network, self.network),
            params: pick(over.params, self.params),
            database_url: pick(over.database_url, self.database_url),
            start_height: pick(over.start_height, self.start_height),
            extra_event_enabled: pick(over.extra_event_enabled, self.extra_event_enabled),
            metrics_addr: pick(over.metrics_addr, self.metrics_addr),
            max_lag_blocks: pick(over.max_lag_blocks, self.max_lag_blocks),
            bitcoind: RawBitcoind {
                url: pick(over.bitcoind.url, self.bitcoind.url),
                user: pick(over.bitcoind.user, self.bitcoind.user),
                password: pick(over.bitcoind.password, self.bitcoind.password),
                cookie_file: pick(over.bitcoind.cookie_file, self.bitcoind.cookie_file),
                timeout_secs: pick(over.bitcoind.timeout_secs, self.bitcoind.timeout_secs),
                poll_interval_ms: pick(
                    over.bitcoind.poll_interval_ms,
                    self.bitcoind.poll_interval_ms,
                ),
            },
            queue: RawQueue {
                url: pick(over.queue.url, self.queue.url),
                queue_type: pick(over.queue.queue_type, self.queue.queue_type),
                queue_prefix: pick(over.queue.queue_prefix, self.queue.queue_prefix),
            },
        }
    }

    /// The layer given by `STAKINGD_…` variables (pass `std::env::vars()`).
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut c = RawConfig::default();
        for (key, value) in vars {
            let Some(name) = key.strip_prefix("STAKINGD_") else {
                continue;
            };
            let parse_err =
                |what: &str| ConfigError(format!("environment variable {key}={value:?}: {what}"));
            match name {
                "NETWORK" => c.network = Some(value),
                "PARAMS" => c.params = Some(value),
                "DATABASE_URL" => c.database_url = Some(value),
                "START_HEIGHT" => {
                    c.start_height = Some(
                        value
                            .parse()
                            .map_err(|_| parse_err("expected a block height"))?,
                    );
                }
                "EXTRA_EVENT_ENABLED" => {
                    c.extra_event_enabled = Some(
                        value
                            .parse()
                            .map_err(|_| parse_err("expected true or false"))?,
                    );
                }
                "METRICS_ADDR" => c.metrics_addr = Some(value),
                "MAX_LAG_BLOCKS" => {
                    c.max_lag_blocks = Some(
                        value
                            .parse()
                            .map_err(|_| parse_err("expected a number of blocks"))?,
                    );
                }
                "BITCOIND_URL" => c.bitcoind.url = Some(value),
                "BITCOIND_USER" => c.bitcoind.user = Some(value),
                "BITCOIND_PASSWORD" => c.bitcoind.password = Some(value),
                "BITCOIND_COOKIE_FILE" => c.bitcoind.cookie_file = Some(PathBuf::from(value)),
                "BITCOIND_TIMEOUT_SECS" => {
                    c.bitcoind.timeout_secs =
                        Some(value.parse().map_err(|_| parse_err("expected seconds"))?);
                }
                "BITCOIND_POLL_INTERVAL_MS" => {
                    c.bitcoind.poll_interval_ms = Some(
                        value
                            .parse()
                            .map_err(|_| parse_err("expected milliseconds"))?,
                    );
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
    pub fn validate(self) -> Result<IndexerConfig, ConfigError> {
        let network = match self.network.as_deref() {
            None => {
                return Err(ConfigError(
                    "network is not set: set `network` (mainnet, signet, testnet, testnet4 or regtest) \
                     in the config file, STAKINGD_NETWORK or --network"
                        .into(),
                ))
            }
            Some(n) => parse_network(n)?,
        };
        let params_source = self.params.ok_or_else(|| {
            ConfigError(
                "params is not set: set `params` to a preset (bbn-test-4 for signet, bbn-1 for \
                 mainnet) or the path of a global-params JSON file"
                    .into(),
            )
        })?;
        let params = load_params(&params_source, network)?;
        let database_url = self
            .database_url
            .unwrap_or_else(|| "sqlite:stakingd-indexer.db".to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError(format!(
                "database_url {:?} is not supported: use sqlite:PATH or postgres://user@host/db",
                redact_url(&database_url)
            )));
        }
        let metrics_addr = match self.metrics_addr.as_deref() {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 2112))),
            Some("off" | "") => None,
            Some(a) => Some(a.parse().map_err(|_| {
                ConfigError(format!(
                    "metrics_addr {a:?} is not host:port (e.g. 127.0.0.1:2112), or `off`"
                ))
            })?),
        };
        let url = self
            .bitcoind
            .url
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", default_rpc_port(network)));
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError(format!(
                "bitcoind.url {url:?} must start with http:// or https:// (a TLS proxy in front of the node)"
            )));
        }
        let auth = match (
            self.bitcoind.user,
            self.bitcoind.password,
            self.bitcoind.cookie_file,
        ) {
            (Some(user), Some(password), None) => RpcAuth::UserPass { user, password },
            (None, None, Some(cookie)) => RpcAuth::Cookie(cookie),
            (None, None, None) => return Err(ConfigError(
                "bitcoind credentials are missing: set bitcoind.user and bitcoind.password, or \
                     bitcoind.cookie_file (e.g. ~/.bitcoin/signet/.cookie)"
                    .into(),
            )),
            (Some(_), None, _) | (None, Some(_), _) => {
                return Err(ConfigError(
                    "set both bitcoind.user and bitcoind.password (or neither and use cookie_file)"
                        .into(),
                ))
            }
            (Some(_), Some(_), Some(_)) => {
                return Err(ConfigError(
                    "set either bitcoind.user/password or bitcoind.cookie_file, not both".into(),
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
        let poll_interval =
            Duration::from_millis(self.bitcoind.poll_interval_ms.unwrap_or(1000).max(10));
        let queue = match self.queue.url.as_deref() {
            None | Some("inprocess") => QueueConfig::InProcess,
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
        Ok(IndexerConfig {
            network,
            params,
            params_source,
            database_url,
            start_height: self.start_height,
            extra_event_enabled: self.extra_event_enabled.unwrap_or(false),
            metrics_addr,
            max_lag_blocks: self.max_lag_blocks.unwrap_or(DEFAULT_MAX_LAG_BLOCKS),
            rpc,
            poll_interval,
            queue,
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

fn load_params(source: &str, network: Network) -> Result<GlobalParams, ConfigError> {
    if let Ok(preset) = Preset::from_str(source) {
        if preset.network() != network {
            return Err(ConfigError(format!(
                "params preset {source} is for the {} network but network is {network}: use {} \
                 or a params file made for {network}",
                preset.network(),
                Preset::ALL
                    .into_iter()
                    .find(|p| p.network() == network)
                    .map_or("a params file".to_owned(), |p| format!("preset {p}"))
            )));
        }
        return Ok(preset.params());
    }
    let text = std::fs::read(source).map_err(|e| {
        ConfigError(format!(
            "params {source:?} is neither a preset (bbn-test-4, bbn-1) nor a readable file: {e}"
        ))
    })?;
    let (params, warnings) = GlobalParams::from_json_bytes(&text)
        .map_err(|e| ConfigError(format!("params file {source}: {e}")))?;
    for w in warnings {
        tracing::warn!(params = source, "{w}");
    }
    Ok(params)
}

/// Where events go.
#[derive(Debug, Clone)]
pub enum QueueConfig {
    /// In-process queues: only meaningful when the indexer runs inside `stakingd devnet` (or a
    /// test) that passes the transport in; a standalone indexer keeps events in the outbox.
    InProcess,
    RabbitMq(RabbitMqConfig),
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    pub network: Network,
    pub params: GlobalParams,
    /// Preset name or file path, for logs.
    pub params_source: String,
    pub database_url: String,
    pub start_height: Option<u32>,
    pub extra_event_enabled: bool,
    pub metrics_addr: Option<SocketAddr>,
    /// Blocks the indexer may be behind the node's tip, beyond the confirmation window, and
    /// still be ready (`/health/ready`).
    pub max_lag_blocks: u32,
    pub rpc: RpcConfig,
    pub poll_interval: Duration,
    pub queue: QueueConfig,
}

/// [`IndexerConfig::max_lag_blocks`] when not set: an hour of mainnet blocks.
pub const DEFAULT_MAX_LAG_BLOCKS: u32 = 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_is_named_with_the_nearest_valid_one() {
        let e = RawConfig::from_toml("netwrok = \"signet\"\n").unwrap_err();
        assert!(e.0.contains("unknown field `netwrok`"), "{}", e.0);
        assert!(e.0.contains("did you mean `network`?"), "{}", e.0);
    }

    fn base() -> RawConfig {
        RawConfig::from_toml(
            r#"
            network = "signet"
            params = "bbn-test-4"
            database_url = "sqlite:/tmp/x.db"
            [bitcoind]
            url = "http://127.0.0.1:38332"
            user = "u"
            password = "secret-pass"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn a_complete_file_validates_with_defaults_for_the_rest() {
        let c = base().validate().unwrap();
        assert_eq!(c.network, Network::Signet);
        assert_eq!(c.params.confirmation_depth(), 10);
        assert_eq!(
            c.metrics_addr,
            Some(SocketAddr::from(([127, 0, 0, 1], 2112)))
        );
        assert!(matches!(c.queue, QueueConfig::InProcess));
        assert!(!c.extra_event_enabled);
    }

    #[test]
    fn env_overrides_the_file_and_flags_override_env() {
        let env = RawConfig::from_env([
            ("STAKINGD_START_HEIGHT".to_owned(), "200".to_owned()),
            (
                "STAKINGD_DATABASE_URL".to_owned(),
                "postgres://p@h/db".to_owned(),
            ),
            ("OTHER".to_owned(), "x".to_owned()),
        ])
        .unwrap();
        let flags = RawConfig {
            start_height: Some(300),
            ..RawConfig::default()
        };
        let c = base()
            .overridden_by(env)
            .overridden_by(flags)
            .validate()
            .unwrap();
        assert_eq!(c.start_height, Some(300));
        assert_eq!(c.database_url, "postgres://p@h/db");
    }

    #[test]
    fn a_bad_env_value_names_the_variable() {
        let e = RawConfig::from_env([("STAKINGD_START_HEIGHT".to_owned(), "ten".to_owned())])
            .unwrap_err();
        assert!(e.0.contains("STAKINGD_START_HEIGHT"), "{e}");
    }

    #[test]
    fn a_preset_for_another_network_is_refused_with_the_right_preset_named() {
        let mut raw = base();
        raw.params = Some("bbn-1".into());
        let e = raw.validate().unwrap_err();
        assert!(e.0.contains("bbn-1") && e.0.contains("bbn-test-4"), "{e}");
    }

    #[test]
    fn missing_credentials_and_unknown_keys_are_explained() {
        let mut raw = base();
        raw.bitcoind.user = None;
        raw.bitcoind.password = None;
        let e = raw.validate().unwrap_err();
        assert!(e.0.contains("cookie_file"), "{e}");
        let e = RawConfig::from_toml("netwrk = \"signet\"").unwrap_err();
        assert!(e.0.contains("netwrk"), "{e}");
    }

    #[test]
    fn bad_queue_and_database_urls_are_refused_without_leaking_passwords() {
        let mut raw = base();
        raw.queue.url = Some("kafka://u:hunter2@h".into());
        let e = raw.validate().unwrap_err();
        assert!(!e.0.contains("hunter2"), "{e}");
        let mut raw = base();
        raw.database_url = Some("mysql://u:hunter2@h/db".into());
        let e = raw.validate().unwrap_err();
        assert!(e.0.contains("sqlite:") && !e.0.contains("hunter2"), "{e}");
    }

    #[test]
    fn debug_output_redacts_the_rpc_password() {
        let printed = format!("{:?}", base());
        assert!(!printed.contains("secret-pass"), "{printed}");
    }

    #[test]
    fn max_lag_blocks_defaults_to_six_and_is_read_from_the_environment() {
        assert_eq!(
            base().validate().unwrap().max_lag_blocks,
            DEFAULT_MAX_LAG_BLOCKS
        );
        let env =
            RawConfig::from_env([("STAKINGD_MAX_LAG_BLOCKS".to_owned(), "9".to_owned())]).unwrap();
        assert_eq!(
            base().overridden_by(env).validate().unwrap().max_lag_blocks,
            9
        );
        let bad = RawConfig::from_env([("STAKINGD_MAX_LAG_BLOCKS".to_owned(), "x".to_owned())]);
        assert!(bad.unwrap_err().0.contains("STAKINGD_MAX_LAG_BLOCKS"));
    }
}
