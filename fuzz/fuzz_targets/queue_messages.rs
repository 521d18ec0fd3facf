//! Raw bytes → queue message, for each of the seven queues and by `event_type`. Must never
//! panic; whatever decodes must encode to JSON that decodes to the same event on the same queue,
//! and the encoding must be stable (encode ∘ decode ∘ encode = encode).
#![no_main]

use events::{Event, QueueName};
use libfuzzer_sys::fuzz_target;

const QUEUES: [QueueName; 7] = [
    QueueName::ActiveStaking,
    QueueName::UnbondingStaking,
    QueueName::WithdrawStaking,
    QueueName::ExpiredStaking,
    QueueName::StakingStats,
    QueueName::BtcInfo,
    QueueName::ConfirmedInfo,
];

fn round_trip(queue: QueueName, event: &Event) {
    assert_eq!(event.queue(), queue);
    let json = event.to_json();
    let again = Event::decode(queue, json.as_bytes()).expect("an encoded event decodes again");
    assert_eq!(&again, event);
    assert_eq!(again.to_json(), json);
    let by_type = Event::decode_by_event_type(json.as_bytes()).expect("encoding names its type");
    assert_eq!(&by_type, event);
}

fuzz_target!(|data: &[u8]| {
    // First byte picks the queue a targeted run aims at; every queue also sees the whole input.
    if let Some((&first, rest)) = data.split_first() {
        let queue = QUEUES[usize::from(first) % QUEUES.len()];
        if let Ok(event) = Event::decode(queue, rest) {
            round_trip(queue, &event);
        }
    }
    for queue in QUEUES {
        if let Ok(event) = Event::decode(queue, data) {
            round_trip(queue, &event);
        }
    }
    if let Ok(event) = Event::decode_by_event_type(data) {
        round_trip(event.queue(), &event);
    }
});
