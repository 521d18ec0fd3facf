//! The JSON-RPC client: transport, authentication, error mapping and typed calls.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Address, Block, BlockHash, Transaction, Txid};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{RpcAuth, RpcConfig};
use crate::error::RpcError;
use crate::types::{
    BlockHeaderInfo, BlockInfo, BlockchainInfo, FeeEstimate, MempoolAcceptance, MempoolEntry,
    RawFeeEstimate, RawMempoolAcceptance, RawTransactionInfo, TxOutInfo,
};

/// How much of a non-JSON error body is kept in [`RpcError::Http`].
const MAX_BODY_IN_ERROR: usize = 200;

/// An async Bitcoin Core JSON-RPC client. Cheap to clone; clones share one connection pool.
#[derive(Clone, Debug)]
pub struct RpcClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: net::Client,
    url: String,
    auth: RpcAuth,
    timeout: Duration,
    max_response_bytes: usize,
    /// Credentials read from the cookie file, kept until the node answers 401.
    cookie: Mutex<Option<Credentials>>,
    next_id: AtomicU64,
}

#[derive(Clone)]
struct Credentials {
    user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A JSON-RPC 1.0 response as Bitcoin Core sends it (HTTP 200, or 404/500 with this body).
#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    result: Value,
    #[serde(default)]
    error: Option<ErrorObject>,
}

/// A response whose result is a hex string, borrowed from the body when it has no escapes.
#[derive(Deserialize)]
struct HexResponse<'a> {
    #[serde(default, borrow)]
    result: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: i32,
    message: String,
}

impl RpcClient {
    /// A client for the node described by `config`. Does not contact the node (but reads the
    /// TLS files it names). Redirects are not followed; `https://` uses the system's roots plus
    /// `config.tls`.
    pub fn new(config: RpcConfig) -> Result<Self, RpcError> {
        let http = net::ClientBuilder::new("bitcoin node")
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(net::DEFAULT_CONNECT_TIMEOUT))
            .read_timeout(config.timeout)
            .tls(config.tls.clone())
            .build()
            .map_err(|source| RpcError::Client {
                url: config.url.clone(),
                source,
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                url: config.url,
                auth: config.auth,
                timeout: config.timeout,
                max_response_bytes: config.max_response_bytes,
                cookie: Mutex::new(None),
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Calls `method` with positional `params` and parses the result as `T`.
    ///
    /// This is the escape hatch for calls without a typed method; the typed methods use it too.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &[Value],
    ) -> Result<T, RpcError> {
        let value = self.call_value(method, params).await?;
        serde_json::from_value(value).map_err(|e| RpcError::Decode {
            method: method.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Calls `method` and returns the raw JSON result.
    pub async fn call_value(&self, method: &str, params: &[Value]) -> Result<Value, RpcError> {
        let (status, body) = self.send_authenticated(method, params).await?;
        match serde_json::from_slice::<Response>(&body) {
            Ok(Response {
                error: None,
                result,
            }) if status.is_success() => Ok(result),
            _ => Err(self.failure(method, status, &body)),
        }
    }

    async fn credentials(&self, method: &str, reload: bool) -> Result<Credentials, RpcError> {
        let path = match &self.inner.auth {
            RpcAuth::UserPass { user, password } => {
                return Ok(Credentials {
                    user: user.clone(),
                    password: password.clone(),
                })
            }
            RpcAuth::Cookie(path) => path,
        };
        if !reload {
            let cached = self
                .inner
                .cookie
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(credentials) = cached {
                return Ok(credentials);
            }
        }
        let credentials = read_cookie(path).await?;
        tracing::debug!(method, path = %path.display(), "read RPC cookie file");
        *self
            .inner
            .cookie
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(credentials.clone());
        Ok(credentials)
    }

    /// Sends one request; the answer's status and body, unparsed (401 already mapped).
    async fn send(
        &self,
        method: &str,
        params: &[Value],
        credentials: &Credentials,
    ) -> Result<(reqwest::StatusCode, bytes::Bytes), RpcError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params});
        let response = self
            .inner
            .http
            .post(&self.inner.url)
            .basic_auth(&credentials.user, Some(&credentials.password))
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport_error(method, e))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(RpcError::Unauthorized {
                method: method.to_owned(),
                url: self.inner.url.clone(),
            });
        }
        let body = net::read_limited(response, self.inner.max_response_bytes)
            .await
            .map_err(|e| match e {
                net::ReadError::TooLarge { limit } => RpcError::TooLarge {
                    method: method.to_owned(),
                    url: self.inner.url.clone(),
                    limit,
                },
                net::ReadError::Transport(e) => self.transport_error(method, e),
            })?;
        Ok((status, body))
    }

    /// Sends with the cookie re-read on 401 (the node rewrites its cookie at every restart).
    async fn send_authenticated(
        &self,
        method: &str,
        params: &[Value],
    ) -> Result<(reqwest::StatusCode, bytes::Bytes), RpcError> {
        let credentials = self.credentials(method, false).await?;
        match self.send(method, params, &credentials).await {
            Err(RpcError::Unauthorized { .. }) if matches!(self.inner.auth, RpcAuth::Cookie(_)) => {
                let credentials = self.credentials(method, true).await?;
                self.send(method, params, &credentials).await
            }
            other => other,
        }
    }

    /// Maps a body that is not a successful JSON-RPC result to the error it means.
    fn failure(&self, method: &str, status: reqwest::StatusCode, body: &[u8]) -> RpcError {
        if let Ok(Response {
            error: Some(error), ..
        }) = serde_json::from_slice::<Response>(body)
        {
            return RpcError::Rpc {
                code: error.code,
                message: error.message,
            };
        }
        let text: String = String::from_utf8_lossy(body)
            .chars()
            .take(MAX_BODY_IN_ERROR)
            .collect();
        if status.is_success() {
            RpcError::Decode {
                method: method.to_owned(),
                reason: format!("not a JSON-RPC response: {text:?}"),
            }
        } else {
            RpcError::Http {
                method: method.to_owned(),
                url: self.inner.url.clone(),
                status: status.as_u16(),
                body: text,
            }
        }
    }

    fn transport_error(&self, method: &str, source: reqwest::Error) -> RpcError {
        let method = method.to_owned();
        let url = self.inner.url.clone();
        if source.is_timeout() {
            RpcError::Timeout {
                method,
                url,
                timeout: self.inner.timeout,
            }
        } else if source.is_connect() {
            RpcError::Connect {
                method,
                url,
                source,
            }
        } else {
            RpcError::Transport {
                method,
                url,
                source,
            }
        }
    }

    /// Calls a method whose result is consensus-encoded hex (`getblock <hash> 0`, …) and
    /// decodes it. The hex string is borrowed from the response body and decoded straight to
    /// value: a mainnet block is 3 MB of hex, and going through `serde_json::Value` and a
    /// char-by-char hex reader cost more than the decoding itself.
    async fn call_hex<T: bitcoin::consensus::Decodable>(
        &self,
        method: &str,
        params: &[Value],
    ) -> Result<T, RpcError> {
        let (status, body) = self.send_authenticated(method, params).await?;
        let hex = match serde_json::from_slice::<HexResponse<'_>>(&body) {
            Ok(HexResponse {
                error: None,
                result: Some(hex),
            }) if status.is_success() => hex,
            Ok(HexResponse {
                error: None,
                result: None,
            }) if status.is_success() => {
                return Err(RpcError::Decode {
                    method: method.to_owned(),
                    reason: "result is null, expected a hex string".to_owned(),
                })
            }
            _ => return Err(self.failure(method, status, &body)),
        };
        crate::hex::deserialize(hex.as_bytes()).map_err(|e| RpcError::Decode {
            method: method.to_owned(),
            reason: format!("hex does not decode: {e}"),
        })
    }

    // ---- chain ----

    /// `getblockchaininfo`: chain, tip height and hash.
    pub async fn get_blockchain_info(&self) -> Result<BlockchainInfo, RpcError> {
        self.call("getblockchaininfo", &[]).await
    }

    /// `getblockcount`: height of the active tip.
    pub async fn get_block_count(&self) -> Result<u32, RpcError> {
        self.call("getblockcount", &[]).await
    }

    /// `getbestblockhash`: hash of the active tip.
    pub async fn get_best_block_hash(&self) -> Result<BlockHash, RpcError> {
        self.call("getbestblockhash", &[]).await
    }

    /// `getblockhash <height>` on the active chain; `-8` "Block height out of range" above it.
    pub async fn get_block_hash(&self, height: u32) -> Result<BlockHash, RpcError> {
        self.call("getblockhash", &[json!(height)]).await
    }

    /// `getblockheader <hash> false`: the 80-byte header.
    pub async fn get_block_header(
        &self,
        hash: &BlockHash,
    ) -> Result<bitcoin::block::Header, RpcError> {
        self.call_hex("getblockheader", &[json!(hash), json!(false)])
            .await
    }

    /// `getblockheader <hash> true`: height, confirmations, neighbours.
    pub async fn get_block_header_info(
        &self,
        hash: &BlockHash,
    ) -> Result<BlockHeaderInfo, RpcError> {
        self.call("getblockheader", &[json!(hash), json!(true)])
            .await
    }

    /// `getblock <hash> 0`: the whole block, decoded.
    pub async fn get_block(&self, hash: &BlockHash) -> Result<Block, RpcError> {
        self.call_hex("getblock", &[json!(hash), json!(0)]).await
    }

    /// `getblock <hash> 1`: height, confirmations and txids.
    pub async fn get_block_info(&self, hash: &BlockHash) -> Result<BlockInfo, RpcError> {
        self.call("getblock", &[json!(hash), json!(1)]).await
    }

    // ---- transactions ----

    /// `getrawtransaction <txid> false`. Confirmed transactions need `-txindex` on the node.
    pub async fn get_raw_transaction(&self, txid: &Txid) -> Result<Transaction, RpcError> {
        self.call_hex("getrawtransaction", &[json!(txid), json!(false)])
            .await
    }

    /// `getrawtransaction <txid> true`: the transaction with its block hash and confirmations.
    pub async fn get_raw_transaction_info(
        &self,
        txid: &Txid,
    ) -> Result<RawTransactionInfo, RpcError> {
        self.call("getrawtransaction", &[json!(txid), json!(true)])
            .await
    }

    /// `gettxout <txid> <vout> <include_mempool>`: `None` when the output is spent or unknown.
    pub async fn get_tx_out(
        &self,
        txid: &Txid,
        vout: u32,
        include_mempool: bool,
    ) -> Result<Option<TxOutInfo>, RpcError> {
        self.call(
            "gettxout",
            &[json!(txid), json!(vout), json!(include_mempool)],
        )
        .await
    }

    /// `testmempoolaccept [<hex>...]`: the mempool's verdict, without broadcasting.
    pub async fn test_mempool_accept(
        &self,
        txs: &[Transaction],
    ) -> Result<Vec<MempoolAcceptance>, RpcError> {
        let hexes: Vec<String> = txs.iter().map(serialize_hex).collect();
        let raw: Vec<RawMempoolAcceptance> =
            self.call("testmempoolaccept", &[json!(hexes)]).await?;
        raw.into_iter()
            .map(|r| {
                MempoolAcceptance::try_from(r).map_err(|reason| RpcError::Decode {
                    method: "testmempoolaccept".to_owned(),
                    reason,
                })
            })
            .collect()
    }

    /// `sendrawtransaction <hex>` with the node's default fee-rate cap.
    pub async fn send_raw_transaction(&self, tx: &Transaction) -> Result<Txid, RpcError> {
        self.call("sendrawtransaction", &[json!(serialize_hex(tx))])
            .await
    }

    /// `sendrawtransaction <hex> 0`: broadcast whatever the fee rate (as the reference
    /// unbonding pipeline does for pre-agreed transactions).
    pub async fn send_raw_transaction_uncapped(&self, tx: &Transaction) -> Result<Txid, RpcError> {
        self.call("sendrawtransaction", &[json!(serialize_hex(tx)), json!(0)])
            .await
    }

    /// `estimatesmartfee <conf_target>` in the node's default (conservative) mode.
    pub async fn estimate_smart_fee(&self, conf_target: u16) -> Result<FeeEstimate, RpcError> {
        let raw: RawFeeEstimate = self.call("estimatesmartfee", &[json!(conf_target)]).await?;
        Ok(raw.into())
    }

    // ---- mempool ----

    /// `getrawmempool`: the txids in the mempool.
    pub async fn get_raw_mempool(&self) -> Result<Vec<Txid>, RpcError> {
        self.call("getrawmempool", &[]).await
    }

    /// `getmempoolentry <txid>`; `-5` "Transaction not in mempool" when absent.
    pub async fn get_mempool_entry(&self, txid: &Txid) -> Result<MempoolEntry, RpcError> {
        self.call("getmempoolentry", &[json!(txid)]).await
    }

    // ---- regtest and test control ----

    /// `generatetoaddress <n> <address>` (regtest): mines `n` blocks paying `address`.
    pub async fn generate_to_address(
        &self,
        blocks: u32,
        address: &Address,
    ) -> Result<Vec<BlockHash>, RpcError> {
        self.call(
            "generatetoaddress",
            &[json!(blocks), json!(address.to_string())],
        )
        .await
    }

    /// `generateblock <address> [<hex>...]` (regtest): mines one block with exactly `txs`
    /// (after the coinbase), in that order.
    pub async fn generate_block(
        &self,
        address: &Address,
        txs: &[Transaction],
    ) -> Result<BlockHash, RpcError> {
        #[derive(Deserialize)]
        struct Generated {
            hash: BlockHash,
        }
        let hexes: Vec<String> = txs.iter().map(serialize_hex).collect();
        let generated: Generated = self
            .call("generateblock", &[json!(address.to_string()), json!(hexes)])
            .await?;
        Ok(generated.hash)
    }

    /// `invalidateblock <hash>`: marks the block invalid, reorganising away from it.
    pub async fn invalidate_block(&self, hash: &BlockHash) -> Result<(), RpcError> {
        self.call::<Value>("invalidateblock", &[json!(hash)])
            .await
            .map(drop)
    }

    /// `reconsiderblock <hash>`: undoes [`RpcClient::invalidate_block`].
    pub async fn reconsider_block(&self, hash: &BlockHash) -> Result<(), RpcError> {
        self.call::<Value>("reconsiderblock", &[json!(hash)])
            .await
            .map(drop)
    }
}

/// Reads `user:password` from a Bitcoin Core cookie file.
async fn read_cookie(path: &Path) -> Result<Credentials, RpcError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| RpcError::Cookie {
            path: path.to_path_buf(),
            source,
        })?;
    let (user, password) =
        text.trim_end()
            .split_once(':')
            .ok_or_else(|| RpcError::CookieFormat {
                path: path.to_path_buf(),
            })?;
    Ok(Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}
