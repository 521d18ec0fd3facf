//! What the HTTP handlers read, and the unbonding requests they accept.

use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::Txid;

use super::codec::{i64_of, parse_txid, u64_of, DelegationDbRow, DELEGATION_COLUMNS};
use super::types::{
    BtcInfo, Delegation, DelegationCursor, DelegationState, ExpiryKind, NewUnbondingRequest,
    RequestOutcome, TimelockRow, UnbondingRequest, UnbondingRequestState,
};
use super::ApiStore;
use crate::error::{Result, StoreError};
use crate::unbonding::RequestColumns;

#[derive(sqlx::FromRow)]
struct TimelockDbRow {
    id: i64,
    staking_tx_hash: String,
    expire_height: i64,
    tx_type: String,
}

/// One `api_unbonding_requests` row as the API shows it.
#[derive(sqlx::FromRow)]
struct RequestDbRow {
    id: i64,
    #[sqlx(flatten)]
    request: RequestColumns,
    state: String,
    lease_until: Option<i64>,
    failure_reason: Option<String>,
    created_at: i64,
}

impl RequestDbRow {
    fn decode(self) -> Result<UnbondingRequest> {
        let state = match self.state.as_str() {
            "accepted" => UnbondingRequestState::Accepted,
            "claimed" => UnbondingRequestState::Claimed {
                lease_until: self.lease_until.unwrap_or(0),
            },
            "sent" => UnbondingRequestState::Sent,
            "failed" => UnbondingRequestState::Failed {
                reason: self.failure_reason.unwrap_or_default(),
            },
            _ => {
                return Err(StoreError::Corrupt {
                    what: "unbonding request state",
                    value: self.state,
                    reason: "unknown state".into(),
                })
            }
        };
        Ok(UnbondingRequest {
            id: self.id,
            request: self.request.decode()?,
            state,
            created_at: self.created_at,
        })
    }
}

pub(crate) fn expiry_kind(s: String) -> Result<ExpiryKind> {
    match s.as_str() {
        "active" => Ok(ExpiryKind::Active),
        "unbonding" => Ok(ExpiryKind::Unbonding),
        _ => Err(StoreError::Corrupt {
            what: "timelock tx_type",
            value: s,
            reason: "expected active or unbonding".into(),
        }),
    }
}

impl ApiStore {
    /// `active → unbonding_requested` and the request row, in one transaction.
    pub async fn request_unbonding(&self, r: &NewUnbondingRequest) -> Result<RequestOutcome> {
        let mut tx = self.db.begin().await?;
        let changed = tx
            .query(
                "UPDATE api_delegations SET state = 'unbonding_requested' \
                 WHERE staking_tx_hash = $1 AND state = 'active'",
            )
            .bind(r.staking_tx_hash.to_string())
            .execute("request unbonding")
            .await?;
        if changed != 1 {
            tx.rollback().await?;
            return Ok(RequestOutcome::NotActive);
        }
        if !crate::unbonding::insert_request(&mut tx, r).await? {
            tx.rollback().await?;
            return Ok(RequestOutcome::AlreadyExists);
        }
        tx.commit("commit unbonding request").await?;
        Ok(RequestOutcome::Accepted)
    }

    pub async fn delegation(&self, hash: &Txid) -> Result<Option<Delegation>> {
        let sql =
            format!("SELECT {DELEGATION_COLUMNS} FROM api_delegations WHERE staking_tx_hash = $1");
        let row: Option<DelegationDbRow> = self
            .db
            .query(&sql)
            .bind(hash.to_string())
            .fetch_optional("get delegation")
            .await?;
        row.map(DelegationDbRow::decode).transpose()
    }

    /// A staker's delegations, start height desc then hash asc, after `after`, at most `limit`.
    pub async fn delegations_by_staker(
        &self,
        staker_pk: &XOnlyPublicKey,
        state: Option<DelegationState>,
        after: Option<&DelegationCursor>,
        limit: u32,
    ) -> Result<Vec<Delegation>> {
        let staker = hex::encode(staker_pk.serialize());
        let mut sql =
            format!("SELECT {DELEGATION_COLUMNS} FROM api_delegations WHERE staker_pk = $1");
        if state.is_some() {
            sql.push_str(" AND state = $2");
        } else {
            sql.push_str(" AND $2 = ''");
        }
        if after.is_some() {
            // `height <= $3` bounds the index range scan (the page starts where the last one
            // ended instead of filtering every newer row again); the OR only sorts out rows of
            // the cursor's own height.
            sql.push_str(
                " AND staking_start_height <= $3 AND (staking_start_height < $3 OR \
                 staking_tx_hash > $4)",
            );
        } else {
            sql.push_str(" AND $3 = 0 AND $4 = ''");
        }
        sql.push_str(" ORDER BY staking_start_height DESC, staking_tx_hash ASC LIMIT $5");
        let (h, hash) = match after {
            Some(c) => (
                i64_of("start_height", c.start_height)?,
                c.staking_tx_hash.to_string(),
            ),
            None => (0, String::new()),
        };
        let rows: Vec<DelegationDbRow> = self
            .db
            .query(&sql)
            .bind(&staker)
            .bind(state.map_or("", DelegationState::as_str))
            .bind(h)
            .bind(hash)
            .bind(i64::from(limit))
            .fetch_all("list staker delegations")
            .await?;
        rows.into_iter()
            .map(|r| r.decode_for(Some((staker.as_str(), staker_pk))))
            .collect()
    }

    /// Whether the staker has an `active` delegation (starting at or after `since`, Unix s).
    pub async fn has_active_delegation(
        &self,
        staker: &XOnlyPublicKey,
        since: Option<i64>,
    ) -> Result<bool> {
        let n: i64 = self
            .db
            .query(
                "SELECT COUNT(*) FROM (SELECT 1 FROM api_delegations WHERE staker_pk = $1 \
                 AND state = 'active' AND staking_start_timestamp >= $2 LIMIT 1) t",
            )
            .bind(staker.to_string())
            .bind(since.unwrap_or(i64::MIN))
            .scalar("check active delegation")
            .await?;
        Ok(n > 0)
    }

    pub async fn btc_info(&self) -> Result<Option<BtcInfo>> {
        let row: Option<(i64, i64, i64)> = self
            .db
            .query("SELECT height, confirmed_tvl, unconfirmed_tvl FROM api_btc_info WHERE id = 0")
            .fetch_optional("btc info")
            .await?;
        row.map(|(height, confirmed, unconfirmed)| {
            Ok(BtcInfo {
                height: u64_of("height", height)?,
                confirmed_tvl: u64_of("confirmed_tvl", confirmed)?,
                unconfirmed_tvl: u64_of("unconfirmed_tvl", unconfirmed)?,
            })
        })
        .transpose()
    }

    /// `(address, staker key hex)` for each address known to a mapping (taproot or native
    /// segwit).
    pub async fn pubkeys_for(&self, addresses: &[String]) -> Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        for address in addresses {
            let pk: Option<String> = self
                .db
                .query(
                    "SELECT staker_pk FROM api_pk_address_mappings WHERE taproot = $1 \
                     OR native_segwit_odd = $1 OR native_segwit_even = $1",
                )
                .bind(address)
                .scalar_optional("pubkey lookup")
                .await?;
            if let Some(pk) = pk {
                found.push((address.clone(), pk));
            }
        }
        Ok(found)
    }

    /// The timelock rows of a delegation, in insertion order.
    pub async fn timelock_rows(&self, hash: &Txid) -> Result<Vec<TimelockRow>> {
        let rows: Vec<TimelockDbRow> = self
            .db
            .query(
                "SELECT id, staking_tx_hash, expire_height, tx_type FROM api_timelock_queue \
                 WHERE staking_tx_hash = $1 ORDER BY id",
            )
            .bind(hash.to_string())
            .fetch_all("timelock rows")
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(TimelockRow {
                    id: r.id,
                    staking_tx_hash: parse_txid(&r.staking_tx_hash)?,
                    expire_height: u64_of("expire_height", r.expire_height)?,
                    tx_type: expiry_kind(r.tx_type)?,
                })
            })
            .collect()
    }

    /// Every unbonding request, in insertion order.
    pub async fn unbonding_requests(&self) -> Result<Vec<UnbondingRequest>> {
        let rows: Vec<RequestDbRow> = self
            .db
            .query(
                "SELECT id, staking_tx_hash, unbonding_tx_hash, unbonding_tx_hex, staker_pk, \
                 finality_provider_pk, staker_signature_hex, staking_tx_hex, \
                 staking_output_index, staking_timelock, staking_amount, state, lease_until, \
                 failure_reason, created_at FROM api_unbonding_requests ORDER BY id",
            )
            .fetch_all("unbonding requests")
            .await?;
        rows.into_iter().map(RequestDbRow::decode).collect()
    }
}
