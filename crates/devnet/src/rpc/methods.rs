//! The RPC calls. Each returns Core's result shape or Core's error code and message.

use std::str::FromStr;

use bitcoin::consensus::encode::{deserialize, serialize_hex};
use bitcoin::{Address, Amount, Block, BlockHash, Network, OutPoint, ScriptBuf, Transaction, Txid};
use serde_json::{json, Value};

use super::args::{amount_from_value, parse_hash, Args};
use super::json::{
    block_json, btc, chainwork, header_json, mempool_entry_json, script_pubkey_json, tx_json,
};
use super::{code, RpcError};
use crate::error::{DevnetError, RejectReason};
use crate::node::{unix_now, Node};
use crate::params;

/// Started-at time for `uptime`.
static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Every method the devnet serves.
pub const METHODS: &[&str] = &[
    "decoderawtransaction",
    "estimatesmartfee",
    "faucet",
    "generateblock",
    "generatetoaddress",
    "getbestblockhash",
    "getblock",
    "getblockchaininfo",
    "getblockcount",
    "getblockhash",
    "getblockheader",
    "getmempoolentry",
    "getmempoolinfo",
    "getnetworkinfo",
    "getrawmempool",
    "getrawtransaction",
    "gettxout",
    "invalidateblock",
    "ping",
    "reconsiderblock",
    "scantxoutset",
    "sendrawtransaction",
    "submitblock",
    "testmempoolaccept",
    "uptime",
];

/// Runs `method` with `params` on `node`.
pub fn call(node: &Node, method: &str, params: Value) -> Result<Value, RpcError> {
    STARTED.get_or_init(unix_now);
    let a = |names: &'static [&'static str], required: usize| {
        Args::new(method, names, required, params.clone())
    };
    match method {
        "getblockcount" => {
            a(&[], 0)?;
            Ok(json!(node.tip().height))
        }
        "getbestblockhash" => {
            a(&[], 0)?;
            Ok(json!(node.tip().hash.to_string()))
        }
        "ping" => {
            a(&[], 0)?;
            Ok(Value::Null)
        }
        "uptime" => {
            a(&[], 0)?;
            Ok(json!(
                unix_now().saturating_sub(*STARTED.get_or_init(unix_now))
            ))
        }
        "getblockchaininfo" => {
            a(&[], 0)?;
            getblockchaininfo(node)
        }
        "getnetworkinfo" => {
            a(&[], 0)?;
            Ok(getnetworkinfo())
        }
        "getblockhash" => {
            let args = a(&["height"], 1)?;
            let height = args.i64(0)?;
            let state = node.lock();
            u32::try_from(height)
                .ok()
                .and_then(|h| state.chain.hash_at(h))
                .map(|h| json!(h.to_string()))
                .ok_or_else(|| RpcError::new(code::INVALID_PARAMETER, "Block height out of range"))
        }
        "getblockheader" => {
            let args = a(&["blockhash", "verbose"], 1)?;
            // Core's getblockheader names the argument `blockhash` in its help but `hash` in
            // its parse errors (`ParseHashV(request.params[0], "hash")`).
            let hash: BlockHash = parse_hash(args.str(0)?, "hash")?;
            let verbose = args.opt_bool(1, true)?;
            let state = node.lock();
            let entry = state.chain.entry(&hash).ok_or_else(block_not_found)?;
            Ok(if verbose {
                header_json(&state.chain, entry)
            } else {
                json!(serialize_hex(&entry.block.header))
            })
        }
        "getblock" => {
            let args = a(&["blockhash", "verbosity"], 1)?;
            let hash: BlockHash = args.hash(0)?;
            let verbosity = match args.get(1) {
                None => 1,
                Some(Value::Bool(b)) => i64::from(*b),
                Some(_) => args.i64(1)?,
            };
            let state = node.lock();
            let entry = state.chain.entry(&hash).ok_or_else(block_not_found)?;
            Ok(if verbosity <= 0 {
                json!(serialize_hex(entry.block.as_ref()))
            } else {
                block_json(&state.chain, entry, verbosity)
            })
        }
        "getrawtransaction" => getrawtransaction(node, a(&["txid", "verbose", "blockhash"], 1)?),
        "gettxout" => gettxout(node, a(&["txid", "n", "include_mempool"], 2)?),
        "getrawmempool" => {
            let args = a(&["verbose", "mempool_sequence"], 0)?;
            let verbose = args.opt_bool(0, false)?;
            let sequence = args.opt_bool(1, false)?;
            if verbose && sequence {
                return Err(RpcError::new(
                    code::INVALID_PARAMETER,
                    "Verbose results cannot contain mempool sequence values.",
                ));
            }
            let state = node.lock();
            let entries = state.mempool.entries_in_order();
            if verbose {
                let map: serde_json::Map<String, Value> = entries
                    .iter()
                    .map(|e| (e.txid.to_string(), mempool_entry_json(&state.mempool, e)))
                    .collect();
                return Ok(Value::Object(map));
            }
            let txids: Vec<String> = entries.iter().map(|e| e.txid.to_string()).collect();
            Ok(if sequence {
                json!({"txids": txids, "mempool_sequence": entries.len()})
            } else {
                json!(txids)
            })
        }
        "getmempoolentry" => {
            let args = a(&["txid"], 1)?;
            let txid: Txid = args.hash(0)?;
            let state = node.lock();
            let entry = state.mempool.get(&txid).ok_or_else(|| {
                RpcError::new(code::INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")
            })?;
            Ok(mempool_entry_json(&state.mempool, entry))
        }
        "getmempoolinfo" => {
            a(&[], 0)?;
            let state = node.lock();
            let entries = state.mempool.entries_in_order();
            let bytes: u64 = entries.iter().map(|e| e.vsize).sum();
            let fees: Amount = entries.iter().map(|e| e.fee).sum();
            Ok(json!({
                "loaded": true,
                "size": entries.len(),
                "bytes": bytes,
                "usage": bytes * 4,
                "total_fee": btc(fees),
                "maxmempool": 300_000_000,
                "mempoolminfee": 0.00001,
                "minrelaytxfee": 0.00001,
                "incrementalrelayfee": 0.00001,
                "unbroadcastcount": 0,
                "fullrbf": false,
            }))
        }
        "decoderawtransaction" => {
            let args = a(&["hexstring", "iswitness"], 1)?;
            let tx = decode_tx(args.str(0)?, "TX decode failed")?;
            Ok(tx_json(&tx, false, None))
        }
        "testmempoolaccept" => testmempoolaccept(node, a(&["rawtxs", "maxfeerate"], 1)?),
        "sendrawtransaction" => {
            sendrawtransaction(node, a(&["hexstring", "maxfeerate", "maxburnamount"], 1)?)
        }
        "estimatesmartfee" => {
            let args = a(&["conf_target", "estimate_mode"], 1)?;
            let target = args.i64(0)?;
            if !(1..=1008).contains(&target) {
                return Err(RpcError::new(
                    code::INVALID_PARAMETER,
                    "Invalid conf_target, must be between 1 and 1008",
                ));
            }
            if args.get(1).is_some() {
                let mode = args.str(1)?.to_ascii_lowercase();
                if !matches!(mode.as_str(), "unset" | "economical" | "conservative") {
                    return Err(RpcError::new(
                        code::INVALID_PARAMETER,
                        r#"Invalid estimate_mode parameter, must be one of: "unset", "economical", "conservative""#,
                    ));
                }
            }
            // The devnet has no fee market: it answers the minimum relay fee rate for every
            // target (Core on a fresh regtest would answer "Insufficient data").
            Ok(json!({"feerate": 0.00001, "blocks": target.max(2)}))
        }
        "generatetoaddress" => {
            let args = a(&["nblocks", "address", "maxtries"], 2)?;
            let n = args.i64(0)?;
            let script = parse_address(args.str(1)?, "Error: Invalid address")?;
            args.opt_i64(2, 1_000_000)?;
            let n = u32::try_from(n.max(0)).unwrap_or(u32::MAX);
            let hashes = node.mine_blocks(n, &script).map_err(internal)?;
            Ok(json!(hashes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()))
        }
        "generateblock" => generateblock(node, a(&["output", "transactions", "submit"], 2)?),
        "submitblock" => {
            let args = a(&["hexdata", "dummy"], 1)?;
            let bytes = hex::decode(args.str(0)?).map_err(|_| block_decode_failed())?;
            let block: Block = deserialize(&bytes).map_err(|_| block_decode_failed())?;
            if block.txdata.is_empty() || !block.txdata[0].is_coinbase() {
                return Err(RpcError::new(
                    code::DESERIALIZATION_ERROR,
                    "Block does not start with a coinbase",
                ));
            }
            let hash = block.block_hash();
            if node.lock().chain.entry(&hash).is_some() {
                return Ok(json!("duplicate"));
            }
            match node.submit_block(block) {
                Ok(_) => Ok(Value::Null),
                Err(DevnetError::Mine(reject)) => Ok(json!(reject.reason)),
                Err(e) => Err(internal(e)),
            }
        }
        "invalidateblock" | "reconsiderblock" => {
            let args = a(&["blockhash"], 1)?;
            let hash: BlockHash = args.hash(0)?;
            let done = if method == "invalidateblock" {
                node.invalidate(&hash)
            } else {
                node.reconsider(&hash)
            };
            match done.map_err(internal)? {
                Some(()) => Ok(Value::Null),
                None => Err(block_not_found()),
            }
        }
        "scantxoutset" => super::scan::scantxoutset(node, &a(&["action", "scanobjects"], 1)?),
        "faucet" => {
            let args = a(&["address", "amount", "confirm"], 2)?;
            // Also `tb1…`: the staking dApp's wallets hand out signet-style addresses.
            let script = crate::esplora::scripts::parse_devnet_address(args.str(0)?)
                .ok_or_else(|| RpcError::new(code::INVALID_ADDRESS_OR_KEY, "Invalid address"))?;
            let amount = args.amount(1)?;
            let confirm = args.opt_bool(2, true)?;
            let dust = script.minimal_non_dust_custom(params::DUST_RELAY_FEE);
            if amount < dust {
                return Err(RpcError::new(
                    code::INVALID_PARAMETER,
                    format!(
                        "Amount {} is below the dust limit {} for this address",
                        amount.to_btc(),
                        dust.to_btc()
                    ),
                ));
            }
            let txid = node
                .faucet(&script, amount, confirm)
                .map_err(|e| RpcError::new(code::WALLET_INSUFFICIENT_FUNDS, e.to_string()))?;
            Ok(json!(txid.to_string()))
        }
        _ => Err(RpcError::new(code::METHOD_NOT_FOUND, "Method not found")),
    }
}

fn block_not_found() -> RpcError {
    RpcError::new(code::INVALID_ADDRESS_OR_KEY, "Block not found")
}

fn block_decode_failed() -> RpcError {
    RpcError::new(code::DESERIALIZATION_ERROR, "Block decode failed")
}

fn internal(e: DevnetError) -> RpcError {
    match e {
        DevnetError::Mine(reject) => RpcError::new(
            code::VERIFY_ERROR,
            format!("TestBlockValidity failed: {reject}"),
        ),
        other => RpcError::new(code::MISC_ERROR, other.to_string()),
    }
}

fn parse_address(s: &str, message: &str) -> Result<ScriptBuf, RpcError> {
    Address::from_str(s)
        .ok()
        .and_then(|a| a.require_network(Network::Regtest).ok())
        .map(|a| a.script_pubkey())
        .ok_or_else(|| RpcError::new(code::INVALID_ADDRESS_OR_KEY, message))
}

/// Core's `DecodeHexTx` (tries with witness, then without).
fn decode_tx(hex_str: &str, prefix: &str) -> Result<Transaction, RpcError> {
    let fail = || {
        RpcError::new(
            code::DESERIALIZATION_ERROR,
            format!("{prefix}. Make sure the tx has at least one input."),
        )
    };
    let bytes = hex::decode(hex_str).map_err(|_| fail())?;
    deserialize::<Transaction>(&bytes)
        .ok()
        .filter(|t| !t.input.is_empty())
        .ok_or_else(fail)
}

/// A `maxfeerate` argument in BTC/kvB, as sat per 1000 vB (0 = no limit).
fn max_fee_rate(args: &Args, i: usize) -> Result<u64, RpcError> {
    let Some(v) = args.get(i) else {
        return Ok(params::DEFAULT_MAX_FEE_RATE_SAT_PER_KVB);
    };
    let amount = amount_from_value(v)?;
    if amount >= Amount::ONE_BTC {
        return Err(RpcError::new(
            code::TYPE_ERROR,
            "Fee rates larger than or equal to 1BTC/kvB are not accepted",
        ));
    }
    Ok(amount.to_sat())
}

fn getblockchaininfo(node: &Node) -> Result<Value, RpcError> {
    let state = node.lock();
    let tip = state.chain.tip();
    let ibd = u64::from(tip.block.header.time) + 24 * 60 * 60 < unix_now();
    Ok(json!({
        "chain": "regtest",
        "blocks": tip.height,
        "headers": tip.height,
        "bestblockhash": tip.hash.to_string(),
        "difficulty": params::difficulty(params::pow_bits()),
        "time": tip.block.header.time,
        "mediantime": state.chain.mtp(tip.height),
        "verificationprogress": 1,
        "initialblockdownload": ibd,
        "chainwork": chainwork(tip.height),
        "size_on_disk": 0,
        "pruned": false,
        "warnings": "",
    }))
}

fn getnetworkinfo() -> Value {
    json!({
        "version": 260_000,
        "subversion": "/Satoshi:26.0.0(stakingd-devnet)/",
        "protocolversion": 70016,
        "localservices": "0000000000000409",
        "localservicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED"],
        "localrelay": true,
        "timeoffset": 0,
        "networkactive": true,
        "connections": 0,
        "connections_in": 0,
        "connections_out": 0,
        "networks": [],
        "relayfee": 0.00001,
        "incrementalfee": 0.00001,
        "localaddresses": [],
        "warnings": "",
    })
}

fn getrawtransaction(node: &Node, args: Args) -> Result<Value, RpcError> {
    let txid: Txid = args.hash(0)?;
    let verbosity = match args.get(1) {
        None => 0,
        Some(Value::Bool(b)) => i64::from(*b),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(v) => {
            return Err(RpcError::new(
                code::TYPE_ERROR,
                format!(
                    "JSON value of type {} for field verbose is not of expected type number",
                    super::args::type_name(v)
                ),
            ))
        }
    };
    let block_hash: Option<BlockHash> = if args.get(2).is_some() {
        Some(args.hash(2)?)
    } else {
        None
    };
    let state = node.lock();
    let genesis = state
        .chain
        .hash_at(0)
        .and_then(|h| state.chain.entry(&h))
        .map(|e| e.block.txdata[0].compute_txid());
    if Some(txid) == genesis {
        return Err(RpcError::new(
            code::INVALID_ADDRESS_OR_KEY,
            "The genesis block coinbase is not considered an ordinary transaction and cannot be retrieved",
        ));
    }
    let found: Option<(Transaction, Option<BlockHash>, Option<usize>)> = match block_hash {
        Some(bh) => {
            let entry = state.chain.entry(&bh).ok_or_else(|| {
                RpcError::new(code::INVALID_ADDRESS_OR_KEY, "Block hash not found")
            })?;
            let pos = entry
                .block
                .txdata
                .iter()
                .position(|t| t.compute_txid() == txid);
            match pos {
                Some(i) => Some((entry.block.txdata[i].clone(), Some(bh), Some(i))),
                None => {
                    return Err(RpcError::new(
                        code::INVALID_ADDRESS_OR_KEY,
                        "No such transaction found in the provided block. Use gettransaction for wallet transactions.",
                    ))
                }
            }
        }
        None => match state.mempool.get(&txid) {
            Some(e) => Some(((*e.tx).clone(), None, None)),
            None => state.chain.tx_location(&txid).and_then(|loc| {
                state.chain.entry(&loc.block).map(|e| {
                    (
                        e.block.txdata[loc.index].clone(),
                        Some(loc.block),
                        Some(loc.index),
                    )
                })
            }),
        },
    };
    let Some((tx, in_block, index)) = found else {
        return Err(RpcError::new(
            code::INVALID_ADDRESS_OR_KEY,
            "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.",
        ));
    };
    if verbosity <= 0 {
        return Ok(json!(serialize_hex(&tx)));
    }
    let entry = in_block.and_then(|h| state.chain.entry(&h));
    let fee = match (verbosity >= 2, entry, index) {
        (true, Some(e), Some(i)) => e.tx_fees().and_then(|f| f.get(i).copied().flatten()),
        _ => None,
    };
    let mut obj = tx_json(&tx, true, fee);
    if let (Value::Object(o), Some(e)) = (&mut obj, entry) {
        if block_hash.is_some() {
            o.insert(
                "in_active_chain".into(),
                json!(state.chain.is_active(&e.hash)),
            );
        }
        o.insert("blockhash".into(), json!(e.hash.to_string()));
        if state.chain.is_active(&e.hash) {
            o.insert(
                "confirmations".into(),
                json!(state.chain.height() - e.height + 1),
            );
            o.insert("time".into(), json!(e.block.header.time));
            o.insert("blocktime".into(), json!(e.block.header.time));
        } else {
            o.insert("confirmations".into(), json!(0));
        }
    }
    Ok(obj)
}

fn gettxout(node: &Node, args: Args) -> Result<Value, RpcError> {
    let txid: Txid = args.hash(0)?;
    let vout = u32::try_from(args.i64(1)?).map_err(|_| {
        RpcError::new(
            code::INVALID_PARAMETER,
            "Invalid parameter, vout cannot be negative",
        )
    })?;
    let include_mempool = args.opt_bool(2, true)?;
    let op = OutPoint { txid, vout };
    let state = node.lock();
    let tip = state.chain.tip();
    let (out, confirmations, coinbase) = if include_mempool {
        if state.mempool.spender(&op).is_some() {
            return Ok(Value::Null);
        }
        match state.mempool.get(&txid) {
            Some(e) => match e.tx.output.get(vout as usize) {
                Some(o) => (o.clone(), 0, false),
                None => return Ok(Value::Null),
            },
            None => match state.chain.coin(&op) {
                Some(c) => (c.output.clone(), tip.height - c.height + 1, c.is_coinbase),
                None => return Ok(Value::Null),
            },
        }
    } else {
        match state.chain.coin(&op) {
            Some(c) => (c.output.clone(), tip.height - c.height + 1, c.is_coinbase),
            None => return Ok(Value::Null),
        }
    };
    Ok(json!({
        "bestblock": tip.hash.to_string(),
        "confirmations": confirmations,
        "value": btc(out.value),
        "scriptPubKey": script_pubkey_json(&out.script_pubkey),
        "coinbase": coinbase,
    }))
}

fn testmempoolaccept(node: &Node, args: Args) -> Result<Value, RpcError> {
    let raw = args.array(0)?;
    if raw.is_empty() || raw.len() > 25 {
        return Err(RpcError::new(
            code::INVALID_PARAMETER,
            "Array must contain between 1 and 25 transactions.",
        ));
    }
    let max_rate = max_fee_rate(&args, 1)?;
    let txs = raw
        .iter()
        .map(|v| match v.as_str() {
            Some(s) => decode_tx(s, "TX decode failed"),
            None => Err(RpcError::new(
                code::TYPE_ERROR,
                "JSON value of type non-string is not of expected type string",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut guard = node.lock();
    let state = &mut *guard;
    // Several transactions are checked as a chain: each sees the ones before it.
    let mut scratch = if txs.len() > 1 {
        Some(state.mempool.clone())
    } else {
        None
    };
    let mut results = Vec::new();
    for tx in txs {
        let txid = tx.compute_txid();
        let wtxid = tx.compute_wtxid();
        let opts = crate::mempool::AcceptOptions {
            test_only: scratch.is_none(),
            bypass_fee_checks: false,
            now: unix_now(),
            max_fee_rate: Some(max_rate),
        };
        let outcome = match &mut scratch {
            Some(pool) => pool.accept(&state.chain, tx, opts),
            None => state.mempool.accept(&state.chain, tx, opts),
        };
        results.push(match outcome {
            Ok(acc) => json!({
                "txid": txid.to_string(),
                "wtxid": wtxid.to_string(),
                "allowed": true,
                "vsize": acc.vsize,
                "fees": {
                    "base": btc(acc.fee),
                    "effective-feerate": btc(params::fee_for_vsize(acc.fee.to_sat() * 1000 / acc.vsize.max(1), 1000)),
                    "effective-includes": [wtxid.to_string()],
                },
            }),
            Err(reject) => json!({
                "txid": txid.to_string(),
                "wtxid": wtxid.to_string(),
                "allowed": false,
                "reject-reason": reject.reject_reason(),
            }),
        });
    }
    Ok(Value::Array(results))
}

fn sendrawtransaction(node: &Node, args: Args) -> Result<Value, RpcError> {
    let tx = decode_tx(args.str(0)?, "TX decode failed")?;
    let max_rate = max_fee_rate(&args, 1)?;
    let max_burn = match args.get(2) {
        Some(v) => amount_from_value(v)?,
        None => Amount::ZERO,
    };
    if tx
        .output
        .iter()
        .any(|o| o.script_pubkey.is_op_return() && o.value > max_burn)
    {
        return Err(RpcError::new(
            code::VERIFY_ERROR,
            "Unspendable output exceeds maximum configured by user (maxburnamount)",
        ));
    }
    let txid = tx.compute_txid();
    let mut guard = node.lock();
    let state = &mut *guard;
    if (0..tx.output.len() as u32).any(|vout| state.chain.coin(&OutPoint { txid, vout }).is_some())
    {
        return Err(RpcError::new(
            code::VERIFY_ALREADY_IN_CHAIN,
            "Transaction outputs already in utxo set",
        ));
    }
    if state.mempool.get(&txid).is_some() {
        return Ok(json!(txid.to_string()));
    }
    let now = unix_now();
    let opts = crate::mempool::AcceptOptions {
        test_only: false,
        bypass_fee_checks: false,
        now,
        max_fee_rate: Some(max_rate),
    };
    state
        .mempool
        .accept(&state.chain, tx, opts)
        .map_err(|r| match r.reason {
            RejectReason::MissingInputs => RpcError::new(code::VERIFY_ERROR, r.core_message()),
            RejectReason::MaxFeeExceeded => RpcError::new(
                code::VERIFY_ERROR,
                "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
            ),
            _ => RpcError::new(code::VERIFY_REJECTED, r.core_message()),
        })?;
    Ok(json!(txid.to_string()))
}

fn generateblock(node: &Node, args: Args) -> Result<Value, RpcError> {
    let output = args.str(0)?;
    let script = parse_address(output, "Error: Invalid address or descriptor")?;
    let raw = args.array(1)?;
    let submit = args.opt_bool(2, true)?;
    let mut txs = Vec::with_capacity(raw.len());
    {
        let state = node.lock();
        for v in raw {
            let s = v
                .as_str()
                .ok_or_else(|| RpcError::new(code::TYPE_ERROR, "Expected array of strings"))?;
            if let Ok(txid) = parse_hash::<Txid>(s, "txid") {
                let e = state.mempool.get(&txid).ok_or_else(|| {
                    RpcError::new(
                        code::INVALID_ADDRESS_OR_KEY,
                        format!("Transaction {s} not in mempool."),
                    )
                })?;
                txs.push((*e.tx).clone());
            } else {
                let tx = decode_tx(s, &format!("Transaction decode failed for {s}"))?;
                txs.push(tx);
            }
        }
    }
    if !submit {
        let block = node.build_block(txs, &script, None);
        return Ok(json!({"hash": block.block_hash().to_string(), "hex": serialize_hex(&block)}));
    }
    let hash = node.mine_block_with(txs, &script, None).map_err(internal)?;
    Ok(json!({"hash": hash.to_string()}))
}
