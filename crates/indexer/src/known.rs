//! The txids of every stored staking and unbonding tx, kept in memory as a prefilter of the
//! per-block lookup: a mainnet block spends some 5,000 outputs, almost never one of ours, and
//! asking the database about all of them was most of the time spent per block while catching
//! up. Only prevouts whose txid is (probably) here are looked up.
//!
//! Correct as long as every stored row's txid is in the set: it is loaded after the writer lock
//! is taken (no other writer then) and extended with each block's rows as they are written.
//! False positives only cost a lookup.

use std::collections::HashSet;

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};

/// The first 8 bytes of each txid (8 bytes per entry instead of 32: at phase-1 mainnet's
/// some 100,000 stakes and unbondings, about 2 MB).
#[derive(Debug, Default)]
pub struct KnownTxids {
    prefixes: HashSet<u64>,
}

fn prefix(txid: &Txid) -> u64 {
    let bytes = txid.as_byte_array();
    u64::from_le_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

impl KnownTxids {
    pub fn new(txids: impl IntoIterator<Item = Txid>) -> Self {
        let mut known = Self::default();
        known.extend(txids);
        known
    }

    pub fn extend(&mut self, txids: impl IntoIterator<Item = Txid>) {
        self.prefixes.extend(txids.into_iter().map(|t| prefix(&t)));
    }

    /// The prevouts that may spend an output of a stored tx (all that do, maybe a few more).
    pub fn relevant(&self, prevouts: impl IntoIterator<Item = OutPoint>) -> Vec<OutPoint> {
        if self.prefixes.is_empty() {
            return Vec::new();
        }
        prevouts
            .into_iter()
            .filter(|o| self.prefixes.contains(&prefix(&o.txid)))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.prefixes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txid(first: u8, rest: u8) -> Txid {
        let mut bytes = [rest; 32];
        bytes[0] = first;
        Txid::from_byte_array(bytes)
    }

    #[test]
    fn keeps_every_prevout_of_a_known_txid_and_drops_the_others() {
        let mut known = KnownTxids::new([txid(1, 0)]);
        known.extend([txid(2, 0)]);
        let prevouts = [
            OutPoint::new(txid(1, 0), 0),
            OutPoint::new(txid(3, 0), 0),
            OutPoint::new(txid(2, 0), 5),
            OutPoint::new(txid(1, 0), 1),
        ];
        assert_eq!(
            known.relevant(prevouts),
            vec![prevouts[0], prevouts[2], prevouts[3]]
        );
        assert_eq!(known.len(), 2);
    }

    #[test]
    fn a_txid_sharing_the_first_eight_bytes_passes_too_and_nothing_passes_an_empty_set() {
        let known = KnownTxids::new([txid(1, 0)]);
        let lookalike = OutPoint::new(
            Txid::from_byte_array({
                let mut b = [0; 32];
                b[0] = 1;
                b[31] = 9;
                b
            }),
            0,
        );
        assert_eq!(known.relevant([lookalike]), vec![lookalike]);
        assert!(KnownTxids::default()
            .relevant([OutPoint::new(txid(1, 0), 0)])
            .is_empty());
    }
}
