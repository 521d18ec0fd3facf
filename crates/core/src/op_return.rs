//! The V0 identifiable-staking OP_RETURN (`docs/formats.md#v0-op_return`): 73 bytes,
//! `6a 47 ‖ tag[4] ‖ version 00 ‖ staker x-only[32] ‖ finality provider x-only[32] ‖ time u16 BE`.
//!
//! Recognition copies the reference's `getV0OpReturnBytes`: a 73-byte null-data script (btcd
//! `IsNullData`) whose bytes 2.. are the payload. Besides the canonical `6a 47` form, btcd's
//! tokenizer also accepts the non-minimal pushes `6a 4c 46 …`, `6a 4d 45 00 …` and
//! `6a 4e 43 00 00 00 …` as 73-byte null data, and the reference then reads the payload from
//! byte 2 regardless; so do we, because the indexer's verdict must be the reference's.

use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Amount, Script, ScriptBuf, TxOut};

use crate::params::Tag;

/// Length of the whole OP_RETURN script.
pub const V0_SCRIPT_LEN: usize = 73;
/// Length of the payload (tag, version, two keys, time).
pub const V0_DATA_LEN: usize = 71;

/// The fields of a V0 OP_RETURN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct V0OpReturn {
    pub tag: Tag,
    pub staker: XOnlyPublicKey,
    pub finality_provider: XOnlyPublicKey,
    /// Staking time in blocks.
    pub staking_time: u16,
}

/// Why a script is not a parseable V0 OP_RETURN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpReturnError {
    /// Not a 73-byte null-data script.
    #[error("not a 73-byte OP_RETURN data script (length {len})")]
    NotV0Shaped { len: usize },
    /// The version byte is not 0.
    #[error("unsupported OP_RETURN version {0}, expected 0")]
    Version(u8),
    /// The staker key bytes are not a valid x-only key.
    #[error("staker public key {} is not a valid x-only key", hex32(.0))]
    StakerKey([u8; 32]),
    /// The finality-provider key bytes are not a valid x-only key.
    #[error("finality provider public key {} is not a valid x-only key", hex32(.0))]
    FinalityProviderKey([u8; 32]),
}

fn hex32(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 71-byte payload of a 73-byte null-data script, or `None` (Go's `getV0OpReturnBytes`).
/// This is the cheap test the classifier runs on every output of every transaction.
#[inline]
pub fn v0_payload(script: &[u8]) -> Option<&[u8; V0_DATA_LEN]> {
    if script.len() != V0_SCRIPT_LEN || script[0] != 0x6a {
        return None;
    }
    // script[1..] (72 bytes) must be exactly one push: OP_DATA_71, or a non-minimal
    // PUSHDATA1/2/4 whose length field makes it end at byte 73.
    let single_push = match script[1] {
        0x47 => true,
        0x4c => script[2] == 70,
        0x4d => script[2..4] == [69, 0],
        0x4e => script[2..6] == [67, 0, 0, 0],
        _ => false,
    };
    if !single_push {
        return None;
    }
    script[2..].try_into().ok()
}

/// Tag and version of a payload, without touching the keys (the fast filter's test).
#[inline]
pub fn payload_tag_and_version(payload: &[u8; V0_DATA_LEN]) -> (Tag, u8) {
    let mut tag = [0u8; 4];
    tag.copy_from_slice(&payload[..4]);
    (tag, payload[4])
}

impl V0OpReturn {
    /// Parses a payload: version 0 and two valid x-only keys (Go's
    /// `NewV0OpReturnDataFromBytes`). The tag is returned as found, not checked.
    pub fn from_payload(payload: &[u8; V0_DATA_LEN]) -> Result<Self, OpReturnError> {
        let (tag, version) = payload_tag_and_version(payload);
        if version != 0 {
            return Err(OpReturnError::Version(version));
        }
        let mut staker = [0u8; 32];
        staker.copy_from_slice(&payload[5..37]);
        let mut fp = [0u8; 32];
        fp.copy_from_slice(&payload[37..69]);
        let staker =
            XOnlyPublicKey::from_slice(&staker).map_err(|_| OpReturnError::StakerKey(staker))?;
        let finality_provider =
            XOnlyPublicKey::from_slice(&fp).map_err(|_| OpReturnError::FinalityProviderKey(fp))?;
        let staking_time = u16::from_be_bytes([payload[69], payload[70]]);
        Ok(Self {
            tag,
            staker,
            finality_provider,
            staking_time,
        })
    }

    /// Parses a whole OP_RETURN script.
    pub fn parse(script: &Script) -> Result<Self, OpReturnError> {
        let bytes = script.as_bytes();
        let payload = v0_payload(bytes).ok_or(OpReturnError::NotV0Shaped { len: bytes.len() })?;
        Self::from_payload(payload)
    }

    /// The 71-byte payload.
    pub fn payload(&self) -> [u8; V0_DATA_LEN] {
        let mut out = [0u8; V0_DATA_LEN];
        out[..4].copy_from_slice(&self.tag);
        out[4] = 0;
        out[5..37].copy_from_slice(&self.staker.serialize());
        out[37..69].copy_from_slice(&self.finality_provider.serialize());
        out[69..].copy_from_slice(&self.staking_time.to_be_bytes());
        out
    }

    /// The canonical script `6a 47 ‖ payload`.
    pub fn script(&self) -> ScriptBuf {
        let mut bytes = Vec::with_capacity(V0_SCRIPT_LEN);
        bytes.push(0x6a);
        bytes.push(0x47);
        bytes.extend_from_slice(&self.payload());
        ScriptBuf::from_bytes(bytes)
    }

    /// The OP_RETURN output (value 0, as every builder makes it).
    pub fn tx_out(&self) -> TxOut {
        TxOut {
            value: Amount::ZERO,
            script_pubkey: self.script(),
        }
    }
}
