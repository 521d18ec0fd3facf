//! From a quorum of signatures to a broadcast: the witness with exactly `quorum` covenant
//! signatures, `testmempoolaccept` then `sendrawtransaction`, both with a fee cap equal to the
//! params' unbonding fee (the reference sends with no cap at all). Mempool refusals are sorted
//! into "already there", "input spent", "fee" and "other".

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::secp256k1::{schnorr, XOnlyPublicKey};
use bitcoin::{Amount, Transaction, Txid};
use bitcoin_rpc::{RpcClient, RpcError};
use serde_json::{json, Value};

use crate::check::{node_error, spent_by, Prepared};
use crate::outcome::{FailureKind, Outcome};

/// `RPC_VERIFY_ALREADY_IN_CHAIN`.
const ALREADY_IN_CHAIN: i32 = -27;

/// The signed unbonding tx: the stored tx with the unbonding-path witness.
pub fn assemble(
    prepared: &Prepared,
    signatures: &[(XOnlyPublicKey, schnorr::Signature)],
) -> Result<Transaction, Outcome> {
    let witness = staking_core::witness::unbonding_witness(
        &prepared.staking,
        &prepared.staker_signature,
        signatures,
    )
    .map_err(|e| Outcome::failed(FailureKind::InvalidRequest, format!("witness: {e}")))?;
    let mut tx = prepared.unbonding_tx.clone();
    tx.input[0].witness = witness;
    Ok(tx)
}

/// The smallest `maxfeerate` (BTC/kvB, as a decimal string so no float rounding is involved)
/// under which a tx of `vsize` paying `fee` is accepted: Core refuses when
/// `fee > maxfeerate × vsize / 1000`, so `ceil(fee × 1000 / vsize)` sat/kvB is exactly the cap.
pub fn max_fee_rate(fee: Amount, vsize: usize) -> String {
    let vsize = vsize.max(1) as u64;
    let sat_per_kvb = (fee.to_sat().saturating_mul(1000)).div_ceil(vsize);
    // Core refuses rates of 1 BTC/kvB and above.
    let sat_per_kvb = sat_per_kvb.min(99_999_999);
    format!("0.{sat_per_kvb:08}")
}

/// What a mempool refusal means for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    /// The tx is already in the mempool or the chain.
    AlreadyThere,
    /// The staking output is gone: spent by our tx or by another one.
    InputGone,
    /// The fixed fee is refused (too low for the mempool's policy, or above the cap).
    Fee,
    /// Anything else: terminal.
    Other,
}

fn classify_rejection(reason: &str) -> Meaning {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("already-in-mempool")
        || lower.contains("txn-already-known")
        || lower.contains("already in utxo set")
        || lower.contains("already in block chain")
    {
        Meaning::AlreadyThere
    } else if lower.contains("missing-inputs")
        || lower.contains("missingorspent")
        || lower.contains("mempool-conflict")
    {
        Meaning::InputGone
    } else if lower.contains("fee") {
        Meaning::Fee
    } else {
        Meaning::Other
    }
}

async fn refusal(
    rpc: &RpcClient,
    prepared: &Prepared,
    txid: Txid,
    stage: &str,
    reason: &str,
) -> Outcome {
    let fee = prepared.version.unbonding_fee;
    match classify_rejection(reason) {
        Meaning::AlreadyThere => Outcome::AlreadySent(txid),
        Meaning::InputGone => spent_by(rpc, prepared.staking_outpoint, txid).await,
        Meaning::Fee => Outcome::failed(
            FailureKind::FeeRejected,
            format!(
                "{stage} refused the unbonding tx for its fee: {reason} (the fee is fixed by \
                 params version {} at {} sat and cannot be bumped)",
                prepared.version.version,
                fee.to_sat()
            ),
        ),
        Meaning::Other => Outcome::failed(
            FailureKind::Rejected,
            format!("{stage} refused the unbonding tx: {reason}"),
        ),
    }
}

/// `testmempoolaccept` then `sendrawtransaction`, both capped at the unbonding fee.
pub async fn broadcast(rpc: &RpcClient, prepared: &Prepared, tx: &Transaction) -> Outcome {
    let txid = tx.compute_txid();
    let hex = serialize_hex(tx);
    let cap = max_fee_rate(prepared.version.unbonding_fee, tx.vsize());
    let verdict: Result<Vec<Value>, RpcError> = rpc
        .call("testmempoolaccept", &[json!([hex]), json!(cap)])
        .await;
    match verdict {
        Ok(entries) => {
            let entry = entries.first().cloned().unwrap_or(Value::Null);
            if entry.get("allowed").and_then(Value::as_bool) != Some(true) {
                let reason = entry
                    .get("reject-reason")
                    .and_then(Value::as_str)
                    .unwrap_or("no reject-reason given")
                    .to_owned();
                return refusal(rpc, prepared, txid, "testmempoolaccept", &reason).await;
            }
        }
        Err(e) => return node_error("testmempoolaccept", &e),
    }
    match rpc
        .call::<Txid>("sendrawtransaction", &[json!(hex), json!(cap)])
        .await
    {
        Ok(sent) => Outcome::Sent(sent),
        Err(RpcError::Rpc { code, .. }) if code == ALREADY_IN_CHAIN => Outcome::AlreadySent(txid),
        Err(RpcError::Rpc { message, .. }) => {
            refusal(rpc, prepared, txid, "sendrawtransaction", &message).await
        }
        Err(e) => node_error("sendrawtransaction", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fee_cap_admits_exactly_the_unbonding_fee() {
        // 1000 sat over 200 vB: 5000 sat/kvB.
        assert_eq!(max_fee_rate(Amount::from_sat(1000), 200), "0.00005000");
        // Rounded up, so that the cap times the size is never below the fee.
        assert_eq!(max_fee_rate(Amount::from_sat(1000), 301), "0.00003323");
        for vsize in 100..600u64 {
            for fee in [1u64, 999, 1000, 20_000, 64_000] {
                let text = max_fee_rate(Amount::from_sat(fee), vsize as usize);
                let rate: u64 = text.trim_start_matches("0.").parse().unwrap();
                assert!(
                    rate * vsize >= fee * 1000,
                    "{fee} sat / {vsize} vB: cap {text} too low"
                );
                assert!(
                    (rate - 1) * vsize < fee * 1000,
                    "{fee} sat / {vsize} vB: cap {text} not tight"
                );
            }
        }
        assert_eq!(max_fee_rate(Amount::from_sat(1000), 0), "0.01000000");
    }

    #[test]
    fn rejections_are_sorted_by_meaning() {
        let cases = [
            ("txn-already-in-mempool", Meaning::AlreadyThere),
            (
                "Transaction outputs already in utxo set",
                Meaning::AlreadyThere,
            ),
            ("bad-txns-inputs-missingorspent", Meaning::InputGone),
            ("txn-mempool-conflict", Meaning::InputGone),
            ("min relay fee not met, 0 < 110", Meaning::Fee),
            ("max-fee-exceeded", Meaning::Fee),
            (
                "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
                Meaning::Fee,
            ),
            ("non-BIP68-final", Meaning::Other),
            (
                "mandatory-script-verify-flag-failed (Invalid Schnorr signature)",
                Meaning::Other,
            ),
        ];
        for (reason, meaning) in cases {
            assert_eq!(classify_rejection(reason), meaning, "{reason}");
        }
    }
}
