//! Response bodies, shaped as the reference's v1 JSON (`docs/reference.md#response-objects`) and
//! documented for the OpenAPI document.

use serde::{Deserialize, Serialize};
use store::api::{Delegation, KeyStats, TxInfo};
use utoipa::ToSchema;

/// `{"data": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// `{"next_key": "<token or empty>"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pagination {
    /// Opaque token of the next page; empty on the last page.
    #[schema(pattern = r"^[A-Za-z0-9+/=_-]*$")]
    pub next_key: String,
}

/// `{"data": […], "pagination": {…}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T> {
    pub data: T,
    pub pagination: Pagination,
}

/// `{"data": …}` plus `pagination` in list mode only: the reference omits the key for
/// single-item lookups (`fp_btc_pk`, `staker_btc_pk`), so the document must not require it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaybePaged<T> {
    pub data: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

/// A staking or unbonding transaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionPublic {
    #[schema(pattern = "^([0-9a-f]{2})+$")]
    pub tx_hex: String,
    pub output_index: u64,
    /// RFC 3339, UTC.
    #[schema(format = DateTime)]
    pub start_timestamp: String,
    pub start_height: u64,
    pub timelock: u64,
}

/// Delegation states.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatePublic {
    Active,
    UnbondingRequested,
    Unbonding,
    Unbonded,
    Withdrawn,
}

/// One delegation.
#[derive(Debug, Serialize, ToSchema)]
pub struct DelegationPublic {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub staking_tx_hash_hex: String,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub staker_pk_hex: String,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub finality_provider_pk_hex: String,
    pub state: StatePublic,
    pub staking_value: u64,
    pub staking_tx: TransactionPublic,
    /// Present once an unbonding tx confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unbonding_tx: Option<TransactionPublic>,
    pub is_overflow: bool,
}

/// The key's lower-case hex, as its `Display` writes it, without a formatter call per byte
/// (two keys per row made `to_string` a tenth of a delegations page's CPU).
pub(crate) fn key_hex(pk: &bitcoin::secp256k1::XOnlyPublicKey) -> String {
    hex::encode(pk.serialize())
}

/// `2024-05-01T12:00:00Z`, as the reference prints block times (empty if out of range).
fn rfc3339(ts: i64) -> String {
    // `to_rfc3339_opts` writes the digits directly; `format("%Y-…")` re-parsed the pattern on
    // every call, which showed up in the listing's profile.
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl From<TxInfo> for TransactionPublic {
    fn from(t: TxInfo) -> Self {
        TransactionPublic {
            tx_hex: t.tx_hex,
            output_index: t.output_index,
            start_timestamp: rfc3339(t.start_timestamp),
            start_height: t.start_height,
            timelock: t.timelock,
        }
    }
}

impl From<Delegation> for DelegationPublic {
    fn from(d: Delegation) -> Self {
        use store::api::DelegationState as S;
        DelegationPublic {
            staking_tx_hash_hex: d.staking_tx_hash.to_string(),
            staker_pk_hex: key_hex(&d.staker_pk),
            finality_provider_pk_hex: key_hex(&d.finality_provider_pk),
            state: match d.state {
                S::Active => StatePublic::Active,
                S::UnbondingRequested => StatePublic::UnbondingRequested,
                S::Unbonding => StatePublic::Unbonding,
                S::Unbonded => StatePublic::Unbonded,
                S::Withdrawn => StatePublic::Withdrawn,
            },
            staking_value: d.staking_value.to_sat(),
            staking_tx: d.staking_tx.into(),
            unbonding_tx: d.unbonding_tx.map(Into::into),
            is_overflow: d.is_overflow,
        }
    }
}

/// FP description from the metadata file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct FpDescription {
    #[serde(default)]
    pub moniker: String,
    #[serde(default)]
    pub identity: String,
    #[serde(default)]
    pub website: String,
    #[serde(default)]
    pub security_contact: String,
    #[serde(default)]
    pub details: String,
}

/// A finality provider with its stats.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FpDetailsPublic {
    pub description: FpDescription,
    /// Decimal text, e.g. `0.050000000000000000`; empty for FPs absent from the file.
    pub commission: String,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub btc_pk: String,
    pub active_tvl: i64,
    pub total_tvl: i64,
    pub active_delegations: i64,
    pub total_delegations: i64,
}

/// Overall statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverallStatsPublic {
    /// From our own counters (consistent with `active_delegations`).
    pub active_tvl: i64,
    pub total_tvl: i64,
    pub active_delegations: i64,
    pub total_delegations: i64,
    pub total_stakers: u64,
    /// Indexer-reported TVL including unconfirmed blocks.
    pub unconfirmed_tvl: u64,
    /// `unconfirmed_tvl − confirmed_tvl`, never below 0.
    pub pending_tvl: u64,
}

/// One staker's statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct StakerStatsPublic {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub staker_pk_hex: String,
    pub active_tvl: i64,
    pub total_tvl: i64,
    pub active_delegations: i64,
    pub total_delegations: i64,
}

impl From<&KeyStats> for StakerStatsPublic {
    fn from(s: &KeyStats) -> Self {
        StakerStatsPublic {
            staker_pk_hex: s.pk.to_string(),
            active_tvl: s.counters.active_tvl,
            total_tvl: s.counters.total_tvl,
            active_delegations: s.counters.active_delegations,
            total_delegations: s.counters.total_delegations,
        }
    }
}

/// `{"data": <bool>, "code": 0}` (partner format).
#[derive(Debug, Serialize, ToSchema)]
pub struct DelegationCheck {
    pub data: bool,
    pub code: i32,
}

/// `POST /v1/unbonding` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UnbondingRequestBody {
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(default)]
    pub staking_tx_hash_hex: String,
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(default)]
    pub unbonding_tx_hash_hex: String,
    #[schema(pattern = "^([0-9a-fA-F]{2})+$")]
    #[serde(default)]
    pub unbonding_tx_hex: String,
    #[schema(pattern = "^[0-9a-fA-F]{128}$")]
    #[serde(default)]
    pub staker_signed_signature_hex: String,
}

/// `POST /log-terms-acceptance` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TermsBody {
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub public_key: String,
}

/// `{"status": true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TermsStatus {
    pub status: bool,
}

/// A UTXO to check for inscriptions / runes.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UtxoIn {
    pub txid: String,
    pub vout: u32,
}

/// `POST /v1/ordinals/verify-utxos` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyUtxosBody {
    pub address: String,
    pub utxos: Vec<UtxoIn>,
}

/// One checked UTXO.
#[derive(Debug, Serialize, ToSchema)]
pub struct UtxoOut {
    pub txid: String,
    pub vout: u32,
    pub inscription: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hex_is_the_keys_display_text() {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        for byte in [1u8, 0x42, 0xfe] {
            let sk = bitcoin::secp256k1::SecretKey::from_slice(&[byte; 32]).unwrap();
            let (pk, _) = sk.x_only_public_key(&secp);
            assert_eq!(key_hex(&pk), pk.to_string());
        }
    }

    #[test]
    fn block_times_print_as_rfc3339_utc_seconds_with_z() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "");
    }
}
