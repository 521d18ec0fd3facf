//! `scantxoutset`: find the unspent outputs of addresses or raw scripts without a wallet, as
//! Bitcoin Core 26 answers it. The staker CLI funds its staking tx from these.
//!
//! Supported scan objects: `addr(ADDRESS)` and `raw(HEX)` descriptors, as strings or as
//! `{"desc": …}` objects, with or without a `#checksum` (checked when present, as Core does).
//! Key descriptors (`pkh`, `wpkh`, `tr`, …) and ranges are refused with a clear error: the
//! devnet has no descriptor engine. The scan is instant, so `status` always answers `null` and
//! `abort` `false` (no scan in progress), as Core does between scans.

use bitcoin::{Address, Network, OutPoint, ScriptBuf};
use serde_json::{json, Value};

use super::args::Args;
use super::json::btc;
use super::{code, RpcError};
use crate::node::Node;

/// Runs `scantxoutset action [scanobjects]`.
pub fn scantxoutset(node: &Node, args: &Args) -> Result<Value, RpcError> {
    let action = args.str(0)?;
    match action {
        "status" => Ok(Value::Null),
        "abort" => Ok(json!(false)),
        "start" => {
            if args.get(1).is_none() {
                return Err(RpcError::new(
                    code::MISC_ERROR,
                    "scanobjects argument is required for the start action",
                ));
            }
            let scripts = args
                .array(1)?
                .iter()
                .map(scan_object)
                .collect::<Result<Vec<ScriptBuf>, RpcError>>()?;
            Ok(scan(node, &scripts))
        }
        other => Err(RpcError::new(
            code::INVALID_PARAMETER,
            format!("Invalid action '{other}'"),
        )),
    }
}

/// The unspent outputs paying one of `scripts`, in Core's order (by outpoint).
fn scan(node: &Node, scripts: &[ScriptBuf]) -> Value {
    let state = node.lock();
    let chain = &state.chain;
    let tip = chain.tip();
    let mut found: Vec<(&OutPoint, &crate::coins::Coin)> = chain
        .utxos()
        .filter(|(_, coin)| scripts.contains(&coin.output.script_pubkey))
        .collect();
    found.sort_by_key(|(outpoint, _)| **outpoint);
    let total: bitcoin::Amount = found.iter().map(|(_, c)| c.output.value).sum();
    let unspents: Vec<Value> = found
        .iter()
        .map(|(outpoint, coin)| {
            json!({
                "txid": outpoint.txid.to_string(),
                "vout": outpoint.vout,
                "scriptPubKey": hex::encode(coin.output.script_pubkey.as_bytes()),
                "desc": inferred_descriptor(&coin.output.script_pubkey),
                "amount": btc(coin.output.value),
                "coinbase": coin.is_coinbase,
                "height": coin.height,
            })
        })
        .collect();
    json!({
        "success": true,
        "txouts": chain.utxo_count(),
        "height": tip.height,
        "bestblock": tip.hash.to_string(),
        "unspents": unspents,
        "total_amount": btc(total),
    })
}

/// One scan object: a descriptor string or `{"desc": …, "range": …}`.
fn scan_object(object: &Value) -> Result<ScriptBuf, RpcError> {
    let desc = match object {
        Value::String(s) => s.as_str(),
        Value::Object(o) => match o.get("desc") {
            Some(Value::String(s)) => s.as_str(),
            _ => {
                return Err(RpcError::new(
                    code::INVALID_PARAMETER,
                    "Invalid scan object: missing desc",
                ))
            }
        },
        _ => {
            return Err(RpcError::new(
                code::INVALID_ADDRESS_OR_KEY,
                "Invalid scan object",
            ))
        }
    };
    parse_descriptor(desc)
}

/// `addr(…)` or `raw(…)`, checking a given checksum.
fn parse_descriptor(text: &str) -> Result<ScriptBuf, RpcError> {
    let invalid = |message: String| RpcError::new(code::INVALID_ADDRESS_OR_KEY, message);
    let body = match text.split_once('#') {
        None => text,
        Some((body, given)) => {
            let computed = checksum(body)
                .ok_or_else(|| invalid(format!("Invalid characters in payload in '{body}'")))?;
            if given != computed {
                return Err(invalid(format!(
                    "Provided checksum '{given}' does not match computed checksum '{computed}'"
                )));
            }
            body
        }
    };
    if let Some(address) = body.strip_prefix("addr(").and_then(|r| r.strip_suffix(')')) {
        return address
            .parse::<Address<_>>()
            .ok()
            .and_then(|a| a.require_network(Network::Regtest).ok())
            .map(|a| a.script_pubkey())
            .ok_or_else(|| invalid(format!("Address is not valid: '{address}'")));
    }
    if let Some(raw) = body.strip_prefix("raw(").and_then(|r| r.strip_suffix(')')) {
        return hex::decode(raw)
            .map(ScriptBuf::from_bytes)
            .map_err(|_| invalid(format!("Raw script is not hex: '{raw}'")));
    }
    Err(invalid(format!(
        "'{body}': the devnet's scantxoutset supports only addr(ADDRESS) and raw(HEX) descriptors"
    )))
}

/// The descriptor Core infers for an output whose keys it does not know: `rawtr(KEY)` for
/// taproot, `addr(ADDRESS)` for other standard outputs, `raw(HEX)` otherwise; with checksum.
fn inferred_descriptor(script: &ScriptBuf) -> String {
    let body = if script.is_p2tr() {
        format!("rawtr({})", hex::encode(&script.as_bytes()[2..]))
    } else {
        match Address::from_script(script, Network::Regtest) {
            Ok(address) => format!("addr({address})"),
            Err(_) => format!("raw({})", hex::encode(script.as_bytes())),
        }
    };
    match checksum(&body) {
        Some(sum) => format!("{body}#{sum}"),
        None => body,
    }
}

const INPUT_CHARSET: &[u8] =
    b"0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
const CHECKSUM_CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn polymod(c: u64, value: u64) -> u64 {
    let c0 = c >> 35;
    let mut c = ((c & 0x7_ffff_ffff) << 5) ^ value;
    for (bit, generator) in [
        0xf5_dee5_1989,
        0xa9_fdca_3312,
        0x1b_ab10_e32d,
        0x37_06b1_677a,
        0x64_4d62_6ffd,
    ]
    .into_iter()
    .enumerate()
    {
        if c0 & (1 << bit) != 0 {
            c ^= generator;
        }
    }
    c
}

/// The BIP380 descriptor checksum; `None` for characters outside the descriptor charset.
pub fn checksum(descriptor: &str) -> Option<String> {
    let mut c = 1u64;
    let mut class = 0u64;
    let mut count = 0;
    for ch in descriptor.bytes() {
        let pos = INPUT_CHARSET.iter().position(|&x| x == ch)? as u64;
        c = polymod(c, pos & 31);
        class = class * 3 + (pos >> 5);
        count += 1;
        if count == 3 {
            c = polymod(c, class);
            class = 0;
            count = 0;
        }
    }
    if count > 0 {
        c = polymod(c, class);
    }
    for _ in 0..8 {
        c = polymod(c, 0);
    }
    c ^= 1;
    Some(
        (0..8)
            .map(|j| char::from(CHECKSUM_CHARSET[((c >> (5 * (7 - j))) & 31) as usize]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_the_bip380_vectors() {
        assert_eq!(checksum("raw(deadbeef)").as_deref(), Some("89f8spxm"));
        assert_eq!(
            checksum("addr(mkmZxiEcEd8ZqjQWVZuC6so5dFMKEFpN2j)").as_deref(),
            Some("02wpgw69")
        );
    }

    #[test]
    fn a_wrong_checksum_is_refused_with_both_values() {
        let err = parse_descriptor("raw(deadbeef)#89f8spxn").unwrap_err();
        assert_eq!(err.code, code::INVALID_ADDRESS_OR_KEY);
        assert_eq!(
            err.message,
            "Provided checksum '89f8spxn' does not match computed checksum '89f8spxm'"
        );
    }

    #[test]
    fn start_finds_an_address_outputs_in_cores_shape_and_ignores_others() {
        let node = Node::in_memory();
        let wallet = crate::wallet::Wallet::from_seed(b"scan test");
        let txid = node
            .faucet(
                wallet.script_pubkey(),
                bitcoin::Amount::from_sat(123_456),
                true,
            )
            .unwrap();
        let call = |params: Value| crate::rpc::methods::call(&node, "scantxoutset", params);
        let result = call(json!(["start", [format!("addr({})", wallet.address())]])).unwrap();
        assert_eq!(result["success"], true);
        assert_eq!(result["height"], node.tip().height);
        assert_eq!(result["bestblock"], node.tip().hash.to_string());
        let unspents = result["unspents"].as_array().unwrap();
        assert_eq!(unspents.len(), 1, "{result}");
        let u = &unspents[0];
        assert_eq!(u["txid"], txid.to_string());
        assert_eq!(u["amount"], 0.00123456);
        assert_eq!(u["coinbase"], false);
        assert_eq!(u["height"], node.tip().height);
        assert_eq!(
            u["scriptPubKey"],
            hex::encode(wallet.script_pubkey().as_bytes())
        );
        let desc = u["desc"].as_str().unwrap();
        assert!(desc.starts_with("rawtr("), "{desc}");
        assert_eq!(result["total_amount"], 0.00123456);
        // A raw() descriptor of the same script finds the same output; an unrelated one nothing.
        let raw = format!("raw({})", hex::encode(wallet.script_pubkey().as_bytes()));
        let by_raw = call(json!(["start", [{ "desc": raw }]])).unwrap();
        assert_eq!(by_raw["unspents"], result["unspents"]);
        let other = crate::wallet::Wallet::from_seed(b"nobody");
        let none = call(json!(["start", [format!("addr({})", other.address())]])).unwrap();
        assert_eq!(none["unspents"], json!([]));
        assert_eq!(none["total_amount"], 0.0);
        // Core's answers outside a scan, and its errors.
        assert_eq!(call(json!(["status"])).unwrap(), Value::Null);
        assert_eq!(call(json!(["abort"])).unwrap(), json!(false));
        let err = call(json!(["start"])).unwrap_err();
        assert_eq!(
            err.message,
            "scanobjects argument is required for the start action"
        );
        let err = call(json!(["begin", []])).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (code::INVALID_PARAMETER, "Invalid action 'begin'")
        );
    }

    #[test]
    fn key_descriptors_are_refused_naming_what_is_supported() {
        let err = parse_descriptor("wpkh(02aa)").unwrap_err();
        assert!(
            err.message.contains("addr(ADDRESS) and raw(HEX)"),
            "{err:?}"
        );
    }
}
