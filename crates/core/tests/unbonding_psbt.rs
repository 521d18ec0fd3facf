//! The staker's unbonding PSBT for an external signer: it round-trips through its encodings,
//! every field matches the canonical unbonding tx and the staking output, a wallet can compute
//! the sighash from the PSBT alone, and what comes back is accepted only when it is this tx,
//! signed by the staker key for the unbonding leaf — otherwise refused with the reason.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::str::FromStr;

use bitcoin::bip32::{ChildNumber, DerivationPath, Fingerprint, KeySource};
use bitcoin::hashes::Hash;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::taproot::{self, LeafVersion, TapLeafHash};
use bitcoin::{Amount, OutPoint, ScriptBuf, TapSighashType, Txid};
use proptest::prelude::*;
use staking_core::keys::{nums_key, SECP};
use staking_core::psbt::unknown_key_origin;
use staking_core::script::{StakingKeys, StakingLeaf, StakingOutput};
use staking_core::signed_unbonding::{SignedUnbondingError, TxDifference, UnbondingToSign};
use staking_core::signing::sign;
use staking_core::unbonding::{canonical_unbonding_tx, unbonding_sighash, UnbondingTerms};

fn keypair(byte: u8) -> Keypair {
    Keypair::from_secret_key(&SECP, &SecretKey::from_slice(&[byte; 32]).unwrap())
}

struct Case {
    staker: Keypair,
    staking: StakingOutput,
    outpoint: OutPoint,
    value: Amount,
    terms: UnbondingTerms,
}

impl Case {
    fn new(
        base: u8,
        covenants: u8,
        quorum: u32,
        staking_time: u16,
        value: u64,
        terms: UnbondingTerms,
        outpoint: OutPoint,
    ) -> Self {
        let staker = keypair(base);
        let keys = StakingKeys::new(
            staker.x_only_public_key().0,
            vec![keypair(base + 50).x_only_public_key().0],
            (0..covenants)
                .map(|i| keypair(base + 100 + i).x_only_public_key().0)
                .collect(),
            quorum,
        )
        .unwrap();
        Case {
            staker,
            staking: StakingOutput::new(keys, staking_time).unwrap(),
            outpoint,
            value: Amount::from_sat(value),
            terms,
        }
    }

    fn fixed() -> Self {
        Self::new(
            1,
            3,
            2,
            150,
            100_000,
            UnbondingTerms {
                unbonding_time: 20,
                unbonding_fee: Amount::from_sat(1_000),
            },
            OutPoint::new(Txid::from_byte_array([2; 32]), 1),
        )
    }

    fn to_sign(&self) -> UnbondingToSign {
        UnbondingToSign::new(self.staking.clone(), self.outpoint, self.value, &self.terms).unwrap()
    }
}

/// What a wallet does: sighash from the PSBT's own fields (tx, witness UTXO, leaf), sign.
fn wallet_sign(psbt: &mut Psbt, keypair: &Keypair, leaf: TapLeafHash) {
    let prevout = psbt.inputs[0].witness_utxo.clone().unwrap();
    let sighash = SighashCache::new(&psbt.unsigned_tx)
        .taproot_script_spend_signature_hash(
            0,
            &Prevouts::All(&[prevout]),
            leaf,
            TapSighashType::Default,
        )
        .unwrap();
    let signature = taproot::Signature {
        signature: sign(&sighash, keypair),
        sighash_type: TapSighashType::Default,
    };
    psbt.inputs[0]
        .tap_script_sigs
        .insert((keypair.x_only_public_key().0, leaf), signature);
}

fn origin_strategy() -> impl Strategy<Value = Option<KeySource>> {
    proptest::option::of((
        any::<[u8; 4]>(),
        proptest::collection::vec((0u32..(1 << 31), any::<bool>()), 0..6),
    ))
    .prop_map(|o| {
        o.map(|(fp, steps)| {
            let path: Vec<ChildNumber> = steps
                .into_iter()
                .map(|(index, hardened)| {
                    if hardened {
                        ChildNumber::from_hardened_idx(index).unwrap()
                    } else {
                        ChildNumber::from_normal_idx(index).unwrap()
                    }
                })
                .collect();
            (Fingerprint::from(fp), DerivationPath::from(path))
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_unbonding_psbt_round_trips_and_its_fields_match_the_canonical_tx(
        base in 1u8..=40,
        (covenants, quorum) in (1u8..=5).prop_flat_map(|n| (Just(n), 1u32..=u32::from(n))),
        staking_time in 1u16..=u16::MAX,
        fee in 1u64..=50_000,
        extra in 1u64..=2_000_000_000,
        unbonding_time in 1u16..=u16::MAX,
        txid in any::<[u8; 32]>(),
        vout in 0u32..8,
        origin in origin_strategy(),
    ) {
        let terms = UnbondingTerms { unbonding_time, unbonding_fee: Amount::from_sat(fee) };
        let outpoint = OutPoint::new(Txid::from_byte_array(txid), vout);
        let case = Case::new(base, covenants, quorum, staking_time, fee + extra, terms, outpoint);
        let to_sign = case.to_sign();
        let psbt = to_sign.psbt(origin.clone()).unwrap();

        // Round trips: base64 text and binary.
        let text = psbt.to_string();
        let parsed: Psbt = text.parse().unwrap();
        prop_assert_eq!(&parsed, &psbt);
        prop_assert_eq!(Psbt::deserialize(&psbt.serialize()).unwrap(), psbt.clone());

        // The tx is the canonical unbonding tx, nothing else.
        let canonical = canonical_unbonding_tx(&case.staking, outpoint, case.value, &terms).unwrap();
        prop_assert_eq!(&parsed.unsigned_tx, &canonical);
        prop_assert_eq!(parsed.inputs.len(), 1);
        prop_assert_eq!(parsed.outputs.len(), 1);

        // The input: what it spends, the leaf with a control block that opens the output key,
        // the tree's root and internal key, the staker key's origin for the leaf, the sighash type.
        let input = &parsed.inputs[0];
        let utxo = input.witness_utxo.as_ref().unwrap();
        prop_assert_eq!(utxo.value, case.value);
        prop_assert_eq!(&utxo.script_pubkey, case.staking.script_pubkey());
        prop_assert_eq!(input.tap_scripts.len(), 1);
        let (control_block, (leaf, version)) = input.tap_scripts.iter().next().unwrap();
        prop_assert_eq!(leaf, case.staking.leaf_script(StakingLeaf::Unbonding));
        prop_assert_eq!(*version, LeafVersion::TapScript);
        let output_key = case.staking.spend_info().output_key().to_x_only_public_key();
        prop_assert!(control_block.verify_taproot_commitment(&SECP, output_key, leaf));
        prop_assert_eq!(input.tap_internal_key, Some(nums_key()));
        prop_assert_eq!(input.tap_merkle_root, Some(case.staking.merkle_root()));
        let leaf_hash = case.staking.leaf_hash(StakingLeaf::Unbonding);
        let staker = case.staker.x_only_public_key().0;
        prop_assert_eq!(input.tap_key_origins.len(), 1);
        prop_assert_eq!(
            &input.tap_key_origins[&staker],
            &(vec![leaf_hash], origin.unwrap_or_else(unknown_key_origin))
        );
        prop_assert_eq!(input.sighash_type.map(|t| t.taproot_hash_ty().unwrap()), Some(TapSighashType::Default));

        // A wallet that only reads the PSBT signs the sighash the API checks, and the signed
        // PSBT comes back accepted.
        let mut signed = parsed;
        wallet_sign(&mut signed, &case.staker, leaf_hash);
        let back: Psbt = signed.to_string().parse().unwrap();
        let signature = to_sign.signature_from_psbt(&back).unwrap();
        let expected_sighash = unbonding_sighash(&canonical, &case.staking, case.value).unwrap();
        prop_assert_eq!(to_sign.sighash(), expected_sighash);
        prop_assert!(to_sign.check_signature(signature.as_ref()).is_ok());
    }
}

fn signed_psbt(case: &Case, edit: impl FnOnce(&mut Psbt), signer: &Keypair) -> Psbt {
    let mut psbt = case.to_sign().psbt(None).unwrap();
    edit(&mut psbt);
    wallet_sign(
        &mut psbt,
        signer,
        case.staking.leaf_hash(StakingLeaf::Unbonding),
    );
    psbt.to_string().parse().unwrap()
}

#[test]
fn a_psbt_made_for_another_delegation_is_refused_as_another_tx() {
    let case = Case::fixed();
    let mut other = Case::fixed();
    other.outpoint = OutPoint::new(Txid::from_byte_array([9; 32]), 0);
    let psbt = signed_psbt(&other, |_| {}, &other.staker);
    let e = case.to_sign().signature_from_psbt(&psbt).unwrap_err();
    assert!(
        matches!(e, SignedUnbondingError::OtherTx { got, .. } if got == other.outpoint),
        "{e}"
    );
    assert!(e.to_string().starts_with("signed for another tx"), "{e}");
}

#[test]
fn a_changed_output_is_refused_as_tampered_even_when_the_signature_covers_it() {
    let case = Case::fixed();
    let psbt = signed_psbt(
        &case,
        |p| p.unsigned_tx.output[0].value -= Amount::from_sat(500),
        &case.staker,
    );
    let e = case.to_sign().signature_from_psbt(&psbt).unwrap_err();
    assert!(
        matches!(
            e,
            SignedUnbondingError::TxChanged {
                difference: TxDifference::OutputValue { .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("output 0 is 98500 sat instead of 99000 sat"),
        "{e}"
    );

    let psbt = signed_psbt(
        &case,
        |p| p.unsigned_tx.output[0].script_pubkey = ScriptBuf::from_bytes(vec![0x51]),
        &case.staker,
    );
    let e = case.to_sign().signature_from_psbt(&psbt).unwrap_err();
    assert!(e.to_string().starts_with("tampered:"), "{e}");
    assert!(
        e.to_string().contains("instead of the unbonding output"),
        "{e}"
    );

    let psbt = signed_psbt(
        &case,
        |p| p.unsigned_tx.version = bitcoin::transaction::Version::ONE,
        &case.staker,
    );
    let e = case.to_sign().signature_from_psbt(&psbt).unwrap_err();
    assert!(e.to_string().contains("version 1 instead of 2"), "{e}");
}

#[test]
fn a_changed_witness_utxo_is_refused_as_tampered() {
    let case = Case::fixed();
    let psbt = signed_psbt(
        &case,
        |p| {
            let utxo = p.inputs[0].witness_utxo.as_mut().unwrap();
            utxo.value += Amount::from_sat(1);
        },
        &case.staker,
    );
    let e = case.to_sign().signature_from_psbt(&psbt).unwrap_err();
    assert!(
        matches!(e, SignedUnbondingError::WitnessUtxoChanged { .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("tampered: the PSBT's witness UTXO is 100001 sat"),
        "{e}"
    );
}

#[test]
fn a_signature_by_another_key_in_the_leaf_is_refused_naming_the_key() {
    let case = Case::fixed();
    let covenant = keypair(101);
    let psbt = signed_psbt(&case, |_| {}, &covenant);
    let e = case.to_sign().signature_from_psbt(&psbt).unwrap_err();
    assert!(matches!(e, SignedUnbondingError::OtherKey { .. }), "{e}");
    let text = e.to_string();
    assert!(text.starts_with("signed with another key"), "{text}");
    assert!(
        text.contains(&covenant.x_only_public_key().0.to_string()),
        "{text}"
    );
}

#[test]
fn a_staker_signature_for_another_leaf_or_no_signature_says_so() {
    let case = Case::fixed();
    let mut psbt = case.to_sign().psbt(None).unwrap();
    let e = case.to_sign().signature_from_psbt(&psbt).unwrap_err();
    assert!(matches!(e, SignedUnbondingError::NotSigned { .. }), "{e}");
    wallet_sign(
        &mut psbt,
        &case.staker,
        case.staking.leaf_hash(StakingLeaf::Timelock),
    );
    let e = case.to_sign().signature_from_psbt(&psbt).unwrap_err();
    assert!(matches!(e, SignedUnbondingError::OtherLeaf { .. }), "{e}");
}

#[test]
fn a_damaged_signature_or_one_with_sighash_all_is_refused() {
    let case = Case::fixed();
    let leaf = case.staking.leaf_hash(StakingLeaf::Unbonding);
    let key = (case.staker.x_only_public_key().0, leaf);

    let mut psbt = signed_psbt(&case, |_| {}, &case.staker);
    let mut bytes = psbt.inputs[0].tap_script_sigs[&key].signature.serialize();
    bytes[40] ^= 1;
    psbt.inputs[0].tap_script_sigs.insert(
        key,
        taproot::Signature {
            signature: bitcoin::secp256k1::schnorr::Signature::from_slice(&bytes).unwrap(),
            sighash_type: TapSighashType::Default,
        },
    );
    let e = case.to_sign().signature_from_psbt(&psbt).unwrap_err();
    assert!(
        matches!(e, SignedUnbondingError::DoesNotVerify { .. }),
        "{e}"
    );

    let mut psbt = signed_psbt(&case, |_| {}, &case.staker);
    psbt.inputs[0]
        .tap_script_sigs
        .get_mut(&key)
        .unwrap()
        .sighash_type = TapSighashType::All;
    let back: Psbt = psbt.to_string().parse().unwrap();
    let e = case.to_sign().signature_from_psbt(&back).unwrap_err();
    assert_eq!(e, SignedUnbondingError::SighashType(TapSighashType::All));
}

#[test]
fn a_truncated_signature_is_refused_bare_and_does_not_even_parse_in_a_psbt() {
    let case = Case::fixed();
    let to_sign = case.to_sign();
    let leaf = case.staking.leaf_hash(StakingLeaf::Unbonding);
    let psbt = signed_psbt(&case, |_| {}, &case.staker);
    let signature = psbt.inputs[0].tap_script_sigs[&(case.staker.x_only_public_key().0, leaf)]
        .signature
        .serialize();
    assert!(to_sign.check_signature(&signature).is_ok());
    assert_eq!(
        to_sign.check_signature(&signature[..63]),
        Err(SignedUnbondingError::Length(63))
    );
    let other = sign(&to_sign.sighash(), &keypair(77));
    assert!(matches!(
        to_sign.check_signature(other.as_ref()),
        Err(SignedUnbondingError::DoesNotVerify { .. })
    ));

    // In the PSBT's key-value map the value is `len ‖ sig`: cut the last byte.
    let mut bytes = psbt.serialize();
    let mut value = vec![64u8];
    value.extend_from_slice(&signature);
    let at = bytes
        .windows(value.len())
        .position(|w| w == value.as_slice())
        .unwrap();
    bytes[at] = 63;
    bytes.remove(at + 64);
    assert!(Psbt::deserialize(&bytes).is_err());
}

#[test]
fn the_origin_given_is_the_one_a_hardware_wallet_reads() {
    let case = Case::fixed();
    let origin = (
        Fingerprint::from_str("d34db33f").unwrap(),
        DerivationPath::from_str("m/86'/1'/0'/0/7").unwrap(),
    );
    let psbt = case.to_sign().psbt(Some(origin.clone())).unwrap();
    let staker = case.staker.x_only_public_key().0;
    assert_eq!(psbt.inputs[0].tap_key_origins[&staker].1, origin);
}
