//! Configuration. In code: [`Config::new`] plus field updates. For operators: a TOML file, then
//! `STAKINGD_…` environment variables, then flags ([`RawConfig`] layers, later ones win),
//! validated by [`RawConfig::validate`] with messages that say what to fix.
//!
//! Database, params and node settings use the same names as the indexer's
//! (`STAKINGD_DATABASE_URL`, `STAKINGD_PARAMS`, `STAKINGD_BITCOIND_URL`, …) so one environment
//! serves both; settings of the pipeline alone are `STAKINGD_PIPELINE_…`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use bitcoin_rpc::{RpcAuth, RpcConfig};
use covenant_signer::auth::HmacKey;
use net::{redact_url, ClientTls};
use serde::Deserialize;
use staking_core::params::GlobalParams;
use staking_core::presets::Preset;
use zeroize::Zeroizing;

use crate::error::PipelineError;

/// One covenant committee member's signing server.
#[derive(Debug, Clone)]
pub struct SignerEndpoint {
    /// The member's key exactly as the params file lists it (33-byte compressed).
    pub public_key: PublicKey,
    /// Base URL, e.g. `http://127.0.0.1:9791`; `/v1/sign-unbonding-tx` is appended.
    pub url: String,
    /// Shared HMAC key when the signer requires request authentication.
    pub hmac_key: Option<HmacKey>,
}

impl SignerEndpoint {
    /// An endpoint without HMAC.
    pub fn new(public_key: PublicKey, url: impl Into<String>) -> Self {
        Self {
            public_key,
            url: url.into().trim_end_matches('/').to_owned(),
            hmac_key: None,
        }
    }

    /// The reference pipeline's form `http://<33-byte key hex>@host:port` (the key sits in the
    /// URL's user part; any path is dropped, as the reference does).
    pub fn from_reference_url(url: &str) -> Result<Self, PipelineError> {
        let bad = |why: &str| {
            PipelineError::Config(format!(
                "signer URL {url:?} {why}: expected http://<33-byte compressed covenant key hex>@host:port"
            ))
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("has no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("is neither http nor https"));
        }
        let (key, host) = rest.split_once('@').ok_or_else(|| bad("has no key@"))?;
        let host = host.split('/').next().unwrap_or_default();
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        let public_key = parse_key(key).map_err(|e| bad(&e))?;
        Ok(Self::new(public_key, format!("{scheme}://{host}")))
    }
}

fn parse_key(hex_key: &str) -> Result<PublicKey, String> {
    let bytes = hex::decode(hex_key).map_err(|_| format!("key {hex_key:?} is not hex"))?;
    if bytes.len() != 33 {
        return Err(format!(
            "key {hex_key:?} is {} bytes, not a 33-byte compressed key",
            bytes.len()
        ));
    }
    PublicKey::from_slice(&bytes).map_err(|_| format!("key {hex_key:?} is not a curve point"))
}

/// Exponential backoff between attempts of a request after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failed attempt; doubled after each further one.
    pub base: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay before attempt `attempts + 1`, with ±20 % jitter so many requests that failed
    /// together do not come back together.
    pub fn delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max);
        let jitter = rand::random::<f64>() * 0.4 + 0.8;
        raw.mul_f64(jitter).min(self.max)
    }
}

/// The validated configuration. Build it with [`Config::new`] and adjust fields as needed.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite:PATH` or `postgres://…` (the API's database: the pipeline reads its requests).
    pub database_url: String,
    /// Connections in the database pool.
    pub db_max_connections: u32,
    /// Apply pending migrations at start (the API normally has already).
    pub migrate: bool,
    /// The pipeline's own Bitcoin node (needs `-txindex`).
    pub rpc: RpcConfig,
    /// Every params version (the committee and quorum come from the staking tx's version).
    pub params: GlobalParams,
    /// One endpoint per committee member; members without one count as unavailable.
    pub signers: Vec<SignerEndpoint>,
    /// For `https://` signers: an extra CA to trust and the client certificate to present.
    pub signer_tls: ClientTls,
    /// How long a claim lasts; a pipeline that dies holding a request loses it after this.
    pub lease: Duration,
    /// Whole-request timeout of one signer call (the reference uses 2 s).
    pub signer_timeout: Duration,
    /// Daemon: pause between polls when there is nothing to do.
    pub poll_interval: Duration,
    /// Requests claimed at once.
    pub batch_size: u32,
    /// Requests processed concurrently.
    pub concurrency: usize,
    /// Attempts (claims) before a request that keeps failing transiently is `failed`.
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// `/metrics` and `/health`; `None` turns the endpoint off.
    pub metrics_addr: Option<SocketAddr>,
}

impl Config {
    /// A configuration with the defaults: lease 60 s, signer timeout 2 s, poll 1 s, batches of
    /// 256, 64 requests in flight, 5 attempts, backoff 2 s doubling up to 5 min, no metrics
    /// endpoint.
    pub fn new(
        database_url: impl Into<String>,
        rpc: RpcConfig,
        params: GlobalParams,
        signers: Vec<SignerEndpoint>,
    ) -> Self {
        Self {
            database_url: database_url.into(),
            db_max_connections: 16,
            migrate: true,
            rpc,
            params,
            signers,
            signer_tls: ClientTls::default(),
            lease: Duration::from_secs(60),
            signer_timeout: Duration::from_secs(2),
            poll_interval: Duration::from_secs(1),
            batch_size: 256,
            concurrency: 64,
            max_attempts: 5,
            backoff: Backoff {
                base: Duration::from_secs(2),
                max: Duration::from_secs(300),
            },
            metrics_addr: None,
        }
    }

    /// Checks what [`Config::new`] cannot: sensible numbers, one endpoint per key, and that
    /// some params version's committee can reach its quorum with the configured endpoints.
    pub fn check(&self) -> Result<(), PipelineError> {
        let err = |m: String| Err(PipelineError::Config(m));
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return err(format!(
                "database_url {:?} is not supported: use sqlite:PATH or postgres://user@host/db",
                redact_url(&self.database_url)
            ));
        }
        if self.batch_size == 0 || self.concurrency == 0 {
            return err("batch_size and concurrency must be at least 1".into());
        }
        if self.max_attempts == 0 {
            return err("max_attempts must be at least 1".into());
        }
        if self.lease < self.signer_timeout.saturating_mul(3) {
            return err(format!(
                "lease ({:?}) must be at least three signer timeouts ({:?}): a request must finish \
                 well within its lease or another pipeline takes it over",
                self.lease, self.signer_timeout
            ));
        }
        for (i, a) in self.signers.iter().enumerate() {
            if self.signers[..i]
                .iter()
                .any(|b| b.public_key == a.public_key)
            {
                return err(format!(
                    "covenant key {} has two signer endpoints: list each member once",
                    a.public_key
                ));
            }
        }
        let reachable = self.params.versions().iter().any(|v| {
            let have = v
                .covenant_pks
                .iter()
                .filter(|k| self.signers.iter().any(|s| s.public_key == **k))
                .count();
            have >= v.covenant_quorum as usize
        });
        if !reachable {
            return err(format!(
                "the {} configured signer endpoint(s) cannot reach the quorum of any params \
                 version: add one [[signers]] entry (public_key + url) per committee member",
                self.signers.len()
            ));
        }
        Ok(())
    }
}

/// One `[[signers]]` entry as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigner {
    /// 33-byte compressed key hex; omit it when `url` is the reference form `http://<key>@host:port`.
    pub public_key: Option<String>,
    pub url: String,
    /// Read the HMAC key from this file.
    pub hmac_key_file: Option<PathBuf>,
    /// Read the HMAC key from this environment variable.
    pub hmac_key_env: Option<String>,
}

/// The `[bitcoind]` section as written (the indexer's keys).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBitcoind {
    pub url: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub cookie_file: Option<PathBuf>,
    pub timeout_secs: Option<u64>,
    /// For an `https://` node (a TLS proxy in front of it): an extra CA to trust.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for RawBitcoind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawBitcoind")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("cookie_file", &self.cookie_file)
            .field("timeout_secs", &self.timeout_secs)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The configuration as written; every field optional so layers merge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Only checks that a params preset matches (`mainnet`, `signet`, `testnet`, `regtest`…).
    pub network: Option<String>,
    /// Preset (`bbn-test-4`, `bbn-1`) or global-params JSON file.
    pub params: Option<String>,
    pub database_url: Option<String>,
    pub db_max_connections: Option<u32>,
    pub metrics_addr: Option<String>,
    pub lease_secs: Option<u64>,
    pub signer_timeout_ms: Option<u64>,
    pub poll_interval_ms: Option<u64>,
    pub batch_size: Option<u32>,
    pub concurrency: Option<usize>,
    pub max_attempts: Option<u32>,
    pub backoff_base_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
    #[serde(default)]
    pub bitcoind: RawBitcoind,
    /// Replaces (does not extend) the list of a lower layer when non-empty.
    #[serde(default)]
    pub signers: Vec<RawSigner>,
    /// `[signer_tls]`: `ca_file`, `cert_file`, `key_file` for `https://` signers.
    #[serde(default)]
    pub signer_tls: ClientTls,
}

fn pick<T>(over: Option<T>, base: Option<T>) -> Option<T> {
    over.or(base)
}

impl RawConfig {
    pub fn from_toml(text: &str) -> Result<Self, PipelineError> {
        toml::from_str(text).map_err(|e| {
            PipelineError::Config(format!("config file: {}", plumbing::explain_toml_error(&e)))
        })
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PipelineError::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Self::from_toml(&text)
            .map_err(|e| PipelineError::Config(format!("{e} ({})", path.display())))
    }

    /// `self` with every field set in `over` replaced by it.
    pub fn overridden_by(self, over: RawConfig) -> RawConfig {
        RawConfig {
            network: pick(over.network, self.network),
            params: pick(over.params, self.params),
            database_url: pick(over.database_url, self.database_url),
            db_max_connections: pick(over.db_max_connections, self.db_max_connections),
            metrics_addr: pick(over.metrics_addr, self.metrics_addr),
            lease_secs: pick(over.lease_secs, self.lease_secs),
            signer_timeout_ms: pick(over.signer_timeout_ms, self.signer_timeout_ms),
            poll_interval_ms: pick(over.poll_interval_ms, self.poll_interval_ms),
            batch_size: pick(over.batch_size, self.batch_size),
            concurrency: pick(over.concurrency, self.concurrency),
            max_attempts: pick(over.max_attempts, self.max_attempts),
            backoff_base_ms: pick(over.backoff_base_ms, self.backoff_base_ms),
            backoff_max_ms: pick(over.backoff_max_ms, self.backoff_max_ms),
            bitcoind: RawBitcoind {
                url: pick(over.bitcoind.url, self.bitcoind.url),
                user: pick(over.bitcoind.user, self.bitcoind.user),
                password: pick(over.bitcoind.password, self.bitcoind.password),
                cookie_file: pick(over.bitcoind.cookie_file, self.bitcoind.cookie_file),
                timeout_secs: pick(over.bitcoind.timeout_secs, self.bitcoind.timeout_secs),
                ca_file: pick(over.bitcoind.ca_file, self.bitcoind.ca_file),
            },
            signer_tls: ClientTls {
                ca_file: pick(over.signer_tls.ca_file, self.signer_tls.ca_file),
                cert_file: pick(over.signer_tls.cert_file, self.signer_tls.cert_file),
                key_file: pick(over.signer_tls.key_file, self.signer_tls.key_file),
            },
            signers: if over.signers.is_empty() {
                self.signers
            } else {
                over.signers
            },
        }
    }

    /// The layer given by `STAKINGD_…` variables (pass `std::env::vars()`).
    /// `STAKINGD_PIPELINE_SIGNERS` is a comma-separated list of reference-form URLs
    /// (`http://<key>@host:port`).
    pub fn from_env(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, PipelineError> {
        let mut c = RawConfig::default();
        for (key, value) in vars {
            let Some(name) = key.strip_prefix("STAKINGD_") else {
                continue;
            };
            let bad = |what: &str| {
                PipelineError::Config(format!("environment variable {key}={value:?}: {what}"))
            };
            let num = |what: &str| value.parse::<u64>().map_err(|_| bad(what));
            match name {
                "NETWORK" => c.network = Some(value.clone()),
                "PARAMS" => c.params = Some(value.clone()),
                "DATABASE_URL" => c.database_url = Some(value.clone()),
                "BITCOIND_URL" => c.bitcoind.url = Some(value.clone()),
                "BITCOIND_USER" => c.bitcoind.user = Some(value.clone()),
                "BITCOIND_PASSWORD" => c.bitcoind.password = Some(value.clone()),
                "BITCOIND_COOKIE_FILE" => c.bitcoind.cookie_file = Some(PathBuf::from(&value)),
                "BITCOIND_TIMEOUT_SECS" => c.bitcoind.timeout_secs = Some(num("expected seconds")?),
                "BITCOIND_CA_FILE" => c.bitcoind.ca_file = Some(PathBuf::from(&value)),
                "PIPELINE_SIGNER_CA_FILE" => c.signer_tls.ca_file = Some(PathBuf::from(&value)),
                "PIPELINE_SIGNER_CERT_FILE" => {
                    c.signer_tls.cert_file = Some(PathBuf::from(&value));
                }
                "PIPELINE_SIGNER_KEY_FILE" => c.signer_tls.key_file = Some(PathBuf::from(&value)),
                "PIPELINE_METRICS_ADDR" => c.metrics_addr = Some(value.clone()),
                "PIPELINE_LEASE_SECS" => c.lease_secs = Some(num("expected seconds")?),
                "PIPELINE_SIGNER_TIMEOUT_MS" => {
                    c.signer_timeout_ms = Some(num("expected milliseconds")?);
                }
                "PIPELINE_POLL_INTERVAL_MS" => {
                    c.poll_interval_ms = Some(num("expected milliseconds")?);
                }
                "PIPELINE_BATCH_SIZE" => {
                    c.batch_size = Some(value.parse().map_err(|_| bad("expected a count"))?);
                }
                "PIPELINE_CONCURRENCY" => {
                    c.concurrency = Some(value.parse().map_err(|_| bad("expected a count"))?);
                }
                "PIPELINE_MAX_ATTEMPTS" => {
                    c.max_attempts = Some(value.parse().map_err(|_| bad("expected a count"))?);
                }
                "PIPELINE_SIGNERS" => {
                    c.signers = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|url| RawSigner {
                            url: url.to_owned(),
                            ..RawSigner::default()
                        })
                        .collect();
                }
                _ => {}
            }
        }
        Ok(c)
    }

    /// Validates every field into a [`Config`]; the first problem found is reported.
    pub fn validate(self) -> Result<Config, PipelineError> {
        let err = |m: String| PipelineError::Config(m);
        let params_source = self.params.ok_or_else(|| {
            err(
                "params is not set: set `params` to a preset (bbn-test-4, bbn-1) or the path of \
                 a global-params JSON file (config file, STAKINGD_PARAMS or --params)"
                    .into(),
            )
        })?;
        let params = load_params(&params_source, self.network.as_deref())?;
        let database_url = self
            .database_url
            .unwrap_or_else(|| "sqlite:stakingd-api.db".to_owned());
        let url = self.bitcoind.url.ok_or_else(|| {
            err(
                "bitcoind.url is not set: the pipeline needs its own node (with -txindex), e.g. \
                 http://127.0.0.1:38332 (STAKINGD_BITCOIND_URL or --bitcoind-url)"
                    .into(),
            )
        })?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(err(format!(
                "bitcoind.url {url:?} must start with http:// or https:// (a TLS proxy in front \
                 of the node)"
            )));
        }
        let auth = match (
            self.bitcoind.user,
            self.bitcoind.password,
            self.bitcoind.cookie_file,
        ) {
            (Some(user), Some(password), None) => RpcAuth::UserPass { user, password },
            (None, None, Some(cookie)) => RpcAuth::Cookie(cookie),
            (None, None, None) => {
                return Err(err(
                    "bitcoind credentials are missing: set bitcoind.user and \
                     bitcoind.password, or bitcoind.cookie_file"
                        .into(),
                ))
            }
            _ => {
                return Err(err(
                    "set either both bitcoind.user and bitcoind.password, or \
                     bitcoind.cookie_file alone"
                        .into(),
                ))
            }
        };
        let mut rpc = RpcConfig::new(url, auth);
        if let Some(secs) = self.bitcoind.timeout_secs {
            rpc.timeout = Duration::from_secs(secs.max(1));
        }
        rpc.tls.ca_file = self.bitcoind.ca_file;
        let mut signers = Vec::with_capacity(self.signers.len());
        for raw in self.signers {
            signers.push(signer_endpoint(raw)?);
        }
        let mut config = Config::new(database_url, rpc, params, signers);
        if self.signer_tls.cert_file.is_some() != self.signer_tls.key_file.is_some() {
            return Err(err(
                "signer_tls: set both cert_file and key_file for a client certificate, or neither"
                    .into(),
            ));
        }
        config.signer_tls = self.signer_tls;
        if let Some(n) = self.db_max_connections {
            config.db_max_connections = n.max(1);
        }
        config.metrics_addr = match self.metrics_addr.as_deref() {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 2114))),
            Some("off" | "") => None,
            Some(a) => Some(a.parse().map_err(|_| {
                err(format!(
                    "metrics_addr {a:?} is not host:port (e.g. 127.0.0.1:2114), or `off`"
                ))
            })?),
        };
        if let Some(s) = self.lease_secs {
            config.lease = Duration::from_secs(s);
        }
        if let Some(ms) = self.signer_timeout_ms {
            config.signer_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(ms) = self.poll_interval_ms {
            config.poll_interval = Duration::from_millis(ms.max(10));
        }
        if let Some(n) = self.batch_size {
            config.batch_size = n;
        }
        if let Some(n) = self.concurrency {
            config.concurrency = n;
        }
        if let Some(n) = self.max_attempts {
            config.max_attempts = n;
        }
        if let Some(ms) = self.backoff_base_ms {
            config.backoff.base = Duration::from_millis(ms);
        }
        if let Some(ms) = self.backoff_max_ms {
            config.backoff.max = Duration::from_millis(ms);
        }
        config.check()?;
        Ok(config)
    }
}

fn signer_endpoint(raw: RawSigner) -> Result<SignerEndpoint, PipelineError> {
    let mut endpoint = match &raw.public_key {
        Some(key) => {
            if !(raw.url.starts_with("http://") || raw.url.starts_with("https://")) {
                return Err(PipelineError::Config(format!(
                    "signer url {:?} must start with http:// or https://",
                    raw.url
                )));
            }
            let key = parse_key(key)
                .map_err(|e| PipelineError::Config(format!("[[signers]] public_key: {e}")))?;
            SignerEndpoint::new(key, raw.url.clone())
        }
        None => SignerEndpoint::from_reference_url(&raw.url)?,
    };
    let key_bytes = match (&raw.hmac_key_file, &raw.hmac_key_env) {
        (Some(_), Some(_)) => {
            return Err(PipelineError::Config(format!(
                "signer {}: set hmac_key_file or hmac_key_env, not both",
                endpoint.url
            )))
        }
        (Some(path), None) => Some(std::fs::read(path).map_err(|e| {
            PipelineError::Config(format!(
                "signer {}: cannot read hmac_key_file {}: {e}",
                endpoint.url,
                path.display()
            ))
        })?),
        (None, Some(var)) => Some(
            std::env::var(var)
                .map_err(|_| {
                    PipelineError::Config(format!(
                        "signer {}: environment variable {var} (hmac_key_env) is not set",
                        endpoint.url
                    ))
                })?
                .into_bytes(),
        ),
        (None, None) => None,
    };
    endpoint.hmac_key = key_bytes
        .map(|bytes| HmacKey::configured(&Zeroizing::new(bytes)))
        .transpose()
        .map_err(|e| PipelineError::Config(format!("signer {}: {e}", endpoint.url)))?;
    Ok(endpoint)
}

fn load_params(source: &str, network: Option<&str>) -> Result<GlobalParams, PipelineError> {
    if let Ok(preset) = Preset::from_str(source) {
        if let Some(network) = network {
            let wanted = network_name(preset.network());
            if !wanted.contains(&network) {
                return Err(PipelineError::Config(format!(
                    "params preset {source} is for {} but network is {network}: use a params \
                     file made for {network}",
                    wanted[0]
                )));
            }
        }
        return Ok(preset.params());
    }
    let text = std::fs::read(source).map_err(|e| {
        PipelineError::Config(format!(
            "params {source:?} is neither a preset (bbn-test-4, bbn-1) nor a readable file: {e}"
        ))
    })?;
    let (params, warnings) = GlobalParams::from_json_bytes(&text)
        .map_err(|e| PipelineError::Config(format!("params file {source}: {e}")))?;
    for w in warnings {
        tracing::warn!(params = source, "{w}");
    }
    Ok(params)
}

fn network_name(network: bitcoin::Network) -> &'static [&'static str] {
    match network {
        bitcoin::Network::Bitcoin => &["mainnet", "main", "bitcoin"],
        bitcoin::Network::Signet => &["signet"],
        bitcoin::Network::Testnet => &["testnet", "testnet3"],
        bitcoin::Network::Testnet4 => &["testnet4"],
        bitcoin::Network::Regtest => &["regtest"],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;

    fn signer_with_key_file(key: &[u8]) -> (tempfile::TempDir, RawSigner) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hmac-key");
        std::fs::write(&path, key).unwrap();
        let raw = RawSigner {
            public_key: Some(
                "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798".into(),
            ),
            url: "http://127.0.0.1:9791".into(),
            hmac_key_file: Some(path),
            hmac_key_env: None,
        };
        (dir, raw)
    }

    #[test]
    fn an_hmac_key_shorter_than_32_bytes_is_refused_with_the_reason() {
        let (_dir, raw) = signer_with_key_file(b"short shared key\n");
        let err = signer_endpoint(raw).unwrap_err().to_string();
        assert!(err.contains("http://127.0.0.1:9791"), "{err}");
        assert!(
            err.contains("16 bytes, fewer than the minimum of 32"),
            "{err}"
        );
        let (_dir, raw) = signer_with_key_file(&[b'k'; 32]);
        assert!(signer_endpoint(raw).unwrap().hmac_key.is_some());
    }
}
