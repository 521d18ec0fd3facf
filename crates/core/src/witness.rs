//! Witness stacks for the script-path spends of phase 1 (`docs/formats.md#witnesses`).
//!
//! The unbonding leaf ends in `quorum OP_NUMEQUAL`, so the witness must carry exactly `quorum`
//! covenant signatures: one more valid signature fails the script just like one fewer. Slots
//! are listed in descending x-only key order because the script checks the keys in ascending
//! order while popping the stack from the top.

use bitcoin::secp256k1::{schnorr, XOnlyPublicKey};
use bitcoin::taproot::ControlBlock;
use bitcoin::{Script, Witness};

use crate::script::{StakingLeaf, StakingOutput, UnbondingLeaf, UnbondingOutput};

/// Why an unbonding-path witness cannot be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// A signature was given for a key that is not in the covenant committee.
    #[error("key {0} is not a member of the covenant committee")]
    NotACovenant(XOnlyPublicKey),
    /// Two signatures were given for the same covenant key.
    #[error("covenant key {0} has more than one signature")]
    DuplicateCovenant(XOnlyPublicKey),
    /// Fewer signatures than the quorum.
    #[error("{got} covenant signatures given, the quorum is {quorum}")]
    BelowQuorum { got: usize, quorum: u32 },
}

fn push_script_and_control_block(witness: &mut Witness, script: &Script, cb: &ControlBlock) {
    witness.push(script.as_bytes());
    witness.push(cb.serialize());
}

/// The witness of the unbonding path of `staking`:
/// `[cov_sig_or_empty(k_n), …, cov_sig_or_empty(k_1), staker_sig, unbonding_leaf, control_block]`.
///
/// Exactly `quorum` covenant signatures are used: the first `quorum` of `covenant_sigs` in the
/// given order (callers list them by preference, e.g. in arrival order); every other slot is an
/// empty item. Signatures are not verified here: the pipeline verifies each one on receipt.
pub fn unbonding_witness(
    staking: &StakingOutput,
    staker_sig: &schnorr::Signature,
    covenant_sigs: &[(XOnlyPublicKey, schnorr::Signature)],
) -> Result<Witness, WitnessError> {
    let keys = staking.keys();
    let mut slots_desc = keys.sorted_covenants();
    slots_desc.reverse();
    let quorum = keys.quorum as usize;

    let mut chosen: Vec<Option<&schnorr::Signature>> = vec![None; slots_desc.len()];
    let mut seen: Vec<XOnlyPublicKey> = Vec::with_capacity(covenant_sigs.len());
    let mut used = 0usize;
    for (key, sig) in covenant_sigs {
        if seen.contains(key) {
            return Err(WitnessError::DuplicateCovenant(*key));
        }
        seen.push(*key);
        let slot = slots_desc
            .iter()
            .position(|k| k == key)
            .ok_or(WitnessError::NotACovenant(*key))?;
        if used < quorum {
            chosen[slot] = Some(sig);
            used += 1;
        }
    }
    if used < quorum {
        return Err(WitnessError::BelowQuorum {
            got: used,
            quorum: keys.quorum,
        });
    }

    let mut witness = Witness::new();
    for slot in chosen {
        match slot {
            Some(sig) => witness.push(sig.as_ref()),
            None => witness.push([]),
        }
    }
    witness.push(staker_sig.as_ref());
    push_script_and_control_block(
        &mut witness,
        staking.leaf_script(StakingLeaf::Unbonding),
        &staking.control_block(StakingLeaf::Unbonding),
    );
    Ok(witness)
}

/// The witness of the staking output's timelock path (withdrawal after the staking time):
/// `[staker_sig, timelock_leaf, control_block]`.
pub fn staking_timelock_witness(
    staking: &StakingOutput,
    staker_sig: &schnorr::Signature,
) -> Witness {
    let mut witness = Witness::new();
    witness.push(staker_sig.as_ref());
    push_script_and_control_block(
        &mut witness,
        staking.leaf_script(StakingLeaf::Timelock),
        &staking.control_block(StakingLeaf::Timelock),
    );
    witness
}

/// The witness of the unbonding output's timelock path (withdrawal after the unbonding time):
/// `[staker_sig, timelock_leaf, control_block]`.
pub fn unbonding_timelock_witness(
    unbonding: &UnbondingOutput,
    staker_sig: &schnorr::Signature,
) -> Witness {
    let mut witness = Witness::new();
    witness.push(staker_sig.as_ref());
    push_script_and_control_block(
        &mut witness,
        unbonding.leaf_script(UnbondingLeaf::Timelock),
        &unbonding.control_block(UnbondingLeaf::Timelock),
    );
    witness
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SECP;
    use crate::script::StakingKeys;
    use bitcoin::secp256k1::{Keypair, SecretKey};

    fn keypair(byte: u8) -> Keypair {
        Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&[byte; 32]).unwrap())
    }

    fn xonly(byte: u8) -> XOnlyPublicKey {
        keypair(byte).x_only_public_key().0
    }

    fn dummy_sig(byte: u8) -> schnorr::Signature {
        let msg = bitcoin::secp256k1::Message::from_digest([byte; 32]);
        SECP.sign_schnorr_no_aux_rand(&msg, &keypair(byte))
    }

    fn staking(quorum: u32) -> StakingOutput {
        let keys = StakingKeys::new(
            xonly(1),
            vec![xonly(2)],
            vec![xonly(3), xonly(4), xonly(5)],
            quorum,
        )
        .unwrap();
        StakingOutput::new(keys, 100).unwrap()
    }

    #[test]
    fn unbonding_witness_uses_exactly_quorum_signatures_in_descending_slots() {
        let staking = staking(2);
        let sigs: Vec<_> = [3u8, 4, 5]
            .iter()
            .map(|b| (xonly(*b), dummy_sig(*b)))
            .collect();
        let witness = unbonding_witness(&staking, &dummy_sig(1), &sigs).unwrap();
        assert_eq!(witness.len(), 3 + 3);
        let mut desc = staking.keys().sorted_covenants();
        desc.reverse();
        let non_empty: Vec<_> = (0..3)
            .filter(|i| !witness.nth(*i).unwrap().is_empty())
            .collect();
        assert_eq!(non_empty.len(), 2);
        for i in non_empty {
            let key = desc[i];
            let (_, sig) = sigs.iter().find(|(k, _)| *k == key).unwrap();
            assert_eq!(witness.nth(i).unwrap(), sig.as_ref());
            assert!(
                sigs[..2].iter().any(|(k, _)| *k == key),
                "first quorum sigs are used"
            );
        }
    }

    #[test]
    fn unbonding_witness_below_quorum_or_with_strangers_is_refused() {
        let staking = staking(2);
        let one = [(xonly(3), dummy_sig(3))];
        assert_eq!(
            unbonding_witness(&staking, &dummy_sig(1), &one),
            Err(WitnessError::BelowQuorum { got: 1, quorum: 2 })
        );
        let stranger = [(xonly(3), dummy_sig(3)), (xonly(9), dummy_sig(9))];
        assert_eq!(
            unbonding_witness(&staking, &dummy_sig(1), &stranger),
            Err(WitnessError::NotACovenant(xonly(9)))
        );
        let twice = [(xonly(3), dummy_sig(3)), (xonly(3), dummy_sig(3))];
        assert_eq!(
            unbonding_witness(&staking, &dummy_sig(1), &twice),
            Err(WitnessError::DuplicateCovenant(xonly(3)))
        );
    }
}
