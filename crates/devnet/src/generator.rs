//! Chains of mainnet-sized blocks for benchmarks: about 2,500 transactions and 1.5 MB per
//! block, every one a real, signed 2-input 2-output taproot script-path spend (a 2-of-2 leaf,
//! like a covenant spend), so an indexer parses and a node verifies realistic data.

use bitcoin::{Amount, BlockHash, OutPoint, Sequence, TxOut};

use crate::error::DevnetError;
use crate::node::Node;
use crate::params;
use crate::wallet::{unsigned, ScriptLeafOutput, Wallet};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct GeneratorConfig {
    /// Number of full blocks.
    pub blocks: u32,
    /// Transactions per full block (≈2,500 on mainnet).
    pub txs_per_block: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            blocks: 10,
            txs_per_block: 2_500,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// Hashes of the full blocks, in order.
    pub blocks: Vec<BlockHash>,
    /// Transactions in them (coinbases excluded).
    pub txs: usize,
    /// Serialized bytes of the full blocks.
    pub bytes: usize,
    /// Weight of the full blocks.
    pub weight: u64,
}

const FEE: Amount = Amount::from_sat(1_500);

/// Extends `node`'s chain: funding blocks (mined to the generator's own key), one fan-out
/// block, then `config.blocks` full blocks.
pub fn generate(node: &Node, config: GeneratorConfig) -> Result<Generated, DevnetError> {
    let k1 = Wallet::from_seed(b"devnet generator key 1");
    let k2 = Wallet::from_seed(b"devnet generator key 2");
    let leaf = bitcoin::script::Builder::new()
        .push_x_only_key(&k1.x_only())
        .push_opcode(bitcoin::opcodes::all::OP_CHECKSIGVERIFY)
        .push_x_only_key(&k2.x_only())
        .push_opcode(bitcoin::opcodes::all::OP_CHECKSIG)
        .into_script();
    let nums = bitcoin::XOnlyPublicKey::from_slice(&NUMS)
        .map_err(|e| DevnetError::Faucet(e.to_string()))?;
    let out =
        ScriptLeafOutput::new(nums, leaf).ok_or_else(|| DevnetError::Faucet("leaf".to_owned()))?;
    let spk = out.script_pubkey();

    let payout = Wallet::from_seed(b"devnet generator filler")
        .script_pubkey()
        .clone();
    let mut pool = fund(node, &k1, &spk, config.txs_per_block * 2)?;

    let mut generated = Generated::default();
    for _ in 0..config.blocks {
        let mut txs = Vec::with_capacity(config.txs_per_block);
        let mut next_pool = Vec::with_capacity(pool.len());
        for pair in pool.chunks(2).take(config.txs_per_block) {
            let total: Amount = pair.iter().map(|(_, o)| o.value).sum();
            let half = (total - FEE) / 2;
            let outputs = vec![
                TxOut {
                    value: half,
                    script_pubkey: spk.clone(),
                },
                TxOut {
                    value: total - FEE - half,
                    script_pubkey: spk.clone(),
                },
            ];
            let mut tx = unsigned(pair.iter().map(|(o, _)| *o), outputs, Sequence::MAX);
            let prevouts: Vec<TxOut> = pair.iter().map(|(_, o)| o.clone()).collect();
            for i in 0..tx.input.len() {
                let s1 = k1.sign_script_path(&tx, &prevouts, i, out.leaf());
                let s2 = k2.sign_script_path(&tx, &prevouts, i, out.leaf());
                tx.input[i].witness = out.witness(&[s2, s1]);
            }
            let txid = tx.compute_txid();
            next_pool.extend(tx.output.iter().enumerate().map(|(v, o)| {
                (
                    OutPoint {
                        txid,
                        vout: v as u32,
                    },
                    o.clone(),
                )
            }));
            txs.push(tx);
        }
        let used = txs.len() * 2;
        next_pool.extend(pool.drain(..).skip(used));
        pool = next_pool;
        let block = node.build_block(txs, &payout, None);
        generated.txs += block.txdata.len() - 1;
        generated.bytes += block.total_size();
        generated.weight += block.weight().to_wu();
        generated.blocks.push(node.submit_block(block)?);
    }
    Ok(generated)
}

/// Creates `count` confirmed outputs paying `script_pubkey`: mines coinbases to `payer`, lets
/// them mature, and splits them with fan-out transactions (up to 4,000 outputs each) mined five to a block. For benches and tests that need many independent coins.
pub fn fund(
    node: &Node,
    payer: &Wallet,
    script_pubkey: &bitcoin::ScriptBuf,
    count: usize,
) -> Result<Vec<(OutPoint, TxOut)>, DevnetError> {
    let per_tx = 4_000usize;
    let fanouts = count.div_ceil(per_tx).max(1);
    let first = node.tip().height + 1;
    node.mine_blocks(
        u32::try_from(fanouts).unwrap_or(u32::MAX),
        payer.script_pubkey(),
    )?;
    let filler = Wallet::from_seed(b"devnet generator filler")
        .script_pubkey()
        .clone();
    node.mine_blocks(params::COINBASE_MATURITY, &filler)?;
    let mut fan_txs = Vec::with_capacity(fanouts);
    {
        let state = node.lock();
        let mut left = count;
        for i in 0..fanouts as u32 {
            let Some(entry) = state
                .chain
                .hash_at(first + i)
                .and_then(|h| state.chain.entry(&h))
            else {
                continue;
            };
            let cb = &entry.block.txdata[0];
            let prev = (
                OutPoint {
                    txid: cb.compute_txid(),
                    vout: 0,
                },
                cb.output[0].clone(),
            );
            let n = left.min(per_tx);
            left -= n;
            let each = (prev.1.value - Amount::from_sat(200_000)) / n as u64;
            let outputs = vec![
                TxOut {
                    value: each,
                    script_pubkey: script_pubkey.clone()
                };
                n
            ];
            fan_txs.push(payer.spend(&[prev], outputs, Sequence::MAX));
        }
    }
    let mut coins = Vec::with_capacity(count);
    for tx in &fan_txs {
        let txid = tx.compute_txid();
        coins.extend(tx.output.iter().enumerate().map(|(v, o)| {
            (
                OutPoint {
                    txid,
                    vout: v as u32,
                },
                o.clone(),
            )
        }));
    }
    // Five fan-outs (≈3.4 MWU) fit in one block.
    for chunk in fan_txs.chunks(5) {
        node.mine_block_with(chunk.to_vec(), &filler, None)?;
    }
    Ok(coins)
}

/// The BIP341 NUMS point's x coordinate (the staking scripts' internal key).
const NUMS: [u8; 32] = [
    0x50, 0x92, 0x9b, 0x74, 0xc1, 0xa0, 0x49, 0x54, 0xb7, 0x8b, 0x4b, 0x60, 0x35, 0xe9, 0x7a, 0x5e,
    0x07, 0x8a, 0x5a, 0x0f, 0x28, 0xec, 0x96, 0xd5, 0x47, 0xbf, 0xee, 0x9a, 0xce, 0x80, 0x3a, 0xc0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_blocks_are_full_of_valid_spends_and_keep_going() {
        let node = Node::in_memory();
        let g = generate(
            &node,
            GeneratorConfig {
                blocks: 2,
                txs_per_block: 50,
            },
        )
        .unwrap();
        assert_eq!(g.blocks.len(), 2);
        assert_eq!(g.txs, 100);
        assert_eq!(node.tip().hash, g.blocks[1]);
        // ~650 bytes per transaction, like mainnet's average.
        assert!(
            g.bytes / g.txs > 550 && g.bytes / g.txs < 750,
            "{} bytes/tx",
            g.bytes / g.txs
        );
    }
}
