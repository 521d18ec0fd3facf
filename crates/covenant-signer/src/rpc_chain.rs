//! [`ChainView`] and [`JsonRpc`] over the signer's own Bitcoin Core node (`bitcoin-rpc`).
//!
//! Lookups are the cheap ones of `docs/decisions.md#covenant-signer`:
//! `getrawtransaction <txid> true` for the block hash, `getblockheader <hash>` for the height (not
//! `getblock … 1`, which lists every txid of the block), `getblockcount`, and
//! `gettxout <txid> <n> true` for spentness.

use bitcoin::{OutPoint, Txid};
use bitcoin_rpc::{codes, RpcClient, RpcError};
use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;

use crate::chain::{ChainError, ChainView, TxLookup};
use crate::wallet::JsonRpc;

/// The full node as a [`ChainView`].
#[derive(Debug, Clone)]
pub struct RpcChain {
    client: RpcClient,
}

impl RpcChain {
    /// Wraps a client of a node with `-txindex`.
    pub fn new(client: RpcClient) -> Self {
        Self { client }
    }
}

fn classify(error: RpcError) -> ChainError {
    if error.is_transient() {
        ChainError::Transient(error.to_string())
    } else {
        ChainError::Permanent(error.to_string())
    }
}

impl ChainView for RpcChain {
    fn transaction(&self, txid: Txid) -> BoxFuture<'_, Result<TxLookup, ChainError>> {
        Box::pin(async move {
            let info = match self.client.get_raw_transaction_info(&txid).await {
                Ok(info) => info,
                Err(e) if e.code() == Some(codes::INVALID_ADDRESS_OR_KEY) => {
                    return Ok(TxLookup::NotFound)
                }
                Err(e) => return Err(classify(e)),
            };
            let tx = Arc::new(info.transaction.clone());
            let Some((block_hash, _)) = info.confirmed_in() else {
                return Ok(TxLookup::InMempool(tx));
            };
            let header = self
                .client
                .get_block_header_info(&block_hash)
                .await
                .map_err(classify)?;
            if header.confirmations < 0 {
                // Its block was reorganised away since the first answer.
                return Ok(TxLookup::InMempool(tx));
            }
            Ok(TxLookup::InBlock {
                tx,
                height: header.height,
            })
        })
    }

    fn tip_height(&self) -> BoxFuture<'_, Result<u32, ChainError>> {
        Box::pin(async move { self.client.get_block_count().await.map_err(classify) })
    }

    fn is_unspent(&self, outpoint: OutPoint) -> BoxFuture<'_, Result<bool, ChainError>> {
        Box::pin(async move {
            self.client
                .get_tx_out(&outpoint.txid, outpoint.vout, true)
                .await
                .map(|out| out.is_some())
                .map_err(classify)
        })
    }
}

/// The wallet node as a [`JsonRpc`] endpoint.
#[derive(Debug, Clone)]
pub struct RpcWallet {
    client: RpcClient,
}

impl RpcWallet {
    /// Wraps a client of the wallet node (URL path `/wallet/<name>` selects a wallet).
    pub fn new(client: RpcClient) -> Self {
        Self { client }
    }
}

impl JsonRpc for RpcWallet {
    fn call(&self, method: &str, params: Vec<Value>) -> BoxFuture<'_, Result<Value, String>> {
        let method = method.to_owned();
        Box::pin(async move {
            self.client
                .call_value(&method, &params)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
