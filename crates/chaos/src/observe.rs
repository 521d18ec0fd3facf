//! What is checked after a fault: the API's whole observable state (overall stats, every
//! delegation of every staker, staker stats, finality providers) and the chain's own ledger of
//! what the load put there. "Settled" means the API shows every confirmed staking tx in the
//! state the chain implies and stops changing. The unbonding requests are checked in the API's
//! request table (none left `accepted`, `claimed` or `failed`) and on the chain (each one's
//! unbonding tx mined with exactly the quorum of covenant signatures).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bitcoin::{OutPoint, Txid};
use bitcoin_rpc::RpcClient;
use serde_json::Value;
use sqlx::{Connection, PgConnection, Row};

use crate::load::{Fixture, Load, ACTIVATION, COMMITTEE, DEPTH, QUORUM, UNBONDING_TIME};

/// The state each delegation must reach, from the blocks of the best chain.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ledger {
    /// Staking txid → expected API state (`active`, `unbonding` or `unbonded`).
    pub states: BTreeMap<String, &'static str>,
    /// Staking txid → the confirmed tx spending its staking output, and how many covenant
    /// signatures its witness carries.
    pub unbondings: BTreeMap<String, (String, usize)>,
    /// Delegations `unbonded` because their staking timelock expired.
    pub expired: usize,
    pub tip: u32,
}

impl Ledger {
    /// How many delegations must end in `state`.
    pub fn count(&self, state: &str) -> usize {
        self.states.values().filter(|s| **s == state).count()
    }
}

/// Non-empty covenant slots of an unbonding-path witness (`[cov_sig_or_empty × committee,
/// staker_sig, script, control block]`); `None` for another witness shape.
fn covenant_signatures(witness: &bitcoin::Witness) -> Option<usize> {
    let n = usize::from(COMMITTEE);
    (witness.len() == n + 3).then(|| witness.iter().take(n).filter(|w| !w.is_empty()).count())
}

/// Walks the best chain from the activation height to the last confirmed block. A staking
/// output spent there is `unbonding`, or `unbonded` once the tip reached the unbonding
/// timelock; an unspent one is `unbonded` once the tip reached its staking timelock (the
/// expiry checker's rule, `expire_height ≤ tip`), `active` before.
pub async fn ledger(rpc: &RpcClient, load: &Load) -> anyhow::Result<Ledger> {
    let tip = rpc.get_block_count().await?;
    let confirmed = tip + 1 - u32::from(DEPTH);
    let mut staked: Vec<(Txid, u32)> = Vec::new();
    let mut spent: HashMap<OutPoint, (Txid, u32, Option<usize>)> = HashMap::new();
    for h in u32::try_from(ACTIVATION)?..=confirmed {
        let block = rpc.get_block(&rpc.get_block_hash(h).await?).await?;
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            if load.stakes.contains_key(&txid) {
                staked.push((txid, h));
            }
            for input in &tx.input {
                spent.insert(
                    input.previous_output,
                    (txid, h, covenant_signatures(&input.witness)),
                );
            }
        }
    }
    let mut ledger = Ledger {
        tip,
        ..Ledger::default()
    };
    for (txid, height) in staked {
        let state = match spent.get(&OutPoint::new(txid, 0)) {
            Some((by, at, sigs)) => {
                ledger
                    .unbondings
                    .insert(txid.to_string(), (by.to_string(), sigs.unwrap_or(0)));
                if tip >= at + UNBONDING_TIME {
                    "unbonded"
                } else {
                    "unbonding"
                }
            }
            None => {
                let time = load.stakes.get(&txid).map_or(0, |s| u32::from(s.time));
                if tip >= height + time {
                    ledger.expired += 1;
                    "unbonded"
                } else {
                    "active"
                }
            }
        };
        ledger.states.insert(txid.to_string(), state);
    }
    Ok(ledger)
}

/// What the chain must show for the unbondings: every one carries exactly the quorum of
/// covenant signatures, and every request the API accepted was executed by its own tx.
pub fn chain_problems(ledger: &Ledger, accepted: &BTreeMap<Txid, Txid>) -> Vec<String> {
    let mut problems = Vec::new();
    for (staking, (by, sigs)) in &ledger.unbondings {
        if *sigs != QUORUM as usize {
            problems.push(format!(
                "unbonding tx {by} of {staking} carries {sigs} covenant signatures, not the quorum {QUORUM}"
            ));
        }
    }
    for (staking, unbonding) in accepted {
        match ledger.unbondings.get(&staking.to_string()) {
            Some((by, _)) if *by == unbonding.to_string() => {}
            Some((by, _)) => problems.push(format!(
                "accepted request {unbonding} for {staking}, but {by} spent the stake"
            )),
            None => problems.push(format!(
                "accepted request {unbonding} for {staking} is not on the best chain (stuck?)"
            )),
        }
    }
    problems
}

/// `state → count` of the API's unbonding request table.
pub async fn request_states(api_db: &str) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut c = PgConnection::connect(api_db)
        .await
        .with_context(|| format!("connecting to {api_db}"))?;
    let rows =
        sqlx::query("SELECT state, COUNT(*) AS n FROM api_unbonding_requests GROUP BY state")
            .fetch_all(&mut c)
            .await
            .context("reading api_unbonding_requests")?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>("state")?, r.try_get::<i64, _>("n")?)))
        .collect()
}

/// Every stored request must be `sent`, by the tx the chain shows spending its stake. Also
/// returns the most attempts (claims) any request took, against the pipeline's budget.
pub async fn request_problems(api_db: &str, ledger: &Ledger) -> anyhow::Result<(Vec<String>, i64)> {
    let mut c = PgConnection::connect(api_db)
        .await
        .with_context(|| format!("connecting to {api_db}"))?;
    let rows = sqlx::query(
        "SELECT staking_tx_hash, unbonding_tx_hash, state, attempts,          COALESCE(failure_reason, last_error, '') AS why FROM api_unbonding_requests ORDER BY id",
    )
    .fetch_all(&mut c)
    .await
    .context("reading api_unbonding_requests")?;
    let mut problems = Vec::new();
    let mut most = 0;
    for r in &rows {
        let staking: String = r.try_get("staking_tx_hash")?;
        let unbonding: String = r.try_get("unbonding_tx_hash")?;
        let state: String = r.try_get("state")?;
        let attempts: i64 = r.try_get("attempts")?;
        most = most.max(attempts);
        if state != "sent" {
            let why: String = r.try_get("why")?;
            problems.push(format!(
                "unbonding request {unbonding} for {staking} is `{state}` after {attempts} attempt(s): {why}"
            ));
        } else if ledger.unbondings.get(&staking).map(|(by, _)| by) != Some(&unbonding) {
            problems.push(format!(
                "unbonding request {unbonding} for {staking} is `sent` but not on the best chain"
            ));
        }
    }
    Ok((problems, most))
}

/// Everything the API shows, pagination tokens left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub stats: Value,
    pub delegations: BTreeMap<String, Value>,
    pub staker_stats: Value,
    pub finality_providers: Value,
}

async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let resp = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .with_context(|| format!("GET {url}: body is not JSON"))?;
    if !status.is_success() {
        bail!("GET {url}: {status} {body}");
    }
    Ok(body)
}

async fn all_pages(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<Value>> {
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut key = String::new();
    for _ in 0..10_000 {
        let page = if key.is_empty() {
            get(http, url).await?
        } else {
            get(http, &format!("{url}{sep}pagination_key={key}")).await?
        };
        if let Some(items) = page["data"].as_array() {
            out.extend(items.iter().cloned());
        }
        key = page["pagination"]["next_key"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if key.is_empty() {
            return Ok(out);
        }
    }
    bail!("{url}: more than 10000 pages")
}

/// Reads the API at `base` (e.g. `http://127.0.0.1:8092`).
pub async fn snapshot(
    http: &reqwest::Client,
    base: &str,
    fx: &Fixture,
) -> anyhow::Result<Snapshot> {
    let mut delegations = BTreeMap::new();
    for staker in &fx.stakers {
        let url = format!(
            "{base}/v1/staker/delegations?staker_btc_pk={}",
            staker.x_only()
        );
        for d in all_pages(http, &url).await? {
            let hash = d["staking_tx_hash_hex"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            delegations.insert(hash, d);
        }
    }
    Ok(Snapshot {
        stats: get(http, &format!("{base}/v1/stats")).await?["data"].clone(),
        delegations,
        staker_stats: Value::Array(all_pages(http, &format!("{base}/v1/stats/staker")).await?),
        finality_providers: Value::Array(
            all_pages(http, &format!("{base}/v1/finality-providers")).await?,
        ),
    })
}

/// Differences between what the API shows and the chain's ledger (empty when they agree).
pub fn ledger_problems(snapshot: &Snapshot, ledger: &Ledger) -> Vec<String> {
    let mut problems = Vec::new();
    for (hash, want) in &ledger.states {
        match snapshot.delegations.get(hash) {
            None => problems.push(format!("delegation {hash} missing (lost event?)")),
            Some(d) if d["state"] != *want => problems.push(format!(
                "delegation {hash} is {} but the chain says {want} (stuck?)",
                d["state"]
            )),
            Some(_) => {}
        }
    }
    for hash in snapshot.delegations.keys() {
        if !ledger.states.contains_key(hash) {
            problems.push(format!("delegation {hash} is not on the best chain"));
        }
    }
    // Overflow delegations are not counted in the statistics (as the reference).
    let counted = snapshot
        .delegations
        .values()
        .filter(|d| d["is_overflow"] != Value::Bool(true))
        .count();
    let total = snapshot.stats["total_delegations"].as_u64();
    if total != Some(counted as u64) {
        problems.push(format!(
            "stats say {total:?} delegations, the API lists {counted} that are not overflow"
        ));
    }
    problems
}

/// Polls until the API agrees with the ledger and two reads a second apart are equal.
pub async fn settle(
    http: &reqwest::Client,
    base: &str,
    fx: &Fixture,
    ledger: &Ledger,
    timeout: Duration,
) -> anyhow::Result<(Snapshot, Duration)> {
    let started = Instant::now();
    let mut last: Option<Snapshot> = None;
    let mut problems = vec!["never read".to_owned()];
    while started.elapsed() < timeout {
        match snapshot(http, base, fx).await {
            Ok(s) => {
                problems = ledger_problems(&s, ledger);
                if problems.is_empty() && last.as_ref() == Some(&s) {
                    return Ok((s, started.elapsed()));
                }
                last = Some(s);
            }
            Err(e) => problems = vec![format!("API not answering: {e:#}")],
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let shown: Vec<_> = problems.iter().take(10).collect();
    bail!(
        "{} problem(s) at the last read, first: {shown:#?}",
        problems.len()
    )
}

/// Field-level differences between two snapshots (for the report when they differ).
pub fn differences(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if a.stats != b.stats {
        out.push(format!("stats: {} vs {}", a.stats, b.stats));
    }
    if a.staker_stats != b.staker_stats {
        out.push(format!(
            "staker stats: {} vs {}",
            a.staker_stats, b.staker_stats
        ));
    }
    if a.finality_providers != b.finality_providers {
        out.push(format!(
            "finality providers: {} vs {}",
            a.finality_providers, b.finality_providers
        ));
    }
    for (hash, d) in &a.delegations {
        match b.delegations.get(hash) {
            Some(e) if e == d => {}
            Some(e) => out.push(format!("delegation {hash}: {d} vs {e}")),
            None => out.push(format!("delegation {hash} only in the disturbed run")),
        }
    }
    for hash in b.delegations.keys() {
        if !a.delegations.contains_key(hash) {
            out.push(format!("delegation {hash} only in the undisturbed run"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use serde_json::json;

    use super::*;

    fn snapshot(delegations: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            stats: json!({ "total_delegations": delegations.len() }),
            delegations: delegations
                .iter()
                .map(|(h, s)| {
                    (
                        (*h).to_owned(),
                        json!({ "staking_tx_hash_hex": h, "state": s }),
                    )
                })
                .collect(),
            staker_stats: json!([]),
            finality_providers: json!([]),
        }
    }

    fn ledger(states: &[(&str, &'static str)]) -> Ledger {
        Ledger {
            states: states.iter().map(|(h, s)| ((*h).to_owned(), *s)).collect(),
            tip: 200,
            ..Ledger::default()
        }
    }

    #[test]
    fn an_api_matching_the_chain_has_no_problems() {
        let s = snapshot(&[("aa", "active"), ("bb", "unbonding")]);
        assert!(ledger_problems(&s, &ledger(&[("aa", "active"), ("bb", "unbonding")])).is_empty());
    }

    #[test]
    fn a_lost_event_and_a_stuck_delegation_are_both_reported() {
        let mut s = snapshot(&[("aa", "active")]);
        s.stats["total_delegations"] = json!(2);
        let problems = ledger_problems(&s, &ledger(&[("aa", "unbonding"), ("bb", "active")]));
        assert!(problems
            .iter()
            .any(|p| p.contains("aa") && p.contains("stuck")));
        assert!(problems
            .iter()
            .any(|p| p.contains("bb") && p.contains("missing")));
        assert!(problems.iter().any(|p| p.contains("stats say Some(2)")));
    }

    #[test]
    fn overflow_delegations_are_not_expected_in_the_stats() {
        let mut s = snapshot(&[("aa", "active"), ("bb", "active")]);
        s.delegations.get_mut("bb").unwrap()["is_overflow"] = json!(true);
        let l = ledger(&[("aa", "active"), ("bb", "active")]);
        assert!(ledger_problems(&s, &l)
            .iter()
            .any(|p| p.contains("stats say Some(2)")));
        s.stats["total_delegations"] = json!(1);
        assert!(ledger_problems(&s, &l).is_empty());
    }

    #[test]
    fn a_delegation_off_the_best_chain_is_reported() {
        let s = snapshot(&[("aa", "active"), ("cc", "active")]);
        let problems = ledger_problems(&s, &ledger(&[("aa", "active")]));
        assert!(problems
            .iter()
            .any(|p| p.contains("cc") && p.contains("not on the best chain")));
    }

    #[test]
    fn snapshots_differing_in_one_field_of_one_delegation_are_told_apart() {
        let a = snapshot(&[("aa", "active"), ("bb", "active")]);
        let mut b = a.clone();
        b.delegations.get_mut("bb").unwrap()["is_overflow"] = json!(true);
        let diff = differences(&a, &b);
        assert_eq!(diff.len(), 1);
        assert!(diff[0].starts_with("delegation bb"));
        assert!(differences(&a, &a).is_empty());
    }

    fn txid(byte: u8) -> Txid {
        use bitcoin::hashes::Hash;
        Txid::from_byte_array([byte; 32])
    }

    #[test]
    fn an_unbonding_without_the_quorum_of_covenant_signatures_is_reported() {
        let mut l = ledger(&[("aa", "unbonding")]);
        l.unbondings
            .insert("aa".to_owned(), ("u1".to_owned(), QUORUM as usize));
        assert!(chain_problems(&l, &BTreeMap::new()).is_empty());
        l.unbondings
            .insert("aa".to_owned(), ("u1".to_owned(), QUORUM as usize + 1));
        let problems = chain_problems(&l, &BTreeMap::new());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("not the quorum"), "{problems:?}");
    }

    #[test]
    fn an_accepted_request_missing_from_the_chain_or_spent_by_another_tx_is_reported() {
        let (staking, unbonding, other) = (txid(1), txid(2), txid(3));
        let accepted: BTreeMap<Txid, Txid> = [(staking, unbonding)].into();
        let mut l = ledger(&[]);
        let problems = chain_problems(&l, &accepted);
        assert!(
            problems[0].contains("not on the best chain"),
            "{problems:?}"
        );
        l.unbondings
            .insert(staking.to_string(), (other.to_string(), QUORUM as usize));
        let problems = chain_problems(&l, &accepted);
        assert!(problems[0].contains("spent the stake"), "{problems:?}");
        l.unbondings.insert(
            staking.to_string(),
            (unbonding.to_string(), QUORUM as usize),
        );
        assert!(chain_problems(&l, &accepted).is_empty());
    }

    #[test]
    fn covenant_signatures_are_the_non_empty_slots_of_an_unbonding_witness() {
        let n = usize::from(COMMITTEE);
        let mut items: Vec<Vec<u8>> = (0..n)
            .map(|i| if i % 2 == 0 { vec![1; 64] } else { vec![] })
            .collect();
        items.extend([vec![2; 64], vec![3; 40], vec![4; 33]]);
        let witness = bitcoin::Witness::from_slice(&items);
        assert_eq!(covenant_signatures(&witness), Some(n.div_ceil(2)));
        let short = bitcoin::Witness::from_slice(&[vec![1u8; 64]]);
        assert_eq!(covenant_signatures(&short), None);
    }
}
