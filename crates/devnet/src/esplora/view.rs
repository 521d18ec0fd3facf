//! Esplora's JSON shapes (electrs `rest.rs`, as mempool.space serves them): transactions with
//! their prevouts, fee and status, blocks, and output scripts.

use bitcoin::{Address, Amount, Network, OutPoint, Script, Transaction, TxOut, Txid};
use serde_json::{json, Map, Value};

use crate::chain::BlockEntry;
use crate::node::NodeState;

/// Where a transaction is: confirmed in an active block, or in the mempool.
#[derive(Debug, Clone, Copy)]
pub enum Status<'a> {
    /// In this active block.
    Confirmed(&'a BlockEntry),
    /// In the mempool.
    Unconfirmed,
}

impl Status<'_> {
    /// `{confirmed, block_height, block_hash, block_time}` (only `confirmed` when unconfirmed).
    pub fn to_json(self) -> Value {
        match self {
            Status::Confirmed(e) => json!({
                "confirmed": true,
                "block_height": e.height,
                "block_hash": e.hash.to_string(),
                "block_time": e.block.header.time,
            }),
            Status::Unconfirmed => json!({"confirmed": false}),
        }
    }
}

/// A transaction the devnet knows (active chain or mempool), with where it is.
pub fn find_tx<'a>(state: &'a NodeState, txid: &Txid) -> Option<(&'a Transaction, Status<'a>)> {
    if let Some(loc) = state.chain.tx_location(txid) {
        let entry = state.chain.entry(&loc.block)?;
        let tx = entry.block.txdata.get(loc.index)?;
        return Some((tx, Status::Confirmed(entry)));
    }
    state
        .mempool
        .get(txid)
        .map(|e| (e.tx.as_ref(), Status::Unconfirmed))
}

/// The output `outpoint` refers to, spent or not, confirmed or in the mempool.
pub fn find_output<'a>(state: &'a NodeState, outpoint: &OutPoint) -> Option<&'a TxOut> {
    find_tx(state, &outpoint.txid).and_then(|(tx, _)| tx.output.get(outpoint.vout as usize))
}

/// Esplora's script type names.
pub fn script_type(script: &Script) -> &'static str {
    if script.is_empty() {
        "empty"
    } else if script.is_op_return() {
        "op_return"
    } else if script.is_p2pk() {
        "p2pk"
    } else if script.is_p2pkh() {
        "p2pkh"
    } else if script.is_p2sh() {
        "p2sh"
    } else if script.is_p2wpkh() {
        "v0_p2wpkh"
    } else if script.is_p2wsh() {
        "v0_p2wsh"
    } else if script.is_p2tr() {
        "v1_p2tr"
    } else if script.is_multisig() {
        "multisig"
    } else {
        "unknown"
    }
}

/// An output as Esplora shows it (`vout[]` and `vin[].prevout`); addresses in the devnet's
/// own (regtest, `bcrt1…`) spelling.
pub fn output_json(out: &TxOut) -> Value {
    let mut o = Map::new();
    o.insert(
        "scriptpubkey".into(),
        json!(hex::encode(out.script_pubkey.as_bytes())),
    );
    o.insert(
        "scriptpubkey_asm".into(),
        json!(out.script_pubkey.to_asm_string()),
    );
    o.insert(
        "scriptpubkey_type".into(),
        json!(script_type(&out.script_pubkey)),
    );
    if let Ok(addr) = Address::from_script(&out.script_pubkey, Network::Regtest) {
        o.insert("scriptpubkey_address".into(), json!(addr.to_string()));
    }
    o.insert("value".into(), json!(out.value.to_sat()));
    Value::Object(o)
}

/// Esplora's transaction JSON: inputs with their prevouts, outputs, size, weight, fee, status.
pub fn tx_json(state: &NodeState, tx: &Transaction, status: Status<'_>) -> Value {
    let coinbase = tx.is_coinbase();
    let mut value_in = Amount::ZERO;
    let vin: Vec<Value> = tx
        .input
        .iter()
        .map(|i| {
            let prevout = (!coinbase)
                .then(|| find_output(state, &i.previous_output))
                .flatten();
            if let Some(p) = prevout {
                value_in += p.value;
            }
            let mut o = Map::new();
            o.insert("txid".into(), json!(i.previous_output.txid.to_string()));
            o.insert("vout".into(), json!(i.previous_output.vout));
            o.insert("prevout".into(), prevout.map_or(Value::Null, output_json));
            o.insert(
                "scriptsig".into(),
                json!(hex::encode(i.script_sig.as_bytes())),
            );
            o.insert("scriptsig_asm".into(), json!(i.script_sig.to_asm_string()));
            if !i.witness.is_empty() {
                let items: Vec<String> = i.witness.iter().map(hex::encode).collect();
                o.insert("witness".into(), json!(items));
            }
            o.insert("is_coinbase".into(), json!(coinbase));
            o.insert("sequence".into(), json!(i.sequence.to_consensus_u32()));
            Value::Object(o)
        })
        .collect();
    let value_out: Amount = tx.output.iter().map(|o| o.value).sum();
    let fee = if coinbase {
        Amount::ZERO
    } else {
        value_in.checked_sub(value_out).unwrap_or(Amount::ZERO)
    };
    json!({
        "txid": tx.compute_txid().to_string(),
        "version": tx.version.0,
        "locktime": tx.lock_time.to_consensus_u32(),
        "vin": vin,
        "vout": tx.output.iter().map(output_json).collect::<Vec<_>>(),
        "size": tx.total_size(),
        "weight": tx.weight().to_wu(),
        "fee": fee.to_sat(),
        "status": status.to_json(),
    })
}

/// Esplora's block JSON (`GET block/{hash}`, `GET blocks`).
pub fn block_json(state: &NodeState, entry: &BlockEntry) -> Value {
    let header = &entry.block.header;
    let mut o = Map::new();
    o.insert("id".into(), json!(entry.hash.to_string()));
    o.insert("height".into(), json!(entry.height));
    o.insert("version".into(), json!(header.version.to_consensus()));
    o.insert("timestamp".into(), json!(header.time));
    o.insert("tx_count".into(), json!(entry.block.txdata.len()));
    o.insert("size".into(), json!(entry.block.total_size()));
    o.insert("weight".into(), json!(entry.block.weight().to_wu()));
    o.insert("merkle_root".into(), json!(header.merkle_root.to_string()));
    o.insert(
        "previousblockhash".into(),
        if entry.height == 0 {
            Value::Null
        } else {
            json!(header.prev_blockhash.to_string())
        },
    );
    o.insert(
        "mediantime".into(),
        json!(state.chain.median_time_past(&entry.hash)),
    );
    o.insert("nonce".into(), json!(header.nonce));
    o.insert("bits".into(), json!(header.bits.to_consensus()));
    o.insert("difficulty".into(), json!(header.difficulty_float()));
    Value::Object(o)
}

/// `GET block/{hash}/status`.
pub fn block_status_json(state: &NodeState, entry: &BlockEntry) -> Value {
    if state.chain.is_active(&entry.hash) {
        let next = state.chain.hash_at(entry.height + 1);
        json!({
            "in_best_chain": true,
            "height": entry.height,
            "next_best": next.map(|h| h.to_string()),
        })
    } else {
        json!({"in_best_chain": false})
    }
}
