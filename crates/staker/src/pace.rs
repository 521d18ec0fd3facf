//! How long a number of blocks takes on *this* chain: the median spacing of the last blocks'
//! timestamps, not mainnet's ten minutes (a devnet mining every 5 s would otherwise be told
//! "about 30 minutes" for three blocks).

use std::time::Duration;

use anyhow::{Context, Result};
use bitcoin_rpc::RpcClient;
use staking_core::bitcoin::hashes::Hash;
use staking_core::bitcoin::BlockHash;

/// How many recent blocks are read: the median-time-past window, 10 spacings.
const WINDOW: usize = 11;

/// The chain's recent block interval, from the timestamps of the last [`WINDOW`] blocks up to
/// the tip (`None` with fewer than two blocks).
pub async fn recent_interval(rpc: &RpcClient) -> Result<Option<Duration>> {
    let mut hash = rpc
        .get_best_block_hash()
        .await
        .context("cannot read the chain's tip")?;
    let mut times = Vec::with_capacity(WINDOW);
    for _ in 0..WINDOW {
        let header = rpc
            .get_block_header(&hash)
            .await
            .with_context(|| format!("cannot read block header {hash}"))?;
        times.push(header.time);
        if header.prev_blockhash == BlockHash::all_zeros() {
            break;
        }
        hash = header.prev_blockhash;
    }
    times.reverse();
    Ok(interval(&times))
}

/// The median spacing of consecutive `times` (oldest first; a block may be timestamped before
/// its parent, which counts as 0). When most blocks came in the same second (blocks mined in a
/// burst), the median is 0 and the mean over the window is used instead.
pub fn interval(times: &[u32]) -> Option<Duration> {
    if times.len() < 2 {
        return None;
    }
    let mut spacings: Vec<u64> = times
        .windows(2)
        .map(|w| u64::from(w[1].saturating_sub(w[0])))
        .collect();
    spacings.sort_unstable();
    let n = spacings.len();
    let median_ms = if n % 2 == 1 {
        spacings[n / 2] * 1000
    } else {
        (spacings[n / 2 - 1] + spacings[n / 2]) * 500
    };
    if median_ms > 0 {
        return Some(Duration::from_millis(median_ms));
    }
    let total: u64 = spacings.iter().sum();
    Some(Duration::from_millis(total * 1000 / n as u64))
}

/// "about 25 seconds", "about 8 minutes", "about 3 hours", "about 9 days".
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let (value, unit) = if secs < 90.0 {
        (secs, "second")
    } else if secs < 90.0 * 60.0 {
        (secs / 60.0, "minute")
    } else if secs < 48.0 * 3600.0 {
        (secs / 3600.0, "hour")
    } else {
        (secs / 86_400.0, "day")
    };
    let rounded = value.round().max(1.0);
    let plural = if rounded == 1.0 { "" } else { "s" };
    format!("about {rounded:.0} {unit}{plural}")
}

/// What `blocks` more blocks mean in time at `interval` ("about 25 seconds at one block every
/// 5 s"), or why there is no estimate.
pub fn estimate(blocks: u64, interval: Option<Duration>) -> String {
    match interval {
        Some(each) if !each.is_zero() => {
            let total = each.saturating_mul(u32::try_from(blocks).unwrap_or(u32::MAX));
            format!(
                "{} at the chain's recent pace of one block every {}",
                human(total),
                short(each)
            )
        }
        Some(_) => "the chain's recent blocks all came within the same second, so no time estimate"
            .to_owned(),
        None => "the chain has too few blocks for a time estimate".to_owned(),
    }
}

/// "5 s", "9.8 min", "0.4 s".
fn short(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 100.0 {
        format!("{} s", trim(secs))
    } else {
        format!("{} min", trim(secs / 60.0))
    }
}

fn trim(x: f64) -> String {
    let text = format!("{x:.1}");
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_devnet_mining_every_5_seconds_is_estimated_in_seconds() {
        let times: Vec<u32> = (0..11).map(|i| 1_700_000_000 + 5 * i).collect();
        let each = interval(&times).unwrap();
        assert_eq!(each, Duration::from_secs(5));
        assert_eq!(
            estimate(3, Some(each)),
            "about 15 seconds at the chain's recent pace of one block every 5 s"
        );
    }

    #[test]
    fn mainnet_pace_is_estimated_in_minutes_hours_and_days() {
        let times = [0, 540, 1200, 1800, 2460, 3000];
        let each = interval(&times).unwrap();
        assert_eq!(each, Duration::from_secs(600));
        assert!(estimate(3, Some(each)).starts_with("about 30 minutes"));
        assert!(estimate(12, Some(each)).starts_with("about 2 hours"));
        assert!(estimate(1008, Some(each)).starts_with("about 7 days"));
    }

    #[test]
    fn an_outlier_does_not_move_the_median_and_a_backwards_timestamp_counts_as_zero() {
        let times = [100, 110, 120, 7000, 6990, 7000, 7010, 7020];
        assert_eq!(interval(&times), Some(Duration::from_secs(10)));
    }

    #[test]
    fn a_burst_of_blocks_in_one_second_falls_back_to_the_mean() {
        let times = [100, 100, 100, 100, 101, 101, 101, 101, 102];
        assert_eq!(interval(&times), Some(Duration::from_millis(250)));
        assert_eq!(
            estimate(4, interval(&[5, 5, 5])),
            "the chain's recent blocks all came within the same second, so no time estimate"
        );
        assert_eq!(interval(&[5]), None);
    }

    #[test]
    fn human_units_round_and_pluralise() {
        assert_eq!(human(Duration::from_secs(1)), "about 1 second");
        assert_eq!(human(Duration::from_millis(200)), "about 1 second");
        assert_eq!(human(Duration::from_secs(89)), "about 89 seconds");
        assert_eq!(human(Duration::from_secs(90)), "about 2 minutes");
        assert_eq!(human(Duration::from_secs(3600 * 30)), "about 30 hours");
    }
}
