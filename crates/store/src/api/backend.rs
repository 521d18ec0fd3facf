//! The SQL of the API tables, written once and expanded for PostgreSQL and SQLite (both accept
//! `$n` placeholders in ascending first use, `ON CONFLICT`, `RETURNING` and `excluded`).
//!
//! Every consumer write opens its transaction with the idempotency insert, so on SQLite the
//! write lock is taken first and two writers never deadlock upgrading a read snapshot.

macro_rules! api_backend {
    ($module:ident, $db:ty, $pool:ty) => {
        pub(crate) mod $module {
            use bitcoin::secp256k1::XOnlyPublicKey;
            use bitcoin::{Amount, Txid};
            use sqlx::Row;

            use crate::api::codec::{
                i64_of, parse_pk, parse_txid, u64_of, DelegationDbRow,
                DELEGATION_COLUMNS,
            };
            use crate::api::types::*;
            use crate::error::{Result, StoreError};

            type Tx = sqlx::Transaction<'static, $db>;

            async fn begin(pool: &$pool) -> Result<Tx> {
                pool.begin().await.map_err(StoreError::db("begin api transaction"))
            }

            async fn commit(tx: Tx) -> Result<()> {
                tx.commit().await.map_err(StoreError::db("commit api transaction"))
            }

            /// Records the message; `false` if it was consumed before.
            async fn record(tx: &mut Tx, key: &ConsumedKey) -> Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO api_consumed_messages (queue, body_sha256, consumed_at) \
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(&key.queue)
                .bind(&key.body_sha256)
                .bind(chrono::Utc::now().timestamp())
                .execute(&mut **tx)
                .await
                .map_err(StoreError::db("record consumed message"))?;
                Ok(done.rows_affected() == 1)
            }

            async fn load(tx: &mut Tx, hash: &Txid) -> Result<Option<Delegation>> {
                let sql = format!(
                    "SELECT {DELEGATION_COLUMNS} FROM api_delegations WHERE staking_tx_hash = $1"
                );
                let row: Option<DelegationDbRow> = sqlx::query_as(&sql)
                    .bind(hash.to_string())
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(StoreError::db("load delegation"))?;
                row.map(DelegationDbRow::decode).transpose()
            }

            async fn set_state(
                tx: &mut Tx,
                hash: &Txid,
                from: &[DelegationState],
                to: DelegationState,
            ) -> Result<bool> {
                let states: Vec<String> =
                    from.iter().map(|s| format!("'{}'", s.as_str())).collect();
                let sql = format!(
                    "UPDATE api_delegations SET state = $1 WHERE staking_tx_hash = $2 AND state IN ({})",
                    states.join(", ")
                );
                let done = sqlx::query(&sql)
                    .bind(to.as_str())
                    .bind(hash.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(StoreError::db("update delegation state"))?;
                Ok(done.rows_affected() == 1)
            }

            async fn timelock(tx: &mut Tx, hash: &Txid, expire: u64, kind: ExpiryKind) -> Result<()> {
                sqlx::query(
                    "INSERT INTO api_timelock_queue (staking_tx_hash, expire_height, tx_type) \
                     VALUES ($1, $2, $3)",
                )
                .bind(hash.to_string())
                .bind(i64_of("expire_height", expire)?)
                .bind(kind.as_str())
                .execute(&mut **tx)
                .await
                .map_err(StoreError::db("insert timelock row"))?;
                Ok(())
            }

            /// Takes the stats lock `(hash, state)`; `false` if it was taken before.
            async fn stats_lock(tx: &mut Tx, hash: &Txid, state: &str) -> Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO api_stats_lock (staking_tx_hash, state) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(hash.to_string())
                .bind(state)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::db("take stats lock"))?;
                Ok(done.rows_affected() == 1)
            }

            /// Counts a delegation in (`enter`) or takes it out of the active counters, once.
            async fn stats(
                tx: &mut Tx,
                hash: &Txid,
                staker: &str,
                fp: &str,
                value: Amount,
                enter: bool,
            ) -> Result<()> {
                let lock = if enter { "active" } else { "unbonded" };
                if !stats_lock(tx, hash, lock).await? {
                    return Ok(());
                }
                let v = i64_of("staking_value", value.to_sat())?;
                let (atvl, ttvl, adel, tdel) = if enter { (v, v, 1_i64, 1_i64) } else { (-v, 0, -1, 0) };
                sqlx::query(
                    "INSERT INTO api_fp_stats (finality_provider_pk, active_tvl, total_tvl, \
                     active_delegations, total_delegations) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (finality_provider_pk) DO UPDATE SET \
                     active_tvl = api_fp_stats.active_tvl + excluded.active_tvl, \
                     total_tvl = api_fp_stats.total_tvl + excluded.total_tvl, \
                     active_delegations = api_fp_stats.active_delegations + excluded.active_delegations, \
                     total_delegations = api_fp_stats.total_delegations + excluded.total_delegations",
                )
                .bind(fp)
                .bind(atvl)
                .bind(ttvl)
                .bind(adel)
                .bind(tdel)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::db("update fp stats"))?;
                let staker_total: i64 = sqlx::query(
                    "INSERT INTO api_staker_stats (staker_pk, active_tvl, total_tvl, \
                     active_delegations, total_delegations) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (staker_pk) DO UPDATE SET \
                     active_tvl = api_staker_stats.active_tvl + excluded.active_tvl, \
                     total_tvl = api_staker_stats.total_tvl + excluded.total_tvl, \
                     active_delegations = api_staker_stats.active_delegations + excluded.active_delegations, \
                     total_delegations = api_staker_stats.total_delegations + excluded.total_delegations \
                     RETURNING total_delegations",
                )
                .bind(staker)
                .bind(atvl)
                .bind(ttvl)
                .bind(adel)
                .bind(tdel)
                .fetch_one(&mut **tx)
                .await
                .map_err(StoreError::db("update staker stats"))?
                .try_get(0)
                .map_err(StoreError::db("read staker total"))?;
                // A staker is new exactly when this delegation made its total 1.
                let new_staker = i64::from(enter && staker_total == 1);
                sqlx::query(
                    "INSERT INTO api_overall_stats (id, active_tvl, total_tvl, active_delegations, \
                     total_delegations, total_stakers) VALUES (0, $1, $2, $3, $4, $5) \
                     ON CONFLICT (id) DO UPDATE SET \
                     active_tvl = api_overall_stats.active_tvl + excluded.active_tvl, \
                     total_tvl = api_overall_stats.total_tvl + excluded.total_tvl, \
                     active_delegations = api_overall_stats.active_delegations + excluded.active_delegations, \
                     total_delegations = api_overall_stats.total_delegations + excluded.total_delegations, \
                     total_stakers = api_overall_stats.total_stakers + excluded.total_stakers",
                )
                .bind(atvl)
                .bind(ttvl)
                .bind(adel)
                .bind(tdel)
                .bind(new_staker)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::db("update overall stats"))?;
                Ok(())
            }

            async fn leave_active(tx: &mut Tx, d: &Delegation) -> Result<()> {
                if d.is_overflow {
                    return Ok(());
                }
                stats(
                    tx,
                    &d.staking_tx_hash,
                    &d.staker_pk.to_string(),
                    &d.finality_provider_pk.to_string(),
                    d.staking_value,
                    false,
                )
                .await
            }

            async fn mapping(tx: &mut Tx, m: &AddressMapping) -> Result<()> {
                sqlx::query(
                    "INSERT INTO api_pk_address_mappings (staker_pk, taproot, native_segwit_odd, \
                     native_segwit_even) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(m.staker_pk.to_string())
                .bind(&m.taproot)
                .bind(&m.native_segwit_odd)
                .bind(&m.native_segwit_even)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::db("insert address mapping"))?;
                Ok(())
            }

            /// Ends the transaction: commit for a change or an ignore, roll back for a retry.
            async fn finish(tx: Tx, applied: Applied) -> Result<Applied> {
                match applied {
                    Applied::RetryLater(_) | Applied::Duplicate => {
                        tx.rollback().await.map_err(StoreError::db("rollback"))?
                    }
                    Applied::Changed | Applied::Ignored(_) => commit(tx).await?,
                }
                Ok(applied)
            }

            pub(crate) async fn apply_active(
                pool: &$pool,
                key: &ConsumedKey,
                d: &Delegation,
                m: &AddressMapping,
            ) -> Result<Applied> {
                let mut tx = begin(pool).await?;
                if !record(&mut tx, key).await? {
                    return finish(tx, Applied::Duplicate).await;
                }
                let staking = &d.staking_tx;
                let sql = format!(
                    "INSERT INTO api_delegations ({DELEGATION_COLUMNS}) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, NULL, NULL, NULL, $11) \
                     ON CONFLICT DO NOTHING"
                );
                let done = sqlx::query(&sql)
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
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("insert delegation"))?;
                if done.rows_affected() == 0 {
                    return finish(tx, Applied::Ignored("delegation already exists")).await;
                }
                let expire = staking.start_height.saturating_add(staking.timelock);
                timelock(&mut tx, &d.staking_tx_hash, expire, ExpiryKind::Active).await?;
                mapping(&mut tx, m).await?;
                if !d.is_overflow {
                    stats(
                        &mut tx,
                        &d.staking_tx_hash,
                        &d.staker_pk.to_string(),
                        &d.finality_provider_pk.to_string(),
                        d.staking_value,
                        true,
                    )
                    .await?;
                }
                finish(tx, Applied::Changed).await
            }

            pub(crate) async fn apply_unbonding(
                pool: &$pool,
                key: &ConsumedKey,
                hash: &Txid,
                unbonding: &TxInfo,
            ) -> Result<Applied> {
                use DelegationState::*;
                let mut tx = begin(pool).await?;
                if !record(&mut tx, key).await? {
                    return finish(tx, Applied::Duplicate).await;
                }
                let Some(d) = load(&mut tx, hash).await? else {
                    return finish(tx, Applied::RetryLater(format!("delegation {hash} not found"))).await;
                };
                if matches!(d.state, Unbonding | Unbonded | Withdrawn) {
                    return finish(tx, Applied::Ignored("delegation already past unbonding")).await;
                }
                let done = sqlx::query(
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
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("set unbonding"))?;
                if done.rows_affected() != 1 {
                    return finish(tx, Applied::RetryLater(format!("delegation {hash} changed concurrently"))).await;
                }
                let expire = unbonding.start_height.saturating_add(unbonding.timelock);
                timelock(&mut tx, hash, expire, ExpiryKind::Unbonding).await?;
                leave_active(&mut tx, &d).await?;
                finish(tx, Applied::Changed).await
            }

            pub(crate) async fn apply_expired(
                pool: &$pool,
                key: &ConsumedKey,
                hash: &Txid,
                kind: ExpiryKind,
            ) -> Result<Applied> {
                use DelegationState::*;
                let mut tx = begin(pool).await?;
                if !record(&mut tx, key).await? {
                    return finish(tx, Applied::Duplicate).await;
                }
                let Some(d) = load(&mut tx, hash).await? else {
                    return finish(tx, Applied::RetryLater(format!("delegation {hash} not found"))).await;
                };
                let outcome = match (kind, d.state) {
                    (_, Unbonded | Withdrawn) => Applied::Ignored("delegation already unbonded"),
                    (ExpiryKind::Active, Unbonding) => {
                        Applied::Ignored("staking timelock expired after unbonding")
                    }
                    (ExpiryKind::Active, Active | UnbondingRequested) => {
                        if !set_state(&mut tx, hash, &[Active, UnbondingRequested], Unbonded).await? {
                            return finish(tx, Applied::RetryLater(format!("delegation {hash} changed concurrently"))).await;
                        }
                        leave_active(&mut tx, &d).await?;
                        Applied::Changed
                    }
                    (ExpiryKind::Unbonding, Unbonding) => {
                        if !set_state(&mut tx, hash, &[Unbonding], Unbonded).await? {
                            return finish(tx, Applied::RetryLater(format!("delegation {hash} changed concurrently"))).await;
                        }
                        Applied::Changed
                    }
                    (ExpiryKind::Unbonding, Active | UnbondingRequested) => Applied::RetryLater(
                        format!("unbonding expiry for {hash} before its unbonding event"),
                    ),
                };
                finish(tx, outcome).await
            }

            pub(crate) async fn apply_withdraw(
                pool: &$pool,
                key: &ConsumedKey,
                hash: &Txid,
            ) -> Result<Applied> {
                use DelegationState::*;
                let mut tx = begin(pool).await?;
                if !record(&mut tx, key).await? {
                    return finish(tx, Applied::Duplicate).await;
                }
                let Some(d) = load(&mut tx, hash).await? else {
                    return finish(tx, Applied::RetryLater(format!("delegation {hash} not found"))).await;
                };
                let outcome = match d.state {
                    Withdrawn => Applied::Ignored("delegation already withdrawn"),
                    Unbonded => {
                        if !set_state(&mut tx, hash, &[Unbonded], Withdrawn).await? {
                            return finish(tx, Applied::RetryLater(format!("delegation {hash} changed concurrently"))).await;
                        }
                        Applied::Changed
                    }
                    other => Applied::RetryLater(format!(
                        "withdraw of {hash} while it is {other}: waiting for its expiry"
                    )),
                };
                finish(tx, outcome).await
            }

            pub(crate) async fn apply_btc_info(
                pool: &$pool,
                key: &ConsumedKey,
                info: &BtcInfo,
            ) -> Result<Applied> {
                let mut tx = begin(pool).await?;
                if !record(&mut tx, key).await? {
                    return finish(tx, Applied::Duplicate).await;
                }
                let done = sqlx::query(
                    "INSERT INTO api_btc_info (id, height, confirmed_tvl, unconfirmed_tvl) \
                     VALUES (0, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET \
                     height = excluded.height, confirmed_tvl = excluded.confirmed_tvl, \
                     unconfirmed_tvl = excluded.unconfirmed_tvl \
                     WHERE excluded.height > api_btc_info.height",
                )
                .bind(i64_of("height", info.height)?)
                .bind(i64_of("confirmed_tvl", info.confirmed_tvl)?)
                .bind(i64_of("unconfirmed_tvl", info.unconfirmed_tvl)?)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("upsert btc info"))?;
                let outcome = if done.rows_affected() == 1 {
                    Applied::Changed
                } else {
                    Applied::Ignored("not higher than the stored height")
                };
                finish(tx, outcome).await
            }

            pub(crate) async fn apply_stats(
                pool: &$pool,
                key: &ConsumedKey,
                change: &StatsChange,
                m: Option<&AddressMapping>,
            ) -> Result<Applied> {
                let mut tx = begin(pool).await?;
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
                            return finish(tx, Applied::RetryLater(format!(
                                "legacy stats event for unknown delegation {}",
                                change.staking_tx_hash
                            )))
                            .await
                        }
                    },
                };
                if !overflow {
                    stats(
                        &mut tx,
                        &change.staking_tx_hash,
                        &change.staker_pk.to_string(),
                        &change.finality_provider_pk.to_string(),
                        change.staking_value,
                        change.entering_active,
                    )
                    .await?;
                }
                finish(tx, Applied::Changed).await
            }

            pub(crate) async fn request_unbonding(
                pool: &$pool,
                r: &NewUnbondingRequest,
            ) -> Result<RequestOutcome> {
                let mut tx = begin(pool).await?;
                let done = sqlx::query(
                    "UPDATE api_delegations SET state = 'unbonding_requested' \
                     WHERE staking_tx_hash = $1 AND state = 'active'",
                )
                .bind(r.staking_tx_hash.to_string())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("request unbonding"))?;
                if done.rows_affected() != 1 {
                    tx.rollback().await.map_err(StoreError::db("rollback"))?;
                    return Ok(RequestOutcome::NotActive);
                }
                let inserted = sqlx::query(
                    "INSERT INTO api_unbonding_requests (staking_tx_hash, unbonding_tx_hash, \
                     unbonding_tx_hex, staker_pk, finality_provider_pk, staker_signature_hex, \
                     staking_tx_hex, staking_output_index, staking_timelock, staking_amount, state, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'accepted', $11)",
                )
                .bind(r.staking_tx_hash.to_string())
                .bind(r.unbonding_tx_hash.to_string())
                .bind(&r.unbonding_tx_hex)
                .bind(r.staker_pk.to_string())
                .bind(r.finality_provider_pk.to_string())
                .bind(&r.staker_signature_hex)
                .bind(&r.staking_tx_hex)
                .bind(i64_of("output_index", r.staking_output_index)?)
                .bind(i64_of("timelock", r.staking_timelock)?)
                .bind(i64_of("staking_amount", r.staking_amount.to_sat())?)
                .bind(chrono::Utc::now().timestamp())
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {
                        commit(tx).await?;
                        Ok(RequestOutcome::Accepted)
                    }
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        tx.rollback().await.map_err(StoreError::db("rollback"))?;
                        Ok(RequestOutcome::AlreadyExists)
                    }
                    Err(e) => Err(StoreError::Database { op: "insert unbonding request", source: e }),
                }
            }

            pub(crate) async fn delegation(pool: &$pool, hash: &Txid) -> Result<Option<Delegation>> {
                let sql = format!(
                    "SELECT {DELEGATION_COLUMNS} FROM api_delegations WHERE staking_tx_hash = $1"
                );
                let row: Option<DelegationDbRow> = sqlx::query_as(&sql)
                    .bind(hash.to_string())
                    .fetch_optional(pool)
                    .await
                    .map_err(StoreError::db("get delegation"))?;
                row.map(DelegationDbRow::decode).transpose()
            }

            pub(crate) async fn delegations_by_staker(
                pool: &$pool,
                staker_pk: &XOnlyPublicKey,
                staker: &str,
                state: Option<DelegationState>,
                after: Option<&DelegationCursor>,
                limit: u32,
            ) -> Result<Vec<Delegation>> {
                let mut sql = format!(
                    "SELECT {DELEGATION_COLUMNS} FROM api_delegations WHERE staker_pk = $1"
                );
                if state.is_some() {
                    sql.push_str(" AND state = $2");
                } else {
                    sql.push_str(" AND $2 = ''");
                }
                if after.is_some() {
                    // `height <= $3` bounds the index range scan (the page starts where the
                    // last one ended instead of filtering every newer row again); the OR only
                    // sorts out rows of the cursor's own height.
                    sql.push_str(
                        " AND staking_start_height <= $3 AND (staking_start_height < $3 OR \
                         staking_tx_hash > $4)",
                    );
                } else {
                    sql.push_str(" AND $3 = 0 AND $4 = ''");
                }
                sql.push_str(" ORDER BY staking_start_height DESC, staking_tx_hash ASC LIMIT $5");
                let (h, hash) = match after {
                    Some(c) => (i64_of("start_height", c.start_height)?, c.staking_tx_hash.to_string()),
                    None => (0, String::new()),
                };
                let rows: Vec<DelegationDbRow> = sqlx::query_as(&sql)
                    .bind(staker)
                    .bind(state.map_or("", DelegationState::as_str))
                    .bind(h)
                    .bind(hash)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
                    .map_err(StoreError::db("list staker delegations"))?;
                rows.into_iter()
                    .map(|r| r.decode_for(Some((staker, staker_pk))))
                    .collect()
            }

            pub(crate) async fn has_active_delegation(
                pool: &$pool,
                staker: &str,
                since: Option<i64>,
            ) -> Result<bool> {
                let row = sqlx::query(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM api_delegations WHERE staker_pk = $1 \
                     AND state = 'active' AND staking_start_timestamp >= $2 LIMIT 1) t",
                )
                .bind(staker)
                .bind(since.unwrap_or(i64::MIN))
                .fetch_one(pool)
                .await
                .map_err(StoreError::db("check active delegation"))?;
                let n: i64 = row.try_get(0).map_err(StoreError::db("check active delegation"))?;
                Ok(n > 0)
            }

            fn counters(row: &<$db as sqlx::Database>::Row, op: &'static str) -> Result<Counters> {
                Ok(Counters {
                    active_tvl: row.try_get("active_tvl").map_err(StoreError::db(op))?,
                    total_tvl: row.try_get("total_tvl").map_err(StoreError::db(op))?,
                    active_delegations: row.try_get("active_delegations").map_err(StoreError::db(op))?,
                    total_delegations: row.try_get("total_delegations").map_err(StoreError::db(op))?,
                })
            }

            /// `table` and `key` are constants of this module, never input.
            pub(crate) async fn key_stats_page(
                pool: &$pool,
                table: &'static str,
                key: &'static str,
                after: Option<&TvlCursor>,
                limit: u32,
            ) -> Result<Vec<KeyStats>> {
                let filter = if after.is_some() {
                    format!("WHERE active_tvl < $1 OR (active_tvl = $1 AND {key} > $2)")
                } else {
                    "WHERE $1 = 0 AND $2 = ''".to_owned()
                };
                let sql = format!(
                    "SELECT {key} AS pk, active_tvl, total_tvl, active_delegations, total_delegations \
                     FROM {table} {filter} ORDER BY active_tvl DESC, {key} ASC LIMIT $3"
                );
                let (tvl, pk) = match after {
                    Some(c) => (c.active_tvl, c.pk.to_string()),
                    None => (0, String::new()),
                };
                let rows = sqlx::query(&sql)
                    .bind(tvl)
                    .bind(pk)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
                    .map_err(StoreError::db("list stats"))?;
                rows.iter()
                    .map(|row| {
                        let pk: String = row.try_get("pk").map_err(StoreError::db("list stats"))?;
                        Ok(KeyStats { pk: parse_pk(&pk)?, counters: counters(row, "list stats")? })
                    })
                    .collect()
            }

            pub(crate) async fn key_stats(
                pool: &$pool,
                table: &'static str,
                key: &'static str,
                pk: &str,
            ) -> Result<Option<KeyStats>> {
                let sql = format!(
                    "SELECT {key} AS pk, active_tvl, total_tvl, active_delegations, total_delegations \
                     FROM {table} WHERE {key} = $1"
                );
                let row = sqlx::query(&sql)
                    .bind(pk)
                    .fetch_optional(pool)
                    .await
                    .map_err(StoreError::db("get stats"))?;
                row.map(|row| {
                    let pk: String = row.try_get("pk").map_err(StoreError::db("get stats"))?;
                    Ok(KeyStats { pk: parse_pk(&pk)?, counters: counters(&row, "get stats")? })
                })
                .transpose()
            }

            pub(crate) async fn overall(pool: &$pool) -> Result<OverallStats> {
                let row = sqlx::query(
                    "SELECT active_tvl, total_tvl, active_delegations, total_delegations, \
                     total_stakers FROM api_overall_stats WHERE id = 0",
                )
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("overall stats"))?;
                match row {
                    None => Ok(OverallStats::default()),
                    Some(row) => Ok(OverallStats {
                        counters: counters(&row, "overall stats")?,
                        total_stakers: row.try_get("total_stakers").map_err(StoreError::db("overall stats"))?,
                    }),
                }
            }

            pub(crate) async fn btc_info(pool: &$pool) -> Result<Option<BtcInfo>> {
                let row = sqlx::query(
                    "SELECT height, confirmed_tvl, unconfirmed_tvl FROM api_btc_info WHERE id = 0",
                )
                .fetch_optional(pool)
                .await
                .map_err(StoreError::db("btc info"))?;
                row.map(|row| {
                    let get = |c: &'static str| -> Result<u64> {
                        let v: i64 = row.try_get(c).map_err(StoreError::db("btc info"))?;
                        u64_of(c, v)
                    };
                    Ok(BtcInfo {
                        height: get("height")?,
                        confirmed_tvl: get("confirmed_tvl")?,
                        unconfirmed_tvl: get("unconfirmed_tvl")?,
                    })
                })
                .transpose()
            }

            /// Address → staker key for the given addresses (taproot or native segwit).
            pub(crate) async fn pubkeys_for(
                pool: &$pool,
                addresses: &[String],
            ) -> Result<Vec<(String, String)>> {
                let mut found = Vec::new();
                for address in addresses {
                    let row = sqlx::query(
                        "SELECT staker_pk FROM api_pk_address_mappings WHERE taproot = $1 \
                         OR native_segwit_odd = $1 OR native_segwit_even = $1",
                    )
                    .bind(address)
                    .fetch_optional(pool)
                    .await
                    .map_err(StoreError::db("pubkey lookup"))?;
                    if let Some(row) = row {
                        let pk: String = row.try_get(0).map_err(StoreError::db("pubkey lookup"))?;
                        found.push((address.clone(), pk));
                    }
                }
                Ok(found)
            }

            pub(crate) async fn timelock_rows(pool: &$pool, hash: &Txid) -> Result<Vec<TimelockRow>> {
                let rows = sqlx::query(
                    "SELECT id, staking_tx_hash, expire_height, tx_type FROM api_timelock_queue \
                     WHERE staking_tx_hash = $1 ORDER BY id",
                )
                .bind(hash.to_string())
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("timelock rows"))?;
                rows.iter()
                    .map(|row| {
                        let op = "timelock rows";
                        let hash: String = row.try_get("staking_tx_hash").map_err(StoreError::db(op))?;
                        let kind: String = row.try_get("tx_type").map_err(StoreError::db(op))?;
                        let expire: i64 = row.try_get("expire_height").map_err(StoreError::db(op))?;
                        Ok(TimelockRow {
                            id: row.try_get("id").map_err(StoreError::db(op))?,
                            staking_tx_hash: parse_txid(&hash)?,
                            expire_height: u64_of("expire_height", expire)?,
                            tx_type: match kind.as_str() {
                                "active" => ExpiryKind::Active,
                                "unbonding" => ExpiryKind::Unbonding,
                                _ => {
                                    return Err(StoreError::Corrupt {
                                        what: "timelock tx_type",
                                        value: kind,
                                        reason: "expected active or unbonding".into(),
                                    })
                                }
                            },
                        })
                    })
                    .collect()
            }

            pub(crate) async fn unbonding_requests(pool: &$pool) -> Result<Vec<UnbondingRequest>> {
                let rows = sqlx::query(
                    "SELECT id, staking_tx_hash, unbonding_tx_hash, unbonding_tx_hex, staker_pk, \
                     finality_provider_pk, staker_signature_hex, staking_tx_hex, \
                     staking_output_index, staking_timelock, staking_amount, state, lease_until, \
                     failure_reason, created_at FROM api_unbonding_requests ORDER BY id",
                )
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("unbonding requests"))?;
                rows.iter()
                    .map(|row| {
                        let op = "unbonding requests";
                        let s = |c: &str| -> Result<String> { row.try_get(c).map_err(StoreError::db(op)) };
                        let n = |c: &str| -> Result<i64> { row.try_get(c).map_err(StoreError::db(op)) };
                        let state = s("state")?;
                        let lease: Option<i64> = row.try_get("lease_until").map_err(StoreError::db(op))?;
                        let reason: Option<String> = row.try_get("failure_reason").map_err(StoreError::db(op))?;
                        let state = match state.as_str() {
                            "accepted" => UnbondingRequestState::Accepted,
                            "claimed" => UnbondingRequestState::Claimed { lease_until: lease.unwrap_or(0) },
                            "sent" => UnbondingRequestState::Sent,
                            "failed" => UnbondingRequestState::Failed { reason: reason.unwrap_or_default() },
                            _ => {
                                return Err(StoreError::Corrupt {
                                    what: "unbonding request state",
                                    value: state,
                                    reason: "unknown state".into(),
                                })
                            }
                        };
                        Ok(UnbondingRequest {
                            id: n("id")?,
                            request: NewUnbondingRequest {
                                staking_tx_hash: parse_txid(&s("staking_tx_hash")?)?,
                                unbonding_tx_hash: parse_txid(&s("unbonding_tx_hash")?)?,
                                unbonding_tx_hex: s("unbonding_tx_hex")?,
                                staker_pk: parse_pk(&s("staker_pk")?)?,
                                finality_provider_pk: parse_pk(&s("finality_provider_pk")?)?,
                                staker_signature_hex: s("staker_signature_hex")?,
                                staking_tx_hex: s("staking_tx_hex")?,
                                staking_output_index: u64_of("staking_output_index", n("staking_output_index")?)?,
                                staking_timelock: u64_of("staking_timelock", n("staking_timelock")?)?,
                                staking_amount: Amount::from_sat(u64_of("staking_amount", n("staking_amount")?)?),
                            },
                            state,
                            created_at: n("created_at")?,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn insert_unprocessable(
                pool: &$pool,
                queue: &str,
                body: &str,
                receipt: &str,
                reason: &str,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO api_unprocessable_messages (queue, message_body, receipt, reason, \
                     created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(queue)
                .bind(body)
                .bind(receipt)
                .bind(reason)
                .bind(chrono::Utc::now().timestamp())
                .execute(pool)
                .await
                .map_err(StoreError::db("insert unprocessable message"))?;
                Ok(())
            }

            pub(crate) async fn unprocessable(pool: &$pool) -> Result<Vec<UnprocessableMessage>> {
                let rows = sqlx::query(
                    "SELECT id, queue, message_body, receipt, reason FROM api_unprocessable_messages \
                     ORDER BY id",
                )
                .fetch_all(pool)
                .await
                .map_err(StoreError::db("list unprocessable messages"))?;
                rows.iter()
                    .map(|row| {
                        let op = "list unprocessable messages";
                        Ok(UnprocessableMessage {
                            id: row.try_get("id").map_err(StoreError::db(op))?,
                            queue: row.try_get("queue").map_err(StoreError::db(op))?,
                            message_body: row.try_get("message_body").map_err(StoreError::db(op))?,
                            receipt: row.try_get("receipt").map_err(StoreError::db(op))?,
                            reason: row.try_get("reason").map_err(StoreError::db(op))?,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn delete_unprocessable(pool: &$pool, id: i64) -> Result<bool> {
                let done = sqlx::query("DELETE FROM api_unprocessable_messages WHERE id = $1")
                    .bind(id)
                    .execute(pool)
                    .await
                    .map_err(StoreError::db("delete unprocessable message"))?;
                Ok(done.rows_affected() == 1)
            }

            pub(crate) async fn insert_terms(pool: &$pool, address: &str, public_key: &str) -> Result<()> {
                sqlx::query(
                    "INSERT INTO api_terms_acceptance (address, public_key, created_at) VALUES ($1, $2, $3)",
                )
                .bind(address)
                .bind(public_key)
                .bind(chrono::Utc::now().timestamp())
                .execute(pool)
                .await
                .map_err(StoreError::db("insert terms acceptance"))?;
                Ok(())
            }

            pub(crate) async fn terms_count(pool: &$pool) -> Result<i64> {
                let row = sqlx::query("SELECT COUNT(*) FROM api_terms_acceptance")
                    .fetch_one(pool)
                    .await
                    .map_err(StoreError::db("count terms acceptance"))?;
                row.try_get(0).map_err(StoreError::db("count terms acceptance"))
            }

            pub(crate) async fn ping(pool: &$pool) -> Result<()> {
                sqlx::query("SELECT 1")
                    .execute(pool)
                    .await
                    .map_err(StoreError::db("ping"))?;
                Ok(())
            }

        }
    };
}

api_backend!(pg, sqlx::Postgres, sqlx::PgPool);
api_backend!(lite, sqlx::Sqlite, sqlx::SqlitePool);
