//! The address (script) index of the active chain: for every output script, the confirmed
//! transactions that paid it or spent from it, kept as blocks connect and disconnect.
//!
//! The Esplora REST ([`crate::esplora`]) answers address, script-hash and UTXO queries from it
//! in time proportional to the address's own history, never by scanning the UTXO set. Keys are
//! the first 8 bytes of `sha256(script)` — the Esplora "script hash", so a `scripthash/{h}`
//! query finds its entries without knowing the script. Two scripts sharing a key (about one
//! chance in 2^64 per pair) only add candidates: readers check every transaction against the
//! script or hash they were asked about.

use std::collections::HashMap;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::{Block, Script};

use crate::coins::Coin;

/// A confirmed transaction by position: height of its block on the active chain and index in it.
/// Eight bytes, where a txid would take 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TxPos {
    /// Block height.
    pub height: u32,
    /// Position in the block (0 = coinbase).
    pub index: u32,
}

/// Esplora's script hash: `sha256(script)`, shown in forward byte order.
pub fn script_hash(script: &Script) -> sha256::Hash {
    sha256::Hash::hash(script.as_bytes())
}

/// The index key of a script hash.
pub fn key_of_hash(hash: &sha256::Hash) -> u64 {
    let bytes = hash.to_byte_array();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(first)
}

/// The index key of a script.
pub fn key_of(script: &Script) -> u64 {
    key_of_hash(&script_hash(script))
}

/// Per key, the transactions touching it in chain order (oldest first). Most scripts are touched
/// once or twice (paid, then spent), so those keep their entries inline.
#[derive(Debug, Clone)]
enum History {
    One(TxPos),
    Two([TxPos; 2]),
    Many(Vec<TxPos>),
}

impl History {
    fn as_slice(&self) -> &[TxPos] {
        match self {
            History::One(p) => std::slice::from_ref(p),
            History::Two(p) => p,
            History::Many(v) => v,
        }
    }

    fn push(&mut self, pos: TxPos) {
        *self = match std::mem::replace(self, History::Many(Vec::new())) {
            History::One(a) => History::Two([a, pos]),
            History::Two([a, b]) => History::Many(vec![a, b, pos]),
            History::Many(mut v) => {
                v.push(pos);
                History::Many(v)
            }
        };
    }

    /// Drops the entries at `height` (always the tail: blocks disconnect from the tip); returns
    /// whether nothing is left.
    fn pop_height(&mut self, height: u32) -> bool {
        let keep = self
            .as_slice()
            .iter()
            .rposition(|p| p.height != height)
            .map_or(0, |i| i + 1);
        match self {
            History::Many(v) if keep > 2 => v.truncate(keep),
            _ => {
                let slice = self.as_slice();
                let (first, second) = (slice.first().copied(), slice.get(1).copied());
                match (keep, first, second) {
                    (1, Some(a), _) => *self = History::One(a),
                    (2, Some(a), Some(b)) => *self = History::Two([a, b]),
                    _ => return true,
                }
            }
        }
        false
    }
}

/// Script key → confirmed transactions that paid or spent it.
#[derive(Debug, Default, Clone)]
pub struct ScriptIndex {
    map: HashMap<u64, History>,
}

impl ScriptIndex {
    /// The confirmed transactions touching scripts with `key`, oldest first (candidates: check
    /// each against the script).
    pub fn history(&self, key: u64) -> &[TxPos] {
        self.map.get(&key).map(History::as_slice).unwrap_or(&[])
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records the block at `height`; `spent` are the coins its inputs spent, in input order
    /// (the block's undo data).
    pub fn connect(&mut self, height: u32, block: &Block, spent: &[Coin]) {
        for_each_touch(block, spent, |index, key| {
            let pos = TxPos { height, index };
            match self.map.get_mut(&key) {
                Some(h) => h.push(pos),
                None => {
                    self.map.insert(key, History::One(pos));
                }
            }
        });
    }

    /// Forgets the block at `height` (the tip being disconnected), with the same `spent` coins
    /// it was connected with.
    pub fn disconnect(&mut self, height: u32, block: &Block, spent: &[Coin]) {
        for_each_touch(block, spent, |_, key| {
            if self.map.get_mut(&key).is_some_and(|h| h.pop_height(height)) {
                self.map.remove(&key);
            }
        });
    }
}

/// Calls `f(tx index, key)` once per transaction and distinct key it touches (outputs it
/// creates, coins it spends), in block order.
fn for_each_touch(block: &Block, spent: &[Coin], mut f: impl FnMut(u32, u64)) {
    let mut coins = spent.iter();
    let mut keys: Vec<u64> = Vec::new();
    for (index, tx) in block.txdata.iter().enumerate() {
        keys.clear();
        if !tx.is_coinbase() {
            for coin in coins.by_ref().take(tx.input.len()) {
                keys.push(key_of(&coin.output.script_pubkey));
            }
        }
        for out in &tx.output {
            keys.push(key_of(&out.script_pubkey));
        }
        keys.sort_unstable();
        keys.dedup();
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        for key in &keys {
            f(index, *key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(height: u32, index: u32) -> TxPos {
        TxPos { height, index }
    }

    #[test]
    fn a_history_grows_inline_then_on_the_heap_and_shrinks_back_by_height() {
        let mut h = History::One(pos(1, 0));
        h.push(pos(2, 1));
        assert!(matches!(h, History::Two(_)));
        h.push(pos(3, 0));
        h.push(pos(3, 5));
        assert_eq!(h.as_slice(), &[pos(1, 0), pos(2, 1), pos(3, 0), pos(3, 5)]);
        assert!(!h.pop_height(3));
        assert_eq!(h.as_slice(), &[pos(1, 0), pos(2, 1)]);
        assert!(matches!(h, History::Two(_)));
        assert!(!h.pop_height(2));
        assert!(h.pop_height(1));
    }

    #[test]
    fn the_key_is_the_first_eight_bytes_of_the_esplora_script_hash() {
        let script = bitcoin::ScriptBuf::from_bytes(vec![0x51]);
        let hash = script_hash(&script);
        assert_eq!(
            key_of(&script).to_le_bytes(),
            hash.to_byte_array()[..8],
            "{hash}"
        );
    }
}
