//! Params-file errors, with the reference parser's exact texts
//! (`docs/formats.md#params-validation`): operators compare our messages with the reference's, and
//! the reference's own tests assert them.

use std::fmt;

/// Why a params file is rejected. The display text is the reference parser's, byte for byte,
/// except for [`ParamsError::Json`] (the decoder's own text) and
/// [`VersionError::CapHeightBelowActivation`] (a rule the reference does not have: it would
/// panic later instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// Not JSON, or a field of the wrong JSON type.
    #[error("invalid params JSON: {0}")]
    Json(String),
    /// `versions` is missing or empty.
    #[error("global params must have at least one version")]
    NoVersions,
    /// One version fails its own checks.
    #[error("invalid params with version {version}: {error}")]
    Version { version: u64, error: VersionError },
    /// `version` is not the previous version plus one.
    #[error(
        "invalid params with version {version}. versions should be monotonically increasing by 1"
    )]
    VersionNotConsecutive { version: u64 },
    /// A non-zero `staking_cap` is below the last non-zero one of an earlier version.
    #[error("invalid params with version {version}. staking cap cannot be decreased in later versions, last non-zero staking cap: {last}, got: {cap}")]
    StakingCapDecreased { version: u64, last: u64, cap: u64 },
    /// `activation_height` is not above the previous version's.
    #[error("invalid params with version {version}. activation height cannot be overlapping between earlier and later versions")]
    ActivationHeightOverlap { version: u64 },
}

/// A rule one version breaks (the text after `invalid params with version <v>: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("invalid tag: {0}")]
    TagHex(GoHexError),
    #[error("invalid tag length, expected 4, got {0}")]
    TagLength(usize),
    #[error("empty covenant public keys")]
    NoCovenants,
    #[error("covenant quorum {quorum} cannot be more than the amount of covenants {covenants}")]
    QuorumAboveCovenants { quorum: u64, covenants: usize },
    #[error("invalid covenant quorum: {0}")]
    Quorum(RangeError),
    #[error("invalid covenant public key {hex}: {error}")]
    CovenantKey { hex: String, error: KeyError },
    #[error("invalid max_staking_amount: {0}")]
    MaxStakingAmount(RangeError),
    #[error("invalid min_staking_amount: {0}")]
    MinStakingAmount(RangeError),
    #[error("max-staking-amount {max} must be larger than or equal to min-staking-amount {min}")]
    MaxAmountBelowMin { max: u64, min: u64 },
    #[error("invalid unbonding_time: {0}")]
    UnbondingTime(RangeError),
    #[error("invalid unbonding_fee: {0}")]
    UnbondingFee(RangeError),
    #[error("min_staking_amount {min} should not be less than unbonding fee {fee} plus 1000")]
    MinAmountBelowFee { min: u64, fee: u64 },
    #[error("invalid max_staking_time: {0}")]
    MaxStakingTime(RangeError),
    #[error("invalid min_staking_time: {0}")]
    MinStakingTime(RangeError),
    #[error("max-staking-time {max} must be larger than or equal to min-staking-time {min}")]
    MaxTimeBelowMin { max: u64, min: u64 },
    #[error("invalid confirmation_depth: {0}")]
    ConfirmationDepth(RangeError),
    #[error("activation_height: value must be positive")]
    ActivationHeightZero,
    #[error("invalid cap: only either of staking cap and cap height can be set")]
    BothCaps,
    #[error("invalid cap: either of staking cap and cap height must be set")]
    NoCap,
    #[error("invalid cap: {0}")]
    StakingCap(RangeError),
    #[error("invalid staking_cap, should be larger than max_staking_amount: {max}, got: {cap}")]
    StakingCapBelowMax { max: u64, cap: u64 },
    /// Our rule (`docs/decisions.md#params-file-rules`): the reference accepts this file and panics
    /// later.
    #[error("cap_height {cap_height} is below activation_height {activation_height}: a height cap must not end before its version starts")]
    CapHeightBelowActivation {
        cap_height: u64,
        activation_height: u64,
    },
}

/// Out-of-range numbers, with the texts of the reference's `parseBtcValue`, `parseTimeLock`,
/// `parseUint32` and `parseConfirmationDepthValue` helpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// An amount above `i64::MAX`, or a quorum above `u32::MAX`.
    #[error("value {value} is too large. Max: {max}")]
    TooLarge { value: u64, max: u64 },
    /// A timelock or confirmation depth above `u16::MAX`.
    #[error("timelock value {value} is too large. Max: 65535")]
    TimeLockTooLarge { value: u64 },
    #[error("invalid btc value: value must be positive")]
    BtcValueZero,
    #[error("invalid timelock value: value must be positive")]
    TimeLockZero,
    #[error("invalid value: value must be positive")]
    ValueZero,
    #[error("confirmation depth value should be at least 2, got {0}")]
    ConfirmationDepthBelowTwo(u64),
}

/// Go's `encoding/hex` errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GoHexError {
    #[error("encoding/hex: invalid byte: {}", GoRune(*.0))]
    InvalidByte(u8),
    #[error("encoding/hex: odd length hex string")]
    OddLength,
}

/// Go's `%#U` of a byte: `U+0067 'g'` when printable, `U+0000` otherwise.
struct GoRune(u8);

impl fmt::Display for GoRune {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "U+{b:04X}")?;
        let printable = (0x20..=0x7e).contains(&b) || (b >= 0xa1 && b != 0xad);
        if printable {
            write!(f, " '{}'", char::from(b))?;
        }
        Ok(())
    }
}

/// Why a covenant key does not parse, with btcec's `ParsePubKey` texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Hex(GoHexError),
    #[error("malformed public key: invalid length: {0}")]
    Length(usize),
    #[error("invalid public key: unsupported format: {0:x}")]
    Format(u8),
    #[error("invalid public key: x >= field prime")]
    XTooBig,
    #[error("invalid public key: y >= field prime")]
    YTooBig,
    #[error("invalid public key: y oddness does not match specified value of {0}")]
    HybridOddness(bool),
    #[error("invalid public key: x coordinate {0} is not on the secp256k1 curve")]
    XNotOnCurve(String),
    #[error("invalid public key: [{0},{1}] not on secp256k1 curve")]
    NotOnCurve(String, String),
}

/// Go's `hex.DecodeString`: invalid bytes are reported pair by pair before an odd length.
pub(crate) fn go_hex_decode(s: &str) -> Result<Vec<u8>, GoHexError> {
    fn nibble(b: u8) -> Result<u8, GoHexError> {
        match b {
            b'0'..=b'9' => Ok(b - b'0'),
            b'a'..=b'f' => Ok(b - b'a' + 10),
            b'A'..=b'F' => Ok(b - b'A' + 10),
            _ => Err(GoHexError::InvalidByte(b)),
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 2);
    let mut pairs = bytes.chunks_exact(2);
    for pair in &mut pairs {
        out.push((nibble(pair[0])? << 4) | nibble(pair[1])?);
    }
    if let [last] = pairs.remainder() {
        nibble(*last)?;
        return Err(GoHexError::OddLength);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_errors_read_like_go() {
        assert_eq!(
            go_hex_decode("0g").unwrap_err().to_string(),
            "encoding/hex: invalid byte: U+0067 'g'"
        );
        assert_eq!(
            go_hex_decode("abc").unwrap_err().to_string(),
            "encoding/hex: odd length hex string"
        );
        assert_eq!(
            go_hex_decode("ab\n").unwrap_err().to_string(),
            "encoding/hex: invalid byte: U+000A"
        );
        assert_eq!(go_hex_decode("aBcD"), Ok(vec![0xab, 0xcd]));
    }
}
