//! [`Event`]: any of the seven messages, with its queue, its JSON and decoding by queue.

use crate::error::DecodeError;
use crate::messages::{
    ActiveStakingEvent, BtcInfoEvent, ConfirmedInfoEvent, ExpiredStakingEvent, StatsEvent,
    UnbondingStakingEvent, WithdrawStakingEvent,
};
use crate::queue_name::{EventType, QueueName};

/// Any of the seven messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Event 1.
    ActiveStaking(ActiveStakingEvent),
    /// Event 2.
    UnbondingStaking(UnbondingStakingEvent),
    /// Event 3.
    WithdrawStaking(WithdrawStakingEvent),
    /// Event 4.
    ExpiredStaking(ExpiredStakingEvent),
    /// Event 5.
    Stats(StatsEvent),
    /// Event 6.
    BtcInfo(BtcInfoEvent),
    /// Event 7.
    ConfirmedInfo(ConfirmedInfoEvent),
}

impl Event {
    /// The event's type number.
    pub fn event_type(&self) -> EventType {
        match self {
            Event::ActiveStaking(_) => EventType::ActiveStaking,
            Event::UnbondingStaking(_) => EventType::UnbondingStaking,
            Event::WithdrawStaking(_) => EventType::WithdrawStaking,
            Event::ExpiredStaking(_) => EventType::ExpiredStaking,
            Event::Stats(_) => EventType::Stats,
            Event::BtcInfo(_) => EventType::BtcInfo,
            Event::ConfirmedInfo(_) => EventType::ConfirmedInfo,
        }
    }

    /// The queue this event is published to.
    pub fn queue(&self) -> QueueName {
        self.event_type().queue()
    }

    /// The message body: compact JSON, field order as Go `encoding/json` writes the reference
    /// structs.
    pub fn to_json(&self) -> String {
        let encoded = match self {
            Event::ActiveStaking(e) => serde_json::to_string(e),
            Event::UnbondingStaking(e) => serde_json::to_string(e),
            Event::WithdrawStaking(e) => serde_json::to_string(e),
            Event::ExpiredStaking(e) => serde_json::to_string(e),
            Event::Stats(e) => serde_json::to_string(e),
            Event::BtcInfo(e) => serde_json::to_string(e),
            Event::ConfirmedInfo(e) => serde_json::to_string(e),
        };
        #[allow(
            clippy::expect_used,
            reason = "these structs hold only strings, numbers and booleans, which serde_json always encodes"
        )]
        encoded.expect("queue messages always encode")
    }

    /// Decodes a message read from `queue`, as the reference consumers do: the queue decides the
    /// shape, `event_type` is not consulted.
    pub fn decode(queue: QueueName, body: &[u8]) -> Result<Event, DecodeError> {
        let bad = |source| DecodeError::Json {
            queue: queue.as_str(),
            source,
        };
        // Go's encoding/json refuses a JSON array for a struct; serde would read one field by
        // field (`[1,2,3]` was a valid btc_info message; found by the API's malformed-message test).
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(bad(<serde_json::Error as serde::de::Error>::custom(
                "a message must be a JSON object",
            )));
        }
        Ok(match queue {
            QueueName::ActiveStaking => {
                Event::ActiveStaking(serde_json::from_slice(body).map_err(bad)?)
            }
            QueueName::UnbondingStaking => {
                Event::UnbondingStaking(serde_json::from_slice(body).map_err(bad)?)
            }
            QueueName::WithdrawStaking => {
                Event::WithdrawStaking(serde_json::from_slice(body).map_err(bad)?)
            }
            QueueName::ExpiredStaking => {
                Event::ExpiredStaking(serde_json::from_slice(body).map_err(bad)?)
            }
            QueueName::StakingStats => Event::Stats(serde_json::from_slice(body).map_err(bad)?),
            QueueName::BtcInfo => Event::BtcInfo(serde_json::from_slice(body).map_err(bad)?),
            QueueName::ConfirmedInfo => {
                Event::ConfirmedInfo(serde_json::from_slice(body).map_err(bad)?)
            }
        })
    }

    /// Decodes a message whose queue is unknown (e.g. a stored unprocessable message being
    /// replayed) by its `event_type`, as the reference replay tool does.
    pub fn decode_by_event_type(body: &[u8]) -> Result<Event, DecodeError> {
        Event::decode(EventType::of_body(body)?.queue(), body)
    }
}

impl From<ActiveStakingEvent> for Event {
    fn from(e: ActiveStakingEvent) -> Self {
        Event::ActiveStaking(e)
    }
}

impl From<UnbondingStakingEvent> for Event {
    fn from(e: UnbondingStakingEvent) -> Self {
        Event::UnbondingStaking(e)
    }
}

impl From<WithdrawStakingEvent> for Event {
    fn from(e: WithdrawStakingEvent) -> Self {
        Event::WithdrawStaking(e)
    }
}

impl From<ExpiredStakingEvent> for Event {
    fn from(e: ExpiredStakingEvent) -> Self {
        Event::ExpiredStaking(e)
    }
}

impl From<StatsEvent> for Event {
    fn from(e: StatsEvent) -> Self {
        Event::Stats(e)
    }
}

impl From<BtcInfoEvent> for Event {
    fn from(e: BtcInfoEvent) -> Self {
        Event::BtcInfo(e)
    }
}

impl From<ConfirmedInfoEvent> for Event {
    fn from(e: ConfirmedInfoEvent) -> Self {
        Event::ConfirmedInfo(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_array_is_not_a_message_on_any_queue() {
        for queue in [
            QueueName::BtcInfo,
            QueueName::ConfirmedInfo,
            QueueName::WithdrawStaking,
        ] {
            let err = Event::decode(queue, b" [1,2,3]").unwrap_err();
            assert!(err.to_string().contains("must be a JSON object"), "{err}");
        }
        let ok = Event::decode(
            QueueName::BtcInfo,
            br#"{"height":1,"confirmed_tvl":2,"unconfirmed_tvl":3}"#,
        );
        assert!(ok.is_ok(), "{ok:?}");
    }
}
