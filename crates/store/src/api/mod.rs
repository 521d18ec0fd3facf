//! The staking API's tables (migration `1000_api.sql`): delegations and their state machine,
//! statistics with the stats lock, the timelock queue (read by the expiry checker), unbonding
//! requests (read by the pipeline), BTC info, address mappings, unprocessable messages, terms
//! acceptance and the consumers' idempotency records.
//!
//! Every consumed message is applied by one method in one transaction that also records the
//! message (`api_consumed_messages`) and the statistics change it implies; [`Applied`] says what
//! happened, and `RetryLater` leaves the database untouched.

mod backend;
mod codec;
mod expiry;
mod pipeline;
mod types;

use std::str::FromStr;
use std::time::Duration;

use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::Txid;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::{Result, StoreError};
use crate::{PgStore, SqliteStore};

pub use expiry::{ClaimedExpiry, ExpiryClaim, ExpiryOutbox, ExpiryOutboxRow};
pub use pipeline::{ClaimedUnbonding, Recorded, UnbondingProgress};
pub use types::{
    AddressMapping, Applied, BtcInfo, ConsumedKey, Counters, Delegation, DelegationCursor,
    DelegationState, ExpiryKind, KeyStats, NewUnbondingRequest, OverallStats, RequestOutcome,
    StatsChange, TimelockRow, TvlCursor, TxInfo, UnbondingRequest, UnbondingRequestState,
    UnknownState, UnprocessableMessage,
};

/// The API's storage on PostgreSQL or SQLite. Cheap to clone.
#[derive(Debug, Clone)]
pub enum ApiStore {
    Postgres(PgPool),
    Sqlite(SqliteStore),
}

macro_rules! on_backend {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match $self {
            ApiStore::Postgres(p) => backend::pg::$f(p, $($arg),*).await,
            ApiStore::Sqlite(s) => backend::lite::$f(s.pool(), $($arg),*).await,
        }
    };
}

/// A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
const IDLE_PING_AFTER: Duration = Duration::from_secs(5);

const FP_TABLE: (&str, &str) = ("api_fp_stats", "finality_provider_pk");
const STAKER_TABLE: (&str, &str) = ("api_staker_stats", "staker_pk");

impl ApiStore {
    /// `postgres://…` (a pool of `max_connections`) or `sqlite:PATH`. Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .map_err(StoreError::db("parse the PostgreSQL URL"))?
                // Every statement is prepared once per connection and its plan does not depend
                // on the values (each query has exactly one right index). PostgreSQL's default
                // re-plans the first executions with the values and may keep doing so; planning
                // cost 0.1 ms against 0.05 ms of execution for a page of delegations.
                .options([("plan_cache_mode", "force_generic_plan")]);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                // sqlx pings every connection it hands out by default: a second round trip
                // per query, a sixth of the API's CPU on a page of delegations. Only a
                // connection idle for a while is checked (a restarted server has dropped it);
                // one in steady use fails its query instead, its error is transient and sqlx
                // closes it, so the next acquire gets a fresh one.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > IDLE_PING_AFTER {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options)
                .await
                .map_err(StoreError::db("connect to PostgreSQL"))?;
            Ok(ApiStore::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            Ok(ApiStore::Sqlite(SqliteStore::connect(url).await?))
        } else {
            Err(StoreError::UnsupportedUrl {
                url: url.to_owned(),
            })
        }
    }

    /// Applies every embedded migration of the backend (the API's are numbered 1000+).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            ApiStore::Postgres(p) => PgStore::from_pool(p.clone()).migrate().await,
            ApiStore::Sqlite(s) => s.migrate().await,
        }
    }

    /// `SELECT 1` (the healthcheck).
    pub async fn ping(&self) -> Result<()> {
        on_backend!(self, ping())
    }

    /// `ActiveStakingEvent`: insert the delegation `active` with its timelock row, address
    /// mapping and (unless overflow) stats; an existing delegation is ignored.
    pub async fn apply_active(
        &self,
        key: &ConsumedKey,
        delegation: &Delegation,
        mapping: &AddressMapping,
    ) -> Result<Applied> {
        on_backend!(self, apply_active(key, delegation, mapping))
    }

    /// `UnbondingStakingEvent`: `active | unbonding_requested → unbonding` with the unbonding tx,
    /// its timelock row and the active counters decremented. Unknown delegation ⇒ retry; already
    /// `unbonding`, `unbonded` or `withdrawn` ⇒ ignored.
    pub async fn apply_unbonding(
        &self,
        key: &ConsumedKey,
        staking_tx_hash: &Txid,
        unbonding: &TxInfo,
    ) -> Result<Applied> {
        on_backend!(self, apply_unbonding(key, staking_tx_hash, unbonding))
    }

    /// `ExpiredStakingEvent`: staking expiry moves `active | unbonding_requested → unbonded`
    /// (active counters fall); unbonding expiry moves `unbonding → unbonded`.
    pub async fn apply_expired(
        &self,
        key: &ConsumedKey,
        staking_tx_hash: &Txid,
        kind: ExpiryKind,
    ) -> Result<Applied> {
        on_backend!(self, apply_expired(key, staking_tx_hash, kind))
    }

    /// `WithdrawStakingEvent`: `unbonded → withdrawn`; earlier states ⇒ retry.
    pub async fn apply_withdraw(
        &self,
        key: &ConsumedKey,
        staking_tx_hash: &Txid,
    ) -> Result<Applied> {
        on_backend!(self, apply_withdraw(key, staking_tx_hash))
    }

    /// `BtcInfoEvent`: kept only if higher than the stored height.
    pub async fn apply_btc_info(&self, key: &ConsumedKey, info: &BtcInfo) -> Result<Applied> {
        on_backend!(self, apply_btc_info(key, info))
    }

    /// `StatsEvent` from another producer, deduplicated with our own changes by the stats lock.
    pub async fn apply_stats(
        &self,
        key: &ConsumedKey,
        change: &StatsChange,
        mapping: Option<&AddressMapping>,
    ) -> Result<Applied> {
        on_backend!(self, apply_stats(key, change, mapping))
    }

    /// `active → unbonding_requested` and the request row, in one transaction.
    pub async fn request_unbonding(&self, request: &NewUnbondingRequest) -> Result<RequestOutcome> {
        on_backend!(self, request_unbonding(request))
    }

    pub async fn delegation(&self, staking_tx_hash: &Txid) -> Result<Option<Delegation>> {
        on_backend!(self, delegation(staking_tx_hash))
    }

    /// A staker's delegations, start height desc then hash asc, after `after`, at most `limit`.
    pub async fn delegations_by_staker(
        &self,
        staker: &XOnlyPublicKey,
        state: Option<DelegationState>,
        after: Option<&DelegationCursor>,
        limit: u32,
    ) -> Result<Vec<Delegation>> {
        let text = hex::encode(staker.serialize());
        on_backend!(
            self,
            delegations_by_staker(staker, &text, state, after, limit)
        )
    }

    /// Whether the staker has an `active` delegation (starting at or after `since`, Unix s).
    pub async fn has_active_delegation(
        &self,
        staker: &XOnlyPublicKey,
        since: Option<i64>,
    ) -> Result<bool> {
        let staker = staker.to_string();
        on_backend!(self, has_active_delegation(&staker, since))
    }

    /// FP stats by `active_tvl` desc, key asc.
    pub async fn fp_stats_page(
        &self,
        after: Option<&TvlCursor>,
        limit: u32,
    ) -> Result<Vec<KeyStats>> {
        on_backend!(self, key_stats_page(FP_TABLE.0, FP_TABLE.1, after, limit))
    }

    pub async fn fp_stats(&self, pk: &XOnlyPublicKey) -> Result<Option<KeyStats>> {
        let pk = pk.to_string();
        on_backend!(self, key_stats(FP_TABLE.0, FP_TABLE.1, &pk))
    }

    /// Staker stats by `active_tvl` desc, key asc.
    pub async fn staker_stats_page(
        &self,
        after: Option<&TvlCursor>,
        limit: u32,
    ) -> Result<Vec<KeyStats>> {
        on_backend!(
            self,
            key_stats_page(STAKER_TABLE.0, STAKER_TABLE.1, after, limit)
        )
    }

    pub async fn staker_stats(&self, pk: &XOnlyPublicKey) -> Result<Option<KeyStats>> {
        let pk = pk.to_string();
        on_backend!(self, key_stats(STAKER_TABLE.0, STAKER_TABLE.1, &pk))
    }

    pub async fn overall_stats(&self) -> Result<OverallStats> {
        on_backend!(self, overall())
    }

    pub async fn btc_info(&self) -> Result<Option<BtcInfo>> {
        on_backend!(self, btc_info())
    }

    /// `(address, staker key hex)` for each address known to a mapping.
    pub async fn pubkeys_for(&self, addresses: &[String]) -> Result<Vec<(String, String)>> {
        on_backend!(self, pubkeys_for(addresses))
    }

    /// The timelock rows of a delegation, in insertion order.
    pub async fn timelock_rows(&self, staking_tx_hash: &Txid) -> Result<Vec<TimelockRow>> {
        on_backend!(self, timelock_rows(staking_tx_hash))
    }

    /// Every unbonding request, in insertion order.
    pub async fn unbonding_requests(&self) -> Result<Vec<UnbondingRequest>> {
        on_backend!(self, unbonding_requests())
    }

    pub async fn insert_unprocessable(
        &self,
        queue: &str,
        body: &str,
        receipt: &str,
        reason: &str,
    ) -> Result<()> {
        on_backend!(self, insert_unprocessable(queue, body, receipt, reason))
    }

    pub async fn unprocessable(&self) -> Result<Vec<UnprocessableMessage>> {
        on_backend!(self, unprocessable())
    }

    pub async fn delete_unprocessable(&self, id: i64) -> Result<bool> {
        on_backend!(self, delete_unprocessable(id))
    }

    pub async fn insert_terms(&self, address: &str, public_key: &str) -> Result<()> {
        on_backend!(self, insert_terms(address, public_key))
    }

    pub async fn terms_count(&self) -> Result<i64> {
        on_backend!(self, terms_count())
    }
}
