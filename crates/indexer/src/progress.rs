//! Catch-up progress: blocks per second over a sliding interval and the time left.

use std::time::{Duration, Instant};

/// Tracks processed heights between two progress logs.
#[derive(Debug)]
pub struct Progress {
    every: Duration,
    since: Instant,
    height_at_since: u32,
}

/// One progress report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    pub height: u32,
    pub tip: u32,
    pub blocks_per_sec: f64,
    /// `None` while the rate is zero.
    pub eta: Option<Duration>,
}

impl Progress {
    pub fn new(every: Duration, now: Instant, height: u32) -> Self {
        Self {
            every,
            since: now,
            height_at_since: height,
        }
    }

    /// A report if `every` has passed since the last one.
    pub fn tick(&mut self, now: Instant, height: u32, tip: u32) -> Option<Report> {
        let elapsed = now.checked_duration_since(self.since)?;
        if elapsed < self.every {
            return None;
        }
        let done = f64::from(height.saturating_sub(self.height_at_since));
        let rate = done / elapsed.as_secs_f64();
        let left = f64::from(tip.saturating_sub(height));
        let eta = (rate > 0.0).then(|| Duration::from_secs_f64(left / rate));
        self.since = now;
        self.height_at_since = height;
        Some(Report {
            height,
            tip,
            blocks_per_sec: rate,
            eta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_rate_and_the_time_left_once_per_interval() {
        let t0 = Instant::now();
        let mut p = Progress::new(Duration::from_secs(10), t0, 100);
        assert_eq!(p.tick(t0 + Duration::from_secs(5), 150, 1000), None);
        let r = p.tick(t0 + Duration::from_secs(10), 200, 1000).unwrap();
        assert!((r.blocks_per_sec - 10.0).abs() < 1e-9);
        assert_eq!(r.eta, Some(Duration::from_secs(80)));
        let r = p.tick(t0 + Duration::from_secs(20), 200, 1000).unwrap();
        assert_eq!(r.eta, None);
    }
}
