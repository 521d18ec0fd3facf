//! Regtest consensus and policy constants, as Bitcoin Core 26 uses them on `-regtest`.
//!
//! On regtest every soft fork (BIP34/65/66, CSV, segwit, taproot) is active from height 1, so one
//! set of script flags applies to every block the devnet connects.

use bitcoin::{Amount, CompactTarget, FeeRate};

/// Compact difficulty bits of every regtest block (no retargeting).
pub const POW_BITS: u32 = 0x207f_ffff;

/// [`POW_BITS`] as the header field type.
pub fn pow_bits() -> CompactTarget {
    CompactTarget::from_consensus(POW_BITS)
}

/// Blocks between subsidy halvings on regtest (mainnet: 210,000).
pub const HALVING_INTERVAL: u32 = 150;

/// Confirmations a coinbase output needs before it can be spent.
pub const COINBASE_MATURITY: u32 = 100;

/// Largest block weight (BIP141).
pub const MAX_BLOCK_WEIGHT: u64 = 4_000_000;

/// Largest standard transaction weight (policy).
pub const MAX_STANDARD_TX_WEIGHT: u64 = 400_000;

/// Smallest non-witness serialisation of a standard transaction.
pub const MIN_STANDARD_TX_NONWITNESS_SIZE: usize = 65;

/// Largest standard transaction version (Core 26).
pub const MAX_STANDARD_VERSION: i32 = 2;

/// Largest standard OP_RETURN scriptPubKey (`-datacarriersize` 80 plus the opcode and pushes).
pub const MAX_OP_RETURN_RELAY: usize = 83;

/// Largest standard scriptSig.
pub const MAX_STANDARD_SCRIPTSIG_SIZE: usize = 1650;

/// Most unconfirmed ancestors (itself included) a mempool transaction may have.
pub const ANCESTOR_LIMIT: usize = 25;

/// Most unconfirmed descendants (itself included) a mempool transaction may have.
pub const DESCENDANT_LIMIT: usize = 25;

/// Most transactions one replacement may evict (BIP125 rule 5).
pub const MAX_REPLACEMENT_CANDIDATES: usize = 100;

/// `-minrelaytxfee` default: 1 sat/vB.
pub const MIN_RELAY_FEE: FeeRate = FeeRate::from_sat_per_kwu(250);

/// `-incrementalrelayfee` default: 1 sat/vB.
pub const INCREMENTAL_RELAY_FEE: FeeRate = FeeRate::from_sat_per_kwu(250);

/// `-dustrelayfee` default: 3 sat/vB.
pub const DUST_RELAY_FEE: FeeRate = FeeRate::from_sat_per_kwu(750);

/// `sendrawtransaction` / `testmempoolaccept` default `maxfeerate`: 0.10 BTC/kvB.
pub const DEFAULT_MAX_FEE_RATE_SAT_PER_KVB: u64 = 10_000_000;

/// A block's timestamp may be at most this far ahead of the wall clock.
pub const MAX_FUTURE_BLOCK_TIME: u32 = 2 * 60 * 60;

/// Script verification flags: all consensus flags libbitcoinconsensus knows, all active on regtest.
pub const SCRIPT_FLAGS: u32 =
    bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT;

/// Block subsidy at `height` (50 BTC halving every 150 blocks).
pub fn block_subsidy(height: u32) -> Amount {
    let halvings = height / HALVING_INTERVAL;
    if halvings >= 64 {
        return Amount::ZERO;
    }
    Amount::from_sat((50 * 100_000_000_u64) >> halvings)
}

/// Minimum fee for `vsize` at a fee rate given in sat per 1000 vB, rounded down like Core's
/// `CFeeRate::GetFee` (which rounds up to 1 sat only when the rate is non-zero and the result 0).
pub fn fee_for_vsize(sat_per_kvb: u64, vsize: u64) -> Amount {
    let fee = sat_per_kvb.saturating_mul(vsize) / 1000;
    if fee == 0 && sat_per_kvb > 0 && vsize > 0 {
        Amount::from_sat(1)
    } else {
        Amount::from_sat(fee)
    }
}

/// Core's `GetDifficulty` for compact bits (relative to the mainnet minimum difficulty).
pub fn difficulty(bits: CompactTarget) -> f64 {
    let bits = bits.to_consensus();
    let mut shift = (bits >> 24) & 0xff;
    let mantissa = f64::from(bits & 0x00ff_ffff);
    if mantissa == 0.0 {
        return 0.0;
    }
    let mut diff = f64::from(0x0000_ffff_u32) / mantissa;
    while shift < 29 {
        diff *= 256.0;
        shift += 1;
    }
    while shift > 29 {
        diff /= 256.0;
        shift -= 1;
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsidy_halves_every_150_blocks_on_regtest() {
        assert_eq!(block_subsidy(0), Amount::from_btc(50.0).unwrap());
        assert_eq!(block_subsidy(149), Amount::from_btc(50.0).unwrap());
        assert_eq!(block_subsidy(150), Amount::from_btc(25.0).unwrap());
        assert_eq!(block_subsidy(150 * 64), Amount::ZERO);
    }

    #[test]
    fn regtest_difficulty_matches_bitcoin_core() {
        // bitcoind -regtest getblockchaininfo reports this difficulty.
        assert!((difficulty(pow_bits()) - 4.656_542_373_906_925e-10).abs() < 1e-20);
    }

    #[test]
    fn min_relay_fee_is_one_sat_per_vbyte() {
        assert_eq!(fee_for_vsize(1000, 141), Amount::from_sat(141));
        assert_eq!(MIN_RELAY_FEE.to_sat_per_vb_floor(), 1);
    }
}
