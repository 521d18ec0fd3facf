//! Consumer behaviour (`docs/reference.md#consuming-and-retries`) written once and run against both
//! transports.

use std::sync::Arc;
use std::time::Duration;

use events::{ConsumerConfig, QueueName, Transport};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{wait_until, Recorder};

const QUEUE: QueueName = QueueName::ExpiredStaking;
const LONG: Duration = Duration::from_secs(30);

pub fn config(max_retry_attempts: i32, requeue_delay: Duration) -> ConsumerConfig {
    ConsumerConfig {
        processing_timeout: Duration::from_secs(5),
        max_retry_attempts,
        requeue_delay,
    }
}

pub struct Running {
    pub recorder: Arc<Recorder>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), events::EventsError>>,
}

impl Running {
    /// Stops the consumer; it must end cleanly.
    pub async fn stop(self) -> Arc<Recorder> {
        self.shutdown.cancel();
        tokio::time::timeout(LONG, self.task)
            .await
            .expect("consumer stops on shutdown")
            .unwrap()
            .unwrap();
        self.recorder
    }
}

pub fn start(transport: &Transport, recorder: Recorder, config: ConsumerConfig) -> Running {
    let recorder = Arc::new(recorder);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let transport = transport.clone();
        let recorder = recorder.clone();
        let shutdown = shutdown.clone();
        async move { transport.consume(QUEUE, recorder, config, shutdown).await }
    });
    Running {
        recorder,
        shutdown,
        task,
    }
}

pub async fn a_message_that_keeps_failing_is_tried_max_plus_two_times_then_handed_to_unprocessable(
    transport: &Transport,
) {
    let running = start(
        transport,
        Recorder::new(|_, _| true),
        config(2, Duration::from_millis(100)),
    );
    transport.publish(QUEUE, b"poison").await.unwrap();
    let r = running.recorder.clone();
    assert!(
        wait_until(LONG, || !r.unprocessable().is_empty()).await,
        "never unprocessable: {:?}",
        r.attempts()
    );
    // Nothing comes back after the hand-off.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = running.stop().await;
    assert_eq!(
        r.attempts(),
        [0, 1, 2, 3],
        "max_retry_attempts 2 ⇒ max + 2 = 4 attempts"
    );
    let unprocessable = r.unprocessable();
    assert_eq!(unprocessable.len(), 1);
    assert_eq!(unprocessable[0].attempts, 3);
    assert_eq!(unprocessable[0].body, b"poison");
}

pub async fn a_message_that_fails_once_is_processed_again_after_the_requeue_delay(
    transport: &Transport,
) {
    let delay = Duration::from_millis(600);
    let running = start(
        transport,
        Recorder::new(|m, _| m.attempts == 0),
        config(10, delay),
    );
    transport.publish(QUEUE, b"flaky").await.unwrap();
    let r = running.recorder.clone();
    assert!(
        wait_until(LONG, || r.calls().len() >= 2).await,
        "no retry: {:?}",
        r.attempts()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = running.stop().await;
    let calls = r.calls();
    assert_eq!(r.attempts(), [0, 1]);
    assert_eq!(r.bodies(), ["flaky", "flaky"]);
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= delay - Duration::from_millis(50),
        "retried after only {waited:?}"
    );
    assert!(r.unprocessable().is_empty());
}

pub async fn messages_are_processed_one_at_a_time_in_publish_order(transport: &Transport) {
    let running = start(
        transport,
        Recorder::new(|_, _| false).with_delay(Duration::from_millis(20)),
        config(10, Duration::from_millis(100)),
    );
    let sent: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    for body in &sent {
        transport.publish(QUEUE, body.as_bytes()).await.unwrap();
    }
    let r = running.recorder.clone();
    assert!(wait_until(LONG, || r.calls().len() >= sent.len()).await);
    let r = running.stop().await;
    assert_eq!(r.bodies(), sent);
    assert!(
        !r.overlapped.load(std::sync::atomic::Ordering::SeqCst),
        "two messages were processed at once"
    );
}

pub async fn a_handler_slower_than_the_processing_timeout_counts_as_failed(transport: &Transport) {
    let mut cfg = config(10, Duration::from_millis(100));
    cfg.processing_timeout = Duration::from_millis(100);
    // The handler takes 400 ms; only the retry is allowed to finish within the deadline.
    let running = start(
        transport,
        Recorder::new(|_, _| false).with_delay(Duration::from_millis(400)),
        cfg,
    );
    transport.publish(QUEUE, b"slow").await.unwrap();
    let r = running.recorder.clone();
    assert!(wait_until(LONG, || r.calls().len() >= 2).await);
    let r = running.stop().await;
    assert_eq!(r.attempts()[..2], [0, 1], "the timed-out call was retried");
}

pub async fn a_message_whose_unprocessable_store_fails_comes_back_with_the_same_attempts(
    transport: &Transport,
) {
    let running = start(
        transport,
        Recorder::new(|_, _| true).failing_unprocessable_times(1),
        config(0, Duration::from_millis(100)),
    );
    transport.publish(QUEUE, b"poison").await.unwrap();
    let r = running.recorder.clone();
    assert!(
        wait_until(LONG, || !r.unprocessable().is_empty()).await,
        "{:?}",
        r.attempts()
    );
    let r = running.stop().await;
    // 0 fails (retry), 1 fails (> max 0: store fails ⇒ back with 1), 1 fails again ⇒ stored.
    assert_eq!(r.attempts(), [0, 1, 1]);
    assert_eq!(r.unprocessable()[0].attempts, 1);
}

pub async fn messages_published_before_the_consumer_starts_are_delivered(transport: &Transport) {
    transport.publish(QUEUE, b"early").await.unwrap();
    let running = start(
        transport,
        Recorder::new(|_, _| false),
        config(10, Duration::from_millis(100)),
    );
    let r = running.recorder.clone();
    assert!(wait_until(LONG, || !r.calls().is_empty()).await);
    let r = running.stop().await;
    assert_eq!(r.bodies(), ["early"]);
}
