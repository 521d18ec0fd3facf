//! Bitcoin Core's JSON shapes for transactions, blocks, headers, scripts and mempool entries.

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::opcodes::Opcode;
use bitcoin::script::Instruction;
use bitcoin::{Address, Amount, Network, Script, Transaction};
use serde_json::{json, Map, Value};

use crate::chain::{BlockEntry, ChainState};
use crate::mempool::{Mempool, MempoolEntry};
use crate::params;

/// An amount as Core prints it: a BTC number.
pub fn btc(amount: Amount) -> Value {
    json!(amount.to_btc())
}

/// Core's `ScriptToAsmStr` (without sighash decoding): small pushes as numbers, larger as hex.
pub fn asm(script: &Script) -> String {
    let mut parts = Vec::new();
    for ins in script.instructions() {
        match ins {
            Ok(Instruction::PushBytes(b)) => {
                let bytes = b.as_bytes();
                if bytes.len() <= 4 {
                    parts.push(script_num(bytes).to_string());
                } else {
                    parts.push(hex::encode(bytes));
                }
            }
            Ok(Instruction::Op(op)) => parts.push(op_name(op)),
            Err(_) => {
                parts.push("[error]".to_owned());
                break;
            }
        }
    }
    parts.join(" ")
}

fn script_num(bytes: &[u8]) -> i64 {
    let Some((&last, _)) = bytes.split_last() else {
        return 0;
    };
    let mut v: i64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        v |= i64::from(*b) << (8 * i);
    }
    if last & 0x80 != 0 {
        -(v & !(0x80_i64 << (8 * (bytes.len() - 1))))
    } else {
        v
    }
}

fn op_name(op: Opcode) -> String {
    use bitcoin::opcodes::all::*;
    let b = op.to_u8();
    if b == OP_PUSHBYTES_0.to_u8() {
        return "0".to_owned();
    }
    if b == OP_PUSHNUM_NEG1.to_u8() {
        return "-1".to_owned();
    }
    if (OP_PUSHNUM_1.to_u8()..=OP_PUSHNUM_16.to_u8()).contains(&b) {
        return (b - OP_PUSHNUM_1.to_u8() + 1).to_string();
    }
    if op == OP_CLTV {
        return "OP_CHECKLOCKTIMEVERIFY".to_owned();
    }
    if op == OP_CSV {
        return "OP_CHECKSEQUENCEVERIFY".to_owned();
    }
    let name = op.to_string();
    if name.starts_with("OP_RETURN_") {
        "OP_UNKNOWN".to_owned()
    } else {
        name
    }
}

/// Core's output type name.
pub fn script_type(script: &Script) -> &'static str {
    if script.is_p2pkh() {
        "pubkeyhash"
    } else if script.is_p2sh() {
        "scripthash"
    } else if script.is_p2wpkh() {
        "witness_v0_keyhash"
    } else if script.is_p2wsh() {
        "witness_v0_scripthash"
    } else if script.is_p2tr() {
        "witness_v1_taproot"
    } else if script.is_witness_program() {
        "witness_unknown"
    } else if script.is_p2pk() {
        "pubkey"
    } else if script.is_multisig() {
        "multisig"
    } else if script.is_op_return() {
        "nulldata"
    } else {
        "nonstandard"
    }
}

/// `scriptPubKey` object: asm, hex, type and (when it has one) address.
pub fn script_pubkey_json(script: &Script) -> Value {
    let mut o = Map::new();
    o.insert("asm".into(), json!(asm(script)));
    o.insert("hex".into(), json!(hex::encode(script.as_bytes())));
    if let Ok(addr) = Address::from_script(script, Network::Regtest) {
        o.insert("address".into(), json!(addr.to_string()));
    }
    o.insert("type".into(), json!(script_type(script)));
    Value::Object(o)
}

/// Core's `TxToUniv`: decoded transaction (with `hex` when asked, and `fee` when known).
pub fn tx_json(tx: &Transaction, include_hex: bool, fee: Option<Amount>) -> Value {
    let vin: Vec<Value> = tx
        .input
        .iter()
        .map(|i| {
            let mut o = Map::new();
            if tx.is_coinbase() {
                o.insert(
                    "coinbase".into(),
                    json!(hex::encode(i.script_sig.as_bytes())),
                );
            } else {
                o.insert("txid".into(), json!(i.previous_output.txid.to_string()));
                o.insert("vout".into(), json!(i.previous_output.vout));
                o.insert(
                    "scriptSig".into(),
                    json!({"asm": asm(&i.script_sig), "hex": hex::encode(i.script_sig.as_bytes())}),
                );
            }
            if !i.witness.is_empty() {
                o.insert(
                    "txinwitness".into(),
                    json!(i.witness.iter().map(hex::encode).collect::<Vec<_>>()),
                );
            }
            o.insert("sequence".into(), json!(i.sequence.to_consensus_u32()));
            Value::Object(o)
        })
        .collect();
    let vout: Vec<Value> = tx
        .output
        .iter()
        .enumerate()
        .map(|(n, o)| json!({"value": btc(o.value), "n": n, "scriptPubKey": script_pubkey_json(&o.script_pubkey)}))
        .collect();
    let mut o = Map::new();
    o.insert("txid".into(), json!(tx.compute_txid().to_string()));
    o.insert("hash".into(), json!(tx.compute_wtxid().to_string()));
    o.insert("version".into(), json!(tx.version.0));
    o.insert("size".into(), json!(tx.total_size()));
    o.insert("vsize".into(), json!(tx.vsize()));
    o.insert("weight".into(), json!(tx.weight().to_wu()));
    o.insert("locktime".into(), json!(tx.lock_time.to_consensus_u32()));
    o.insert("vin".into(), Value::Array(vin));
    o.insert("vout".into(), Value::Array(vout));
    if let Some(fee) = fee {
        o.insert("fee".into(), btc(fee));
    }
    if include_hex {
        o.insert("hex".into(), json!(serialize_hex(tx)));
    }
    Value::Object(o)
}

/// Chain work up to `height` on regtest (2 per block), as 64 hex digits.
pub fn chainwork(height: u32) -> String {
    format!("{:064x}", 2 * (u128::from(height) + 1))
}

/// Core's `blockheaderToJSON`.
pub fn header_json(chain: &ChainState, entry: &BlockEntry) -> Value {
    let h = &entry.block.header;
    let active = chain.is_active(&entry.hash);
    let mut o = Map::new();
    o.insert("hash".into(), json!(entry.hash.to_string()));
    o.insert(
        "confirmations".into(),
        json!(if active {
            i64::from(chain.height()) - i64::from(entry.height) + 1
        } else {
            -1
        }),
    );
    o.insert("height".into(), json!(entry.height));
    o.insert("version".into(), json!(h.version.to_consensus()));
    o.insert(
        "versionHex".into(),
        json!(format!("{:08x}", h.version.to_consensus())),
    );
    o.insert("merkleroot".into(), json!(h.merkle_root.to_string()));
    o.insert("time".into(), json!(h.time));
    o.insert(
        "mediantime".into(),
        json!(chain.median_time_past(&entry.hash)),
    );
    o.insert("nonce".into(), json!(h.nonce));
    o.insert(
        "bits".into(),
        json!(format!("{:08x}", h.bits.to_consensus())),
    );
    o.insert("difficulty".into(), json!(params::difficulty(h.bits)));
    o.insert("chainwork".into(), json!(chainwork(entry.height)));
    o.insert("nTx".into(), json!(entry.block.txdata.len()));
    if entry.height > 0 {
        o.insert(
            "previousblockhash".into(),
            json!(h.prev_blockhash.to_string()),
        );
    }
    if active {
        if let Some(next) = chain.hash_at(entry.height + 1) {
            o.insert("nextblockhash".into(), json!(next.to_string()));
        }
    }
    Value::Object(o)
}

/// Core's `blockToJSON` for verbosity 1 (txids) and 2 (decoded transactions with fees).
pub fn block_json(chain: &ChainState, entry: &BlockEntry, verbosity: i64) -> Value {
    let mut o = match header_json(chain, entry) {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    let block = &entry.block;
    let stripped: usize = 80
        + bitcoin::VarInt(block.txdata.len() as u64).size()
        + block
            .txdata
            .iter()
            .map(Transaction::base_size)
            .sum::<usize>();
    o.insert("strippedsize".into(), json!(stripped));
    o.insert("size".into(), json!(block.total_size()));
    o.insert("weight".into(), json!(block.weight().to_wu()));
    let txs: Vec<Value> = if verbosity >= 2 {
        let fees = entry.tx_fees();
        block
            .txdata
            .iter()
            .enumerate()
            .map(|(i, tx)| {
                tx_json(
                    tx,
                    true,
                    fees.as_ref().and_then(|f| f.get(i).copied().flatten()),
                )
            })
            .collect()
    } else {
        block
            .txdata
            .iter()
            .map(|t| json!(t.compute_txid().to_string()))
            .collect()
    };
    o.insert("tx".into(), Value::Array(txs));
    Value::Object(o)
}

/// Core's mempool entry object (`getmempoolentry`, `getrawmempool true`).
pub fn mempool_entry_json(pool: &Mempool, e: &MempoolEntry) -> Value {
    let ancestors = pool.ancestors(&e.txid);
    let descendants = pool.descendants(&e.txid);
    let sum = |set: &std::collections::HashSet<bitcoin::Txid>| {
        set.iter()
            .filter_map(|t| pool.get(t))
            .fold((e.vsize, e.fee), |(s, f), x| (s + x.vsize, f + x.fee))
    };
    let (anc_size, anc_fee) = sum(&ancestors);
    let (desc_size, desc_fee) = sum(&descendants);
    let rbf = e.signals_rbf()
        || ancestors
            .iter()
            .filter_map(|t| pool.get(t))
            .any(MempoolEntry::signals_rbf);
    json!({
        "vsize": e.vsize,
        "weight": e.weight,
        "time": e.time,
        "height": e.height,
        "descendantcount": descendants.len() + 1,
        "descendantsize": desc_size,
        "ancestorcount": ancestors.len() + 1,
        "ancestorsize": anc_size,
        "wtxid": e.wtxid.to_string(),
        "fees": {
            "base": btc(e.fee),
            "modified": btc(e.fee),
            "ancestor": btc(anc_fee),
            "descendant": btc(desc_fee),
        },
        "depends": pool.parents(&e.txid).iter().map(ToString::to_string).collect::<Vec<_>>(),
        "spentby": pool.children(&e.txid).iter().map(ToString::to_string).collect::<Vec<_>>(),
        "bip125-replaceable": rbf,
        "unbroadcast": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asm_prints_small_pushes_as_numbers_and_names_csv_like_core() {
        let script = bitcoin::script::Builder::new()
            .push_int(150)
            .push_opcode(bitcoin::opcodes::all::OP_CSV)
            .push_opcode(bitcoin::opcodes::all::OP_DROP)
            .push_slice([7u8; 20])
            .push_int(1)
            .into_script();
        assert_eq!(
            asm(&script),
            format!("150 OP_CHECKSEQUENCEVERIFY OP_DROP {} 1", "07".repeat(20))
        );
    }

    proptest::proptest! {
        #[test]
        fn asm_prints_any_pushed_script_number_back_as_the_same_number(n in -0x7fff_ffff_i64..=0x7fff_ffff_i64) {
            let script = bitcoin::script::Builder::new().push_int(n).into_script();
            proptest::prop_assert_eq!(asm(&script), n.to_string());
        }
    }

    #[test]
    fn chainwork_grows_by_two_per_regtest_block() {
        assert_eq!(chainwork(0), format!("{:064x}", 2));
        assert_eq!(chainwork(1), format!("{:064x}", 4));
    }
}
