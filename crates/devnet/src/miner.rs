//! Block assembly: BIP34 coinbase, witness commitment, merkle root and the (trivial) regtest
//! proof of work.

use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, Block, BlockHash, OutPoint, ScriptBuf, Sequence, Target,
    Transaction, TxIn, TxMerkleNode, TxOut, Witness,
};

use crate::params;

/// Builds and grinds a block at `height` on `prev` paying subsidy plus `fees` to `payout`.
/// `extra_nonce` goes into the coinbase after the BIP34 height so that two blocks built on the
/// same parent never share a coinbase txid (Core gets the same from its changing time and
/// extra nonce).
pub fn assemble(
    extra_nonce: u64,
    prev: BlockHash,
    height: u32,
    time: u32,
    payout: &ScriptBuf,
    fees: Amount,
    txs: Vec<Transaction>,
) -> Block {
    let script_sig = bitcoin::script::Builder::new()
        .push_int(i64::from(height))
        .push_int(i64::try_from(extra_nonce & 0xffff_ffff).unwrap_or(0))
        .into_script();
    let coinbase = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig,
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[[0u8; 32]]),
        }],
        output: vec![TxOut {
            value: params::block_subsidy(height) + fees,
            script_pubkey: payout.clone(),
        }],
    };
    let mut txdata = Vec::with_capacity(txs.len() + 1);
    txdata.push(coinbase);
    txdata.extend(txs);
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: params::pow_bits(),
            nonce: 0,
        },
        txdata,
    };
    // Witness commitment (Core's miner always adds it once segwit is active).
    if let Some(root) = block.witness_root() {
        let commitment = Block::compute_witness_commitment(&root, &[0u8; 32]);
        let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
        script.extend_from_slice(commitment.as_byte_array());
        block.txdata[0].output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(script),
        });
    }
    if let Some(root) = block.compute_merkle_root() {
        block.header.merkle_root = root;
    }
    grind(&mut block.header);
    block
}

/// Finds a nonce meeting the regtest target (about two tries on average).
pub fn grind(header: &mut Header) {
    let target = Target::from_compact(params::pow_bits());
    while header.validate_pow(target).is_err() {
        header.nonce = header.nonce.wrapping_add(1);
        if header.nonce == 0 {
            header.time += 1;
        }
    }
}
