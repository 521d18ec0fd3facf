//! The queue consumers' writes: one message, one transaction, opened with the message's
//! idempotency record, so a redelivered message changes nothing.

use bitcoin::Txid;

use super::codec::{i64_of, DelegationDbRow, DELEGATION_COLUMNS};
use super::stats;
use super::types::{
    AddressMapping, Applied, BtcInfo, ConsumedKey, Delegation, DelegationState, ExpiryKind,
    StatsChange, TxInfo,
};
use super::ApiStore;
use crate::backend::Tx;
use crate::error::Result;

/// Records the message; `false` if it was consumed before.
async fn record(tx: &mut Tx, key: &ConsumedKey) -> Result<bool> {
    let inserted = tx
        .query(
            "INSERT INTO api_consumed_messages (queue, body_sha256, consumed_at) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&key.queue)
        .bind(&key.body_sha256)
        .bind(chrono::Utc::now().timestamp())
        .execute("record consumed message")
        .await?;
    Ok(inserted == 1)
}

pub(super) async fn load(tx: &mut Tx, hash: &Txid) -> Result<Option<Delegation>> {
    let sql =
        format!("SELECT {DELEGATION_COLUMNS} FROM api_delegations WHERE staking_tx_hash = $1");
    let row: Option<DelegationDbRow> = tx
        .query(&sql)
        .bind(hash.to_string())
        .fetch_optional("load delegation")
        .await?;
    row.map(DelegationDbRow::decode).transpose()
}

/// Moves the delegation from one of `from` to `to`; `false` if it was in none of them.
async fn set_state(
    tx: &mut Tx,
    hash: &Txid,
    from: &[DelegationState],
    to: DelegationState,
) -> Result<bool> {
    let states: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let sql = format!(
        "UPDATE api_delegations SET state = $1 WHERE staking_tx_hash = $2 AND state IN ({})",
        states.join(", ")
    );
    let changed = tx
        .query(&sql)
        .bind(to.as_str())
        .bind(hash.to_string())
        .execute("update delegation state")
        .await?;
    Ok(changed == 1)
}

/// Queues the expiry of a timelock for the expiry checker.
async fn timelock(tx: &mut Tx, hash: &Txid, expire: u64, kind: ExpiryKind) -> Result<()> {
    tx.query(
        "INSERT INTO api_timelock_queue (staking_tx_hash, expire_height, tx_type) \
         VALUES ($1, $2, $3)",
    )
    .bind(hash.to_string())
    .bind(i64_of("expire_height", expire)?)
    .bind(kind.as_str())
    .execute("insert timelock row")
    .await?;
    Ok(())
}

async fn mapping(tx: &mut Tx, m: &AddressMapping) -> Result<()> {
    tx.query(
        "INSERT INTO api_pk_address_mappings (staker_pk, taproot, native_segwit_odd, \
         native_segwit_even) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(m.staker_pk.to_string())
    .bind(&m.taproot)
    .bind(&m.native_segwit_odd)
    .bind(&m.native_segwit_even)
    .execute("insert address mapping")
    .await?;
    Ok(())
}

/// Ends the transaction: commit for a change or an ignore, roll back for a retry.
async fn finish(tx: Tx, applied: Applied) -> Result<Applied> {
    match applied {
        Applied::RetryLater(_) | Applied::Duplicate => tx.rollback().await?,
        Applied::Changed | Applied::Ignored(_) => tx.commit("commit api transaction").await?,
    }
    Ok(applied)
}

fn changed_concurrently(hash: &Txid) -> Applied {
    Applied::RetryLater(format!("delegation {hash} changed concurrently"))
}

fn not_found(hash: &Txid) -> Applied {
    Applied::RetryLater(format!("delegation {hash} not found"))
}

impl ApiStore {
    /// Opens the transaction of a message about a stored delegation, with the message's
    /// idempotency record; `Err` with the outcome (nothing written) for a message consumed
    /// before or a delegation not stored yet.
    async fn begin_for(
        &self,
        key: &ConsumedKey,
        hash: &Txid,
    ) -> Result<std::result::Result<(Tx, Delegation), Applied>> {
        let mut tx = self.db.begin().await?;
        if !record(&mut tx, key).await? {
            return finish(tx, Applied::Duplicate).await.map(Err);
        }
        match load(&mut tx, hash).await? {
            Some(d) => Ok(Ok((tx, d))),
            None => finish(tx, not_found(hash)).await.map(Err),
        }
    }

    /// `ActiveStakingEvent`: insert the delegation `active` with its timelock row, address
    /// mapping and (unless overflow) stats; an existing delegation is ignored.
    pub async fn apply_active(
        &self,
        key: &ConsumedKey,
        d: &Delegation,
        m: &AddressMapping,
    ) -> Result<Applied> {
        let mut tx = self.db.begin().await?;
        if !record(&mut tx, key).await? {
            return finish(tx, Applied::Duplicate).await;
        }
        let staking = &d.staking_tx;
        let sql = format!(
            "INSERT INTO api_delegations ({DELEGATION_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, NULL, NULL, NULL, $11) \
             ON CONFLICT DO NOTHING"
        );
        let inserted = tx
            .query(&sql)
            .bind(d.staking_tx_hash.to_string())
            .bind(d.staker_pk.to_string())
            .bind(d.finality_provider_pk.to_string())
            .bind(i64_of("staking_value", d.staking_value.to_sat())?)
            .bind(DelegationState::Active.as_str())
            .bind(&staking.tx_hex)
            .bind(i64_of("output_index", staking.output_index)?)
            .bind(staking.start_timestamp)
            .bind(i64_of("start_height", staking.start_height)?)
            .bind(i64_of("timelock", staking.timelock)?)
            .bind(d.is_overflow)
            .execute("insert delegation")
            .await?;
        if inserted == 0 {
            return finish(tx, Applied::Ignored("delegation already exists")).await;
        }
        let expire = staking.start_height.saturating_add(staking.timelock);
        timelock(&mut tx, &d.staking_tx_hash, expire, ExpiryKind::Active).await?;
        mapping(&mut tx, m).await?;
        if !d.is_overflow {
            stats::count(&mut tx, &stats::Entry::of(d), true).await?;
        }
        finish(tx, Applied::Changed).await
    }

    /// `UnbondingStakingEvent`: `active | unbonding_requested → unbonding` with the unbonding tx,
    /// its timelock row and the active counters decremented. Unknown delegation ⇒ retry; already
    /// `unbonding`, `unbonded` or `withdrawn` ⇒ ignored.
    pub async fn apply_unbonding(
        &self,
        key: &ConsumedKey,
        hash: &Txid,
        unbonding: &TxInfo,
    ) -> Result<Applied> {
        use DelegationState::*;
        let (mut tx, d) = match self.begin_for(key, hash).await? {
            Ok(opened) => opened,
            Err(done) => return Ok(done),
        };
        if matches!(d.state, Unbonding | Unbonded | Withdrawn) {
            return finish(tx, Applied::Ignored("delegation already past unbonding")).await;
        }
        let changed = tx
            .query(
                "UPDATE api_delegations SET state = $1, unbonding_tx_hex = $2, \
                 unbonding_output_index = $3, unbonding_start_timestamp = $4, \
                 unbonding_start_height = $5, unbonding_timelock = $6 \
                 WHERE staking_tx_hash = $7 AND state IN ('active', 'unbonding_requested')",
            )
            .bind(Unbonding.as_str())
            .bind(&unbonding.tx_hex)
            .bind(i64_of("output_index", unbonding.output_index)?)
            .bind(unbonding.start_timestamp)
            .bind(i64_of("start_height", unbonding.start_height)?)
            .bind(i64_of("timelock", unbonding.timelock)?)
            .bind(hash.to_string())
            .execute("set unbonding")
            .await?;
        if changed != 1 {
            return finish(tx, changed_concurrently(hash)).await;
        }
        let expire = unbonding.start_height.saturating_add(unbonding.timelock);
        timelock(&mut tx, hash, expire, ExpiryKind::Unbonding).await?;
        stats::leave_active(&mut tx, &d).await?;
        finish(tx, Applied::Changed).await
    }

    /// `ExpiredStakingEvent`: staking expiry moves `active | unbonding_requested → unbonded`
    /// (active counters fall); unbonding expiry moves `unbonding → unbonded`.
    pub async fn apply_expired(
        &self,
        key: &ConsumedKey,
        hash: &Txid,
        kind: ExpiryKind,
    ) -> Result<Applied> {
        use DelegationState::*;
        let (mut tx, d) = match self.begin_for(key, hash).await? {
            Ok(opened) => opened,
            Err(done) => return Ok(done),
        };
        let outcome = match (kind, d.state) {
            (_, Unbonded | Withdrawn) => Applied::Ignored("delegation already unbonded"),
            (ExpiryKind::Active, Unbonding) => {
                Applied::Ignored("staking timelock expired after unbonding")
            }
            (ExpiryKind::Active, Active | UnbondingRequested) => {
                if !set_state(&mut tx, hash, &[Active, UnbondingRequested], Unbonded).await? {
                    return finish(tx, changed_concurrently(hash)).await;
                }
                stats::leave_active(&mut tx, &d).await?;
                Applied::Changed
            }
            (ExpiryKind::Unbonding, Unbonding) => {
                if !set_state(&mut tx, hash, &[Unbonding], Unbonded).await? {
                    return finish(tx, changed_concurrently(hash)).await;
                }
                Applied::Changed
            }
            (ExpiryKind::Unbonding, Active | UnbondingRequested) => Applied::RetryLater(format!(
                "unbonding expiry for {hash} before its unbonding event"
            )),
        };
        finish(tx, outcome).await
    }

    /// `WithdrawStakingEvent`: `unbonded → withdrawn`; earlier states ⇒ retry.
    pub async fn apply_withdraw(&self, key: &ConsumedKey, hash: &Txid) -> Result<Applied> {
        use DelegationState::*;
        let (mut tx, d) = match self.begin_for(key, hash).await? {
            Ok(opened) => opened,
            Err(done) => return Ok(done),
        };
        let outcome = match d.state {
            Withdrawn => Applied::Ignored("delegation already withdrawn"),
            Unbonded => {
                if !set_state(&mut tx, hash, &[Unbonded], Withdrawn).await? {
                    return finish(tx, changed_concurrently(hash)).await;
                }
                Applied::Changed
            }
            other => Applied::RetryLater(format!(
                "withdraw of {hash} while it is {other}: waiting for its expiry"
            )),
        };
        finish(tx, outcome).await
    }

    /// `BtcInfoEvent`: kept only if higher than the stored height.
    pub async fn apply_btc_info(&self, key: &ConsumedKey, info: &BtcInfo) -> Result<Applied> {
        let mut tx = self.db.begin().await?;
        if !record(&mut tx, key).await? {
            return finish(tx, Applied::Duplicate).await;
        }
        let changed = tx
            .query(
                "INSERT INTO api_btc_info (id, height, confirmed_tvl, unconfirmed_tvl) \
                 VALUES (0, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET \
                 height = excluded.height, confirmed_tvl = excluded.confirmed_tvl, \
                 unconfirmed_tvl = excluded.unconfirmed_tvl \
                 WHERE excluded.height > api_btc_info.height",
            )
            .bind(i64_of("height", info.height)?)
            .bind(i64_of("confirmed_tvl", info.confirmed_tvl)?)
            .bind(i64_of("unconfirmed_tvl", info.unconfirmed_tvl)?)
            .execute("upsert btc info")
            .await?;
        let outcome = if changed == 1 {
            Applied::Changed
        } else {
            Applied::Ignored("not higher than the stored height")
        };
        finish(tx, outcome).await
    }

    /// `StatsEvent` from another producer, deduplicated with our own changes by the stats lock.
    pub async fn apply_stats(
        &self,
        key: &ConsumedKey,
        change: &StatsChange,
        m: Option<&AddressMapping>,
    ) -> Result<Applied> {
        let mut tx = self.db.begin().await?;
        if !record(&mut tx, key).await? {
            return finish(tx, Applied::Duplicate).await;
        }
        if let Some(m) = m {
            mapping(&mut tx, m).await?;
        }
        let overflow = match change.is_overflow {
            Some(o) => o,
            None => match load(&mut tx, &change.staking_tx_hash).await? {
                Some(d) => d.is_overflow,
                None => {
                    let reason = format!(
                        "legacy stats event for unknown delegation {}",
                        change.staking_tx_hash
                    );
                    return finish(tx, Applied::RetryLater(reason)).await;
                }
            },
        };
        if !overflow {
            let entry = stats::Entry {
                hash: &change.staking_tx_hash,
                staker: change.staker_pk.to_string(),
                fp: change.finality_provider_pk.to_string(),
                value: change.staking_value,
            };
            stats::count(&mut tx, &entry, change.entering_active).await?;
        }
        finish(tx, Applied::Changed).await
    }
}
