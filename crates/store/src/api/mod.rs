//! The staking API's tables (migration `1000_api.sql`): delegations and their state machine,
//! statistics with the stats lock, address mappings, BTC info, unprocessable messages, terms
//! acceptance and the consumers' idempotency records; the API also writes the timelock rows
//! the expiry checker reads and the unbonding requests the pipeline claims.
//!
//! * `consume.rs`: every consumed message is applied by one method in one transaction that
//!   also records the message (`api_consumed_messages`) and the statistics change it implies;
//!   [`Applied`] says what happened, and `RetryLater` leaves the database untouched.
//! * `stats.rs`: the counters, written under the stats lock and read for `/v1/stats`.
//! * `queries.rs`: what the HTTP handlers read, and the unbonding requests they accept.
//! * `messages.rs`: unprocessable messages and terms acceptance.

mod codec;
mod consume;
mod messages;
mod queries;
mod stats;
mod types;

pub(crate) use codec::{i64_of, parse_pk, parse_txid, u64_of};
pub(crate) use queries::expiry_kind;
pub use types::{
    AddressMapping, Applied, BtcInfo, ConsumedKey, Counters, Delegation, DelegationCursor,
    DelegationState, ExpiryKind, KeyStats, NewUnbondingRequest, OverallStats, RequestOutcome,
    StatsChange, TimelockRow, TvlCursor, TxInfo, UnbondingRequest, UnbondingRequestState,
    UnknownState, UnprocessableMessage,
};

use crate::db::Db;
use crate::error::Result;

/// The API's handle ([`Db::api`]): what the HTTP handlers and the queue consumers do. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct ApiStore {
    db: Db,
}

impl ApiStore {
    pub(crate) fn new(db: Db) -> Self {
        ApiStore { db }
    }

    /// `SELECT 1` (the healthcheck).
    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }
}
