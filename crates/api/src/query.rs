//! Query-string and parameter validators with the reference's messages
//! (`docs/reference.md#parameter-validation`) and our resolutions (hashes exactly 64 hex, any case;
//! tokens in either base64 alphabet).

use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use bitcoin::address::{Address, AddressType, NetworkUnchecked};
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Network, Txid};
use serde::de::DeserializeOwned;
use serde::Serialize;
use store::api::{DelegationCursor, DelegationState};

use crate::error::ApiError;

/// The query string as ordered pairs; only the first value of a name is used, except where a
/// handler asks for all of them.
#[derive(Debug, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The first value of `name`, if any.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        let pairs = form_pairs(raw);
        Ok(QueryPairs(pairs))
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` bytes, invalid UTF-8
/// replaced), never failing, as Go's `url.ParseQuery` keeps going. Public for the fuzz target.
pub fn form_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A txid parameter: exactly 64 hex characters, any case.
pub fn parse_hash(name: &str, value: Option<&str>) -> Result<Txid, ApiError> {
    let value = value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))?;
    parse_hash_value(value).ok_or_else(|| ApiError::bad_request(format!("invalid {name}")))
}

/// 64 hex characters → txid (lower-cased first), else `None`.
pub fn parse_hash_value(value: &str) -> Option<Txid> {
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Txid::from_str(&value.to_ascii_lowercase()).ok()
}

/// An x-only key parameter (64 hex, on the curve).
pub fn parse_pk(name: &str, value: Option<&str>) -> Result<XOnlyPublicKey, ApiError> {
    let value = value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))?;
    parse_pk_value(value).ok_or_else(|| ApiError::bad_request(format!("invalid {name}")))
}

/// 64 hex characters of a valid BIP340 key, else `None`.
pub fn parse_pk_value(value: &str) -> Option<XOnlyPublicKey> {
    if value.len() != 64 {
        return None;
    }
    let bytes = hex::decode(value).ok()?;
    XOnlyPublicKey::from_slice(&bytes).ok()
}

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// Not an address of this network: `can not decode btc address: <detail>`.
    Decode(String),
    /// Not P2TR or P2WPKH: `unsupported btc address type`.
    Unsupported,
}

impl AddressError {
    /// The reference message.
    pub fn message(&self) -> String {
        match self {
            AddressError::Decode(d) => format!("can not decode btc address: {d}"),
            AddressError::Unsupported => "unsupported btc address type".to_owned(),
        }
    }
}

/// A taproot or native-segwit (P2WPKH) address of `network`. On regtest the test-network
/// spelling (`tb1…`) of a witness program is accepted too: the staking dApp knows only mainnet,
/// signet and testnet, so against `stakingd devnet` its wallets hand out `tb1…` addresses.
pub fn parse_address(
    value: &str,
    network: Network,
) -> Result<(Address, AddressType), AddressError> {
    let unchecked: Address<NetworkUnchecked> = value
        .parse()
        .map_err(|e: bitcoin::address::ParseError| AddressError::Decode(e.to_string()))?;
    let address = if network == Network::Regtest && unchecked.is_valid_for_network(Network::Testnet)
    {
        unchecked.assume_checked()
    } else {
        unchecked
            .require_network(network)
            .map_err(|e| AddressError::Decode(e.to_string()))?
    };
    match address.address_type() {
        Some(t @ (AddressType::P2tr | AddressType::P2wpkh)) => Ok((address, t)),
        _ => Err(AddressError::Unsupported),
    }
}

/// The state filter.
pub fn parse_state(value: Option<&str>) -> Result<Option<DelegationState>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => DelegationState::from_str(v)
            .map(Some)
            .map_err(|e| ApiError::bad_request(e.to_string())),
    }
}

/// Encodes a page token: URL-safe base64 with padding of compact JSON (as the reference).
pub fn encode_token<T: Serialize>(token: &T) -> String {
    URL_SAFE.encode(serde_json::to_vec(token).unwrap_or_default())
}

/// The answer to a token that decodes but is not one we could have issued
/// (`docs/reference.md#pagination-tokens`).
pub fn invalid_token() -> ApiError {
    ApiError::bad_request("Invalid pagination token")
}

/// Decodes a page token in any base64 alphabet, padded or not. Format errors give
/// `invalid pagination key format`; a decodable token of the wrong shape gives
/// `Invalid pagination token`. Either way a 400: a token is client input, whatever it holds,
/// and never reaches the store unchecked (see [`delegation_cursor`]).
pub fn decode_token<T: DeserializeOwned>(value: Option<&str>) -> Result<Option<T>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let format = || ApiError::bad_request("invalid pagination key format");
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'='))
    {
        return Err(format());
    }
    let trimmed = value.trim_end_matches('=');
    if value.len() - trimmed.len() > 2 || trimmed.contains('=') {
        return Err(format());
    }
    let bytes = [STANDARD, URL_SAFE]
        .iter()
        .find_map(|e| e.decode(value).ok())
        .or_else(|| {
            [STANDARD_NO_PAD, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|e| e.decode(trimmed).ok())
        })
        .ok_or_else(format)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| invalid_token())
}

/// The cursor of a staker-delegations token: the hash must be 64 hex characters and the height
/// one the store can hold. A height above `i64::MAX` is no block's, and PostgreSQL's `BIGINT`
/// refused it with a 500 and an ERROR line per request; it is `Invalid pagination token` now.
pub fn delegation_cursor(
    staking_tx_hash_hex: &str,
    staking_start_height: u64,
) -> Result<DelegationCursor, ApiError> {
    if i64::try_from(staking_start_height).is_err() {
        return Err(invalid_token());
    }
    Ok(DelegationCursor {
        start_height: staking_start_height,
        staking_tx_hash: parse_hash_value(staking_tx_hash_hex).ok_or_else(invalid_token)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // One P2WPKH program in both spellings (BIP173's test vector key).
    const BCRT1: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    const TB1: &str = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx";
    const BC1: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

    #[test]
    fn a_regtest_api_accepts_the_signet_spelling_of_a_program_but_not_a_mainnet_one() {
        let (a, _) = parse_address(BCRT1, Network::Regtest).unwrap();
        let (b, _) = parse_address(TB1, Network::Regtest).unwrap();
        assert_eq!(a.script_pubkey(), b.script_pubkey());
        assert!(parse_address(BC1, Network::Regtest).is_err());
    }

    #[test]
    fn a_signet_api_still_refuses_the_regtest_spelling() {
        assert!(parse_address(TB1, Network::Signet).is_ok());
        assert!(parse_address(BCRT1, Network::Signet).is_err());
    }
}
