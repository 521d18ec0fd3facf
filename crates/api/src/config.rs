//! `stakingd api` settings: one TOML file, overridden by `STAKINGD_API_…` environment variables,
//! then by flags ([`Config::load`]), validated at start with sentences that say what is wrong
//! and where to fix it. Every key of [`SETTINGS`] can be set in all three places.

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
    /// `[server.limits]`: connection caps and header/idle timeouts (`net::ServerLimits`); the
    /// body limit and request timeout are `max_content_length` and `request_timeout_secs`.
    #[serde(default)]
    pub limits: net::ServerLimits,
    /// `[server.tls]`: serve HTTPS with `cert_file` and `key_file` (PEM), optionally requiring
    /// client certificates of `client_ca_file`.
    #[serde(default)]
    pub tls: Option<net::TlsFiles>,
}

impl ServerConfig {
    /// The connection limits, with `max_content_length` and `request_timeout_secs`.
    pub fn limits(&self) -> net::ServerLimits {
        self.limits.clone().with_request_limits(
            self.max_content_length,
            Duration::from_secs(self.request_timeout_secs),
        )
    }
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

/// How an override's text becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Bool,
    /// Comma-separated list of strings.
    List,
}

/// Every key that environment variables and flags can set, with its type. The variable is
/// `STAKINGD_API_` + the key upper-cased with `.` → `_` (`db.url` → `STAKINGD_API_DB_URL`).
pub const SETTINGS: &[(&str, Kind)] = &[
    ("params", Kind::Text),
    ("finality_providers", Kind::Text),
    ("server.listen", Kind::Text),
    ("server.metrics_listen", Kind::Text),
    ("server.network", Kind::Text),
    ("server.allowed_origins", Kind::List),
    ("server.max_content_length", Kind::Integer),
    ("server.request_timeout_secs", Kind::Integer),
    ("server.rate_limit_per_second", Kind::Integer),
    ("server.page_size", Kind::Integer),
    ("server.limits.header_read_timeout_secs", Kind::Integer),
    ("server.limits.idle_timeout_secs", Kind::Integer),
    ("server.limits.tls_handshake_timeout_secs", Kind::Integer),
    ("server.limits.max_connections", Kind::Integer),
    ("server.limits.max_connections_per_client", Kind::Integer),
    ("server.limits.shutdown_grace_secs", Kind::Integer),
    ("server.tls.cert_file", Kind::Text),
    ("server.tls.key_file", Kind::Text),
    ("server.tls.client_ca_file", Kind::Text),
    ("db.url", Kind::Text),
    ("db.max_connections", Kind::Integer),
    ("queue.url", Kind::Text),
    ("queue.queue_type", Kind::Text),
    ("queue.queue_prefix", Kind::Text),
    ("queue.processing_timeout_secs", Kind::Integer),
    ("queue.max_retry_attempts", Kind::Integer),
    ("queue.requeue_delay_secs", Kind::Integer),
    ("terms_acceptance_logging.enabled", Kind::Bool),
    ("ordinals.url", Kind::Text),
    ("ordinals.timeout_ms", Kind::Integer),
    ("ordinals.max_utxos", Kind::Integer),
];

/// Keys without a default: each must come from the file, the environment or a flag.
const REQUIRED: [&str; 6] = [
    "params",
    "finality_providers",
    "server.listen",
    "server.network",
    "db.url",
    "queue.url",
];

/// The environment variable of a key.
pub fn env_name(key: &str) -> String {
    format!("STAKINGD_API_{}", key.replace('.', "_").to_uppercase())
}

fn kind_of(key: &str) -> Option<Kind> {
    SETTINGS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, kind)| *kind)
}

fn parse_value(
    key: &str,
    kind: Kind,
    text: &str,
    origin: &str,
) -> Result<toml::Value, ConfigError> {
    let bad = |what: &str| ConfigError(format!("{origin} sets {key} to {text:?}: {what}"));
    Ok(match kind {
        Kind::Text => toml::Value::String(text.to_owned()),
        Kind::Integer => toml::Value::Integer(
            text.trim()
                .parse()
                .map_err(|_| bad("expected a whole number"))?,
        ),
        Kind::Bool => toml::Value::Boolean(match text.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(bad("expected true or false")),
        }),
        Kind::List => toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
    })
}

fn set(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), ConfigError> {
    match key.split_once('.') {
        None => {
            table.insert(key.to_owned(), value);
            Ok(())
        }
        Some((section, rest)) => {
            let entry = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set(t, rest, value),
                _ => Err(ConfigError(format!(
                    "`{section}` must be a [{section}] section to set {key}"
                ))),
            }
        }
    }
}

/// The dotted names of `table`'s values (under `prefix`) that are not keys of [`SETTINGS`].
fn unknown_keys(table: &toml::Table, prefix: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    for (name, value) in table {
        let key = format!("{prefix}{name}");
        match value {
            toml::Value::Table(section) => {
                unknown.extend(unknown_keys(section, &format!("{key}.")));
            }
            _ if kind_of(&key).is_none() => unknown.push(key),
            _ => {}
        }
    }
    unknown
}

/// The key of [`SETTINGS`] closest to `key` (fewest edits).
fn nearest_setting(key: &str) -> &'static str {
    plumbing::nearest_key(key, SETTINGS.iter().map(|(k, _)| *k)).unwrap_or("params")
}

fn is_set(table: &toml::Table, key: &str) -> bool {
    match key.split_once('.') {
        None => table.contains_key(key),
        Some((section, rest)) => match table.get(section) {
            Some(toml::Value::Table(t)) => is_set(t, rest),
            _ => false,
        },
    }
}

impl Config {
    /// Parses TOML.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(e.to_string()))
    }

    /// The layered configuration: the TOML `file` (if any), then `STAKINGD_API_…` variables
    /// from `env`, then `flags` (`(key, value)` pairs with keys of [`SETTINGS`]); later layers
    /// win. Then [`Config::validate`]. Unknown `STAKINGD_API_…` variables are refused so a typo
    /// is not silently ignored (`STAKINGD_API_CONFIG` names the file and is skipped).
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            None => toml::Table::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!(
                        "cannot read the config file {}: {e}",
                        path.display()
                    ))
                })?;
                let table = text.parse::<toml::Table>().map_err(|e| {
                    ConfigError(format!(
                        "the config file {} is not TOML: {e}",
                        path.display()
                    ))
                })?;
                // Before the required keys are looked for: a misspelt `network` is reported as
                // the typo it is, not as "server.network is not set".
                if let Some(key) = unknown_keys(&table, "").into_iter().next() {
                    return Err(ConfigError(format!(
                        "unknown key {key} in the config file {}: did you mean {}?",
                        path.display(),
                        nearest_setting(&key)
                    )));
                }
                table
            }
        };
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("STAKINGD_API_") && k != "STAKINGD_API_CONFIG")
            .collect();
        env.sort();
        for (var, text) in env {
            let Some((key, kind)) = SETTINGS.iter().find(|(k, _)| env_name(k) == var) else {
                return Err(ConfigError(format!(
                    "unknown environment variable {var}: the API reads STAKINGD_API_ + one of \
                     {} (upper case, `.` as `_`)",
                    SETTINGS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            set(
                &mut table,
                key,
                parse_value(key, *kind, &text, &format!("environment variable {var}"))?,
            )?;
        }
        for (key, text) in flags {
            let kind = kind_of(key).ok_or_else(|| {
                ConfigError(format!(
                    "unknown setting {key:?}: use one of {}",
                    SETTINGS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            set(&mut table, key, parse_value(key, kind, text, "a flag")?)?;
        }
        for key in REQUIRED {
            if !is_set(&table, key) {
                return Err(ConfigError(format!(
                    "{key} is not set: set it in {}, with {} or with {}",
                    file.map_or_else(
                        || "a config file (--config FILE)".to_owned(),
                        |p| format!("the config file {}", p.display())
                    ),
                    env_name(key),
                    flag_name(key)
                )));
            }
        }
        let where_ = file.map_or_else(
            || "the settings".to_owned(),
            |p| format!("the settings (file {} plus overrides)", p.display()),
        );
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e| ConfigError(format!("{where_} are not valid: {e}")))?;
        config.validate()?;
        Ok(config)
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
        s.limits()
            .validate()
            .map_err(|e| ConfigError(format!("[server.limits] {e}")))?;
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

/// The `stakingd api` flag that sets a key: a dedicated one for the common keys, otherwise the
/// generic `--set KEY=VALUE`.
pub fn flag_name(key: &str) -> String {
    let name = match key {
        "server.listen" => "--listen",
        "server.metrics_listen" => "--metrics-listen",
        "server.network" => "--network",
        "db.url" => "--db-url",
        "queue.url" => "--queue-url",
        "queue.queue_prefix" => "--queue-prefix",
        "params" => "--params",
        "finality_providers" => "--finality-providers",
        _ => return format!("--set {key}=VALUE"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const FILE: &str = r#"
params = "bbn-test-4"
finality_providers = "/etc/fps.json"
[server]
listen = "127.0.0.1:8090"
network = "signet"
page_size = 10
[db]
url = "sqlite:/tmp/a.db"
[queue]
url = "in-process"
"#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn environment_overrides_the_file_and_flags_override_the_environment() {
        let (_d, path) = file(FILE);
        let vars = env(&[
            ("STAKINGD_API_DB_URL", "postgres://u@h/db"),
            ("STAKINGD_API_SERVER_PAGE_SIZE", "25"),
            (
                "STAKINGD_API_SERVER_ALLOWED_ORIGINS",
                "https://a.example, https://b.example",
            ),
            ("STAKINGD_API_CONFIG", "ignored"),
            ("PATH", "/bin"),
        ]);
        let flags = vec![("server.page_size".to_owned(), "30".to_owned())];
        let c = Config::load(Some(&path), vars, &flags).unwrap();
        assert_eq!(c.db.url, "postgres://u@h/db");
        assert_eq!(c.server.page_size, 30);
        assert_eq!(
            c.server.allowed_origins,
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(c.server.listen.port(), 8090);
    }

    #[test]
    fn everything_can_come_from_the_environment_without_a_file() {
        let vars = env(&[
            ("STAKINGD_API_PARAMS", "bbn-test-4"),
            ("STAKINGD_API_FINALITY_PROVIDERS", "/etc/fps.json"),
            ("STAKINGD_API_SERVER_LISTEN", "127.0.0.1:9000"),
            ("STAKINGD_API_SERVER_NETWORK", "signet"),
            ("STAKINGD_API_DB_URL", "sqlite:/tmp/x.db"),
            ("STAKINGD_API_QUEUE_URL", "amqp://u:p@127.0.0.1:5672"),
            ("STAKINGD_API_TERMS_ACCEPTANCE_LOGGING_ENABLED", "true"),
        ]);
        let c = Config::load(None, vars, &[]).unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(
            c.server.limits(),
            net::ServerLimits {
                max_body_bytes: 4096,
                request_timeout: Duration::from_secs(60),
                ..net::ServerLimits::default()
            }
        );
        assert!(c.server.tls.is_none());
        assert!(c.terms_acceptance_logging.enabled);
    }

    #[test]
    fn connection_limits_and_tls_files_come_from_the_file_or_the_environment() {
        let text = format!(
            "{FILE}\n[server.limits]\nidle_timeout_secs = 0.5\nmax_connections = 300\n[server.tls]\ncert_file = \"/etc/api.crt\"\nkey_file = \"/etc/api.key\"\n"
        );
        let (_d, path) = file(&text);
        let vars = env(&[("STAKINGD_API_SERVER_LIMITS_MAX_CONNECTIONS_PER_CLIENT", "7")]);
        let c = Config::load(Some(&path), vars, &[]).unwrap();
        let limits = c.server.limits();
        assert_eq!(limits.idle_timeout, Duration::from_millis(500));
        assert_eq!(limits.max_connections, 300);
        assert_eq!(limits.max_connections_per_client, 7);
        assert_eq!(limits.header_read_timeout, net::DEFAULT_HEADER_READ_TIMEOUT);
        let tls = c.server.tls.unwrap();
        assert_eq!(tls.cert_file, PathBuf::from("/etc/api.crt"));
        let flags = vec![(
            "server.limits.max_connections_per_client".to_owned(),
            "301".to_owned(),
        )];
        let e = Config::load(Some(&path), Vec::new(), &flags).unwrap_err();
        assert!(e.0.contains("max_connections_per_client"), "{e}");
    }

    #[test]
    fn a_missing_key_says_every_place_it_can_be_set() {
        let e = Config::load(None, env(&[("STAKINGD_API_PARAMS", "bbn-test-4")]), &[]).unwrap_err();
        assert!(
            e.0.contains("finality_providers")
                && e.0.contains("STAKINGD_API_FINALITY_PROVIDERS")
                && e.0.contains("--finality-providers"),
            "{e}"
        );
    }

    #[test]
    fn typos_and_bad_values_are_refused_with_their_origin() {
        let (_d, path) = file(FILE);
        let e = Config::load(Some(&path), env(&[("STAKINGD_API_DB_URLL", "x")]), &[]).unwrap_err();
        assert!(e.0.contains("STAKINGD_API_DB_URLL"), "{e}");
        let e = Config::load(
            Some(&path),
            env(&[("STAKINGD_API_SERVER_PAGE_SIZE", "ten")]),
            &[],
        )
        .unwrap_err();
        assert!(
            e.0.contains("STAKINGD_API_SERVER_PAGE_SIZE") && e.0.contains("whole number"),
            "{e}"
        );
        let flags = vec![("server.page_size".to_owned(), "1".to_owned())];
        let e = Config::load(Some(&path), Vec::new(), &flags).unwrap_err();
        assert!(e.0.contains("page_size must be at least 2"), "{e}");
        let flags = vec![("server.pagesize".to_owned(), "5".to_owned())];
        let e = Config::load(Some(&path), Vec::new(), &flags).unwrap_err();
        assert!(e.0.contains("server.pagesize"), "{e}");
        let (_d2, bad) = file("[server]\nlisten = \"nowhere\"\n");
        let e = Config::load(Some(&bad), Vec::new(), &[]).unwrap_err();
        assert!(e.0.contains("params is not set"), "{e}");
    }

    #[test]
    fn a_misspelt_key_in_the_file_is_named_with_the_nearest_valid_one() {
        let (_d, path) = file(&FILE.replace("network = ", "netwrok = "));
        let e = Config::load(Some(&path), Vec::new(), &[]).unwrap_err();
        assert!(
            e.0.contains("unknown key server.netwrok")
                && e.0.contains("did you mean server.network?"),
            "{e}"
        );
        assert!(!e.0.contains("not set"), "{e}");
        let (_d, path) = file(&FILE.replace("[db]", "[bd]"));
        let e = Config::load(Some(&path), Vec::new(), &[]).unwrap_err();
        assert!(
            e.0.contains("unknown key bd.url") && e.0.contains("did you mean db.url?"),
            "{e}"
        );
    }
}
