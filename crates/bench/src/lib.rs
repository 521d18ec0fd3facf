//! Shared pieces of the benchmark tools run by `bench/run`: a deterministic RNG, latency
//! summaries, and the layout of the stakers file the seeder writes and the load generator reads.
//!
//! The tools are separate processes on purpose: the server under test, the bare axum baseline
//! and the load generator each get their own runtime, so one cannot steal the other's scheduler
//! and each service's resident memory can be read from `/proc`.

use serde::Serialize;

/// splitmix64: deterministic and dependency-free, so a seeded run is reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant for load shaping).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// 32 random bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

/// Latency distribution of one measured run, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Summarises latencies in microseconds (sorted in place) over `seconds` of measurement.
    pub fn from_micros(latencies: &mut [u32], errors: u64, seconds: f64) -> Summary {
        latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if latencies.is_empty() {
                return 0.0;
            }
            // Nearest-rank percentile: the smallest value with at least p% at or below it.
            let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
            f64::from(latencies[rank.clamp(1, latencies.len()) - 1]) / 1000.0
        };
        let requests = latencies.len() as u64;
        Summary {
            requests,
            errors,
            seconds,
            requests_per_sec: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            p50_ms: pct(50.0),
            p90_ms: pct(90.0),
            p99_ms: pct(99.0),
            max_ms: latencies.last().map_or(0.0, |&m| f64::from(m) / 1000.0),
        }
    }
}

/// One line of the stakers file: `<tier> <staker key hex> <delegations>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakerLine {
    pub tier: u32,
    pub staker_hex: String,
    pub delegations: u32,
}

impl StakerLine {
    /// Parses one line; `None` for anything malformed.
    pub fn parse(line: &str) -> Option<StakerLine> {
        let mut it = line.split_whitespace();
        let tier = it.next()?.parse().ok()?;
        let staker_hex = it.next()?.to_owned();
        let delegations = it.next()?.parse().ok()?;
        Some(StakerLine {
            tier,
            staker_hex,
            delegations,
        })
    }

    /// The line as written.
    pub fn render(&self) -> String {
        format!("{} {} {}", self.tier, self.staker_hex, self.delegations)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut l: Vec<u32> = (1..=100).map(|v| v * 1000).collect();
        let s = Summary::from_micros(&mut l, 0, 2.0);
        assert_eq!(s.requests, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(s.requests_per_sec, 50.0);
    }

    #[test]
    fn a_stakers_line_round_trips() {
        let l = StakerLine {
            tier: 2,
            staker_hex: "ab".repeat(32),
            delegations: 7,
        };
        assert_eq!(StakerLine::parse(&l.render()), Some(l));
        assert_eq!(StakerLine::parse("x y"), None);
    }
}
