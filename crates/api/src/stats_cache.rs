//! `/v1/stats` served from memory between changes: the answer is two database reads that every
//! dApp page load repeats, while the numbers only move when a queue message is applied.
//!
//! Freshness: every message this process applies bumps a process-wide generation
//! ([`invalidate`], called by the consumer), and an entry from an older generation is never
//! served, so this instance's own writes show at once. Writes by another process on the same
//! database (a second API instance consuming the same queues) show within [`TTL`].
//! The reference has no cache here; this is a deliberate difference for throughput.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// How long an entry may be served when nothing in this process has written since.
pub const TTL: Duration = Duration::from_secs(1);

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Marks every cached answer of this process as outdated.
pub fn invalidate() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// The current generation: read it before querying, store the answer under it.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

#[derive(Debug)]
struct Entry {
    generation: u64,
    at: Instant,
    body: Bytes,
}

/// One cached rendered answer.
#[derive(Debug, Default)]
pub struct StatsCache {
    slot: Mutex<Option<Entry>>,
}

impl StatsCache {
    /// The cached body if it is of the current generation and younger than [`TTL`].
    pub fn get(&self) -> Option<Bytes> {
        let slot = self
            .slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.as_ref()
            .filter(|e| e.generation == generation() && e.at.elapsed() < TTL)
            .map(|e| e.body.clone())
    }

    /// Caches `body`, computed from reads that started at `generation`.
    pub fn put(&self, generation: u64, body: Bytes) {
        let mut slot = self
            .slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Some(Entry {
            generation,
            at: Instant::now(),
            body,
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;

    // One test: the generation is process-wide, so two tests bumping it in parallel would
    // race each other.
    #[test]
    fn an_answer_is_served_until_this_process_applies_a_message_and_never_from_before_it() {
        let cache = StatsCache::default();
        assert_eq!(cache.get(), None);
        cache.put(generation(), Bytes::from_static(b"{}"));
        assert_eq!(cache.get().as_deref(), Some(&b"{}"[..]));
        invalidate();
        assert_eq!(cache.get(), None);

        let before = generation();
        invalidate();
        cache.put(before, Bytes::from_static(b"old"));
        assert_eq!(cache.get(), None, "computed from reads older than a write");
    }
}
