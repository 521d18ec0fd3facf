//! The kinds of fault and how the process faults (`kill`, `signer`) pick their victims.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::committee::Committee;
use crate::load::QUORUM;
use crate::stack::Stack;

/// The kinds of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// SIGKILL the indexer, API, expiry checker, unbonding pipeline or a covenant signer
    /// (each once in turn, in random order), restart it after 0–1.5 s.
    Kill,
    /// Shut the RabbitMQ node down for `--outage-secs` (30 by default), then start it again.
    Rabbitmq,
    /// Stop PostgreSQL in immediate mode (crash recovery on start), start it after 3 s.
    Postgres,
    /// Reorg the devnet by 1 to 12 blocks (invalidateblock + a longer branch).
    Reorg,
    /// Covenant signers: a slow one (SIGSTOP 3 s), a dead one (SIGKILL, down until the end of
    /// the load), once below quorum for 4 s (two more SIGKILLed), then slow ones again.
    Signer,
}

/// How long a slow signer stays stopped: three pipeline signer timeouts.
pub const SLOW: Duration = Duration::from_secs(3);
/// How long the committee is below quorum (two members SIGKILLed on top of the dead one). At
/// most three attempts of a request fit in it (retries after ≥ 1.6 s and ≥ 3.2 s more, ±20 %
/// jitter on 2 s doubling), fewer than the pipeline's 5 before it fails a request.
pub const BELOW_QUORUM: Duration = Duration::from_secs(4);

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Kill,
        Fault::Rabbitmq,
        Fault::Postgres,
        Fault::Reorg,
        Fault::Signer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Rabbitmq => "rabbitmq",
            Fault::Postgres => "postgres",
            Fault::Reorg => "reorg",
            Fault::Signer => "signer",
        }
    }
}

/// What `kill` hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    Indexer,
    Api,
    Expiry,
    Pipeline,
    Signer,
}

/// Victims in random order, each once before any repeats.
#[derive(Debug, Default)]
pub struct Deck(Vec<Victim>);

impl Deck {
    pub fn draw(&mut self, rng: &mut StdRng) -> Victim {
        if self.0.is_empty() {
            self.0 = vec![
                Victim::Indexer,
                Victim::Api,
                Victim::Expiry,
                Victim::Pipeline,
                Victim::Signer,
            ];
            self.0.shuffle(rng);
        }
        self.0.pop().unwrap_or(Victim::Api)
    }
}

/// Whether a fault injected earlier is still in progress (a process down or stopped), not
/// counting a signer held dead on purpose.
pub fn in_progress(stack: &mut Stack, committee: &Committee) -> bool {
    stack.services().iter().any(|s| s.disturbed())
        || committee
            .members
            .iter()
            .any(|m| m.service.disturbed() && !m.service.held())
}

/// One `kill` fault; its description.
pub async fn kill(
    stack: &mut Stack,
    committee: &mut Committee,
    victim: Victim,
    rng: &mut StdRng,
) -> anyhow::Result<String> {
    let delay = Duration::from_millis(rng.gen_range(0..1_500));
    let service = match victim {
        Victim::Indexer => &mut stack.indexer,
        Victim::Api => &mut stack.api,
        Victim::Expiry => &mut stack.expiry,
        Victim::Pipeline => match stack.pipeline.as_mut() {
            Some(p) => p,
            None => &mut stack.api,
        },
        Victim::Signer => {
            let up = committee.undisturbed();
            let Some(&i) = up.choose(rng) else {
                anyhow::bail!("no covenant signer is up to be killed");
            };
            &mut committee.members[i].service
        }
    };
    service.kill_for(delay).await?;
    Ok(format!(
        "SIGKILL {} (restart after {} ms)",
        service.name,
        delay.as_millis()
    ))
}

/// The `n`-th `signer` fault (0-based): slow, dead, below quorum, then slow ones.
pub async fn signer(committee: &mut Committee, n: u32, rng: &mut StdRng) -> anyhow::Result<String> {
    let mut up = committee.undisturbed();
    up.shuffle(rng);
    let Some(&first) = up.first() else {
        return Ok("no member up: nothing injected".to_owned());
    };
    let size = committee.members.len();
    match n {
        1 => {
            let m = &mut committee.members[first].service;
            m.kill_held().await?;
            Ok(format!(
                "dead signer: SIGKILL {} (down until the end of the load; {} of {} up, quorum {QUORUM})",
                m.name,
                up.len() - 1,
                size
            ))
        }
        2 => {
            let below = (QUORUM as usize).saturating_sub(1);
            let victims: Vec<usize> = up.iter().copied().skip(below).collect();
            let mut names = Vec::new();
            for i in &victims {
                let m = &mut committee.members[*i].service;
                m.kill_for(BELOW_QUORUM).await?;
                names.push(m.name.clone());
            }
            Ok(format!(
                "below quorum: SIGKILL {} for {} s ({} of {} up, quorum {QUORUM})",
                names.join(", "),
                BELOW_QUORUM.as_secs(),
                up.len() - victims.len(),
                size
            ))
        }
        _ => {
            let m = &mut committee.members[first].service;
            m.pause_for(SLOW);
            Ok(format!(
                "slow signer: SIGSTOP {} for {} s, then SIGCONT ({} of {} answering, quorum {QUORUM})",
                m.name,
                SLOW.as_secs(),
                up.len() - 1,
                size
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn the_kill_deck_hits_every_service_once_before_any_repeats() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut deck = Deck::default();
        for _round in 0..3 {
            let mut drawn: Vec<Victim> = (0..5).map(|_| deck.draw(&mut rng)).collect();
            drawn.sort_by_key(|v| *v as u8);
            assert_eq!(
                drawn,
                [
                    Victim::Indexer,
                    Victim::Api,
                    Victim::Expiry,
                    Victim::Pipeline,
                    Victim::Signer
                ]
            );
        }
    }
}
