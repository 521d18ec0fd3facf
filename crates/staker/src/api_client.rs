//! Client of the staking API v1 (`docs/reference.md#endpoints`,
//! `docs/reference.md#unbonding-request`): the staker's delegations, one delegation, and the
//! unbonding request.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `TransactionPublic`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionPublic {
    pub tx_hex: String,
    pub output_index: u64,
    pub start_timestamp: String,
    pub start_height: u64,
    pub timelock: u64,
}

/// `DelegationPublic`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationPublic {
    pub staking_tx_hash_hex: String,
    pub staker_pk_hex: String,
    pub finality_provider_pk_hex: String,
    pub state: String,
    pub staking_value: u64,
    pub staking_tx: TransactionPublic,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unbonding_tx: Option<TransactionPublic>,
    pub is_overflow: bool,
}

/// The body of `POST /v1/unbonding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnbondingRequest {
    pub staker_signed_signature_hex: String,
    pub staking_tx_hash_hex: String,
    pub unbonding_tx_hash_hex: String,
    pub unbonding_tx_hex: String,
}

#[derive(Debug, Deserialize)]
struct Page {
    data: Vec<DelegationPublic>,
    pagination: Pagination,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    next_key: String,
}

#[derive(Debug, Deserialize)]
struct One {
    data: Option<DelegationPublic>,
}

/// The largest answer read from the API: a page of delegations is a few kB.
const MAX_ANSWER_BYTES: usize = 8 << 20;

/// The API at `base` (e.g. `http://127.0.0.1:8090`, or `https://…`; redirects are not
/// followed, answers are read only up to 8 MiB).
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: net::Client,
}

impl ApiClient {
    /// `ca_file`: a CA to trust for an `https://` API besides the system's roots.
    pub fn new(base: &str, ca_file: Option<&Path>) -> Result<Self> {
        let mut builder = net::ClientBuilder::new("staking API").timeout(Duration::from_secs(30));
        if let Some(path) = ca_file {
            builder = builder.tls(net::ClientTls::with_ca_file(path));
        }
        let http = builder.build().context("cannot make an HTTP client")?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// `GET /v1/delegation`; `None` when the API does not know it (404).
    pub async fn delegation(&self, staking_txid: &str) -> Result<Option<DelegationPublic>> {
        let url = format!("{}/v1/delegation", self.base);
        let response = self
            .http
            .get(&url)
            .query(&[("staking_tx_hash_hex", staking_txid)])
            .send()
            .await
            .with_context(|| format!("cannot reach the API at {url}"))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = checked(response, &url).await?;
        let one: One = serde_json::from_value(body)
            .with_context(|| format!("{url} answered an unexpected shape"))?;
        Ok(one.data)
    }

    /// `GET /v1/staker/delegations`, every page.
    pub async fn delegations(&self, staker_pk: &str) -> Result<Vec<DelegationPublic>> {
        let url = format!("{}/v1/staker/delegations", self.base);
        let mut all = Vec::new();
        let mut key = String::new();
        loop {
            let mut query = vec![("staker_btc_pk", staker_pk)];
            if !key.is_empty() {
                query.push(("pagination_key", key.as_str()));
            }
            let response = self
                .http
                .get(&url)
                .query(&query)
                .send()
                .await
                .with_context(|| format!("cannot reach the API at {url}"))?;
            let body = checked(response, &url).await?;
            let page: Page = serde_json::from_value(body)
                .with_context(|| format!("{url} answered an unexpected shape"))?;
            all.extend(page.data);
            if page.pagination.next_key.is_empty() {
                return Ok(all);
            }
            key = page.pagination.next_key;
        }
    }

    /// `POST /v1/unbonding`: accepted on 202.
    pub async fn request_unbonding(&self, request: &UnbondingRequest) -> Result<()> {
        let url = format!("{}/v1/unbonding", self.base);
        let response = self
            .http
            .post(&url)
            .json(request)
            .send()
            .await
            .with_context(|| format!("cannot reach the API at {url}"))?;
        if response.status() == reqwest::StatusCode::ACCEPTED {
            return Ok(());
        }
        checked(response, &url).await?;
        bail!("{url} answered success but not 202 Accepted")
    }
}

/// The JSON body of a 2xx answer; otherwise an error with the API's `errorCode` and message.
async fn checked(response: reqwest::Response, url: &str) -> Result<Value> {
    let status = response.status();
    let bytes = net::read_limited(response, MAX_ANSWER_BYTES)
        .await
        .with_context(|| format!("cannot read the answer of {url}"))?;
    let text = String::from_utf8_lossy(&bytes);
    if status.is_success() {
        return serde_json::from_str(&text)
            .with_context(|| format!("{url} answered non-JSON: {text}"));
    }
    // 4xx: the API refused this request (exit 4); anything else: the API failed (exit 5).
    let refused = status.is_client_error();
    let message = match serde_json::from_str::<Value>(&text) {
        Ok(v) if v.get("message").is_some() => format!(
            "the API {} ({status}, {}): {}",
            if refused { "refused" } else { "failed" },
            v["errorCode"].as_str().unwrap_or("?"),
            v["message"].as_str().unwrap_or("")
        ),
        _ => format!("the API answered {status} at {url}: {text}"),
    };
    Err(if refused {
        crate::exit::refused(message)
    } else {
        crate::exit::unreachable(message)
    })
}
