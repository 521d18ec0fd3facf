//! Shared test helpers: a real broker (through `testkit`), unique queue prefixes,
//! cleanup, the reference's own declaration written out literally, and a recording handler.
#![allow(
    dead_code,
    reason = "each test file uses a different subset of these helpers"
)]

pub mod relay_support;
pub mod scenarios;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use events::{
    Handled, HandlerError, Message, MessageHandler, QueueName, QueueNaming, QueueType,
    RabbitMqConfig,
};
use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

/// `AMQP_URL`, or the local broker of `.ci/services` (`testkit::amqp_url`).
pub fn amqp_uri() -> String {
    testkit::amqp_url()
}

/// A config for `test` with its own queue prefix; an unreachable broker fails the test, or
/// gives `None` when skipping is allowed (`testkit::rabbitmq`).
pub async fn broker(test: &str, queue_type: QueueType) -> Option<RabbitMqConfig> {
    let uri = testkit::rabbitmq().await?;
    let mut config = RabbitMqConfig::from_uri(uri);
    config.queue_type = queue_type;
    config.queue_prefix = unique_prefix(test);
    config.publish_timeout = Duration::from_secs(10);
    config.max_reconnect_backoff = Duration::from_millis(500);
    Some(config)
}

fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "t_{test}_{}_{nanos}_{}_",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn admin_channel() -> (Connection, Channel) {
    let connection = Connection::connect(&amqp_uri(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// Deletes every queue and the exchange of a prefix when dropped, even after a panic.
pub struct Cleanup(pub QueueNaming);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let naming = self.0.clone();
        let cleaner = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(delete_topology(&naming));
        });
        let _ = cleaner.join();
    }
}

async fn delete_topology(naming: &QueueNaming) {
    let Ok(connection) = Connection::connect(&amqp_uri(), ConnectionProperties::default()).await
    else {
        return;
    };
    for queue in QueueName::ALL {
        for name in [naming.queue(queue), naming.delay_queue(queue)] {
            // A failed delete closes the channel, so use a fresh one each time.
            if let Ok(channel) = connection.create_channel().await {
                let _ = channel
                    .queue_delete(&name, QueueDeleteOptions::default())
                    .await;
                let _ = channel.close(200, "done").await;
            }
        }
    }
    if let Ok(channel) = connection.create_channel().await {
        let _ = channel
            .exchange_delete(&naming.dead_letter_exchange(), Default::default())
            .await;
    }
    let _ = connection.close(200, "cleanup").await;
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

/// `NewRabbitMqClient` of the reference queue client, transcribed call by call with its literal
/// arguments (`docs/reference.md#queue-topology`), for queue `q` (full name) and dead-letter
/// exchange `dlx`.
pub async fn declare_like_reference(
    channel: &Channel,
    q: &str,
    dlx: &str,
    queue_type: &str,
) -> Result<(), lapin::Error> {
    let mut exchange_args = FieldTable::default();
    exchange_args.insert("x-queue-type".into(), text(queue_type));
    channel
        .exchange_declare(
            dlx,
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: false,
                durable: true,
                auto_delete: false,
                internal: false,
                nowait: false,
            },
            exchange_args,
        )
        .await?;
    let delay = format!("{q}_delay");
    let mut delay_args = FieldTable::default();
    delay_args.insert("x-queue-type".into(), text(queue_type));
    delay_args.insert("x-dead-letter-exchange".into(), text(""));
    delay_args.insert("x-dead-letter-routing-key".into(), text(q));
    let options = QueueDeclareOptions {
        passive: false,
        durable: true,
        exclusive: false,
        auto_delete: false,
        nowait: false,
    };
    channel.queue_declare(&delay, options, delay_args).await?;
    let routing_key = format!("{q}_routing_key");
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text(queue_type));
    args.insert("x-dead-letter-exchange".into(), text(dlx));
    args.insert("x-dead-letter-routing-key".into(), text(&routing_key));
    channel.queue_declare(q, options, args).await?;
    channel
        .queue_bind(
            &delay,
            dlx,
            &routing_key,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// Number of ready messages in a queue (passive declare).
pub async fn message_count(channel: &Channel, queue: &str) -> u32 {
    let options = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue, options, FieldTable::default())
        .await
        .unwrap()
        .message_count()
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub async fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// One call of the handler as it was seen.
#[derive(Debug, Clone)]
pub struct Call {
    pub attempts: i32,
    pub body: Vec<u8>,
    pub at: Instant,
}

/// Decides from a message and the index of the call whether the call fails.
type FailRule = dyn Fn(&Message, usize) -> bool + Send + Sync;

/// A handler that records every call and fails according to `fail`.
pub struct Recorder {
    pub calls: Mutex<Vec<Call>>,
    pub unprocessable: Mutex<Vec<Call>>,
    fail: Box<FailRule>,
    fail_unprocessable_times: AtomicU64,
    delay: Duration,
    in_flight: AtomicU64,
    pub overlapped: std::sync::atomic::AtomicBool,
}

impl Recorder {
    /// `fail(message, index_of_this_call)` decides whether the call fails.
    pub fn new(fail: impl Fn(&Message, usize) -> bool + Send + Sync + 'static) -> Self {
        Recorder {
            calls: Mutex::new(Vec::new()),
            unprocessable: Mutex::new(Vec::new()),
            fail: Box::new(fail),
            fail_unprocessable_times: AtomicU64::new(0),
            delay: Duration::ZERO,
            in_flight: AtomicU64::new(0),
            overlapped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn failing_unprocessable_times(self, times: u64) -> Self {
        self.fail_unprocessable_times.store(times, Ordering::SeqCst);
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn attempts(&self) -> Vec<i32> {
        self.calls().iter().map(|c| c.attempts).collect()
    }

    pub fn bodies(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|c| String::from_utf8(c.body.clone()).unwrap())
            .collect()
    }

    pub fn unprocessable(&self) -> Vec<Call> {
        self.unprocessable.lock().unwrap().clone()
    }
}

impl MessageHandler for Recorder {
    async fn handle(&self, message: &Message) -> Result<Handled, HandlerError> {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) > 0 {
            self.overlapped.store(true, Ordering::SeqCst);
        }
        let index = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(Call {
                attempts: message.attempts,
                body: message.body.clone(),
                at: Instant::now(),
            });
            calls.len() - 1
        };
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if (self.fail)(message, index) {
            Err(HandlerError::new(format!(
                "induced failure of call {index}"
            )))
        } else {
            Ok(Handled::Applied)
        }
    }

    async fn unprocessable(
        &self,
        message: &Message,
        _last_error: &HandlerError,
    ) -> Result<(), HandlerError> {
        let call = Call {
            attempts: message.attempts,
            body: message.body.clone(),
            at: Instant::now(),
        };
        let remaining = self.fail_unprocessable_times.load(Ordering::SeqCst);
        if remaining > 0 {
            self.fail_unprocessable_times
                .store(remaining - 1, Ordering::SeqCst);
            return Err(HandlerError::new("unprocessable store down"));
        }
        self.unprocessable.lock().unwrap().push(call);
        Ok(())
    }
}
