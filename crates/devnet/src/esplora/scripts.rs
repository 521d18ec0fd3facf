//! Address and script-hash queries: stats, unspent outputs and transaction history, answered
//! from the chain's script index ([`crate::script_index`]) plus a pass over the mempool — in
//! time proportional to the address's history, never by scanning the UTXO set.

use bitcoin::hashes::sha256;
use bitcoin::{Address, Network, OutPoint, Script, ScriptBuf, Transaction, Txid};
use serde_json::{json, Value};

use super::view::{find_output, tx_json, Status};
use crate::node::NodeState;
use crate::script_index::{key_of_hash, script_hash};

/// Esplora's (and mempool.space's) cap on `utxo` answers.
pub const MAX_UTXOS: usize = 500;
/// Mempool transactions in the first page of a history (Esplora: 50).
pub const MEMPOOL_PAGE: usize = 50;
/// Confirmed transactions per page of a history (Esplora: 25).
pub const CHAIN_PAGE: usize = 25;

/// What a query is about: an address's script, or only a script hash (`scripthash/{h}`).
#[derive(Debug, Clone)]
pub struct Target {
    hash: sha256::Hash,
    script: Option<ScriptBuf>,
}

impl Target {
    /// The outputs paying `script`.
    pub fn script(script: ScriptBuf) -> Self {
        Self {
            hash: script_hash(&script),
            script: Some(script),
        }
    }

    /// The outputs whose script hashes to `hash`.
    pub fn hash(hash: sha256::Hash) -> Self {
        Self { hash, script: None }
    }

    fn matches(&self, script: &Script) -> bool {
        match &self.script {
            Some(s) => s.as_script() == script,
            None => script_hash(script) == self.hash,
        }
    }

    fn key(&self) -> u64 {
        key_of_hash(&self.hash)
    }
}

/// Parses an address the devnet answers for: its own regtest spelling (`bcrt1…`) or the
/// test-network spelling of the same witness program (`tb1…`, what signet and testnet wallets
/// such as the staking dApp's hand out). Base58 test addresses are the same on both. Mainnet
/// addresses are refused.
pub fn parse_devnet_address(s: &str) -> Option<ScriptBuf> {
    let unchecked: Address<bitcoin::address::NetworkUnchecked> = s.parse().ok()?;
    let ok = unchecked.is_valid_for_network(Network::Regtest)
        || unchecked.is_valid_for_network(Network::Testnet);
    ok.then(|| unchecked.assume_checked().script_pubkey())
}

/// Funded / spent counts and sums, as Esplora's `chain_stats` and `mempool_stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    funded_count: u64,
    funded_sum: u64,
    spent_count: u64,
    spent_sum: u64,
    tx_count: u64,
}

impl Stats {
    fn add(&mut self, state: &NodeState, target: &Target, tx: &Transaction) {
        let mut touched = false;
        for out in tx
            .output
            .iter()
            .filter(|o| target.matches(&o.script_pubkey))
        {
            self.funded_count += 1;
            self.funded_sum += out.value.to_sat();
            touched = true;
        }
        if !tx.is_coinbase() {
            for input in &tx.input {
                if let Some(prev) = find_output(state, &input.previous_output) {
                    if target.matches(&prev.script_pubkey) {
                        self.spent_count += 1;
                        self.spent_sum += prev.value.to_sat();
                        touched = true;
                    }
                }
            }
        }
        if touched {
            self.tx_count += 1;
        }
    }

    fn to_json(self) -> Value {
        json!({
            "funded_txo_count": self.funded_count,
            "funded_txo_sum": self.funded_sum,
            "spent_txo_count": self.spent_count,
            "spent_txo_sum": self.spent_sum,
            "tx_count": self.tx_count,
        })
    }
}

/// Confirmed transactions touching `target`, oldest first (index candidates checked).
fn confirmed<'a: 't, 't>(
    state: &'a NodeState,
    target: &'t Target,
) -> impl DoubleEndedIterator<Item = (&'a Transaction, Status<'a>)> + 't {
    state
        .chain
        .script_history(target.key())
        .iter()
        .filter_map(|pos| state.chain.tx_at(*pos))
        .filter(|(_, tx)| touches(state, target, tx))
        .map(|(entry, tx)| (tx, Status::Confirmed(entry)))
}

/// Mempool transactions touching `target`, newest first.
fn unconfirmed<'a>(state: &'a NodeState, target: &Target) -> Vec<&'a Transaction> {
    let mut found: Vec<&Transaction> = state
        .mempool
        .entries_in_order()
        .into_iter()
        .map(|e| e.tx.as_ref())
        .filter(|tx| touches(state, target, tx))
        .collect();
    found.reverse();
    found
}

fn touches(state: &NodeState, target: &Target, tx: &Transaction) -> bool {
    tx.output.iter().any(|o| target.matches(&o.script_pubkey))
        || (!tx.is_coinbase()
            && tx.input.iter().any(|i| {
                find_output(state, &i.previous_output)
                    .is_some_and(|p| target.matches(&p.script_pubkey))
            }))
}

/// `GET address/{a}` / `GET scripthash/{h}`: `{chain_stats, mempool_stats}` (the caller adds
/// `address` or `scripthash`).
pub fn stats(state: &NodeState, target: &Target) -> Value {
    let mut chain = Stats::default();
    for (tx, _) in confirmed(state, target) {
        chain.add(state, target, tx);
    }
    let mut pool = Stats::default();
    for tx in unconfirmed(state, target) {
        pool.add(state, target, tx);
    }
    json!({"chain_stats": chain.to_json(), "mempool_stats": pool.to_json()})
}

/// Too many unspent outputs to list (Esplora's 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyUtxos;

/// `GET address/{a}/utxo`: unspent outputs, those spent by a mempool transaction left out,
/// unconfirmed ones (created in the mempool) included with `confirmed: false`; newest first.
pub fn utxos(state: &NodeState, target: &Target) -> Result<Vec<Value>, TooManyUtxos> {
    let mut found = Vec::new();
    let mut push = |txid: Txid, vout: usize, value: u64, status: Status<'_>| {
        if found.len() >= MAX_UTXOS {
            return Err(TooManyUtxos);
        }
        found.push(json!({"txid": txid.to_string(), "vout": vout, "status": status.to_json(), "value": value}));
        Ok(())
    };
    for tx in unconfirmed(state, target) {
        let txid = tx.compute_txid();
        for (vout, out) in tx.output.iter().enumerate() {
            let op = OutPoint::new(txid, vout as u32);
            if target.matches(&out.script_pubkey) && state.mempool.spender(&op).is_none() {
                push(txid, vout, out.value.to_sat(), Status::Unconfirmed)?;
            }
        }
    }
    for (tx, status) in confirmed(state, target).rev() {
        let txid = tx.compute_txid();
        for (vout, out) in tx.output.iter().enumerate() {
            let op = OutPoint::new(txid, vout as u32);
            if target.matches(&out.script_pubkey)
                && state.chain.coin(&op).is_some()
                && state.mempool.spender(&op).is_none()
            {
                push(txid, vout, out.value.to_sat(), status)?;
            }
        }
    }
    Ok(found)
}

/// Which page of a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `txs`: up to 50 mempool transactions, then the newest 25 confirmed ones.
    First,
    /// `txs/chain[/{last_seen}]`: the 25 confirmed transactions after `last_seen` (newest first;
    /// from the newest without it). An unknown `last_seen` gives an empty page, as Esplora.
    Chain(Option<Txid>),
}

/// `GET address/{a}/txs[/chain[/{last_seen}]]`: transactions as Esplora JSON, newest first.
pub fn txs(state: &NodeState, target: &Target, page: Page) -> Vec<Value> {
    let mut out = Vec::new();
    if page == Page::First {
        out.extend(
            unconfirmed(state, target)
                .into_iter()
                .take(MEMPOOL_PAGE)
                .map(|tx| tx_json(state, tx, Status::Unconfirmed)),
        );
    }
    let mut newest_first = confirmed(state, target).rev();
    if let Page::Chain(Some(last_seen)) = page {
        let mut found = false;
        for (tx, _) in newest_first.by_ref() {
            if tx.compute_txid() == last_seen {
                found = true;
                break;
            }
        }
        if !found {
            return out;
        }
    }
    out.extend(
        newest_first
            .take(CHAIN_PAGE)
            .map(|(tx, status)| tx_json(state, tx, status)),
    );
    out
}

/// The confirmed or mempool transaction spending `outpoint`, and its input index.
pub fn spender<'a>(
    state: &'a NodeState,
    outpoint: &OutPoint,
    script: &Script,
) -> Option<(&'a Transaction, usize, Status<'a>)> {
    let vin_of = |tx: &Transaction| tx.input.iter().position(|i| i.previous_output == *outpoint);
    if let Some(txid) = state.mempool.spender(outpoint) {
        let tx = state.mempool.get(&txid)?.tx.as_ref();
        return vin_of(tx).map(|vin| (tx, vin, Status::Unconfirmed));
    }
    if state.chain.coin(outpoint).is_some() {
        return None;
    }
    let target = Target::script(script.to_owned());
    let found =
        confirmed(state, &target).find_map(|(tx, status)| vin_of(tx).map(|vin| (tx, vin, status)));
    found
}
