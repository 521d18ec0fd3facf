//! The event consumers: each message is decoded and applied in one DB transaction with its
//! idempotency record and the stats change it implies; the transport acks after that commit.
//! A missing predecessor is an error, so the transport retries it through the delay queue;
//! past the retry limit it is stored as unprocessable with the reason.

use std::sync::Arc;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::Network;
use events::{
    Event, ExpiredTxType, Handled, HandlerError, Message, MessageHandler, QueueName, StatsState,
    Transport,
};
use store::api::{
    ApiStore, Applied, BtcInfo, ConsumedKey, Delegation, DelegationState, ExpiryKind, StatsChange,
    TxInfo,
};
use tokio_util::sync::CancellationToken;

use crate::state::address_mapping;

/// The queues the API consumes.
pub const CONSUMED: [QueueName; 6] = [
    QueueName::ActiveStaking,
    QueueName::UnbondingStaking,
    QueueName::WithdrawStaking,
    QueueName::ExpiredStaking,
    QueueName::StakingStats,
    QueueName::BtcInfo,
];

/// Applies queue messages to the API store.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub store: ApiStore,
    pub network: Network,
}

fn key_of(message: &Message) -> ConsumedKey {
    ConsumedKey {
        queue: message.queue.as_str().to_owned(),
        body_sha256: sha256::Hash::hash(&message.body).to_string(),
    }
}

impl Consumer {
    /// Decodes and applies one message.
    pub async fn apply(&self, message: &Message) -> Result<Applied, HandlerError> {
        let key = key_of(message);
        let event = Event::decode(message.queue, &message.body)?;
        let s = &self.store;
        let applied = match event {
            Event::ActiveStaking(e) => {
                let d = Delegation {
                    staking_tx_hash: e.staking_tx_hash,
                    staker_pk: e.staker_pk,
                    finality_provider_pk: e.finality_provider_pk,
                    staking_value: e.staking_value,
                    state: DelegationState::Active,
                    staking_tx: TxInfo {
                        tx_hex: serialize_hex(&e.staking_tx),
                        output_index: e.staking_output_index,
                        start_timestamp: e.staking_start_timestamp,
                        start_height: e.staking_start_height,
                        timelock: e.staking_timelock,
                    },
                    unbonding_tx: None,
                    is_overflow: e.is_overflow,
                };
                s.apply_active(&key, &d, &address_mapping(e.staker_pk, self.network))
                    .await
            }
            Event::UnbondingStaking(e) => {
                let tx = TxInfo {
                    tx_hex: serialize_hex(&e.unbonding_tx),
                    output_index: e.unbonding_output_index,
                    start_timestamp: e.unbonding_start_timestamp,
                    start_height: e.unbonding_start_height,
                    timelock: e.unbonding_timelock,
                };
                s.apply_unbonding(&key, &e.staking_tx_hash, &tx).await
            }
            Event::WithdrawStaking(e) => s.apply_withdraw(&key, &e.staking_tx_hash).await,
            Event::ExpiredStaking(e) => {
                let kind = match e.tx_type {
                    ExpiredTxType::Active => ExpiryKind::Active,
                    ExpiredTxType::Unbonding => ExpiryKind::Unbonding,
                };
                s.apply_expired(&key, &e.staking_tx_hash, kind).await
            }
            Event::Stats(e) => {
                let entering = e.state == StatsState::Active;
                let change = StatsChange {
                    staking_tx_hash: e.staking_tx_hash,
                    staker_pk: e.staker_pk,
                    finality_provider_pk: e.finality_provider_pk,
                    staking_value: e.staking_value,
                    entering_active: entering,
                    is_overflow: e.is_overflow,
                };
                let mapping = entering.then(|| address_mapping(e.staker_pk, self.network));
                s.apply_stats(&key, &change, mapping.as_ref()).await
            }
            Event::BtcInfo(e) => {
                let info = BtcInfo {
                    height: e.height,
                    confirmed_tvl: e.confirmed_tvl.to_sat(),
                    unconfirmed_tvl: e.unconfirmed_tvl.to_sat(),
                };
                s.apply_btc_info(&key, &info).await
            }
            other => {
                return Err(HandlerError::new(format!(
                    "event type {:?} is not consumed by the API",
                    other.queue()
                )))
            }
        }
        .map_err(HandlerError::new)?;
        // Whatever changed, a cached `/v1/stats` of this process is now outdated.
        crate::stats_cache::invalidate();
        Ok(applied)
    }
}

impl MessageHandler for Consumer {
    async fn handle(&self, message: &Message) -> Result<Handled, HandlerError> {
        match self.apply(message).await? {
            Applied::RetryLater(reason) => Err(HandlerError::new(reason)),
            Applied::Duplicate => Ok(Handled::Duplicate),
            outcome => {
                tracing::debug!(queue = %message.queue, ?outcome, "message applied");
                Ok(Handled::Applied)
            }
        }
    }

    async fn unprocessable(
        &self,
        message: &Message,
        last_error: &HandlerError,
    ) -> Result<(), HandlerError> {
        let body = String::from_utf8_lossy(&message.body);
        self.store
            .insert_unprocessable(
                message.queue.as_str(),
                &body,
                &message.receipt,
                &last_error.to_string(),
            )
            .await
            .map_err(HandlerError::new)
    }
}

/// Runs one consumer per queue until `shutdown`; returns the first transport failure.
pub async fn run_consumers(
    consumer: Consumer,
    transport: Transport,
    config: events::ConsumerConfig,
    shutdown: CancellationToken,
) -> Result<(), events::EventsError> {
    let handler = Arc::new(consumer);
    let mut tasks = tokio::task::JoinSet::new();
    for queue in CONSUMED {
        let t = transport.clone();
        let h = Arc::clone(&handler);
        let c = config.clone();
        let s = shutdown.clone();
        tasks.spawn(async move { t.consume(queue, h, c, s).await });
    }
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if result.is_ok() {
                    result = Err(e);
                }
                shutdown.cancel();
            }
            Err(join) => {
                tracing::error!(error = %join, "consumer task panicked");
                shutdown.cancel();
            }
        }
    }
    result
}

/// `stakingd api replay-unprocessable`: re-publishes every stored unprocessable message to its
/// queue and deletes the record after the publish is confirmed. Returns how many.
pub async fn replay_unprocessable(
    store: &ApiStore,
    transport: &Transport,
) -> anyhow::Result<usize> {
    use anyhow::Context;
    let mut n = 0;
    for m in store.unprocessable().await? {
        let queue: QueueName = m
            .queue
            .parse()
            .with_context(|| format!("unprocessable message {} names queue {:?}", m.id, m.queue))?;
        transport
            .publish(queue, m.message_body.as_bytes())
            .await
            .with_context(|| format!("re-publishing unprocessable message {}", m.id))?;
        store.delete_unprocessable(m.id).await?;
        n += 1;
    }
    Ok(n)
}
