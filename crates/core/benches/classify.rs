//! Classification cost against rust-bitcoin's own block deserialisation.
//!
//! Target: classifying every transaction of a mainnet-sized block (≈2,500 txs, ≈1.5 MB) costs at
//! most 1.2× deserialising it, i.e. `deserialize + classify all` ≤ 1.2 × `deserialize`.
//! The blocks are generated deterministically from P2WPKH and P2TR key-path spends: one with no
//! tagged tx at all, one with 2% valid staking txs under bbn-1 version 1 and 1% tagged-but-invalid
//! ones (other committee, amount too low). Each tagged tx costs one Taproot tweak (an EC point
//! multiplication) and two x-only key parses: that, not the scan, is what the second block
//! measures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench setup: a panic is a failed run"
)]
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use staking_core::bitcoin::block::{Header, Version as BlockVersion};
use staking_core::bitcoin::consensus::{deserialize, serialize};
use staking_core::bitcoin::hashes::Hash;
use staking_core::bitcoin::secp256k1::{SecretKey, XOnlyPublicKey};
use staking_core::bitcoin::{
    absolute::LockTime, transaction::Version, Amount, Block, BlockHash, CompactTarget, OutPoint,
    ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut, Txid, WPubkeyHash, Witness,
};
use staking_core::keys::SECP;
use staking_core::op_return::V0OpReturn;
use staking_core::params::{BlockHeight, ParamsVersion};
use staking_core::presets::Preset;
use staking_core::script::StakingOutput;
use staking_core::staking_tx::{classify, classify_under, StakingTxClass};

/// splitmix64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn key(&mut self) -> XOnlyPublicKey {
        loop {
            if let Ok(sk) = SecretKey::from_slice(&self.bytes::<32>()) {
                return sk.x_only_public_key(&SECP).0;
            }
        }
    }
}

fn p2wpkh_input(rng: &mut Rng) -> TxIn {
    let mut sig = rng.bytes::<72>().to_vec();
    sig[0] = 0x30;
    let mut pk = rng.bytes::<33>().to_vec();
    pk[0] = 0x02;
    TxIn {
        previous_output: OutPoint::new(Txid::from_byte_array(rng.bytes()), rng.below(4) as u32),
        script_sig: ScriptBuf::new(),
        sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
        witness: Witness::from_slice(&[sig, pk]),
    }
}

fn p2tr_input(rng: &mut Rng) -> TxIn {
    TxIn {
        previous_output: OutPoint::new(Txid::from_byte_array(rng.bytes()), rng.below(4) as u32),
        script_sig: ScriptBuf::new(),
        sequence: Sequence::MAX,
        witness: Witness::from_slice(&[rng.bytes::<64>().to_vec()]),
    }
}

fn payment(rng: &mut Rng) -> TxOut {
    let script_pubkey = if rng.below(2) == 0 {
        ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(rng.bytes()))
    } else {
        let mut b = vec![0x51, 0x20];
        b.extend(rng.bytes::<32>());
        ScriptBuf::from_bytes(b)
    };
    TxOut {
        value: Amount::from_sat(1_000 + rng.below(100_000_000)),
        script_pubkey,
    }
}

fn ordinary_tx(rng: &mut Rng) -> Transaction {
    let taproot = rng.below(3) == 0;
    let inputs = 1 + rng.below(6) as usize;
    let outputs = 1 + rng.below(4) as usize;
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: (0..inputs)
            .map(|_| {
                if taproot {
                    p2tr_input(rng)
                } else {
                    p2wpkh_input(rng)
                }
            })
            .collect(),
        output: (0..outputs).map(|_| payment(rng)).collect(),
    }
}

fn staking_tx(rng: &mut Rng, version: &ParamsVersion, value: u64) -> Transaction {
    let (staker, fp) = (rng.key(), rng.key());
    let keys = version.staking_keys(staker, fp).unwrap();
    let staking = StakingOutput::new(keys, 64000).unwrap();
    let op = V0OpReturn {
        tag: version.tag,
        staker,
        finality_provider: fp,
        staking_time: 64000,
    };
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::from_height(864_789).unwrap(),
        input: (0..1 + rng.below(2)).map(|_| p2wpkh_input(rng)).collect(),
        output: vec![
            TxOut {
                value: Amount::from_sat(value),
                script_pubkey: staking.script_pubkey().clone(),
            },
            op.tx_out(),
            payment(rng),
        ],
    }
}

/// The block, its serialisation, and how many txs of each kind it holds. With `staking`, 2% of
/// the txs are valid staking txs and 1% tagged-but-invalid ones; without, none is tagged.
fn mainnet_sized_block(staking: bool) -> (Vec<u8>, [usize; 3], usize) {
    let mut rng = Rng(2024);
    let params = Preset::Bbn1.params();
    let v1 = params.version(1).unwrap().clone();
    let mut other_committee = v1.clone();
    other_committee.covenant_pks = (0..9)
        .map(|_| loop {
            if let Ok(sk) = SecretKey::from_slice(&rng.bytes::<32>()) {
                break sk.public_key(&SECP);
            }
        })
        .collect();
    let mut txdata = Vec::with_capacity(2500);
    let mut tagged = 0;
    for i in 0..2500 {
        let slot = if staking { i % 100 } else { 0 };
        if matches!(slot, 7 | 37 | 67) || (slot == 97 && i % 200 == 97) {
            tagged += 1;
        }
        let tx = match slot {
            7 | 37 => {
                let value = 1_000_000 + rng.below(1_000_000_000);
                staking_tx(&mut rng, &v1, value)
            }
            67 => staking_tx(&mut rng, &other_committee, 1_000_000), // tagged, not staking
            97 if i % 200 == 97 => staking_tx(&mut rng, &v1, 10_000), // invalid: below minimum
            _ => ordinary_tx(&mut rng),
        };
        txdata.push(tx);
    }
    let block = Block {
        header: Header {
            version: BlockVersion::TWO,
            prev_blockhash: BlockHash::all_zeros(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: 1_729_000_000,
            bits: CompactTarget::from_consensus(0x1703_0ecd),
            nonce: 0,
        },
        txdata,
    };
    let mut counts = [0usize; 3];
    for tx in &block.txdata {
        match classify(tx, &params, BlockHeight(864_790)) {
            StakingTxClass::Valid(_) => counts[0] += 1,
            StakingTxClass::Invalid { .. } => counts[1] += 1,
            StakingTxClass::NotStaking(_) => counts[2] += 1,
        }
    }
    (serialize(&block), counts, tagged)
}

fn block_benches(c: &mut Criterion) {
    for (name, staking) in [("ordinary_block", false), ("staking_block", true)] {
        let (bytes, counts, tagged) = mainnet_sized_block(staking);
        eprintln!(
            "{name}: {} bytes, 2500 txs: {} valid staking, {} invalid staking, {} not staking; {tagged} tagged",
            bytes.len(),
            counts[0],
            counts[1],
            counts[2]
        );
        let params = Preset::Bbn1.params();
        let height = BlockHeight(864_790);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("deserialize", |b| {
            b.iter(|| black_box(deserialize::<Block>(black_box(&bytes)).unwrap()))
        });
        group.bench_function("deserialize_and_classify_all", |b| {
            b.iter(|| {
                let block: Block = deserialize(black_box(&bytes)).unwrap();
                let valid = block
                    .txdata
                    .iter()
                    .filter(|tx| matches!(classify(tx, &params, height), StakingTxClass::Valid(_)))
                    .count();
                black_box((block, valid))
            })
        });
        let block: Block = deserialize(&bytes).unwrap();
        group.bench_function("classify_all_only", |b| {
            b.iter(|| {
                block
                    .txdata
                    .iter()
                    .map(|tx| classify(black_box(tx), &params, height))
                    .filter(|c| matches!(c, StakingTxClass::Valid(_)))
                    .count()
            })
        });
        group.finish();
    }
}

fn single_benches(c: &mut Criterion) {
    let mut rng = Rng(7);
    let params = Preset::Bbn1.params();
    let v1 = params.version(1).unwrap().clone();
    let tx = staking_tx(&mut rng, &v1, 50_000_000);
    assert!(matches!(classify_under(&tx, &v1), StakingTxClass::Valid(_)));
    c.bench_function("parse_one_staking_tx", |b| {
        b.iter(|| black_box(classify_under(black_box(&tx), &v1)))
    });
    let (staker, fp) = (rng.key(), rng.key());
    c.bench_function("build_one_staking_output", |b| {
        b.iter(|| {
            let keys = v1.staking_keys(black_box(staker), black_box(fp)).unwrap();
            black_box(StakingOutput::new(keys, 64000).unwrap())
        })
    });
}

criterion_group!(benches, block_benches, single_benches);
criterion_main!(benches);
