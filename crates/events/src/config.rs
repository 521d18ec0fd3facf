//! Transport settings and the queue naming rules of the reference topology.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::messages::QueueName;

/// `x-queue-type` of every declared queue (config `queue_type` of the reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// `"quorum"`, the reference default: replicated, for production clusters.
    #[default]
    Quorum,
    /// `"classic"`
    Classic,
}

impl QueueType {
    /// The argument value, `"quorum"` or `"classic"`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Quorum => "quorum",
            QueueType::Classic => "classic",
        }
    }
}

/// How to reach RabbitMQ and how to name things there.
#[derive(Clone)]
pub struct RabbitMqConfig {
    /// `amqp://user:password@host:port` (default vhost), as the reference builds it.
    pub uri: String,
    /// `x-queue-type` of every queue.
    pub queue_type: QueueType,
    /// Prepended to every queue and exchange name. Empty (the default) gives exactly the
    /// reference names; tests use a unique prefix so they can share one broker.
    pub queue_prefix: String,
    /// How long a publish may wait for the broker's confirm before it counts as failed.
    pub publish_timeout: Duration,
    /// Upper bound of the reconnect backoff of consumers.
    pub max_reconnect_backoff: Duration,
}

impl RabbitMqConfig {
    /// The reference's settings: `amqp://<user>:<password>@<url>` where `url` is `host:port`.
    pub fn from_parts(user: &str, password: &str, url: &str) -> Self {
        RabbitMqConfig::from_uri(format!("amqp://{user}:{password}@{url}"))
    }

    /// Settings for a full AMQP URI, defaults for everything else.
    pub fn from_uri(uri: impl Into<String>) -> Self {
        RabbitMqConfig {
            uri: uri.into(),
            queue_type: QueueType::default(),
            queue_prefix: String::new(),
            publish_timeout: Duration::from_secs(30),
            max_reconnect_backoff: Duration::from_secs(10),
        }
    }

    /// The URI with any password replaced by `***`, for logs and errors.
    pub fn redacted_uri(&self) -> String {
        net::redact_url(&self.uri)
    }

    /// The names of the topology under this config's prefix.
    pub fn naming(&self) -> QueueNaming {
        QueueNaming {
            prefix: self.queue_prefix.clone(),
        }
    }
}

impl fmt::Debug for RabbitMqConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitMqConfig")
            .field("uri", &self.redacted_uri())
            .field("queue_type", &self.queue_type)
            .field("queue_prefix", &self.queue_prefix)
            .field("publish_timeout", &self.publish_timeout)
            .field("max_reconnect_backoff", &self.max_reconnect_backoff)
            .finish()
    }
}

/// Consumer behaviour, the reference API's `queue` settings
/// (`docs/reference.md#consuming-and-retries`).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Deadline of one handler call (`processing_timeout`); past it the call counts as failed.
    pub processing_timeout: Duration,
    /// `msg_max_retry_attempts`: a message failing with more attempts than this is unprocessable.
    pub max_retry_attempts: i32,
    /// `requeue_delay_time`: how long a failed message waits in `<queue>_delay`.
    pub requeue_delay: Duration,
}

impl Default for ConsumerConfig {
    /// The reference defaults: 5 s, 10 attempts, 5 s.
    fn default() -> Self {
        ConsumerConfig {
            processing_timeout: Duration::from_secs(5),
            max_retry_attempts: 10,
            requeue_delay: Duration::from_secs(5),
        }
    }
}

/// The names the reference derives from a queue name `Q` (`docs/reference.md#queue-topology`),
/// under a prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueNaming {
    prefix: String,
}

impl QueueNaming {
    /// Names under `prefix` (empty for the reference names).
    pub fn new(prefix: impl Into<String>) -> Self {
        QueueNaming {
            prefix: prefix.into(),
        }
    }

    /// `Q`, e.g. `active_staking_queue`.
    pub fn queue(&self, queue: QueueName) -> String {
        format!("{}{}", self.prefix, queue.as_str())
    }

    /// `Q_delay`.
    pub fn delay_queue(&self, queue: QueueName) -> String {
        format!("{}_delay", self.queue(queue))
    }

    /// `Q_routing_key`, binding the delay queue to the dead-letter exchange.
    pub fn routing_key(&self, queue: QueueName) -> String {
        format!("{}_routing_key", self.queue(queue))
    }

    /// `common_dlx`, the dead-letter exchange shared by all queues.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}common_dlx", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_names_are_derived_from_the_queue_name() {
        let n = QueueNaming::default();
        assert_eq!(n.queue(QueueName::ActiveStaking), "active_staking_queue");
        assert_eq!(
            n.delay_queue(QueueName::ActiveStaking),
            "active_staking_queue_delay"
        );
        assert_eq!(
            n.routing_key(QueueName::ActiveStaking),
            "active_staking_queue_routing_key"
        );
        assert_eq!(n.dead_letter_exchange(), "common_dlx");
    }

    #[test]
    fn a_prefix_applies_to_queues_and_the_exchange() {
        let n = QueueNaming::new("t1_");
        assert_eq!(n.delay_queue(QueueName::BtcInfo), "t1_btc_info_queue_delay");
        assert_eq!(n.dead_letter_exchange(), "t1_common_dlx");
    }

    #[test]
    fn the_password_never_appears_in_debug_output() {
        let c = RabbitMqConfig::from_parts("user", "s3cret", "localhost:5672");
        assert_eq!(c.uri, "amqp://user:s3cret@localhost:5672");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("amqp://user:***@localhost:5672"), "{shown}");
    }
}
