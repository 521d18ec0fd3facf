//! Backend-independent checks of a block write, done before any SQL runs, and the decision of
//! how a block relates to the stored history.

use bitcoin::{Amount, BlockHash, Txid};

use super::codec::check_txid;
use super::types::{is_snake_case, BlockRef, BlockWrite};
use crate::error::{Result, StoreError};

/// Rejects a write whose rows do not belong to its block or carry a wrong txid or reason.
pub(crate) fn check_block_write(b: &BlockWrite) -> Result<()> {
    let mismatch = |what, txid, claimed_height, claimed_hash| StoreError::BlockMismatch {
        what,
        txid,
        claimed_height,
        claimed_hash,
        height: b.height,
        hash: b.hash,
    };
    for s in &b.stakings {
        check_txid("staking tx", s.txid, &s.tx)?;
        if s.inclusion_height != b.height || s.block_hash != b.hash {
            return Err(mismatch(
                "staking tx",
                s.txid,
                s.inclusion_height,
                s.block_hash,
            ));
        }
    }
    for u in &b.unbondings {
        check_txid("unbonding tx", u.txid, &u.tx)?;
        if u.height != b.height || u.block_hash != b.hash {
            return Err(mismatch("unbonding tx", u.txid, u.height, u.block_hash));
        }
    }
    for i in &b.invalids {
        if let Some(tx) = &i.tx {
            check_txid("invalid tx", i.txid, tx)?;
        }
        if i.height != b.height || i.block_hash != b.hash {
            return Err(mismatch("invalid tx", i.txid, i.height, i.block_hash));
        }
        if !is_snake_case(&i.reason) {
            return Err(StoreError::InvalidReason {
                txid: i.txid,
                reason: i.reason.clone(),
            });
        }
    }
    Ok(())
}

/// How a block relates to what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    Extends,
    Replays,
}

/// What is needed to relate a block: the tip, and when the block is at or below the tip, the
/// hash stored at its height and the first processed height.
pub(crate) fn relate(
    b: &BlockWrite,
    tip: Option<BlockRef>,
    stored_at_height: Option<BlockHash>,
    first_height: Option<u32>,
) -> Result<Relation> {
    let Some(tip) = tip else {
        return Ok(Relation::Extends);
    };
    if b.height > tip.height {
        if b.height != tip.height.saturating_add(1) {
            return Err(StoreError::HeightGap {
                height: b.height,
                tip_height: tip.height,
            });
        }
        if b.prev_hash != tip.hash {
            return Err(StoreError::NotConnected {
                height: b.height,
                hash: b.hash,
                prev_hash: b.prev_hash,
                tip_height: tip.height,
                tip_hash: tip.hash,
            });
        }
        return Ok(Relation::Extends);
    }
    match stored_at_height {
        Some(stored) if stored == b.hash => Ok(Relation::Replays),
        Some(stored) => Err(StoreError::ConflictingBlock {
            height: b.height,
            hash: b.hash,
            stored,
        }),
        None => Err(StoreError::BelowHistory {
            height: b.height,
            first_height: first_height.unwrap_or(tip.height),
        }),
    }
}

/// Confirmed TVL arithmetic with the reference's errors.
pub(crate) fn tvl_add(tvl: Amount, value: Amount, staking: Txid) -> Result<Amount> {
    tvl.checked_add(value)
        .ok_or(StoreError::TvlOverflow { value, staking })
}

pub(crate) fn tvl_sub(tvl: Amount, value: Amount, unbonding: Txid) -> Result<Amount> {
    tvl.checked_sub(value).ok_or(StoreError::NegativeTvl {
        tvl,
        value,
        unbonding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn hash(n: u8) -> BlockHash {
        BlockHash::from_byte_array([n; 32])
    }

    fn block(height: u32, h: u8, prev: u8) -> BlockWrite {
        BlockWrite {
            height,
            hash: hash(h),
            prev_hash: hash(prev),
            stakings: vec![],
            unbondings: vec![],
            invalids: vec![],
            events: vec![],
        }
    }

    #[test]
    fn any_block_starts_an_empty_history() {
        assert_eq!(
            relate(&block(800_000, 1, 0), None, None, None).unwrap(),
            Relation::Extends
        );
    }

    #[test]
    fn next_block_must_name_the_tip_as_parent() {
        let tip = Some(BlockRef {
            height: 10,
            hash: hash(10),
        });
        assert_eq!(
            relate(&block(11, 11, 10), tip, None, None).unwrap(),
            Relation::Extends
        );
        assert!(matches!(
            relate(&block(11, 11, 9), tip, None, None),
            Err(StoreError::NotConnected {
                height: 11,
                tip_height: 10,
                ..
            })
        ));
        assert!(matches!(
            relate(&block(12, 12, 11), tip, None, None),
            Err(StoreError::HeightGap {
                height: 12,
                tip_height: 10
            })
        ));
    }

    #[test]
    fn processed_height_replays_only_with_the_same_hash() {
        let tip = Some(BlockRef {
            height: 10,
            hash: hash(10),
        });
        assert_eq!(
            relate(&block(9, 9, 8), tip, Some(hash(9)), Some(5)).unwrap(),
            Relation::Replays
        );
        assert!(matches!(
            relate(&block(9, 99, 8), tip, Some(hash(9)), Some(5)),
            Err(StoreError::ConflictingBlock { height: 9, .. })
        ));
        assert!(matches!(
            relate(&block(4, 4, 3), tip, None, Some(5)),
            Err(StoreError::BelowHistory {
                height: 4,
                first_height: 5
            })
        ));
    }

    #[test]
    fn tvl_never_goes_negative() {
        let t = Txid::all_zeros();
        assert_eq!(
            tvl_sub(Amount::from_sat(5), Amount::from_sat(5), t).unwrap(),
            Amount::ZERO
        );
        assert!(matches!(
            tvl_sub(Amount::from_sat(4), Amount::from_sat(5), t),
            Err(StoreError::NegativeTvl { .. })
        ));
        assert!(matches!(
            tvl_add(Amount::MAX, Amount::from_sat(1), t),
            Err(StoreError::TvlOverflow { .. })
        ));
    }
}
