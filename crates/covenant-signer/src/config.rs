//! The signer's TOML configuration, validated at start with messages that say what to fix.
//!
//! Secrets never sit in the parsed structs' `Debug` output: RPC passwords, the HMAC key and
//! the key passphrase are read from files or environment variables named here, and their
//! values are only ever held in redacting wrappers.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::Network;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::auth::HmacKey;
use crate::env_secrets::TakenSecret;
use crate::keyfile::{KeyFileError, Passphrase, PassphraseSource};
use crate::server::RateLimit;

/// Default environment variable holding the key-file passphrase.
pub const DEFAULT_PASSPHRASE_ENV: &str = "COVENANT_SIGNER_PASSPHRASE";

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// The full node used for chain lookups (needs `-txindex`).
    pub btc_config: NodeConfig,
    pub signer: SignerConfig,
    /// The wallet node, for `backend = "wallet"`.
    #[serde(default)]
    pub btc_signer_config: Option<NodeConfig>,
    #[serde(default)]
    pub signer_app_config: AppConfig,
    #[serde(default)]
    pub cache: CacheConfig,
}

/// `[server]`: the signing API listener and its limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ServerConfig {
    pub host: IpAddr,
    pub port: u16,
    /// Largest accepted body in bytes.
    pub max_content_length: usize,
    /// Whole-request timeout in seconds.
    pub request_timeout: u64,
    /// `[server.limits]`: connection caps and header/idle timeouts (`net::ServerLimits`; the
    /// body limit and request timeout are the two keys above).
    pub limits: net::ServerLimits,
    /// `[server.tls]`: serve HTTPS with `cert-file` and `key-file` (PEM), optionally requiring
    /// client certificates of `client-ca-file`.
    pub tls: Option<net::TlsFiles>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 9791,
            max_content_length: 8192,
            request_timeout: 15,
            limits: net::ServerLimits::default(),
            tls: None,
        }
    }
}

/// `[metrics]`: the Prometheus scrape listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub host: IpAddr,
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: IpAddr::from([127, 0, 0, 1]),
            port: 2112,
        }
    }
}

/// `[auth]`: optional HMAC request authentication (the key from a file or an env variable).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AuthConfig {
    pub hmac_key_file: Option<PathBuf>,
    pub hmac_key_env: Option<String>,
    /// `hmac-key-env`'s value once [`Config::take_env_secrets`] removed it from the environment.
    #[serde(skip)]
    pub(crate) hmac_key_taken: Option<TakenSecret>,
}

/// `[rate-limit]`: requests per second and burst per client IP; 0 turns it off.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub requests_per_second: u32,
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 50,
            burst: 100,
        }
    }
}

/// A Bitcoin Core RPC endpoint: `url`, and either `cookie-file` or `user` with the password in
/// `pass` (as the reference), `pass-file` or `pass-env`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeConfig {
    pub url: String,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default, skip_serializing)]
    pass: Option<Redacted>,
    #[serde(default)]
    pub pass_file: Option<PathBuf>,
    #[serde(default)]
    pub pass_env: Option<String>,
    /// `pass-env`'s value once [`Config::take_env_secrets`] removed it from the environment.
    #[serde(skip)]
    pub(crate) pass_taken: Option<TakenSecret>,
    #[serde(default)]
    pub cookie_file: Option<PathBuf>,
    #[serde(default = "default_rpc_timeout")]
    pub timeout_seconds: u64,
    /// For an `https://` node (a TLS proxy in front of it): a CA to trust besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// A string that prints as `<redacted>`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
struct Redacted(String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn default_rpc_timeout() -> u64 {
    10
}

/// `[signer]`: which key backend, and where its secrets are.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SignerConfig {
    pub backend: Backend,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,
    #[serde(default)]
    pub passphrase_env: Option<String>,
    /// The passphrase variable's value once [`Config::take_env_secrets`] removed it from the
    /// environment.
    #[serde(skip)]
    pub(crate) passphrase_taken: Option<TakenSecret>,
}

/// The key backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Encrypted key file (default deployment).
    File,
    /// bitcoind wallet via `walletprocesspsbt`.
    Wallet,
}

/// `[signer-app-config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AppConfig {
    /// Staking txs included above this height are refused (off: 4294967295).
    pub max_staking_transaction_height: u32,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            max_staking_transaction_height: u32::MAX,
        }
    }
}

/// `[cache]`: how long a confirmed staking-tx lookup is reused.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct CacheConfig {
    pub staking_tx_ttl_seconds: u64,
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            staking_tx_ttl_seconds: 30,
            max_entries: 10_000,
        }
    }
}

/// A configuration problem, phrased as what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path} is not valid: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { reason, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            reason: plumbing::toml_error_message(&e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Every rule that does not need the file system or the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.max_content_length < 512 {
            return Err(invalid(format!(
                "[server] max-content-length is {}: a signing request needs at least 512 bytes",
                self.server.max_content_length
            )));
        }
        if self.server.request_timeout == 0 {
            return Err(invalid(
                "[server] request-timeout must be at least 1 second",
            ));
        }
        self.server_limits()
            .validate()
            .map_err(|e| invalid(format!("[server.limits] {e}")))?;
        if self.metrics.enabled
            && self.server.port != 0
            && self.metrics.host == self.server.host
            && self.metrics.port == self.server.port
        {
            return Err(invalid(
                "[metrics] host:port is the same as [server]: choose another port for metrics",
            ));
        }
        if self.auth.hmac_key_file.is_some() && self.auth.hmac_key_env.is_some() {
            return Err(invalid(
                "[auth] set only one of hmac-key-file and hmac-key-env",
            ));
        }
        if (self.rate_limit.requests_per_second == 0) != (self.rate_limit.burst == 0) {
            return Err(invalid(
                "[rate-limit] set both requests-per-second and burst to 0 to turn it off, or both above 0",
            ));
        }
        self.btc_config.validate("btc-config")?;
        match self.signer.backend {
            Backend::File => {
                if self.signer.key_file.is_none() {
                    return Err(invalid(
                        "[signer] backend = \"file\" needs key-file (create one with `covenant-signer keygen`)",
                    ));
                }
                if self.signer.passphrase_file.is_some() && self.signer.passphrase_env.is_some() {
                    return Err(invalid(
                        "[signer] set only one of passphrase-file and passphrase-env",
                    ));
                }
            }
            Backend::Wallet => match &self.btc_signer_config {
                None => {
                    return Err(invalid(
                        "[signer] backend = \"wallet\" needs a [btc-signer-config] section for the wallet node",
                    ))
                }
                Some(node) => node.validate("btc-signer-config")?,
            },
        }
        if self.cache.max_entries == 0 {
            return Err(invalid("[cache] max-entries must be at least 1"));
        }
        Ok(())
    }

    /// The network of the full node (`regtest` when not given).
    pub fn network(&self) -> Result<Network, ConfigError> {
        self.btc_config.network()
    }

    /// Where the passphrase of the key file comes from.
    pub fn passphrase_source(&self) -> PassphraseSource {
        match (&self.signer.passphrase_file, &self.signer.passphrase_env) {
            (Some(path), _) => PassphraseSource::File(path.clone()),
            (None, Some(name)) => PassphraseSource::Env(name.clone()),
            (None, None) => PassphraseSource::Env(DEFAULT_PASSPHRASE_ENV.to_owned()),
        }
    }

    /// The key passphrase: taken from the environment at start ([`Config::take_env_secrets`]),
    /// else read from its source now.
    pub fn passphrase(&self) -> Result<Passphrase, KeyFileError> {
        let source = self.passphrase_source();
        match &self.signer.passphrase_taken {
            Some(taken) => source.check(Passphrase::new(taken.expose().to_owned())),
            None => source.read(),
        }
    }

    /// The HMAC key, if authentication is configured: at least
    /// [`MIN_HMAC_KEY_LEN`](crate::auth::MIN_HMAC_KEY_LEN) bytes.
    pub fn hmac_key(&self) -> Result<Option<HmacKey>, ConfigError> {
        let bytes = match (&self.auth.hmac_key_file, &self.auth.hmac_key_env) {
            (Some(path), _) => Zeroizing::new(std::fs::read(path).map_err(|e| {
                invalid(format!(
                    "[auth] cannot read hmac-key-file {}: {e}",
                    path.display()
                ))
            })?),
            (None, Some(name)) => match &self.auth.hmac_key_taken {
                Some(taken) => Zeroizing::new(taken.expose().as_bytes().to_vec()),
                None => Zeroizing::new(
                    std::env::var(name)
                        .map_err(|_| {
                            invalid(format!(
                                "[auth] environment variable {name} (hmac-key-env) is not set"
                            ))
                        })?
                        .into_bytes(),
                ),
            },
            (None, None) => return Ok(None),
        };
        HmacKey::configured(&bytes)
            .map(Some)
            .map_err(|e| invalid(format!("[auth] {e}")))
    }

    /// The per-client rate limit, `None` when off.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        Some(RateLimit {
            per_second: NonZeroU32::new(self.rate_limit.requests_per_second)?,
            burst: NonZeroU32::new(self.rate_limit.burst)?,
        })
    }

    /// The signing API's connection limits, with `max-content-length` and `request-timeout`.
    pub fn server_limits(&self) -> net::ServerLimits {
        self.server.limits.clone().with_request_limits(
            self.server.max_content_length,
            Duration::from_secs(self.server.request_timeout),
        )
    }

    /// The signing API address.
    pub fn server_addr(&self) -> SocketAddr {
        SocketAddr::new(self.server.host, self.server.port)
    }

    /// The metrics address, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .enabled
            .then(|| SocketAddr::new(self.metrics.host, self.metrics.port))
    }

    /// The cache TTL.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache.staking_tx_ttl_seconds)
    }
}

impl NodeConfig {
    fn validate(&self, section: &str) -> Result<(), ConfigError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(invalid(format!(
                "[{section}] url {:?} must start with http:// or https:// (e.g. http://127.0.0.1:18443)",
                net::redact_url(&self.url)
            )));
        }
        let passwords = [
            self.pass.is_some(),
            self.pass_file.is_some(),
            self.pass_env.is_some(),
        ]
        .iter()
        .filter(|set| **set)
        .count();
        match (&self.cookie_file, &self.user, passwords) {
            (Some(_), None, 0) => {}
            (None, Some(_), 1) => {}
            (Some(_), _, _) => {
                return Err(invalid(format!(
                    "[{section}] set either cookie-file or user with one of pass / pass-file / pass-env, not both"
                )))
            }
            (None, None, _) => {
                return Err(invalid(format!(
                    "[{section}] needs credentials: cookie-file, or user with one of pass / pass-file / pass-env"
                )))
            }
            (None, Some(_), _) => {
                return Err(invalid(format!(
                    "[{section}] user needs exactly one of pass, pass-file or pass-env"
                )))
            }
        }
        if self.timeout_seconds == 0 {
            return Err(invalid(format!(
                "[{section}] timeout-seconds must be at least 1"
            )));
        }
        self.network()?;
        Ok(())
    }

    /// The configured network (`regtest` when not given).
    pub fn network(&self) -> Result<Network, ConfigError> {
        match self.network.as_deref() {
            None => Ok(Network::Regtest),
            Some("mainnet") => Ok(Network::Bitcoin),
            Some("testnet3") => Ok(Network::Testnet),
            Some(other) => other.parse::<Network>().map_err(|_| {
                invalid(format!(
                    "network {other:?} is not one of mainnet, testnet3, testnet4, signet, regtest"
                ))
            }),
        }
    }

    /// The password, from wherever it is configured (`None` for cookie auth).
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        if let Some(pass) = &self.pass {
            return Ok(Some(pass.0.clone()));
        }
        if let Some(path) = &self.pass_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid(format!("cannot read pass-file {}: {e}", path.display())))?;
            return Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()));
        }
        if let Some(taken) = &self.pass_taken {
            return Ok(Some(taken.expose().to_owned()));
        }
        if let Some(name) = &self.pass_env {
            return std::env::var(name).map(Some).map_err(|_| {
                invalid(format!("environment variable {name} (pass-env) is not set"))
            });
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [btc-config]
        url = "http://127.0.0.1:18443"
        user = "user"
        pass = "hunter2-rpc"

        [signer]
        backend = "file"
        key-file = "/tmp/key.json"
    "#;

    fn err(text: &str) -> String {
        Config::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn a_misspelt_key_is_named_with_the_nearest_valid_one() {
        let text = err(&MINIMAL.replace("pass = ", "passs = "));
        assert!(text.contains("unknown field `passs`"), "{text}");
        assert!(text.contains("did you mean `pass`?"), "{text}");
    }

    #[test]
    fn a_minimal_config_gets_the_reference_defaults() {
        let config = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(config.server_addr().to_string(), "127.0.0.1:9791");
        assert_eq!(config.server.max_content_length, 8192);
        assert_eq!(config.metrics_addr().unwrap().to_string(), "127.0.0.1:2112");
        assert_eq!(
            config.signer_app_config.max_staking_transaction_height,
            u32::MAX
        );
        assert_eq!(config.network().unwrap(), Network::Regtest);
        assert_eq!(
            config.passphrase_source(),
            PassphraseSource::Env(DEFAULT_PASSPHRASE_ENV.into())
        );
        assert!(config.hmac_key().unwrap().is_none());
        assert!(config.rate_limit().is_some());
    }

    #[test]
    fn the_rpc_password_is_not_printed() {
        let config = Config::from_toml(MINIMAL).unwrap();
        assert!(!format!("{config:?}").contains("hunter2-rpc"));
        assert_eq!(
            config.btc_config.password().unwrap().as_deref(),
            Some("hunter2-rpc")
        );
    }

    #[test]
    fn a_file_backend_without_a_key_file_says_how_to_make_one() {
        let text = MINIMAL.replace("key-file = \"/tmp/key.json\"", "");
        assert!(err(&text).contains("covenant-signer keygen"));
    }

    #[test]
    fn a_wallet_backend_needs_the_wallet_node() {
        let text = MINIMAL.replace("backend = \"file\"", "backend = \"wallet\"");
        assert!(err(&text).contains("[btc-signer-config]"));
    }

    #[test]
    fn credentials_must_be_complete_and_unambiguous() {
        let no_pass = MINIMAL.replace("pass = \"hunter2-rpc\"", "");
        assert!(err(&no_pass).contains("exactly one of pass"));
        let both = MINIMAL.replace("user = \"user\"", "user = \"user\"\ncookie-file = \"/c\"");
        assert!(err(&both).contains("either cookie-file or user"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported() {
        let typo = MINIMAL.replace("[signer]", "[signer]\nkeyfile = \"x\"");
        assert!(err(&typo).contains("keyfile"));
        let url = MINIMAL.replace("http://127.0.0.1:18443", "127.0.0.1:18443");
        assert!(err(&url).contains("must start with http://"));
        let limits = format!("{MINIMAL}\n[server.limits]\nmax-connections = 0\n");
        assert!(err(&limits).contains("max_connections"), "{}", err(&limits));
        let net = MINIMAL.replace("user = \"user\"", "user = \"user\"\nnetwork = \"moon\"");
        assert!(err(&net).contains("\"moon\""));
        let limit = format!("{MINIMAL}\n[rate-limit]\nrequests-per-second = 0\nburst = 5\n");
        assert!(err(&limit).contains("both"));
        let body = format!("{MINIMAL}\n[server]\nmax-content-length = 10\n");
        assert!(err(&body).contains("max-content-length"));
    }

    #[test]
    fn an_hmac_key_shorter_than_32_bytes_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hmac-key");
        let text = format!("{MINIMAL}\n[auth]\nhmac-key-file = {path:?}\n");
        std::fs::write(&path, "sixteen byte key\n").unwrap();
        let err = Config::from_toml(&text)
            .unwrap()
            .hmac_key()
            .unwrap_err()
            .to_string();
        assert!(err.contains("[auth] the HMAC key has 16 bytes"), "{err}");
        assert!(err.contains("minimum of 32"), "{err}");
        std::fs::write(&path, [b'k'; 32]).unwrap();
        assert!(Config::from_toml(&text)
            .unwrap()
            .hmac_key()
            .unwrap()
            .is_some());
    }

    #[test]
    fn the_reference_network_names_are_accepted() {
        for (name, network) in [
            ("mainnet", Network::Bitcoin),
            ("testnet3", Network::Testnet),
            ("signet", Network::Signet),
            ("regtest", Network::Regtest),
        ] {
            let text = MINIMAL.replace(
                "user = \"user\"",
                &format!("user = \"user\"\nnetwork = \"{name}\""),
            );
            assert_eq!(
                Config::from_toml(&text).unwrap().network().unwrap(),
                network
            );
        }
    }
}
