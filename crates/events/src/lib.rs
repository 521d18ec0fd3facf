//! Queue messages, transports and the outbox relay.
//!
//! * [`messages`]: the seven events, JSON byte-compatible with the reference queue client
//!   (`staking-queue-client` v0.4.2+ shapes; v0.4.1 shapes decode too).
//! * [`Transport`]: RabbitMQ ([`RabbitMqTransport`], the reference topology, persistent
//!   confirmed publishes) or in-process ([`InProcessTransport`]), with one consumer contract
//!   ([`MessageHandler`]): manual ack, delay-queue retries, unprocessable hand-off
//!   (`docs/reference.md#consuming-and-retries`).
//! * [`outbox`]: the [`Outbox`] storage trait (implemented by `store`) and the [`Relay`] that
//!   publishes committed events in order and marks them sent.
//!
//! Where this differs from the reference, on purpose:
//!
//! * Events go through the outbox (state and events in one DB transaction) instead of being
//!   published before the state is saved; delivery stays at-least-once.
//! * Lost connections are re-opened with backoff (the reference exits); a publish that the
//!   broker returns as unroutable or nacks is an error, never a silent success.
//! * `queue_prefix` (empty by default, so names are exactly the reference's) prefixes every
//!   queue and the dead-letter exchange, so tests can share one broker.
//! * `StatsEvent` and `WithdrawStakingEvent` keep whether the optional fields were present, so a
//!   message from an older producer is written back in its own shape.

mod backoff;
pub mod config;
pub mod consumer;
pub mod error;
mod event;
pub mod in_process;
pub mod messages;
pub mod metrics;
pub mod outbox;
mod queue_name;
pub mod rabbitmq;
mod topology;
pub mod transport;

pub use config::{ConsumerConfig, QueueNaming, QueueType, RabbitMqConfig};
pub use consumer::{Handled, Message, MessageHandler};
pub use error::{DecodeError, EventsError, HandlerError};
pub use in_process::InProcessTransport;
pub use messages::{
    ActiveStakingEvent, BtcInfoEvent, ConfirmedInfoEvent, Event, EventType, ExpiredStakingEvent,
    ExpiredTxType, QueueName, StatsEvent, StatsState, UnbondingStakingEvent, WithdrawStakingEvent,
    WithdrawTx,
};
pub use metrics::{ConsumeOutcome, EventsMetrics, QueueOperation};
pub use outbox::{
    NewOutboxRow, Outbox, OutboxError, OutboxRow, Relay, RelayConfig, RelayError, RelayWaker,
};
pub use rabbitmq::RabbitMqTransport;
pub use transport::{Publish, Transport};
