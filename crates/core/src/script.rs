//! The staking and unbonding outputs: leaf scripts, Taproot trees, output keys, addresses and
//! control blocks (`docs/formats.md#script-numbers-and-opcodes` through
//! `docs/formats.md#control-blocks`).
//!
//! Both outputs use the unspendable NUMS internal key, so every spend is a script-path spend of
//! one of these leaves. The staking amount never influences a script.

use bitcoin::opcodes::all::{
    OP_CHECKSIG, OP_CHECKSIGADD, OP_CHECKSIGVERIFY, OP_CSV, OP_NUMEQUAL, OP_NUMEQUALVERIFY,
};
use bitcoin::script::Builder;
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::taproot::{
    ControlBlock, LeafVersion, TapLeafHash, TapNodeHash, TaprootBuilder, TaprootSpendInfo,
};
use bitcoin::{Address, Network, ScriptBuf};

use crate::keys::{first_duplicate, nums_key, sort_x_only, SECP};

/// Why a staking or unbonding output cannot be built from the given keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// A multisig fragment needs at least one key.
    #[error("no keys given for the {0} part of the script")]
    NoKeys(&'static str),
    /// The threshold is larger than the number of keys (or zero).
    #[error("quorum {quorum} is not between 1 and the number of {part} keys ({keys})")]
    BadQuorum {
        part: &'static str,
        quorum: u32,
        keys: usize,
    },
    /// The same x-only key appears twice among staker, finality providers and covenants
    /// (the reference's `ErrDuplicatedKeyInScript`).
    #[error("key {0} appears more than once in the staking script")]
    DuplicateKey(XOnlyPublicKey),
    /// A timelock of zero blocks is not a timelock.
    #[error("timelock must be at least 1 block, got 0")]
    ZeroTimelock,
}

/// x-only keys as their 32-byte serialisations, sorted ascending bytewise (the reference's
/// `SortKeys` order). Each key is serialised once: a serialisation goes through libsecp256k1,
/// and the classifier builds these scripts for every tagged transaction.
pub(crate) fn sorted_key_bytes(keys: &[XOnlyPublicKey]) -> Vec<[u8; 32]> {
    let mut bytes: Vec<[u8; 32]> = keys.iter().map(XOnlyPublicKey::serialize).collect();
    bytes.sort_unstable();
    bytes
}

/// `MULTI(keys, k, verify)` (`docs/formats.md#multisig-fragment`) over serialised keys already in
/// script order ([`sorted_key_bytes`]): the single-key form for one key, otherwise
/// `k1 CHECKSIG k2 CHECKSIGADD … kn CHECKSIGADD k NUMEQUAL(VERIFY)`.
fn push_multisig(
    builder: Builder,
    part: &'static str,
    sorted_keys: &[[u8; 32]],
    quorum: u32,
    verify: bool,
) -> Result<Builder, ScriptError> {
    if sorted_keys.is_empty() {
        return Err(ScriptError::NoKeys(part));
    }
    if quorum == 0 || quorum as usize > sorted_keys.len() {
        return Err(ScriptError::BadQuorum {
            part,
            quorum,
            keys: sorted_keys.len(),
        });
    }
    if let [key] = sorted_keys {
        let op = if verify {
            OP_CHECKSIGVERIFY
        } else {
            OP_CHECKSIG
        };
        return Ok(builder.push_slice(key).push_opcode(op));
    }
    let mut builder = builder;
    for (i, key) in sorted_keys.iter().enumerate() {
        let op = if i == 0 { OP_CHECKSIG } else { OP_CHECKSIGADD };
        builder = builder.push_slice(key).push_opcode(op);
    }
    let op = if verify {
        OP_NUMEQUALVERIFY
    } else {
        OP_NUMEQUAL
    };
    Ok(builder.push_int(i64::from(quorum)).push_opcode(op))
}

/// `<staker> OP_CHECKSIGVERIFY <T> OP_CHECKSEQUENCEVERIFY`: the staker alone after `T` blocks.
pub fn timelock_script(staker: &XOnlyPublicKey, blocks: u16) -> Result<ScriptBuf, ScriptError> {
    if blocks == 0 {
        return Err(ScriptError::ZeroTimelock);
    }
    Ok(timelock_script_unchecked(&staker.serialize(), blocks))
}

/// [`timelock_script`] from the staker's serialised key, for any `blocks` (the classifier must
/// build the reference's `OP_0 OP_CSV` leaf for a staking time of 0).
pub(crate) fn timelock_script_unchecked(staker: &[u8; 32], blocks: u16) -> ScriptBuf {
    Builder::new()
        .push_slice(staker)
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_int(i64::from(blocks))
        .push_opcode(OP_CSV)
        .into_script()
}

/// `<staker> OP_CHECKSIGVERIFY MULTI(covenants, quorum)`: the staker plus exactly `quorum`
/// covenant signatures (the script ends in `OP_NUMEQUAL`).
pub fn unbonding_script(
    staker: &XOnlyPublicKey,
    covenants: &[XOnlyPublicKey],
    quorum: u32,
) -> Result<ScriptBuf, ScriptError> {
    unbonding_script_of_bytes(&staker.serialize(), &sorted_key_bytes(covenants), quorum)
}

/// [`unbonding_script`] from serialised keys, covenants in script order.
pub(crate) fn unbonding_script_of_bytes(
    staker: &[u8; 32],
    sorted_covenants: &[[u8; 32]],
    quorum: u32,
) -> Result<ScriptBuf, ScriptError> {
    let builder = Builder::new()
        .push_slice(staker)
        .push_opcode(OP_CHECKSIGVERIFY);
    Ok(push_multisig(builder, "covenant", sorted_covenants, quorum, false)?.into_script())
}

/// `<staker> OP_CHECKSIGVERIFY MULTI(fps, 1, verify) MULTI(covenants, quorum)`.
pub fn slashing_script(
    staker: &XOnlyPublicKey,
    finality_providers: &[XOnlyPublicKey],
    covenants: &[XOnlyPublicKey],
    quorum: u32,
) -> Result<ScriptBuf, ScriptError> {
    slashing_script_of_bytes(
        &staker.serialize(),
        &sorted_key_bytes(finality_providers),
        &sorted_key_bytes(covenants),
        quorum,
    )
}

/// [`slashing_script`] from serialised keys, finality providers and covenants in script order.
pub(crate) fn slashing_script_of_bytes(
    staker: &[u8; 32],
    sorted_finality_providers: &[[u8; 32]],
    sorted_covenants: &[[u8; 32]],
    quorum: u32,
) -> Result<ScriptBuf, ScriptError> {
    let builder = Builder::new()
        .push_slice(staker)
        .push_opcode(OP_CHECKSIGVERIFY);
    let builder = push_multisig(
        builder,
        "finality provider",
        sorted_finality_providers,
        1,
        true,
    )?;
    Ok(push_multisig(builder, "covenant", sorted_covenants, quorum, false)?.into_script())
}

/// The keys that define a staking output, checked for the distinct-keys rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakingKeys {
    pub staker: XOnlyPublicKey,
    pub finality_providers: Vec<XOnlyPublicKey>,
    pub covenants: Vec<XOnlyPublicKey>,
    pub quorum: u32,
}

impl StakingKeys {
    /// Checks that every key is distinct (staker, FPs and covenants together) and that the
    /// committee shape is buildable.
    pub fn new(
        staker: XOnlyPublicKey,
        finality_providers: Vec<XOnlyPublicKey>,
        covenants: Vec<XOnlyPublicKey>,
        quorum: u32,
    ) -> Result<Self, ScriptError> {
        if finality_providers.is_empty() {
            return Err(ScriptError::NoKeys("finality provider"));
        }
        if covenants.is_empty() {
            return Err(ScriptError::NoKeys("covenant"));
        }
        if quorum == 0 || quorum as usize > covenants.len() {
            return Err(ScriptError::BadQuorum {
                part: "covenant",
                quorum,
                keys: covenants.len(),
            });
        }
        let mut all = Vec::with_capacity(1 + finality_providers.len() + covenants.len());
        all.push(staker);
        all.extend_from_slice(&finality_providers);
        all.extend_from_slice(&covenants);
        if let Some(dup) = first_duplicate(&all) {
            return Err(ScriptError::DuplicateKey(dup));
        }
        Ok(Self {
            staker,
            finality_providers,
            covenants,
            quorum,
        })
    }

    /// Covenant keys in script order (ascending x-only bytes).
    pub fn sorted_covenants(&self) -> Vec<XOnlyPublicKey> {
        let mut keys = self.covenants.clone();
        sort_x_only(&mut keys);
        keys
    }
}

/// The three leaves of a staking output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StakingLeaf {
    /// Staker alone after the staking time (withdrawal).
    Timelock,
    /// Staker plus covenant quorum (early unbonding).
    Unbonding,
    /// Staker, finality provider and covenant quorum (not used in phase 1).
    Slashing,
}

/// The two leaves of an unbonding output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnbondingLeaf {
    /// Staker alone after the unbonding time (withdrawal).
    Timelock,
    /// Staker, finality provider and covenant quorum (not used in phase 1).
    Slashing,
}

/// A fully built Taproot output: its leaves, tree and output script.
#[derive(Debug, Clone)]
struct TaprootOutput {
    spend_info: TaprootSpendInfo,
    script_pubkey: ScriptBuf,
}

impl TaprootOutput {
    fn build(leaves: &[(u8, &ScriptBuf)]) -> Self {
        let mut builder = TaprootBuilder::new();
        for (depth, script) in leaves {
            // The depths used here ([2,2,1] and [1,1]) always form a complete tree, so adding
            // a leaf cannot fail.
            #[allow(clippy::expect_used, reason = "fixed, complete tree shapes")]
            {
                builder = builder
                    .add_leaf(*depth, (*script).clone())
                    .expect("valid tree shape");
            }
        }
        #[allow(clippy::expect_used, reason = "fixed, complete tree shapes")]
        let spend_info = builder.finalize(&SECP, nums_key()).expect("complete tree");
        let script_pubkey = ScriptBuf::new_p2tr_tweaked(spend_info.output_key());
        Self {
            spend_info,
            script_pubkey,
        }
    }

    fn control_block(&self, script: &ScriptBuf) -> ControlBlock {
        // Every script passed here is a leaf of this tree.
        #[allow(clippy::expect_used, reason = "the script is a leaf of this tree")]
        self.spend_info
            .control_block(&(script.clone(), LeafVersion::TapScript))
            .expect("leaf is in the tree")
    }
}

/// The staking output of `docs/formats.md#staking-output`: timelock and unbonding leaves at depth
/// 2, slashing at depth 1, NUMS internal key.
#[derive(Debug, Clone)]
pub struct StakingOutput {
    keys: StakingKeys,
    staking_time: u16,
    timelock: ScriptBuf,
    unbonding: ScriptBuf,
    slashing: ScriptBuf,
    output: TaprootOutput,
}

impl StakingOutput {
    /// Builds the staking output for the given keys and staking time (in blocks).
    pub fn new(keys: StakingKeys, staking_time: u16) -> Result<Self, ScriptError> {
        let timelock = timelock_script(&keys.staker, staking_time)?;
        let unbonding = unbonding_script(&keys.staker, &keys.covenants, keys.quorum)?;
        let slashing = slashing_script(
            &keys.staker,
            &keys.finality_providers,
            &keys.covenants,
            keys.quorum,
        )?;
        let output = TaprootOutput::build(&[(2, &timelock), (2, &unbonding), (1, &slashing)]);
        Ok(Self {
            keys,
            staking_time,
            timelock,
            unbonding,
            slashing,
            output,
        })
    }

    /// The keys this output was built from.
    pub fn keys(&self) -> &StakingKeys {
        &self.keys
    }

    /// The staking time in blocks (the timelock leaf's CSV value).
    pub fn staking_time(&self) -> u16 {
        self.staking_time
    }

    /// The leaf script of `leaf`.
    pub fn leaf_script(&self, leaf: StakingLeaf) -> &ScriptBuf {
        match leaf {
            StakingLeaf::Timelock => &self.timelock,
            StakingLeaf::Unbonding => &self.unbonding,
            StakingLeaf::Slashing => &self.slashing,
        }
    }

    /// `TaggedHash("TapLeaf", c0 ‖ CompactSize(len) ‖ script)` of `leaf`.
    pub fn leaf_hash(&self, leaf: StakingLeaf) -> TapLeafHash {
        TapLeafHash::from_script(self.leaf_script(leaf), LeafVersion::TapScript)
    }

    /// The control block that reveals `leaf`.
    pub fn control_block(&self, leaf: StakingLeaf) -> ControlBlock {
        self.output.control_block(self.leaf_script(leaf))
    }

    /// The Taproot merkle root of the three leaves.
    pub fn merkle_root(&self) -> TapNodeHash {
        // The tree always has leaves, so the root exists.
        #[allow(clippy::expect_used, reason = "the tree has three leaves")]
        self.output
            .spend_info
            .merkle_root()
            .expect("non-empty tree")
    }

    /// The Taproot spend info (output key, parity, tree).
    pub fn spend_info(&self) -> &TaprootSpendInfo {
        &self.output.spend_info
    }

    /// `OP_1 <Q.x>`: the same on every network.
    pub fn script_pubkey(&self) -> &ScriptBuf {
        &self.output.script_pubkey
    }

    /// The bech32m address on `network`.
    pub fn address(&self, network: Network) -> Address {
        Address::p2tr_tweaked(self.output.spend_info.output_key(), network)
    }
}

/// The unbonding output of `docs/formats.md#unbonding-output`: timelock (unbonding time) and
/// slashing leaves, both at depth 1, NUMS internal key.
#[derive(Debug, Clone)]
pub struct UnbondingOutput {
    unbonding_time: u16,
    timelock: ScriptBuf,
    slashing: ScriptBuf,
    output: TaprootOutput,
}

impl UnbondingOutput {
    /// Builds the unbonding output for the given keys and unbonding time (in blocks).
    pub fn new(keys: &StakingKeys, unbonding_time: u16) -> Result<Self, ScriptError> {
        let timelock = timelock_script(&keys.staker, unbonding_time)?;
        let slashing = slashing_script(
            &keys.staker,
            &keys.finality_providers,
            &keys.covenants,
            keys.quorum,
        )?;
        let output = TaprootOutput::build(&[(1, &timelock), (1, &slashing)]);
        Ok(Self {
            unbonding_time,
            timelock,
            slashing,
            output,
        })
    }

    /// The unbonding time in blocks.
    pub fn unbonding_time(&self) -> u16 {
        self.unbonding_time
    }

    /// The leaf script of `leaf`.
    pub fn leaf_script(&self, leaf: UnbondingLeaf) -> &ScriptBuf {
        match leaf {
            UnbondingLeaf::Timelock => &self.timelock,
            UnbondingLeaf::Slashing => &self.slashing,
        }
    }

    /// The TapLeaf hash of `leaf`.
    pub fn leaf_hash(&self, leaf: UnbondingLeaf) -> TapLeafHash {
        TapLeafHash::from_script(self.leaf_script(leaf), LeafVersion::TapScript)
    }

    /// The control block that reveals `leaf`.
    pub fn control_block(&self, leaf: UnbondingLeaf) -> ControlBlock {
        self.output.control_block(self.leaf_script(leaf))
    }

    /// The Taproot merkle root of the two leaves.
    pub fn merkle_root(&self) -> TapNodeHash {
        #[allow(clippy::expect_used, reason = "the tree has two leaves")]
        self.output
            .spend_info
            .merkle_root()
            .expect("non-empty tree")
    }

    /// The Taproot spend info.
    pub fn spend_info(&self) -> &TaprootSpendInfo {
        &self.output.spend_info
    }

    /// `OP_1 <Q.x>`.
    pub fn script_pubkey(&self) -> &ScriptBuf {
        &self.output.script_pubkey
    }

    /// The bech32m address on `network`.
    pub fn address(&self, network: Network) -> Address {
        Address::p2tr_tweaked(self.output.spend_info.output_key(), network)
    }
}
