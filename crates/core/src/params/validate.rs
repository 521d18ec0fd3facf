//! The reference parser's rules (`parseVersionedGlobalParams` and the cross-version checks),
//! in its order, plus the warnings for documented rules it does not enforce.

use bitcoin::secp256k1::PublicKey;
use bitcoin::Amount;

use super::error::{self, KeyError, ParamsError, RangeError, VersionError};
use super::{decode, BlockHeight, GlobalParams, ParamsVersion, ParamsWarning, StakingCap, Tag};
use crate::keys::first_duplicate;

const MAX_I64: u64 = i64::MAX as u64;

fn btc_value(v: u64) -> Result<Amount, RangeError> {
    match v {
        0 => Err(RangeError::BtcValueZero),
        v if v > MAX_I64 => Err(RangeError::TooLarge {
            value: v,
            max: MAX_I64,
        }),
        v => Ok(Amount::from_sat(v)),
    }
}

fn time_lock(v: u64) -> Result<u16, RangeError> {
    match u16::try_from(v) {
        Ok(0) => Err(RangeError::TimeLockZero),
        Ok(t) => Ok(t),
        Err(_) => Err(RangeError::TimeLockTooLarge { value: v }),
    }
}

fn quorum(v: u64) -> Result<u32, RangeError> {
    match u32::try_from(v) {
        Ok(0) => Err(RangeError::ValueZero),
        Ok(q) => Ok(q),
        Err(_) => Err(RangeError::TooLarge {
            value: v,
            max: u64::from(u32::MAX),
        }),
    }
}

fn confirmation_depth(v: u64) -> Result<u16, RangeError> {
    match u16::try_from(v) {
        Ok(d) if d < 2 => Err(RangeError::ConfirmationDepthBelowTwo(v)),
        Ok(d) => Ok(d),
        Err(_) => Err(RangeError::TimeLockTooLarge { value: v }),
    }
}

/// btcec's `ParsePubKey`: 33-byte compressed, 65-byte uncompressed or hybrid; x-only refused.
fn covenant_key(hex: &str) -> Result<PublicKey, KeyError> {
    const P: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff,
        0xfc, 0x2f,
    ];
    let bytes = error::go_hex_decode(hex).map_err(KeyError::Hex)?;
    let hex_of = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    match bytes.len() {
        33 => {
            if !matches!(bytes[0], 2 | 3) {
                return Err(KeyError::Format(bytes[0]));
            }
            if bytes[1..33] >= P[..] {
                return Err(KeyError::XTooBig);
            }
            PublicKey::from_slice(&bytes).map_err(|_| KeyError::XNotOnCurve(hex_of(&bytes[1..33])))
        }
        65 => {
            let format = bytes[0];
            if !matches!(format, 4 | 6 | 7) {
                return Err(KeyError::Format(format));
            }
            if bytes[1..33] >= P[..] {
                return Err(KeyError::XTooBig);
            }
            if bytes[33..65] >= P[..] {
                return Err(KeyError::YTooBig);
            }
            if format != 4 {
                let want_odd = format == 7;
                if (bytes[64] & 1 == 1) != want_odd {
                    return Err(KeyError::HybridOddness(want_odd));
                }
            }
            let mut uncompressed = bytes.clone();
            uncompressed[0] = 4;
            PublicKey::from_slice(&uncompressed)
                .map_err(|_| KeyError::NotOnCurve(hex_of(&bytes[1..33]), hex_of(&bytes[33..65])))
        }
        n => Err(KeyError::Length(n)),
    }
}

/// `parseVersionedGlobalParams`: the per-version rules in the reference's order.
fn validate_version(raw: &decode::RawVersion) -> Result<ParamsVersion, VersionError> {
    let tag_bytes = error::go_hex_decode(&raw.tag).map_err(VersionError::TagHex)?;
    let tag: Tag = tag_bytes
        .as_slice()
        .try_into()
        .map_err(|_| VersionError::TagLength(tag_bytes.len()))?;
    if raw.covenant_pks.is_empty() {
        return Err(VersionError::NoCovenants);
    }
    if raw.covenant_quorum > raw.covenant_pks.len() as u64 {
        return Err(VersionError::QuorumAboveCovenants {
            quorum: raw.covenant_quorum,
            covenants: raw.covenant_pks.len(),
        });
    }
    let covenant_quorum = quorum(raw.covenant_quorum).map_err(VersionError::Quorum)?;
    let covenant_pks = raw
        .covenant_pks
        .iter()
        .map(|hex| {
            covenant_key(hex).map_err(|error| VersionError::CovenantKey {
                hex: hex.clone(),
                error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let max_staking_amount =
        btc_value(raw.max_staking_amount).map_err(VersionError::MaxStakingAmount)?;
    let min_staking_amount =
        btc_value(raw.min_staking_amount).map_err(VersionError::MinStakingAmount)?;
    if max_staking_amount < min_staking_amount {
        return Err(VersionError::MaxAmountBelowMin {
            max: raw.max_staking_amount,
            min: raw.min_staking_amount,
        });
    }
    let unbonding_time = time_lock(raw.unbonding_time).map_err(VersionError::UnbondingTime)?;
    let unbonding_fee = btc_value(raw.unbonding_fee).map_err(VersionError::UnbondingFee)?;
    // The reference adds in int64 and lets it wrap; both operands are at most i64::MAX here.
    let fee_plus_min_output = (unbonding_fee.to_sat() as i64).wrapping_add(1000);
    if (min_staking_amount.to_sat() as i64) < fee_plus_min_output {
        return Err(VersionError::MinAmountBelowFee {
            min: raw.min_staking_amount,
            fee: raw.unbonding_fee,
        });
    }
    let max_staking_time = time_lock(raw.max_staking_time).map_err(VersionError::MaxStakingTime)?;
    let min_staking_time = time_lock(raw.min_staking_time).map_err(VersionError::MinStakingTime)?;
    if max_staking_time < min_staking_time {
        return Err(VersionError::MaxTimeBelowMin {
            max: raw.max_staking_time,
            min: raw.min_staking_time,
        });
    }
    let confirmation_depth =
        confirmation_depth(raw.confirmation_depth).map_err(VersionError::ConfirmationDepth)?;
    if raw.activation_height == 0 {
        return Err(VersionError::ActivationHeightZero);
    }
    let cap = match (raw.staking_cap, raw.cap_height) {
        (0, 0) => return Err(VersionError::NoCap),
        (0, h) => StakingCap::Height(BlockHeight(h)),
        (c, 0) => StakingCap::Amount(btc_value(c).map_err(VersionError::StakingCap)?),
        _ => return Err(VersionError::BothCaps),
    };
    if let StakingCap::Amount(c) = cap {
        if c < max_staking_amount {
            return Err(VersionError::StakingCapBelowMax {
                max: raw.max_staking_amount,
                cap: raw.staking_cap,
            });
        }
    }
    if let StakingCap::Height(h) = cap {
        if h.0 < raw.activation_height {
            return Err(VersionError::CapHeightBelowActivation {
                cap_height: h.0,
                activation_height: raw.activation_height,
            });
        }
    }
    Ok(ParamsVersion {
        version: raw.version,
        activation_height: BlockHeight(raw.activation_height),
        cap,
        tag,
        covenant_pks,
        covenant_quorum,
        unbonding_time,
        unbonding_fee,
        min_staking_amount,
        max_staking_amount,
        min_staking_time,
        max_staking_time,
        confirmation_depth,
    })
}

pub(super) fn warnings_of(versions: &[ParamsVersion]) -> Vec<ParamsWarning> {
    let mut warnings = Vec::new();
    let Some(first) = versions.first() else {
        return warnings;
    };
    if first.version != 0 {
        warnings.push(ParamsWarning::FirstVersionNotZero {
            version: first.version,
        });
    }
    let mut last_cap_height: Option<BlockHeight> = None;
    for v in versions {
        if let Some(key) = first_duplicate(&v.covenant_x_only()) {
            warnings.push(ParamsWarning::DuplicateCovenantKey {
                version: v.version,
                key,
            });
        }
        if v.confirmation_depth != first.confirmation_depth {
            warnings.push(ParamsWarning::ConfirmationDepthIgnored {
                version: v.version,
                depth: v.confirmation_depth,
                used: first.confirmation_depth,
            });
        }
        match v.cap {
            StakingCap::Amount(cap) if cap == v.max_staking_amount => {
                warnings.push(ParamsWarning::StakingCapNotAboveMax {
                    version: v.version,
                    cap,
                });
            }
            StakingCap::Height(h) => {
                if let Some(previous) = last_cap_height.filter(|p| h < *p) {
                    warnings.push(ParamsWarning::CapHeightDecreased {
                        version: v.version,
                        cap_height: h,
                        previous,
                    });
                }
                last_cap_height = Some(h);
            }
            StakingCap::Amount(_) => {}
        }
    }
    warnings
}

pub(super) fn validate(raw: &decode::RawGlobalParams) -> Result<GlobalParams, ParamsError> {
    if raw.versions.is_empty() {
        return Err(ParamsError::NoVersions);
    }
    let mut versions: Vec<ParamsVersion> = Vec::with_capacity(raw.versions.len());
    let mut last_staking_cap = 0u64;
    for r in &raw.versions {
        let v = validate_version(r).map_err(|error| ParamsError::Version {
            version: r.version,
            error,
        })?;
        if let Some(prev) = versions.last() {
            if v.version != prev.version.wrapping_add(1) {
                return Err(ParamsError::VersionNotConsecutive { version: v.version });
            }
            if r.staking_cap != 0 && r.staking_cap < last_staking_cap {
                return Err(ParamsError::StakingCapDecreased {
                    version: v.version,
                    last: last_staking_cap,
                    cap: r.staking_cap,
                });
            }
            if v.activation_height <= prev.activation_height {
                return Err(ParamsError::ActivationHeightOverlap { version: v.version });
            }
        }
        if r.staking_cap != 0 {
            last_staking_cap = r.staking_cap;
        }
        versions.push(v);
    }
    Ok(GlobalParams { versions })
}
