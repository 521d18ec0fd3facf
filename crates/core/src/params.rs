//! Versioned global parameters (`docs/formats.md#params-file`): the reference JSON format, every
//! validation rule of the reference parser with its exact error text, warnings for the
//! documented rules it does not enforce, and version selection by block height.
//!
//! A file is accepted exactly when the reference accepts it, with one deliberate exception
//! (`docs/decisions.md#params-file-rules`): a height-cap version whose `cap_height` is below its
//! `activation_height` is rejected here, where the reference would accept it and panic later.

mod decode;
mod error;
mod validate;

use std::fmt;

use bitcoin::secp256k1::{PublicKey, XOnlyPublicKey};
use bitcoin::Amount;
use serde::{Deserialize, Serialize};

use crate::script::{ScriptError, StakingKeys};

pub use error::{GoHexError, KeyError, ParamsError, RangeError, VersionError};

/// A Bitcoin block height. One type for every height the params and the classifier talk about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlockHeight(pub u64);

impl fmt::Display for BlockHeight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for BlockHeight {
    fn from(h: u64) -> Self {
        Self(h)
    }
}

impl From<u32> for BlockHeight {
    fn from(h: u32) -> Self {
        Self(u64::from(h))
    }
}

/// How a version limits new stakes: by total value locked, or by the last height at which new
/// stakes count as active (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StakingCap {
    /// Overflow once the confirmed TVL before the tx reaches this amount.
    Amount(Amount),
    /// Overflow after this height.
    Height(BlockHeight),
}

/// The 4-byte OP_RETURN tag of a params version.
pub type Tag = [u8; 4];

/// One params version, validated and typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsVersion {
    pub version: u64,
    /// First height at which this version applies.
    pub activation_height: BlockHeight,
    pub cap: StakingCap,
    pub tag: Tag,
    /// The committee as written (33-byte compressed in the real files; parity matters to the
    /// signer and the pipeline, not to scripts).
    pub covenant_pks: Vec<PublicKey>,
    pub covenant_quorum: u32,
    /// CSV of the unbonding output, in blocks.
    pub unbonding_time: u16,
    /// The exact fee of the unbonding tx.
    pub unbonding_fee: Amount,
    /// Inclusive bounds of the staking output value.
    pub min_staking_amount: Amount,
    pub max_staking_amount: Amount,
    /// Inclusive bounds of the staking time, in blocks.
    pub min_staking_time: u16,
    pub max_staking_time: u16,
    /// Only the first version's value is used (see [`GlobalParams::confirmation_depth`]).
    pub confirmation_depth: u16,
}

impl ParamsVersion {
    /// The committee as the scripts use it: x-only, parity dropped, file order.
    pub fn covenant_x_only(&self) -> Vec<XOnlyPublicKey> {
        self.covenant_pks
            .iter()
            .map(|k| k.x_only_public_key().0)
            .collect()
    }

    /// The keys of a staking output under this version (one finality provider, as in phase 1).
    pub fn staking_keys(
        &self,
        staker: XOnlyPublicKey,
        finality_provider: XOnlyPublicKey,
    ) -> Result<StakingKeys, ScriptError> {
        StakingKeys::new(
            staker,
            vec![finality_provider],
            self.covenant_x_only(),
            self.covenant_quorum,
        )
    }

    /// The amount cap, if this version has one.
    pub fn staking_cap(&self) -> Option<Amount> {
        match self.cap {
            StakingCap::Amount(a) => Some(a),
            StakingCap::Height(_) => None,
        }
    }

    /// The height cap, if this version has one.
    pub fn cap_height(&self) -> Option<BlockHeight> {
        match self.cap {
            StakingCap::Height(h) => Some(h),
            StakingCap::Amount(_) => None,
        }
    }
}

/// A documented rule that the reference parser does not enforce. The file is still accepted
/// (interoperability), but an operator should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsWarning {
    /// The README says the first version is 0.
    FirstVersionNotZero { version: u64 },
    /// A covenant key appears twice (by x-only key): no staking tx can be parsed under it.
    DuplicateCovenantKey { version: u64, key: XOnlyPublicKey },
    /// Only `versions[0].confirmation_depth` is ever used.
    ConfirmationDepthIgnored { version: u64, depth: u16, used: u16 },
    /// The README says the staking cap is strictly larger than `max_staking_amount`.
    StakingCapNotAboveMax { version: u64, cap: Amount },
    /// The README says cap heights never decrease.
    CapHeightDecreased {
        version: u64,
        cap_height: BlockHeight,
        previous: BlockHeight,
    },
}

impl fmt::Display for ParamsWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FirstVersionNotZero { version } => write!(
                f,
                "the first params version is {version}, not 0 (accepted, as the reference does)"
            ),
            Self::DuplicateCovenantKey { version, key } => write!(
                f,
                "params version {version} lists covenant key {key} more than once: no staking tx can be recognised under this version"
            ),
            Self::ConfirmationDepthIgnored {
                version,
                depth,
                used,
            } => write!(
                f,
                "params version {version} sets confirmation_depth {depth}, but only the first version's ({used}) is used"
            ),
            Self::StakingCapNotAboveMax { version, cap } => write!(
                f,
                "params version {version}: staking_cap {} equals max_staking_amount (the README asks for strictly larger)",
                cap.to_sat()
            ),
            Self::CapHeightDecreased {
                version,
                cap_height,
                previous,
            } => write!(
                f,
                "params version {version}: cap_height {cap_height} is below the previous height cap {previous}"
            ),
        }
    }
}

/// Every params version, in order, validated as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalParams {
    versions: Vec<ParamsVersion>,
}

impl GlobalParams {
    /// Parses and validates a params file in the reference JSON format. Returns the warnings
    /// for documented rules the reference does not enforce alongside the params.
    pub fn from_json(json: &str) -> Result<(Self, Vec<ParamsWarning>), ParamsError> {
        Self::from_json_bytes(json.as_bytes())
    }

    /// [`GlobalParams::from_json`] on raw bytes (which must be UTF-8 JSON).
    pub fn from_json_bytes(json: &[u8]) -> Result<(Self, Vec<ParamsWarning>), ParamsError> {
        let raw = decode::decode(json).map_err(|e| ParamsError::Json(e.to_string()))?;
        let params = validate::validate(&raw)?;
        let warnings = validate::warnings_of(&params.versions);
        Ok((params, warnings))
    }

    /// Validates versions built in code (devnet, tests) with the same rules as a file.
    pub fn from_versions(
        versions: Vec<ParamsVersion>,
    ) -> Result<(Self, Vec<ParamsWarning>), ParamsError> {
        let raw = decode::RawGlobalParams {
            versions: versions.iter().map(raw_of).collect(),
        };
        let params = validate::validate(&raw)?;
        let warnings = validate::warnings_of(&params.versions);
        Ok((params, warnings))
    }

    /// All versions, in order.
    pub fn versions(&self) -> &[ParamsVersion] {
        &self.versions
    }

    /// The version in force at `height`: the last one with `activation_height <= height`.
    /// `None` below the first activation height.
    pub fn for_height(&self, height: BlockHeight) -> Option<&ParamsVersion> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.activation_height <= height)
    }

    /// The version with this version number.
    pub fn version(&self, version: u64) -> Option<&ParamsVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The confirmation depth the indexer uses: always the first version's.
    pub fn confirmation_depth(&self) -> u16 {
        self.versions.first().map_or(0, |v| v.confirmation_depth)
    }

    /// The first height the indexer processes.
    pub fn first_activation_height(&self) -> BlockHeight {
        self.versions
            .first()
            .map_or(BlockHeight(0), |v| v.activation_height)
    }

    /// The reference JSON format, as the reference marshals it: the unused cap field is
    /// omitted (`omitempty`), keys are 33-byte compressed hex.
    pub fn to_json(&self) -> serde_json::Value {
        let versions: Vec<serde_json::Value> = self
            .versions
            .iter()
            .map(|v| {
                let r = raw_of(v);
                let mut json = serde_json::json!({
                    "version": r.version,
                    "activation_height": r.activation_height,
                    "tag": r.tag,
                    "covenant_pks": r.covenant_pks,
                    "covenant_quorum": r.covenant_quorum,
                    "unbonding_time": r.unbonding_time,
                    "unbonding_fee": r.unbonding_fee,
                    "max_staking_amount": r.max_staking_amount,
                    "min_staking_amount": r.min_staking_amount,
                    "max_staking_time": r.max_staking_time,
                    "min_staking_time": r.min_staking_time,
                    "confirmation_depth": r.confirmation_depth,
                });
                match v.cap {
                    StakingCap::Amount(a) => json["staking_cap"] = a.to_sat().into(),
                    StakingCap::Height(h) => json["cap_height"] = h.0.into(),
                }
                json
            })
            .collect();
        serde_json::json!({ "versions": versions })
    }
}

fn raw_of(v: &ParamsVersion) -> decode::RawVersion {
    decode::RawVersion {
        version: v.version,
        activation_height: v.activation_height.0,
        staking_cap: v.staking_cap().map_or(0, Amount::to_sat),
        cap_height: v.cap_height().map_or(0, |h| h.0),
        tag: v.tag.iter().map(|b| format!("{b:02x}")).collect(),
        covenant_pks: v.covenant_pks.iter().map(PublicKey::to_string).collect(),
        covenant_quorum: u64::from(v.covenant_quorum),
        unbonding_time: u64::from(v.unbonding_time),
        unbonding_fee: v.unbonding_fee.to_sat(),
        max_staking_amount: v.max_staking_amount.to_sat(),
        min_staking_amount: v.min_staking_amount.to_sat(),
        max_staking_time: u64::from(v.max_staking_time),
        min_staking_time: u64::from(v.min_staking_time),
        confirmation_depth: u64::from(v.confirmation_depth),
    }
}
