//! Statistics: per finality provider, per staker and overall, changed only under the stats lock
//! (`api_stats_lock`: one row per delegation and direction), so our own changes and a
//! reference producer's `StatsEvent` for the same delegation count once.

use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Amount, Txid};

use super::codec::{i64_of, parse_pk};
use super::types::{Counters, Delegation, KeyStats, OverallStats, TvlCursor};
use super::ApiStore;
use crate::backend::Tx;
use crate::error::Result;

/// Whose counters a stats change moves.
pub(super) struct Entry<'a> {
    pub hash: &'a Txid,
    pub staker: String,
    pub fp: String,
    pub value: Amount,
}

impl<'a> Entry<'a> {
    pub(super) fn of(d: &'a Delegation) -> Self {
        Entry {
            hash: &d.staking_tx_hash,
            staker: d.staker_pk.to_string(),
            fp: d.finality_provider_pk.to_string(),
            value: d.staking_value,
        }
    }
}

/// Takes the stats lock `(hash, state)`; `false` if it was taken before.
async fn lock(tx: &mut Tx, hash: &Txid, state: &str) -> Result<bool> {
    let taken = tx
        .query(
            "INSERT INTO api_stats_lock (staking_tx_hash, state) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(hash.to_string())
        .bind(state)
        .execute("take stats lock")
        .await?;
    Ok(taken == 1)
}

/// Counts a delegation in (`enter`) or takes it out of the active counters, once.
pub(super) async fn count(tx: &mut Tx, e: &Entry<'_>, enter: bool) -> Result<()> {
    if !lock(tx, e.hash, if enter { "active" } else { "unbonded" }).await? {
        return Ok(());
    }
    let v = i64_of("staking_value", e.value.to_sat())?;
    let (atvl, ttvl, adel, tdel) = if enter {
        (v, v, 1_i64, 1_i64)
    } else {
        (-v, 0, -1, 0)
    };
    tx.query(
        "INSERT INTO api_fp_stats (finality_provider_pk, active_tvl, total_tvl, \
         active_delegations, total_delegations) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (finality_provider_pk) DO UPDATE SET \
         active_tvl = api_fp_stats.active_tvl + excluded.active_tvl, \
         total_tvl = api_fp_stats.total_tvl + excluded.total_tvl, \
         active_delegations = api_fp_stats.active_delegations + excluded.active_delegations, \
         total_delegations = api_fp_stats.total_delegations + excluded.total_delegations",
    )
    .bind(&e.fp)
    .bind(atvl)
    .bind(ttvl)
    .bind(adel)
    .bind(tdel)
    .execute("update fp stats")
    .await?;
    let staker_total: i64 = tx
        .query(
            "INSERT INTO api_staker_stats (staker_pk, active_tvl, total_tvl, \
             active_delegations, total_delegations) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (staker_pk) DO UPDATE SET \
             active_tvl = api_staker_stats.active_tvl + excluded.active_tvl, \
             total_tvl = api_staker_stats.total_tvl + excluded.total_tvl, \
             active_delegations = api_staker_stats.active_delegations \
               + excluded.active_delegations, \
             total_delegations = api_staker_stats.total_delegations \
               + excluded.total_delegations \
             RETURNING total_delegations",
        )
        .bind(&e.staker)
        .bind(atvl)
        .bind(ttvl)
        .bind(adel)
        .bind(tdel)
        .scalar("update staker stats")
        .await?;
    // A staker is new exactly when this delegation made its total 1.
    let new_staker = i64::from(enter && staker_total == 1);
    tx.query(
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
    .execute("update overall stats")
    .await?;
    Ok(())
}

/// Takes a delegation leaving `active` out of the active counters (overflow ones never were).
pub(super) async fn leave_active(tx: &mut Tx, d: &Delegation) -> Result<()> {
    if d.is_overflow {
        return Ok(());
    }
    count(tx, &Entry::of(d), false).await
}

/// A stats table keyed by an x-only key: `(table, key column)`, constants, never input.
type KeyTable = (&'static str, &'static str);
const FP_TABLE: KeyTable = ("api_fp_stats", "finality_provider_pk");
const STAKER_TABLE: KeyTable = ("api_staker_stats", "staker_pk");

/// One row of a key's stats table.
#[derive(sqlx::FromRow)]
struct KeyStatsRow {
    pk: String,
    active_tvl: i64,
    total_tvl: i64,
    active_delegations: i64,
    total_delegations: i64,
}

impl KeyStatsRow {
    fn decode(self) -> Result<KeyStats> {
        Ok(KeyStats {
            pk: parse_pk(&self.pk)?,
            counters: Counters {
                active_tvl: self.active_tvl,
                total_tvl: self.total_tvl,
                active_delegations: self.active_delegations,
                total_delegations: self.total_delegations,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
struct OverallRow {
    active_tvl: i64,
    total_tvl: i64,
    active_delegations: i64,
    total_delegations: i64,
    total_stakers: i64,
}

impl ApiStore {
    /// FP stats by `active_tvl` desc, key asc.
    pub async fn fp_stats_page(
        &self,
        after: Option<&TvlCursor>,
        limit: u32,
    ) -> Result<Vec<KeyStats>> {
        self.key_stats_page(FP_TABLE, after, limit).await
    }

    pub async fn fp_stats(&self, pk: &XOnlyPublicKey) -> Result<Option<KeyStats>> {
        self.key_stats(FP_TABLE, pk).await
    }

    /// Staker stats by `active_tvl` desc, key asc.
    pub async fn staker_stats_page(
        &self,
        after: Option<&TvlCursor>,
        limit: u32,
    ) -> Result<Vec<KeyStats>> {
        self.key_stats_page(STAKER_TABLE, after, limit).await
    }

    pub async fn staker_stats(&self, pk: &XOnlyPublicKey) -> Result<Option<KeyStats>> {
        self.key_stats(STAKER_TABLE, pk).await
    }

    pub async fn overall_stats(&self) -> Result<OverallStats> {
        let row: Option<OverallRow> = self
            .db
            .query(
                "SELECT active_tvl, total_tvl, active_delegations, total_delegations, \
                 total_stakers FROM api_overall_stats WHERE id = 0",
            )
            .fetch_optional("overall stats")
            .await?;
        Ok(row.map_or_else(OverallStats::default, |r| OverallStats {
            counters: Counters {
                active_tvl: r.active_tvl,
                total_tvl: r.total_tvl,
                active_delegations: r.active_delegations,
                total_delegations: r.total_delegations,
            },
            total_stakers: r.total_stakers,
        }))
    }

    async fn key_stats_page(
        &self,
        (table, key): KeyTable,
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
        let rows: Vec<KeyStatsRow> = self
            .db
            .query(&sql)
            .bind(tvl)
            .bind(pk)
            .bind(i64::from(limit))
            .fetch_all("list stats")
            .await?;
        rows.into_iter().map(KeyStatsRow::decode).collect()
    }

    async fn key_stats(
        &self,
        (table, key): KeyTable,
        pk: &XOnlyPublicKey,
    ) -> Result<Option<KeyStats>> {
        let sql = format!(
            "SELECT {key} AS pk, active_tvl, total_tvl, active_delegations, total_delegations \
             FROM {table} WHERE {key} = $1"
        );
        let row: Option<KeyStatsRow> = self
            .db
            .query(&sql)
            .bind(pk.to_string())
            .fetch_optional("get stats")
            .await?;
        row.map(KeyStatsRow::decode).transpose()
    }
}
