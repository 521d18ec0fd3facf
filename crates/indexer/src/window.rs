//! The confirmation window (`docs/rules.md#confirmation-window`): the last `k − 1` blocks of
//! the followed chain stay in memory as unconfirmed; a block is confirmed once it has `k`
//! confirmations (`tip ≥ h + k − 1`), and only then is it processed and written.
//!
//! A reorg inside the window only drops blocks from memory: nothing about them was written or
//! emitted. A disconnection of a block that already left the window is a major reorg.

use std::collections::VecDeque;

use bitcoin::{Block, BlockHash};

/// A block of the followed chain with its height.
#[derive(Debug, Clone)]
pub struct HeightBlock {
    pub height: u32,
    pub hash: BlockHash,
    pub block: Block,
}

/// What a disconnection meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// The block was unconfirmed and is dropped (minor reorg).
    Dropped,
    /// The block is not in the window: it was confirmed and processed (major reorg).
    BelowWindow,
}

/// The unconfirmed blocks, oldest first.
#[derive(Debug)]
pub struct Window {
    capacity: usize,
    blocks: VecDeque<HeightBlock>,
}

impl Window {
    /// A window for confirmation depth `k` (≥ 1): holds `k − 1` blocks.
    pub fn new(depth: u16) -> Self {
        let capacity = usize::from(depth.max(1)) - 1;
        Self {
            capacity,
            blocks: VecDeque::with_capacity(capacity + 1),
        }
    }

    /// Adds the new tip; returns the block that became confirmed by it, if any.
    pub fn push(&mut self, block: HeightBlock) -> Option<HeightBlock> {
        self.blocks.push_back(block);
        if self.blocks.len() > self.capacity {
            self.blocks.pop_front()
        } else {
            None
        }
    }

    /// The tip block `hash` at `height` left the active chain.
    pub fn disconnect(&mut self, height: u32, hash: BlockHash) -> Disconnect {
        match self.blocks.back() {
            Some(b) if b.height == height && b.hash == hash => {
                self.blocks.pop_back();
                Disconnect::Dropped
            }
            _ => Disconnect::BelowWindow,
        }
    }

    /// The unconfirmed blocks, oldest first.
    pub fn blocks(&self) -> impl ExactSizeIterator<Item = &HeightBlock> {
        self.blocks.iter()
    }

    /// Height of the newest block, if any.
    pub fn tip_height(&self) -> Option<u32> {
        self.blocks.back().map(|b| b.height)
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::blockdata::constants::genesis_block;
    use bitcoin::hashes::Hash;
    use bitcoin::Network;

    fn block(height: u32) -> HeightBlock {
        let block = genesis_block(Network::Regtest);
        HeightBlock {
            height,
            hash: BlockHash::from_byte_array([height as u8; 32]),
            block,
        }
    }

    #[test]
    fn a_block_is_confirmed_when_it_has_k_confirmations() {
        let mut w = Window::new(3);
        assert!(w.push(block(10)).is_none());
        assert!(w.push(block(11)).is_none());
        // Tip 12 = 10 + 3 − 1: block 10 has 3 confirmations.
        let confirmed = w.push(block(12)).map(|b| b.height);
        assert_eq!(confirmed, Some(10));
        assert_eq!(w.len(), 2);
        assert_eq!(w.tip_height(), Some(12));
    }

    #[test]
    fn disconnecting_an_unconfirmed_tip_drops_it_and_a_confirmed_one_is_a_major_reorg() {
        let mut w = Window::new(3);
        w.push(block(10));
        w.push(block(11));
        w.push(block(12));
        assert_eq!(w.disconnect(12, block(12).hash), Disconnect::Dropped);
        assert_eq!(w.disconnect(11, block(11).hash), Disconnect::Dropped);
        assert!(w.is_empty());
        assert_eq!(w.disconnect(10, block(10).hash), Disconnect::BelowWindow);
    }

    #[test]
    fn disconnecting_a_block_that_is_not_the_tip_is_below_the_window() {
        let mut w = Window::new(4);
        w.push(block(10));
        w.push(block(11));
        assert_eq!(w.disconnect(10, block(10).hash), Disconnect::BelowWindow);
        assert_eq!(w.len(), 2);
    }
}
