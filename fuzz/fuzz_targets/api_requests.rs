//! Untrusted API input: the `POST /v1/unbonding` body, the query string, and each query value
//! parser (hashes, public keys, addresses, state filter, pagination tokens). Must never panic;
//! accepted values must be the ones the input spells.
#![no_main]

use api::query::{
    decode_token, form_pairs, parse_address, parse_hash_value, parse_pk_value, parse_state,
};
use api::unbonding::parse_unbonding_body;
use bitcoin::consensus::encode::serialize;
use bitcoin::Network;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = parse_unbonding_body(data) {
        // The tx decoded from hex is exactly the hex sent (no trailing or missing bytes).
        assert_eq!(
            hex::encode(serialize(&parsed.unbonding_tx)),
            parsed.body.unbonding_tx_hex.to_ascii_lowercase()
        );
        assert_eq!(parsed.signature.len(), 64);
        assert_eq!(
            parsed.staking_hash.to_string(),
            parsed.body.staking_tx_hash_hex.to_ascii_lowercase()
        );
    }
    let text = String::from_utf8_lossy(data);
    for (key, value) in form_pairs(&text) {
        let _ = (key.len(), value.len());
        if let Some(hash) = parse_hash_value(&value) {
            assert_eq!(hash.to_string(), value.to_ascii_lowercase());
        }
        if let Some(pk) = parse_pk_value(&value) {
            assert_eq!(pk.to_string(), value.to_ascii_lowercase());
        }
        for network in [Network::Bitcoin, Network::Signet, Network::Regtest] {
            let _ = parse_address(&value, network);
        }
        let _ = parse_state(Some(&value));
        let _ = decode_token::<serde_json::Value>(Some(&value));
    }
    let _ = decode_token::<serde_json::Value>(Some(&text));
});
