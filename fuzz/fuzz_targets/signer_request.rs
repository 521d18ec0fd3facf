//! Raw bytes → covenant signer `POST /v1/sign-unbonding-tx` request (JSON, then the pk script,
//! key, exact-tx and signature hex inside it). Must never panic; an accepted request must
//! serialise back to the same fields (so a key or tx has exactly one accepted spelling).
#![no_main]

use covenant_signer::request::{SignRequest, SignRequestJson};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = SignRequest::from_json_bytes(data) else {
        return;
    };
    let wire = request.to_json();
    let raw: SignRequestJson = serde_json::from_slice(data).expect("accepted body is JSON");
    assert_eq!(
        wire.unbonding_tx_hex,
        raw.unbonding_tx_hex.to_ascii_lowercase()
    );
    assert_eq!(
        wire.covenant_public_key,
        raw.covenant_public_key.to_ascii_lowercase()
    );
    let again = SignRequest::try_from(&wire).expect("a request's own wire form parses");
    assert_eq!(again, request);
});
