//! Typed results of the RPC calls, parsed into `bitcoin` types at the edge.
//!
//! Field names follow Rust conventions; the serde renames are Bitcoin Core's names. Only the
//! fields our services use are kept; [`RpcClient::call`](crate::RpcClient::call) reaches the rest.

use bitcoin::{Amount, BlockHash, FeeRate, Network, ScriptBuf, Transaction, TxMerkleNode, Txid};
use serde::{Deserialize, Deserializer};

/// `getblockchaininfo`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BlockchainInfo {
    /// The chain, from Core's `chain` name (`main`, `test`, `testnet4`, `signet`, `regtest`).
    #[serde(deserialize_with = "network_from_core_name")]
    pub chain: Network,
    /// Height of the active chain's tip.
    pub blocks: u32,
    /// Height of the best known header.
    pub headers: u32,
    /// Hash of the active chain's tip.
    #[serde(rename = "bestblockhash")]
    pub best_block_hash: BlockHash,
    /// Whether the node is still in initial block download.
    #[serde(rename = "initialblockdownload", default)]
    pub initial_block_download: bool,
    /// Whether the node prunes old blocks (they can no longer be fetched).
    #[serde(default)]
    pub pruned: bool,
}

/// `getblockheader <hash> true`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BlockHeaderInfo {
    /// The block's hash.
    pub hash: BlockHash,
    /// Confirmations of the block; `-1` when it is not on the active chain.
    pub confirmations: i64,
    /// The block's height.
    pub height: u32,
    /// Header version.
    pub version: i32,
    /// Merkle root.
    #[serde(rename = "merkleroot")]
    pub merkle_root: TxMerkleNode,
    /// Header timestamp (Unix seconds).
    pub time: u32,
    /// Header nonce.
    pub nonce: u32,
    /// Number of transactions in the block.
    #[serde(rename = "nTx")]
    pub n_tx: u32,
    /// The parent's hash (absent for the genesis block).
    #[serde(rename = "previousblockhash", default)]
    pub previous_block_hash: Option<BlockHash>,
    /// The next block on the active chain, if any.
    #[serde(rename = "nextblockhash", default)]
    pub next_block_hash: Option<BlockHash>,
}

/// `getblock <hash> 1`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BlockInfo {
    /// The block's hash.
    pub hash: BlockHash,
    /// Confirmations of the block; `-1` when it is not on the active chain.
    pub confirmations: i64,
    /// The block's height.
    pub height: u32,
    /// Header timestamp (Unix seconds).
    pub time: u32,
    /// The parent's hash (absent for the genesis block).
    #[serde(rename = "previousblockhash", default)]
    pub previous_block_hash: Option<BlockHash>,
    /// The next block on the active chain, if any.
    #[serde(rename = "nextblockhash", default)]
    pub next_block_hash: Option<BlockHash>,
    /// The block's transactions, in block order.
    pub tx: Vec<Txid>,
}

/// `getrawtransaction <txid> true`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RawTransactionInfo {
    /// The transaction, decoded from Core's `hex` field.
    #[serde(rename = "hex", deserialize_with = "tx_from_hex")]
    pub transaction: Transaction,
    /// The block holding the transaction; absent while it is only in the mempool.
    #[serde(rename = "blockhash", default)]
    pub block_hash: Option<BlockHash>,
    /// Confirmations (1 = in the tip block); absent while only in the mempool.
    #[serde(default)]
    pub confirmations: Option<u32>,
    /// The block's timestamp, when confirmed.
    #[serde(rename = "blocktime", default)]
    pub block_time: Option<u64>,
}

impl RawTransactionInfo {
    /// The including block and the confirmation count, when the transaction is in a block of
    /// the active chain.
    pub fn confirmed_in(&self) -> Option<(BlockHash, u32)> {
        match (self.block_hash, self.confirmations) {
            (Some(hash), Some(confirmations)) if confirmations > 0 => Some((hash, confirmations)),
            _ => None,
        }
    }
}

/// `gettxout <txid> <n>` for an unspent output.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TxOutInfo {
    /// The tip the answer refers to.
    #[serde(rename = "bestblock")]
    pub best_block: BlockHash,
    /// Confirmations of the creating transaction (0 = mempool).
    pub confirmations: u32,
    /// The output's value.
    #[serde(with = "bitcoin::amount::serde::as_btc")]
    pub value: Amount,
    /// The output's script.
    #[serde(rename = "scriptPubKey", deserialize_with = "script_from_object")]
    pub script_pubkey: ScriptBuf,
    /// Whether the output belongs to a coinbase transaction.
    pub coinbase: bool,
}

/// One entry of `testmempoolaccept`.
#[derive(Clone, Debug, PartialEq)]
pub struct MempoolAcceptance {
    /// The transaction's id.
    pub txid: Txid,
    /// Whether the mempool would take it, and why not.
    pub outcome: AcceptOutcome,
}

/// The mempool's verdict on a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// The transaction would be accepted.
    Accepted {
        /// Virtual size in vbytes.
        vsize: u64,
        /// The fee it pays (absent on Bitcoin Core before 0.22).
        fee: Option<Amount>,
    },
    /// The transaction would be rejected.
    Rejected {
        /// Core's `reject-reason`, e.g. `missing-inputs`, `min relay fee not met`.
        reason: String,
    },
}

#[derive(Deserialize)]
pub(crate) struct RawMempoolAcceptance {
    txid: Txid,
    allowed: Option<bool>,
    #[serde(default)]
    vsize: Option<u64>,
    #[serde(default)]
    fees: Option<RawFees>,
    #[serde(rename = "reject-reason", default)]
    reject_reason: Option<String>,
}

#[derive(Deserialize)]
struct RawFees {
    #[serde(with = "bitcoin::amount::serde::as_btc")]
    base: Amount,
}

impl TryFrom<RawMempoolAcceptance> for MempoolAcceptance {
    type Error = String;

    fn try_from(raw: RawMempoolAcceptance) -> Result<Self, String> {
        let outcome = match (raw.allowed, raw.reject_reason) {
            (Some(true), _) => AcceptOutcome::Accepted {
                vsize: raw
                    .vsize
                    .ok_or_else(|| format!("accepted tx {} has no vsize", raw.txid))?,
                fee: raw.fees.map(|fees| fees.base),
            },
            (_, Some(reason)) => AcceptOutcome::Rejected { reason },
            (allowed, None) => {
                return Err(format!(
                    "tx {} has allowed = {allowed:?} and no reject-reason",
                    raw.txid
                ))
            }
        };
        Ok(MempoolAcceptance {
            txid: raw.txid,
            outcome,
        })
    }
}

/// `estimatesmartfee`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeeEstimate {
    /// The node has an estimate.
    Available {
        /// The estimated fee rate.
        fee_rate: FeeRate,
        /// The confirmation target the estimate is for (may exceed the one asked for).
        blocks: u32,
    },
    /// The node has no estimate (typical on regtest and right after start).
    Unavailable {
        /// Core's explanations, e.g. "Insufficient data or no feerate found".
        errors: Vec<String>,
        /// The confirmation target considered.
        blocks: u32,
    },
}

#[derive(Deserialize)]
pub(crate) struct RawFeeEstimate {
    #[serde(
        rename = "feerate",
        default,
        with = "bitcoin::amount::serde::as_btc::opt"
    )]
    fee_rate_per_kvb: Option<Amount>,
    #[serde(default)]
    errors: Vec<String>,
    blocks: u32,
}

impl From<RawFeeEstimate> for FeeEstimate {
    fn from(raw: RawFeeEstimate) -> Self {
        match raw.fee_rate_per_kvb {
            // Core reports BTC per 1000 vbytes; 1000 vbytes are 4000 weight units.
            Some(per_kvb) => FeeEstimate::Available {
                fee_rate: FeeRate::from_sat_per_kwu(per_kvb.to_sat() / 4),
                blocks: raw.blocks,
            },
            None => FeeEstimate::Unavailable {
                errors: raw.errors,
                blocks: raw.blocks,
            },
        }
    }
}

/// `getmempoolentry <txid>`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct MempoolEntry {
    /// Virtual size in vbytes.
    pub vsize: u64,
    /// Weight in weight units.
    pub weight: u64,
    /// When the transaction entered the mempool (Unix seconds).
    pub time: u64,
    /// Chain height when it entered the mempool.
    pub height: u32,
    /// The fee it pays, from Core's `fees.base`.
    #[serde(rename = "fees", deserialize_with = "base_fee")]
    pub fee: Amount,
    /// Unconfirmed parents.
    #[serde(default)]
    pub depends: Vec<Txid>,
    /// Unconfirmed children.
    #[serde(rename = "spentby", default)]
    pub spent_by: Vec<Txid>,
}

fn network_from_core_name<'de, D: Deserializer<'de>>(d: D) -> Result<Network, D::Error> {
    let name = String::deserialize(d)?;
    Network::from_core_arg(&name)
        .map_err(|_| serde::de::Error::custom(format!("unknown chain name {name:?}")))
}

fn tx_from_hex<'de, D: Deserializer<'de>>(d: D) -> Result<Transaction, D::Error> {
    let hex = String::deserialize(d)?;
    bitcoin::consensus::encode::deserialize_hex(&hex)
        .map_err(|e| serde::de::Error::custom(format!("transaction hex does not decode: {e}")))
}

fn script_from_object<'de, D: Deserializer<'de>>(d: D) -> Result<ScriptBuf, D::Error> {
    #[derive(Deserialize)]
    struct ScriptPubKey {
        hex: String,
    }
    let script = ScriptPubKey::deserialize(d)?;
    ScriptBuf::from_hex(&script.hex)
        .map_err(|e| serde::de::Error::custom(format!("scriptPubKey hex {:?}: {e}", script.hex)))
}

fn base_fee<'de, D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
    Ok(RawFees::deserialize(d)?.base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blockchain_info_parses_bitcoin_cores_chain_names() {
        let info: BlockchainInfo = serde_json::from_value(json!({
            "chain": "signet", "blocks": 200_000, "headers": 200_001,
            "bestblockhash": "00000000000000000000000000000000000000000000000000000000000000aa",
            "initialblockdownload": false, "pruned": false, "verificationprogress": 1.0
        }))
        .unwrap();
        assert_eq!(info.chain, Network::Signet);
        assert_eq!(info.blocks, 200_000);
        let bad = serde_json::from_value::<BlockchainInfo>(json!({
            "chain": "mainnet", "blocks": 1, "headers": 1,
            "bestblockhash": "00000000000000000000000000000000000000000000000000000000000000aa"
        }));
        assert!(bad.unwrap_err().to_string().contains("mainnet"));
    }

    #[test]
    fn an_accepted_tx_keeps_its_vsize_and_fee_and_a_rejected_one_its_reason() {
        let txid = "aa".repeat(32);
        let accepted: RawMempoolAcceptance = serde_json::from_value(json!({
            "txid": txid, "wtxid": txid, "allowed": true, "vsize": 141,
            "fees": {"base": 0.00001}
        }))
        .unwrap();
        let accepted = MempoolAcceptance::try_from(accepted).unwrap();
        assert_eq!(
            accepted.outcome,
            AcceptOutcome::Accepted {
                vsize: 141,
                fee: Some(Amount::from_sat(1000))
            }
        );
        let rejected: RawMempoolAcceptance = serde_json::from_value(json!({
            "txid": txid, "wtxid": txid, "allowed": false, "reject-reason": "missing-inputs"
        }))
        .unwrap();
        let rejected = MempoolAcceptance::try_from(rejected).unwrap();
        assert_eq!(
            rejected.outcome,
            AcceptOutcome::Rejected {
                reason: "missing-inputs".into()
            }
        );
    }

    #[test]
    fn a_verdict_without_allowed_or_reason_is_an_error() {
        let raw: RawMempoolAcceptance =
            serde_json::from_value(json!({"txid": "bb".repeat(32), "allowed": false})).unwrap();
        assert!(MempoolAcceptance::try_from(raw).is_err());
    }

    #[test]
    fn fee_estimates_convert_btc_per_kvb_to_a_fee_rate() {
        let raw: RawFeeEstimate =
            serde_json::from_value(json!({"feerate": 0.00012, "blocks": 2})).unwrap();
        assert_eq!(
            FeeEstimate::from(raw),
            FeeEstimate::Available {
                fee_rate: FeeRate::from_sat_per_vb_u32(12),
                blocks: 2
            }
        );
        let raw: RawFeeEstimate = serde_json::from_value(json!({
            "errors": ["Insufficient data or no feerate found"], "blocks": 0
        }))
        .unwrap();
        assert_eq!(
            FeeEstimate::from(raw),
            FeeEstimate::Unavailable {
                errors: vec!["Insufficient data or no feerate found".into()],
                blocks: 0
            }
        );
    }

    #[test]
    fn a_mempool_only_transaction_is_not_confirmed() {
        let tx = bitcoin::consensus::encode::serialize_hex(&Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![bitcoin::TxIn::default()],
            output: vec![],
        });
        let mempool: RawTransactionInfo =
            serde_json::from_value(json!({"hex": tx, "txid": "00".repeat(32)})).unwrap();
        assert_eq!(mempool.confirmed_in(), None);
        let hash = "11".repeat(32);
        let mined: RawTransactionInfo = serde_json::from_value(
            json!({"hex": tx, "blockhash": hash, "confirmations": 3, "blocktime": 1}),
        )
        .unwrap();
        assert_eq!(mined.confirmed_in(), Some((hash.parse().unwrap(), 3)));
    }

    #[test]
    fn gettxout_parses_the_value_in_btc_and_the_script_hex() {
        let out: TxOutInfo = serde_json::from_value(json!({
            "bestblock": "22".repeat(32), "confirmations": 10, "value": 0.5,
            "scriptPubKey": {"hex": "0014".to_owned() + &"33".repeat(20), "type": "witness_v0_keyhash"},
            "coinbase": false
        }))
        .unwrap();
        assert_eq!(out.value, Amount::from_sat(50_000_000));
        assert!(out.script_pubkey.is_p2wpkh());
    }
}
