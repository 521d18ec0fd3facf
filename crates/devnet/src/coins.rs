//! Unspent outputs as the chain and the mempool see them.

use bitcoin::TxOut;

/// An unspent output with the facts the spending rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    /// The output.
    pub output: TxOut,
    /// Height of the block that created it; for a mempool output, the next block's height.
    pub height: u32,
    /// Whether it was created by a coinbase (100-block maturity applies).
    pub is_coinbase: bool,
}
