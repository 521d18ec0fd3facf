//! Staking-transaction classification exactly as the reference indexer does it
//! (`docs/rules.md#staking-classification`): *not a staking tx*, *invalid staking tx* (parsed, but
//! outside the version's amount or time bounds), or *valid staking tx*.
//!
//! The indexer runs this on every transaction of every block, so the first step is the
//! reference's cheap tag scan ([`is_possible_v0_staking_tx`]); keys are parsed and the Taproot
//! output is built only for the few transactions that pass it. No output position is assumed.

use std::fmt;

use bitcoin::consensus::encode::{self, Decodable};
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::taproot::{LeafVersion, TapLeafHash, TapNodeHash, TapTweakHash};
use bitcoin::{Amount, ScriptBuf, Transaction, TxIn, TxOut};

use crate::keys::{nums_key, SECP};
use crate::op_return::{payload_tag_and_version, v0_payload, OpReturnError, V0OpReturn};
use crate::params::{BlockHeight, GlobalParams, ParamsVersion, Tag};
use crate::script::{
    slashing_script_of_bytes, sorted_key_bytes, timelock_script_unchecked,
    unbonding_script_of_bytes, ScriptError, StakingKeys,
};

/// What a parsed staking tx says, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedStaking {
    /// The params version it was parsed under.
    pub params_version: u64,
    pub staking_output_index: u32,
    pub staking_value: Amount,
    pub staker: XOnlyPublicKey,
    pub finality_provider: XOnlyPublicKey,
    /// Blocks, from the OP_RETURN.
    pub staking_time: u16,
    pub op_return_index: u32,
}

/// Why a transaction is not a staking transaction (the reference ignores it silently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStakingReason {
    /// The height is below the first params version's activation height.
    NoParamsForHeight { height: BlockHeight },
    /// Fewer than two outputs.
    TooFewOutputs { outputs: usize },
    /// No OP_RETURN with the version's tag and version 0.
    NoTaggedOpReturn,
    /// Two or more OP_RETURNs with the version's tag and version 0.
    MultipleTaggedOpReturns { first: u32, second: u32 },
    /// Two parseable V0 OP_RETURNs (any tag).
    MultipleOpReturns { first: u32, second: u32 },
    /// The tagged OP_RETURN does not parse (a key is not on the curve).
    InvalidOpReturn { index: u32, error: OpReturnError },
    /// The only parseable V0 OP_RETURN carries another tag.
    TagMismatch { index: u32, found: Tag },
    /// The OP_RETURN's keys cannot form a staking output with this committee
    /// (duplicate keys).
    InvalidKeys(ScriptError),
    /// No output pays to the staking output the OP_RETURN describes.
    NoStakingOutput,
    /// Two outputs pay to that staking output.
    MultipleStakingOutputs { first: u32, second: u32 },
}

impl NotStakingReason {
    /// A stable snake_case name, for logs and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoParamsForHeight { .. } => "no_params_for_height",
            Self::TooFewOutputs { .. } => "too_few_outputs",
            Self::NoTaggedOpReturn => "no_tagged_op_return",
            Self::MultipleTaggedOpReturns { .. } => "multiple_tagged_op_returns",
            Self::MultipleOpReturns { .. } => "multiple_op_returns",
            Self::InvalidOpReturn { .. } => "invalid_op_return",
            Self::TagMismatch { .. } => "tag_mismatch",
            Self::InvalidKeys(_) => "invalid_keys",
            Self::NoStakingOutput => "no_staking_output",
            Self::MultipleStakingOutputs { .. } => "multiple_staking_outputs",
        }
    }
}

impl fmt::Display for NotStakingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoParamsForHeight { height } => {
                write!(f, "no params version is active at height {height}")
            }
            Self::TooFewOutputs { outputs } => {
                write!(f, "a staking tx has at least 2 outputs, this one has {outputs}")
            }
            Self::NoTaggedOpReturn => {
                f.write_str("no V0 OP_RETURN output with the params version's tag")
            }
            Self::MultipleTaggedOpReturns { first, second } => write!(
                f,
                "outputs {first} and {second} are both tagged V0 OP_RETURNs; exactly one is allowed"
            ),
            Self::MultipleOpReturns { first, second } => write!(
                f,
                "multiple op return outputs found (outputs {first} and {second})"
            ),
            Self::InvalidOpReturn { index, error } => {
                write!(f, "the OP_RETURN at output {index} does not parse: {error}")
            }
            Self::TagMismatch { index, found } => write!(
                f,
                "the V0 OP_RETURN at output {index} has tag {}, not the params version's",
                found.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
            Self::InvalidKeys(e) => write!(f, "cannot build the staking output: {e}"),
            Self::NoStakingOutput => f.write_str(
                "no output pays to the staking output described by the OP_RETURN under this params version (other committee, quorum, keys or time)",
            ),
            Self::MultipleStakingOutputs { first, second } => write!(
                f,
                "outputs {first} and {second} both pay to the staking output; exactly one is allowed"
            ),
        }
    }
}

/// Why a parsed staking tx does not count (the reference drops it with a warning and a metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidStakingReason {
    BelowMinStakingAmount { value: Amount, min: Amount },
    AboveMaxStakingAmount { value: Amount, max: Amount },
    AboveMaxStakingTime { time: u16, max: u16 },
    BelowMinStakingTime { time: u16, min: u16 },
}

impl InvalidStakingReason {
    /// A stable snake_case name: the indexer stores and labels invalid txs with it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BelowMinStakingAmount { .. } => "below_min_staking_amount",
            Self::AboveMaxStakingAmount { .. } => "above_max_staking_amount",
            Self::AboveMaxStakingTime { .. } => "above_max_staking_time",
            Self::BelowMinStakingTime { .. } => "below_min_staking_time",
        }
    }
}

impl fmt::Display for InvalidStakingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BelowMinStakingAmount { value, min } => write!(
                f,
                "staking value {} sat is below min_staking_amount {} sat",
                value.to_sat(),
                min.to_sat()
            ),
            Self::AboveMaxStakingAmount { value, max } => write!(
                f,
                "staking value {} sat is above max_staking_amount {} sat",
                value.to_sat(),
                max.to_sat()
            ),
            Self::AboveMaxStakingTime { time, max } => write!(
                f,
                "staking time {time} blocks is above max_staking_time {max} blocks"
            ),
            Self::BelowMinStakingTime { time, min } => write!(
                f,
                "staking time {time} blocks is below min_staking_time {min} blocks"
            ),
        }
    }
}

/// The indexer's verdict on one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StakingTxClass {
    NotStaking(NotStakingReason),
    Invalid {
        staking: ParsedStaking,
        reason: InvalidStakingReason,
    },
    Valid(ParsedStaking),
}

impl StakingTxClass {
    /// `staking`, `invalid_staking` or `not_staking`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotStaking(_) => "not_staking",
            Self::Invalid { .. } => "invalid_staking",
            Self::Valid(_) => "staking",
        }
    }
}

/// Classifies `tx` mined at `height` under the params version in force there.
pub fn classify(tx: &Transaction, params: &GlobalParams, height: BlockHeight) -> StakingTxClass {
    match params.for_height(height) {
        Some(version) => classify_under(tx, version),
        None => StakingTxClass::NotStaking(NotStakingReason::NoParamsForHeight { height }),
    }
}

/// Classifies `tx` under one params version.
pub fn classify_under(tx: &Transaction, version: &ParamsVersion) -> StakingTxClass {
    match parse_staking_tx(tx, version) {
        Err(reason) => StakingTxClass::NotStaking(reason),
        Ok(staking) => match check_bounds(&staking, version) {
            Some(reason) => StakingTxClass::Invalid { staking, reason },
            None => StakingTxClass::Valid(staking),
        },
    }
}

/// The indexer's `validateStakingTx`, in its order: min amount, max amount, max time, min time.
fn check_bounds(s: &ParsedStaking, v: &ParamsVersion) -> Option<InvalidStakingReason> {
    // The reference compares the value as int64: a value above i64::MAX is negative there.
    let below_min = i64::try_from(s.staking_value.to_sat())
        .map_or(true, |value| value < v.min_staking_amount.to_sat() as i64);
    if below_min {
        return Some(InvalidStakingReason::BelowMinStakingAmount {
            value: s.staking_value,
            min: v.min_staking_amount,
        });
    }
    if s.staking_value > v.max_staking_amount {
        return Some(InvalidStakingReason::AboveMaxStakingAmount {
            value: s.staking_value,
            max: v.max_staking_amount,
        });
    }
    if s.staking_time > v.max_staking_time {
        return Some(InvalidStakingReason::AboveMaxStakingTime {
            time: s.staking_time,
            max: v.max_staking_time,
        });
    }
    if s.staking_time < v.min_staking_time {
        return Some(InvalidStakingReason::BelowMinStakingTime {
            time: s.staking_time,
            min: v.min_staking_time,
        });
    }
    None
}

/// Step A, `IsPossibleV0StakingTx`: at least two outputs and exactly one 73-byte null-data
/// output carrying `tag` and version 0. Returns that output's index.
#[inline]
pub fn is_possible_v0_staking_tx(tx: &Transaction, tag: &Tag) -> Result<u32, NotStakingReason> {
    let outputs = &tx.output;
    if outputs.len() < 2 {
        return Err(NotStakingReason::TooFewOutputs {
            outputs: outputs.len(),
        });
    }
    let mut found: Option<u32> = None;
    for (i, out) in outputs.iter().enumerate() {
        let Some(payload) = v0_payload(out.script_pubkey.as_bytes()) else {
            continue;
        };
        if payload_tag_and_version(payload) != (*tag, 0) {
            continue;
        }
        if let Some(first) = found {
            return Err(NotStakingReason::MultipleTaggedOpReturns {
                first,
                second: i as u32,
            });
        }
        found = Some(i as u32);
    }
    found.ok_or(NotStakingReason::NoTaggedOpReturn)
}

/// Steps A and B (`ParseV0StakingTx`) under `version`; no bounds checked.
pub fn parse_staking_tx(
    tx: &Transaction,
    version: &ParamsVersion,
) -> Result<ParsedStaking, NotStakingReason> {
    let tagged = is_possible_v0_staking_tx(tx, &version.tag)?;
    let (op_return_index, op_return) = find_op_return(&tx.output, tagged)?;
    if op_return.tag != version.tag {
        return Err(NotStakingReason::TagMismatch {
            index: op_return_index,
            found: op_return.tag,
        });
    }
    let keys = version
        .staking_keys(op_return.staker, op_return.finality_provider)
        .map_err(NotStakingReason::InvalidKeys)?;
    // Cheap shortcut with the same verdict: no P2TR-shaped output, no staking output.
    if !tx.output.iter().any(|o| o.script_pubkey.is_p2tr()) {
        return Err(NotStakingReason::NoStakingOutput);
    }
    let output_key = staking_output_key(&keys, op_return.staking_time)?;
    let mut staking: Option<(u32, Amount)> = None;
    for (i, out) in tx.output.iter().enumerate() {
        let spk = out.script_pubkey.as_bytes();
        if !out.script_pubkey.is_p2tr() || spk[2..] != output_key {
            continue;
        }
        if let Some((first, _)) = staking {
            return Err(NotStakingReason::MultipleStakingOutputs {
                first,
                second: i as u32,
            });
        }
        staking = Some((i as u32, out.value));
    }
    let (staking_output_index, staking_value) = staking.ok_or(NotStakingReason::NoStakingOutput)?;
    Ok(ParsedStaking {
        params_version: version.version,
        staking_output_index,
        staking_value,
        staker: op_return.staker,
        finality_provider: op_return.finality_provider,
        staking_time: op_return.staking_time,
        op_return_index,
    })
}

/// Step B's OP_RETURN scan: every parseable V0 OP_RETURN regardless of tag; two is an error.
fn find_op_return(outputs: &[TxOut], tagged: u32) -> Result<(u32, V0OpReturn), NotStakingReason> {
    let mut found: Option<(u32, V0OpReturn)> = None;
    let mut tagged_error: Option<OpReturnError> = None;
    for (i, out) in outputs.iter().enumerate() {
        let Some(payload) = v0_payload(out.script_pubkey.as_bytes()) else {
            continue;
        };
        match V0OpReturn::from_payload(payload) {
            Ok(parsed) => {
                if let Some((first, _)) = found {
                    return Err(NotStakingReason::MultipleOpReturns {
                        first,
                        second: i as u32,
                    });
                }
                found = Some((i as u32, parsed));
            }
            Err(e) if i as u32 == tagged => tagged_error = Some(e),
            Err(_) => {}
        }
    }
    match (found, tagged_error) {
        (Some(f), _) => Ok(f),
        (None, Some(error)) => Err(NotStakingReason::InvalidOpReturn {
            index: tagged,
            error,
        }),
        // Step A saw a tagged version-0 payload at `tagged`, so it either parsed or failed.
        (None, None) => Err(NotStakingReason::NoTaggedOpReturn),
    }
}

/// The x-only output key of the staking output for `keys` and `staking_time`.
///
/// Computed directly (three leaf hashes, two branches, one tweak) rather than through
/// [`StakingOutput`], which also prepares control blocks: the indexer does this for every
/// tagged transaction, and the tests check both give the same key. A staking time of 0 is not
/// rejected: the reference builds `OP_0 OP_CSV` and then finds the tx *invalid* (below the
/// minimum time), so the verdict must be the same here.
fn staking_output_key(keys: &StakingKeys, staking_time: u16) -> Result<[u8; 32], NotStakingReason> {
    // Every key serialised once and each committee sorted once, for all three leaves.
    let staker = keys.staker.serialize();
    let finality_providers = sorted_key_bytes(&keys.finality_providers);
    let covenants = sorted_key_bytes(&keys.covenants);
    let timelock = timelock_script_unchecked(&staker, staking_time);
    let unbonding = unbonding_script_of_bytes(&staker, &covenants, keys.quorum)
        .map_err(NotStakingReason::InvalidKeys)?;
    let slashing = slashing_script_of_bytes(&staker, &finality_providers, &covenants, keys.quorum)
        .map_err(NotStakingReason::InvalidKeys)?;
    let leaf =
        |s: &ScriptBuf| TapNodeHash::from(TapLeafHash::from_script(s, LeafVersion::TapScript));
    let root = TapNodeHash::from_node_hashes(
        TapNodeHash::from_node_hashes(leaf(&timelock), leaf(&unbonding)),
        leaf(&slashing),
    );
    let internal = nums_key();
    let tweak = TapTweakHash::from_key_and_tweak(internal, Some(root)).to_scalar();
    // A tweak that lands on infinity has negligible probability; no output can pay to it.
    let (output_key, _) = internal
        .add_tweak(&SECP, &tweak)
        .map_err(|_| NotStakingReason::NoStakingOutput)?;
    Ok(output_key.serialize())
}

/// Why bytes are not a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxDecodeError {
    #[error("transaction is not valid hex: {0}")]
    Hex(String),
    #[error("cannot decode transaction ({len} bytes): {error}")]
    Encoding { len: usize, error: String },
}

/// Decodes a serialized transaction: the segwit serialization first, then the legacy one (a
/// transaction with no inputs, as unfunded builders print it, is only readable that way).
/// Trailing bytes are an error.
pub fn decode_transaction(bytes: &[u8]) -> Result<Transaction, TxDecodeError> {
    match encode::deserialize::<Transaction>(bytes) {
        Ok(tx) => Ok(tx),
        Err(segwit_error) => decode_legacy(bytes).ok_or_else(|| TxDecodeError::Encoding {
            len: bytes.len(),
            error: segwit_error.to_string(),
        }),
    }
}

/// [`decode_transaction`] from hex (either case; surrounding whitespace ignored).
pub fn decode_transaction_hex(hex: &str) -> Result<Transaction, TxDecodeError> {
    let hex = hex.trim();
    let bytes = <Vec<u8> as bitcoin::hex::FromHex>::from_hex(hex)
        .map_err(|e| TxDecodeError::Hex(e.to_string()))?;
    decode_transaction(&bytes)
}

fn decode_legacy(bytes: &[u8]) -> Option<Transaction> {
    let mut reader = bytes;
    let version = bitcoin::transaction::Version::consensus_decode(&mut reader).ok()?;
    let input = Vec::<TxIn>::consensus_decode(&mut reader).ok()?;
    let output = Vec::<TxOut>::consensus_decode(&mut reader).ok()?;
    let lock_time = bitcoin::absolute::LockTime::consensus_decode(&mut reader).ok()?;
    if !reader.is_empty() {
        return None;
    }
    Some(Transaction {
        version,
        lock_time,
        input,
        output,
    })
}
