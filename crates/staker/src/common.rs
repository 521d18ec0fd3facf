//! What every command shares: params sources, networks, keys and output.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::Value;
use staking_core::bitcoin::secp256k1::XOnlyPublicKey;
use staking_core::bitcoin::Network;
use staking_core::params::{GlobalParams, ParamsError, ParamsWarning};
use staking_core::presets::Preset;

/// Where params come from: a shipped preset or a file.
#[derive(Debug, Clone)]
pub enum ParamsSource {
    Preset(Preset),
    File(PathBuf),
}

impl ParamsSource {
    /// A preset name wins over a file of the same name (write `./bbn-1` for the file).
    pub fn parse(arg: &str) -> Self {
        match arg.parse::<Preset>() {
            Ok(preset) => Self::Preset(preset),
            Err(_) => Self::File(PathBuf::from(arg)),
        }
    }

    /// What to call it in messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Preset(p) => format!("preset {p}"),
            Self::File(path) => format!("params file {}", path.display()),
        }
    }

    /// The network the params were made for, if known.
    pub fn network(&self) -> Option<Network> {
        match self {
            Self::Preset(p) => Some(p.network()),
            Self::File(_) => None,
        }
    }

    /// Reads the JSON text.
    pub fn read(&self) -> Result<String> {
        match self {
            Self::Preset(p) => Ok(p.json().to_owned()),
            Self::File(path) => std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read params file {} (give a readable file, or a preset: bbn-test-4, bbn-1)",
                    path.display()
                )
            }),
        }
    }

    /// Reads and validates. The outer error is the parse result, so `params check` can print
    /// the reference's exact text.
    pub fn load(&self) -> Result<Result<(GlobalParams, Vec<ParamsWarning>), ParamsError>> {
        Ok(GlobalParams::from_json(&self.read()?))
    }

    /// Reads and validates; an invalid file is an error naming the source.
    pub fn load_valid(&self) -> Result<GlobalParams> {
        let (params, warnings) = self.load()?.map_err(|e| {
            crate::exit::refused(format!(
                "{} is invalid (run `staker params check` on it): {e}",
                self.describe()
            ))
        })?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        Ok(params)
    }
}

/// `mainnet` (or `bitcoin`), `testnet`, `testnet4`, `signet`, `regtest`.
pub fn parse_network(arg: &str) -> Result<Network, String> {
    match arg {
        "mainnet" | "bitcoin" => Ok(Network::Bitcoin),
        "testnet" | "testnet3" => Ok(Network::Testnet),
        "testnet4" => Ok(Network::Testnet4),
        "signet" => Ok(Network::Signet),
        "regtest" => Ok(Network::Regtest),
        other => Err(format!(
            "unknown network `{other}` (use mainnet, testnet, testnet4, signet or regtest)"
        )),
    }
}

/// The name `--network` accepts for `network`.
pub fn network_name(network: Network) -> &'static str {
    match network {
        Network::Bitcoin => "mainnet",
        Network::Testnet => "testnet",
        Network::Testnet4 => "testnet4",
        Network::Signet => "signet",
        _ => "regtest",
    }
}

/// The network for addresses: `--network`, else the preset's.
pub fn network_for(source: &ParamsSource, flag: Option<Network>) -> Result<Network> {
    match (flag, source.network()) {
        (Some(n), _) | (None, Some(n)) => Ok(n),
        (None, None) => Err(crate::exit::usage(
            "a params file does not say which network it is for: add --network (mainnet, testnet, signet or regtest)",
        )),
    }
}

/// A 32-byte x-only key in hex, as the OP_RETURN and the API carry it.
pub fn parse_x_only(arg: &str) -> Result<XOnlyPublicKey, String> {
    let bytes = staking_core::bitcoin::hex::FromHex::from_hex(arg.trim()).map_err(
        |e: staking_core::bitcoin::hex::HexToBytesError| format!("`{arg}` is not hex: {e}"),
    )?;
    let bytes: Vec<u8> = bytes;
    match bytes.len() {
        32 => XOnlyPublicKey::from_slice(&bytes)
            .map_err(|_| format!("`{arg}` is not a point on secp256k1 (no curve point has this x coordinate)")),
        33 => Err(format!(
            "`{arg}` is a 33-byte compressed key; give the 32-byte x-only form (drop the leading 02/03)"
        )),
        n => Err(format!("`{arg}` is {n} bytes; an x-only public key is 32 bytes (64 hex characters)")),
    }
}

/// Text or JSON output.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as pretty JSON, or as indented `key: value` lines.
    pub fn print(self, value: &Value) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        } else {
            let mut lines = String::new();
            text_lines(value, 0, &mut lines);
            print!("{lines}");
        }
    }
}

fn text_lines(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    if let Value::Object(map) = value {
        for (k, v) in map {
            match v {
                Value::Object(_) => {
                    out.push_str(&format!("{pad}{k}:\n"));
                    text_lines(v, indent + 2, out);
                }
                Value::String(s) => out.push_str(&format!("{pad}{k}: {s}\n")),
                other => out.push_str(&format!("{pad}{k}: {other}\n")),
            }
        }
    }
}
