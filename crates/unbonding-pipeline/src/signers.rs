//! Asking the covenant committee: every member at once over the reference signer API
//! (`POST /v1/sign-unbonding-tx`), each call with a whole-request timeout; every returned
//! signature is verified against the member's key over the unbonding sighash before it
//! counts. As soon as `quorum` valid signatures are in (arrival order, as the reference keeps
//! them), the remaining calls are dropped: latency is the quorum-th fastest member, not the
//! slowest.
//!
//! A member is a remote party and may be hostile: its answer is read only up to
//! [`MAX_ANSWER_BYTES`] (as the reference), redirects are not followed, and whatever it sends
//! back ends up in a [`SignerFailure`] only as a short, escaped excerpt — one member can only
//! lose its own vote.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::{schnorr, PublicKey, XOnlyPublicKey};
use covenant_signer::auth::HMAC_HEADER;
use covenant_signer::request::{SignRequest, SignResponseJson};
use futures::stream::{FuturesUnordered, StreamExt};

use net::{ClientTls, ReadError};

use crate::check::Prepared;
use crate::config::SignerEndpoint;
use crate::error::PipelineError;
use crate::metrics::Metrics;

/// How much of a signer's error body is kept in the reason (in characters, before escaping).
const MAX_BODY_IN_REASON: usize = 160;

/// The largest answer read from a signer (1 MiB, the reference's cap); a signature envelope
/// is about 150 bytes.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why one member's answer did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerFailure {
    /// No endpoint is configured for this committee key.
    NoEndpoint,
    /// No answer within the timeout.
    Timeout,
    /// Connection refused, reset, DNS, …
    Unreachable(String),
    /// An HTTP status other than 200, with the start of the body.
    Status(u16, String),
    /// A redirect (3xx), not followed, with where it pointed.
    Redirect(u16, String),
    /// An answer longer than [`MAX_ANSWER_BYTES`]; reading stopped there.
    TooLarge,
    /// A 200 whose body is not the `{"data":{"signature_hex"}}` envelope with 64 hex bytes.
    Garbage(String),
    /// A well-formed signature that does not verify for this member's key.
    InvalidSignature,
}

impl SignerFailure {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            SignerFailure::NoEndpoint => "no_endpoint",
            SignerFailure::Timeout => "timeout",
            SignerFailure::Unreachable(_) => "unreachable",
            SignerFailure::Status(..) => "http_error",
            SignerFailure::Redirect(..) => "redirect",
            SignerFailure::TooLarge => "too_large",
            SignerFailure::Garbage(_) => "garbage",
            SignerFailure::InvalidSignature => "invalid_signature",
        }
    }
}

impl fmt::Display for SignerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignerFailure::NoEndpoint => f.write_str("no signer URL configured for this key"),
            SignerFailure::Timeout => f.write_str("timed out"),
            SignerFailure::Unreachable(e) => write!(f, "unreachable: {e}"),
            SignerFailure::Status(code, body) => write!(f, "HTTP {code}: {body}"),
            SignerFailure::Redirect(code, location) => {
                write!(f, "HTTP {code} redirect to {location} (not followed)")
            }
            SignerFailure::TooLarge => {
                write!(f, "answer larger than {MAX_ANSWER_BYTES} bytes (discarded)")
            }
            SignerFailure::Garbage(what) => write!(f, "unusable answer: {what}"),
            SignerFailure::InvalidSignature => f.write_str("signature does not verify"),
        }
    }
}

/// What the committee returned for one request.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// Valid signatures in arrival order, at most `quorum`.
    pub signatures: Vec<(XOnlyPublicKey, schnorr::Signature)>,
    /// Members whose answer did not count (members still in flight when the quorum was
    /// reached are in neither list).
    pub failures: Vec<(PublicKey, SignerFailure)>,
}

impl Collected {
    /// One line naming every failed member, for the stored reason.
    pub fn describe_failures(&self) -> String {
        self.failures
            .iter()
            .map(|(key, failure)| format!("{key}: {failure}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The committee's HTTP client. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct Committee {
    http: net::Client,
    endpoints: HashMap<PublicKey, SignerEndpoint>,
    timeout: Duration,
}

impl Committee {
    /// A committee reached with the system's TLS roots and no client certificate.
    pub fn new(endpoints: &[SignerEndpoint], timeout: Duration) -> Result<Self, PipelineError> {
        Self::with_tls(endpoints, timeout, &ClientTls::default())
    }

    /// A committee reached over `https://` with `tls` (an extra CA, a client certificate).
    pub fn with_tls(
        endpoints: &[SignerEndpoint],
        timeout: Duration,
        tls: &ClientTls,
    ) -> Result<Self, PipelineError> {
        let http = net::ClientBuilder::new("covenant signers")
            .connect_timeout(timeout.min(net::DEFAULT_CONNECT_TIMEOUT))
            .read_timeout(timeout)
            .timeout(timeout)
            .pool_max_idle_per_host(256)
            .tls(tls.clone())
            .build()
            .map_err(|e| PipelineError::Http(e.to_string()))?;
        Ok(Self {
            http,
            endpoints: endpoints
                .iter()
                .map(|e| (e.public_key, e.clone()))
                .collect(),
            timeout,
        })
    }

    /// Asks every member of the request's params version; stops at `quorum` valid signatures.
    pub async fn collect(&self, prepared: &Prepared, metrics: &Metrics) -> Collected {
        let quorum = prepared.version.covenant_quorum as usize;
        let mut collected = Collected::default();
        let mut calls = FuturesUnordered::new();
        for key in &prepared.version.covenant_pks {
            match self.endpoints.get(key) {
                Some(endpoint) => calls.push(self.ask(endpoint, prepared, metrics)),
                None => {
                    metrics.signer_result(key, SignerFailure::NoEndpoint.label());
                    collected.failures.push((*key, SignerFailure::NoEndpoint));
                }
            }
        }
        while let Some((key, answer)) = calls.next().await {
            match answer {
                Ok(signature) => {
                    metrics.signer_result(&key, "valid");
                    collected
                        .signatures
                        .push((key.x_only_public_key().0, signature));
                    if collected.signatures.len() >= quorum {
                        break;
                    }
                }
                Err(failure) => {
                    metrics.signer_result(&key, failure.label());
                    collected.failures.push((key, failure));
                }
            }
        }
        metrics.committee_margin(
            prepared.version.covenant_pks.len(),
            collected.failures.len(),
            quorum,
        );
        collected
    }

    async fn ask(
        &self,
        endpoint: &SignerEndpoint,
        prepared: &Prepared,
        metrics: &Metrics,
    ) -> (PublicKey, Result<schnorr::Signature, SignerFailure>) {
        let started = Instant::now();
        let answer = self.ask_inner(endpoint, prepared).await;
        metrics.signer_latency(&endpoint.public_key, started.elapsed());
        (endpoint.public_key, answer)
    }

    async fn ask_inner(
        &self,
        endpoint: &SignerEndpoint,
        prepared: &Prepared,
    ) -> Result<schnorr::Signature, SignerFailure> {
        let request = SignRequest {
            staking_output_pk_script: prepared.staking.script_pubkey().clone(),
            unbonding_tx: prepared.unbonding_tx.clone(),
            staker_signature: prepared.staker_signature,
            covenant_key: endpoint.public_key,
        };
        // Serialising a struct of strings cannot fail.
        let body = serde_json::to_vec(&request.to_json()).unwrap_or_default();
        let mut call = self
            .http
            .post(&format!("{}/v1/sign-unbonding-tx", endpoint.url))
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &endpoint.hmac_key {
            call = call.header(HMAC_HEADER, key.sign(&body));
        }
        let response = call.body(body).send().await.map_err(transport_failure)?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| excerpt(v.as_bytes()))
                .unwrap_or_default();
            return Err(SignerFailure::Redirect(status.as_u16(), location));
        }
        let bytes = net::read_limited(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge { .. } => SignerFailure::TooLarge,
                ReadError::Transport(e) => transport_failure(e),
            })?;
        if status != reqwest::StatusCode::OK {
            return Err(SignerFailure::Status(status.as_u16(), excerpt(&bytes)));
        }
        let parsed: SignResponseJson = serde_json::from_slice(&bytes).map_err(|_| {
            SignerFailure::Garbage(format!("not the signature envelope: {}", excerpt(&bytes)))
        })?;
        let raw = hex::decode(&parsed.data.signature_hex)
            .map_err(|_| SignerFailure::Garbage("signature_hex is not hex".into()))?;
        let signature = staking_core::signing::parse_signature(&raw)
            .map_err(|e| SignerFailure::Garbage(format!("signature_hex: {e}")))?;
        let member = endpoint.public_key.x_only_public_key().0;
        staking_core::signing::verify_parsed(&prepared.sighash, &signature, &member)
            .map_err(|_| SignerFailure::InvalidSignature)?;
        Ok(signature)
    }
}

fn transport_failure(e: reqwest::Error) -> SignerFailure {
    if e.is_timeout() {
        SignerFailure::Timeout
    } else {
        SignerFailure::Unreachable(excerpt(net::error_chain(&e).as_bytes()))
    }
}

/// The start of a peer's bytes, safe to log and store: control characters (NUL included)
/// escaped, on one line, at most [`MAX_BODY_IN_REASON`] characters (then `…`).
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let head: String = text.chars().take(MAX_BODY_IN_REASON).collect();
    let escaped = store::sanitize::error_text(&head).replace(['\n', '\t'], " ");
    let mut cut: String = escaped.chars().take(MAX_BODY_IN_REASON).collect();
    if cut.len() < escaped.len() || text.chars().nth(MAX_BODY_IN_REASON).is_some() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_of_hostile_bytes_is_short_escaped_and_on_one_line() {
        let hostile = format!("a\0b\nc\u{1b}[31m{}", "x".repeat(10_000));
        let cut = excerpt(hostile.as_bytes());
        assert!(
            !cut.contains('\0') && !cut.contains('\n') && !cut.contains('\u{1b}'),
            "{cut}"
        );
        assert!(cut.starts_with("a\\u{0}b c\\u{1b}[31m"), "{cut}");
        assert!(cut.ends_with('…'), "{cut}");
        assert!(cut.len() < 200, "{}", cut.len());
    }
}
