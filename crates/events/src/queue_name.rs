//! The queue names and `event_type` numbers of the reference (`docs/reference.md#queues`).

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::error::DecodeError;

/// The `event_type` number carried by every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// 1, `ActiveStakingEvent`.
    ActiveStaking,
    /// 2, `UnbondingStakingEvent`.
    UnbondingStaking,
    /// 3, `WithdrawStakingEvent`.
    WithdrawStaking,
    /// 4, `ExpiredStakingEvent`.
    ExpiredStaking,
    /// 5, `StatsEvent`.
    Stats,
    /// 6, `BtcInfoEvent`.
    BtcInfo,
    /// 7, `ConfirmedInfoEvent`.
    ConfirmedInfo,
}

impl EventType {
    /// All event types in number order.
    pub const ALL: [EventType; 7] = [
        EventType::ActiveStaking,
        EventType::UnbondingStaking,
        EventType::WithdrawStaking,
        EventType::ExpiredStaking,
        EventType::Stats,
        EventType::BtcInfo,
        EventType::ConfirmedInfo,
    ];

    /// The wire number (1..=7).
    pub fn number(self) -> u8 {
        match self {
            EventType::ActiveStaking => 1,
            EventType::UnbondingStaking => 2,
            EventType::WithdrawStaking => 3,
            EventType::ExpiredStaking => 4,
            EventType::Stats => 5,
            EventType::BtcInfo => 6,
            EventType::ConfirmedInfo => 7,
        }
    }

    /// The event type with this wire number, if any.
    pub fn from_number(number: u8) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.number() == number)
    }

    /// Reads only the `event_type` of a message body, e.g. to replay a stored unprocessable
    /// message to its queue without judging the rest of it (as the reference `--replay` does).
    pub fn of_body(body: &[u8]) -> Result<EventType, DecodeError> {
        let only: EventTypeOnly =
            serde_json::from_slice(body).map_err(|source| DecodeError::Json {
                queue: "(unknown)",
                source,
            })?;
        EventType::from_number(only.event_type)
            .ok_or(DecodeError::UnknownEventType(only.event_type))
    }

    /// The queue that carries this event type.
    pub fn queue(self) -> QueueName {
        match self {
            EventType::ActiveStaking => QueueName::ActiveStaking,
            EventType::UnbondingStaking => QueueName::UnbondingStaking,
            EventType::WithdrawStaking => QueueName::WithdrawStaking,
            EventType::ExpiredStaking => QueueName::ExpiredStaking,
            EventType::Stats => QueueName::StakingStats,
            EventType::BtcInfo => QueueName::BtcInfo,
            EventType::ConfirmedInfo => QueueName::ConfirmedInfo,
        }
    }
}

/// The seven queues of the reference topology (without any test prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueName {
    /// `active_staking_queue`
    ActiveStaking,
    /// `unbonding_staking_queue`
    UnbondingStaking,
    /// `withdraw_staking_queue`
    WithdrawStaking,
    /// `expired_staking_queue`
    ExpiredStaking,
    /// `staking_stats_queue`
    StakingStats,
    /// `btc_info_queue`
    BtcInfo,
    /// `confirmed_info_queue`
    ConfirmedInfo,
}

impl QueueName {
    /// All queues, in the order the reference queue manager declares them.
    pub const ALL: [QueueName; 7] = [
        QueueName::ActiveStaking,
        QueueName::UnbondingStaking,
        QueueName::WithdrawStaking,
        QueueName::ExpiredStaking,
        QueueName::StakingStats,
        QueueName::BtcInfo,
        QueueName::ConfirmedInfo,
    ];

    /// The reference queue name, e.g. `active_staking_queue`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::ActiveStaking => "active_staking_queue",
            QueueName::UnbondingStaking => "unbonding_staking_queue",
            QueueName::WithdrawStaking => "withdraw_staking_queue",
            QueueName::ExpiredStaking => "expired_staking_queue",
            QueueName::StakingStats => "staking_stats_queue",
            QueueName::BtcInfo => "btc_info_queue",
            QueueName::ConfirmedInfo => "confirmed_info_queue",
        }
    }

    /// The event type this queue carries.
    pub fn event_type(self) -> EventType {
        match self {
            QueueName::ActiveStaking => EventType::ActiveStaking,
            QueueName::UnbondingStaking => EventType::UnbondingStaking,
            QueueName::WithdrawStaking => EventType::WithdrawStaking,
            QueueName::ExpiredStaking => EventType::ExpiredStaking,
            QueueName::StakingStats => EventType::Stats,
            QueueName::BtcInfo => EventType::BtcInfo,
            QueueName::ConfirmedInfo => EventType::ConfirmedInfo,
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QueueName {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QueueName::ALL
            .into_iter()
            .find(|q| q.as_str() == s)
            .ok_or_else(|| DecodeError::UnknownQueue(s.to_owned()))
    }
}

/// Just enough of a message to read its `event_type`.
#[derive(Deserialize)]
struct EventTypeOnly {
    event_type: u8,
}
