//! Early-unbonding requests through the API, as `staker unbond` makes them: the canonical
//! unbonding tx, signed by the staker, `POST /v1/unbonding`; the pipeline then collects the
//! committee's signatures and broadcasts it.
//!
//! A request whose answer is lost (API killed, database down, timeout) may or may not have been
//! stored, so it is sent again on the next tick; a refusal after such a loss ("already exists",
//! "not active") means an earlier try was accepted. The settle checks do not trust this
//! bookkeeping alone: they read the request table and the chain.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::Txid;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::load::{Fixture, Load, StakerSigned, DEPTH};

/// Where one request stands, as the harness saw the API's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not accepted yet; `lost` if some try got no answer (it may have been stored).
    Trying {
        lost: bool,
    },
    Accepted,
    /// Refused for a reason other than "not indexed yet", with no lost answer before.
    Refused,
}

#[derive(Debug)]
struct Request {
    unbonding: Txid,
    body: Value,
    state: State,
}

/// The requests of one run.
#[derive(Debug)]
pub struct Requests {
    http: reqwest::Client,
    base: String,
    requests: BTreeMap<Txid, Request>,
    /// POSTs sent (every try).
    pub posts: u32,
    /// Accepted (202, or a refusal proving a lost try was accepted).
    pub accepted: u32,
    /// Of those, known accepted only from a later refusal.
    pub accepted_after_lost_answer: u32,
    pub refused: u32,
}

impl Requests {
    pub fn new(api_base: &str) -> anyhow::Result<Requests> {
        Ok(Requests {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .context("building the HTTP client")?,
            base: api_base.to_owned(),
            requests: BTreeMap::new(),
            posts: 0,
            accepted: 0,
            accepted_after_lost_answer: 0,
            refused: 0,
        })
    }

    /// Staking txid → unbonding txid of every request the API accepted.
    pub fn accepted(&self) -> BTreeMap<Txid, Txid> {
        self.requests
            .iter()
            .filter(|(_, r)| r.state == State::Accepted)
            .map(|(s, r)| (*s, r.unbonding))
            .collect()
    }

    /// Requests never accepted by the end of the load (their stake was not indexed in time).
    pub fn unanswered(&self) -> usize {
        self.requests
            .values()
            .filter(|r| matches!(r.state, State::Trying { .. }))
            .count()
    }

    /// One tick: with probability `p` a new request for a stake the API should know by now
    /// (sent more than the confirmation depth ago), then a try of every request not yet
    /// accepted.
    pub async fn tick(
        &mut self,
        fx: &Fixture,
        load: &mut Load,
        rng: &mut StdRng,
        p: f64,
    ) -> anyhow::Result<()> {
        if rng.gen_bool(p) {
            let candidates = load.unbondable(u32::from(DEPTH) + 1);
            if !candidates.is_empty() {
                let txid = candidates[rng.gen_range(0..candidates.len())];
                let body = request_body(fx, load, txid)?;
                if let Some(s) = load.stakes.get_mut(&txid) {
                    s.requested = true;
                }
                self.requests.insert(txid, body);
            }
        }
        let trying: Vec<Txid> = self
            .requests
            .iter()
            .filter(|(_, r)| matches!(r.state, State::Trying { .. }))
            .map(|(t, _)| *t)
            .collect();
        for txid in trying {
            self.try_one(txid).await;
        }
        Ok(())
    }

    async fn try_one(&mut self, txid: Txid) {
        let Some(r) = self.requests.get_mut(&txid) else {
            return;
        };
        let State::Trying { lost } = r.state else {
            return;
        };
        self.posts += 1;
        let resp = self
            .http
            .post(format!("{}/v1/unbonding", self.base))
            .json(&r.body)
            .send()
            .await;
        let (status, text) = match resp {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (status, resp.text().await.unwrap_or_default())
            }
            Err(_) => {
                r.state = State::Trying { lost: true };
                return;
            }
        };
        r.state = match status {
            202 => State::Accepted,
            // Not indexed yet (or its staking tx moved by a reorg): try again next tick.
            403 if text.contains("delegation not found") => State::Trying { lost },
            403 if lost
                && (text.contains("already exists")
                    || text.contains("not active")
                    || text.contains("no active delegation")) =>
            {
                self.accepted_after_lost_answer += 1;
                State::Accepted
            }
            400..=499 => {
                eprintln!("chaos: unbonding request for {txid} refused: {status} {text}");
                State::Refused
            }
            // 5xx: the API could not tell (database down); it may have stored it.
            _ => State::Trying { lost: true },
        };
        match r.state {
            State::Accepted => self.accepted += 1,
            State::Refused => self.refused += 1,
            State::Trying { .. } => {}
        }
    }
}

/// The canonical unbonding tx of `txid`'s stake, signed by its staker, as a `/v1/unbonding`
/// body.
fn request_body(fx: &Fixture, load: &Load, txid: Txid) -> anyhow::Result<Request> {
    let stake = load
        .stakes
        .get(&txid)
        .with_context(|| format!("no stake {txid}"))?;
    let StakerSigned { tx, staker_sig, .. } = fx.staker_signed_unbonding(txid, stake)?;
    let unbonding = tx.compute_txid();
    Ok(Request {
        unbonding,
        body: json!({
            "staking_tx_hash_hex": txid.to_string(),
            "unbonding_tx_hash_hex": unbonding.to_string(),
            "unbonding_tx_hex": serialize_hex(&tx),
            "staker_signed_signature_hex": hex::encode(staker_sig.as_ref()),
        }),
        state: State::Trying { lost: false },
    })
}
