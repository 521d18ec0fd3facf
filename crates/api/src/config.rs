//! `stakingd api` settings: one TOML file, overridden by environment and flags in `stakingd`,
//! validated here at start with sentences that say what is wrong.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bitcoin::Network;
use serde::Deserialize;

/// Everything the API needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub db: DbConfig,
    pub queue: QueueConfig,
    /// Global params file (reference JSON) or a preset name (`bbn-test-4`, `bbn-1`).
    pub params: String,
    /// Finality-providers metadata file.
    pub finality_providers: PathBuf,
    #[serde(default)]
    pub terms_acceptance_logging: TermsConfig,
    /// Optional ord server for `/v1/ordinals/verify-utxos`; absent ⇒ the route is absent.
    #[serde(default)]
    pub ordinals: Option<OrdinalsConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Prometheus `/metrics`; absent ⇒ not served.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// `bitcoin`, `testnet`, `signet` or `regtest`.
    pub network: Network,
    #[serde(default = "default_origins")]
    pub allowed_origins: Vec<String>,
    #[serde(default = "default_max_content_length")]
    pub max_content_length: usize,
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// Requests per second per client IP; absent ⇒ no limit.
    #[serde(default)]
    pub rate_limit_per_second: Option<u32>,
    /// Page size of delegation and top-staker listings (`db.max-pagination-limit`).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbConfig {
    /// `postgres://…` or `sqlite:PATH`.
    pub url: String,
    #[serde(default = "default_connections")]
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// `amqp://user:password@host:port`, or `in-process` (devnet and tests).
    pub url: String,
    #[serde(default)]
    pub queue_type: events::QueueType,
    #[serde(default)]
    pub queue_prefix: String,
    #[serde(default = "default_processing_timeout")]
    pub processing_timeout_secs: u64,
    #[serde(default = "default_retries")]
    pub max_retry_attempts: i32,
    #[serde(default = "default_requeue_delay")]
    pub requeue_delay_secs: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermsConfig {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdinalsConfig {
    /// Base URL of the ord server, e.g. `http://127.0.0.1:3000`.
    pub url: String,
    #[serde(default = "default_ord_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "default_max_utxos")]
    pub max_utxos: usize,
}

fn default_origins() -> Vec<String> {
    vec!["*".to_owned()]
}
fn default_max_content_length() -> usize {
    4096
}
fn default_timeout() -> u64 {
    60
}
fn default_page_size() -> u32 {
    10
}
fn default_connections() -> u32 {
    16
}
fn default_processing_timeout() -> u64 {
    30
}
fn default_retries() -> i32 {
    10
}
fn default_requeue_delay() -> u64 {
    60
}
fn default_ord_timeout() -> u64 {
    2000
}
fn default_max_utxos() -> usize {
    100
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid api configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Parses TOML.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(e.to_string()))
    }

    /// Checks the values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if s.page_size < 2 {
            return Err(ConfigError(format!(
                "server.page_size must be at least 2, got {}",
                s.page_size
            )));
        }
        if s.max_content_length == 0 {
            return Err(ConfigError("server.max_content_length must be > 0".into()));
        }
        if s.request_timeout_secs == 0 {
            return Err(ConfigError(
                "server.request_timeout_secs must be > 0".into(),
            ));
        }
        if s.rate_limit_per_second == Some(0) {
            return Err(ConfigError(
                "server.rate_limit_per_second must be > 0 (omit it for no limit)".into(),
            ));
        }
        if !(self.db.url.starts_with("postgres://")
            || self.db.url.starts_with("postgresql://")
            || self.db.url.starts_with("sqlite:"))
        {
            return Err(ConfigError(
                "db.url must start with postgres://, postgresql:// or sqlite:".into(),
            ));
        }
        let q = &self.queue;
        if q.url != "in-process" && !q.url.starts_with("amqp://") {
            return Err(ConfigError(
                "queue.url must be amqp://user:password@host:port or in-process".into(),
            ));
        }
        if q.max_retry_attempts <= 0 {
            return Err(ConfigError("queue.max_retry_attempts must be > 0".into()));
        }
        if q.processing_timeout_secs == 0 {
            return Err(ConfigError(
                "queue.processing_timeout_secs must be > 0".into(),
            ));
        }
        if let Some(o) = &self.ordinals {
            if !(o.url.starts_with("http://") || o.url.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "ordinals.url must be an http(s) URL, got {:?}",
                    o.url
                )));
            }
            if o.max_utxos == 0 {
                return Err(ConfigError("ordinals.max_utxos must be > 0".into()));
            }
        }
        Ok(())
    }

    /// The consumer retry settings.
    pub fn consumer(&self) -> events::ConsumerConfig {
        events::ConsumerConfig {
            processing_timeout: Duration::from_secs(self.queue.processing_timeout_secs),
            max_retry_attempts: self.queue.max_retry_attempts,
            requeue_delay: Duration::from_secs(self.queue.requeue_delay_secs),
        }
    }
}
