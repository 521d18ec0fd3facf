//! The devnet chain keeps its blocks in the data directory but not its mempool, so a stop
//! between a broadcast and the next block would lose the transaction (an unbonding tx the
//! pipeline already recorded as sent would never be mined). Like Bitcoin Core's `mempool.dat`,
//! the all-in-one devnet writes the mempool out on a clean stop and submits it again at start.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::Transaction;
use devnet::Node;

fn path(datadir: &Path) -> PathBuf {
    datadir.join("mempool.txt")
}

/// Writes the mempool (arrival order, one tx hex per line); returns how many were written.
pub fn save(node: &Node, datadir: &Path) -> anyhow::Result<usize> {
    let lines: Vec<String> = {
        let state = node.lock();
        state
            .mempool
            .entries_in_order()
            .iter()
            .map(|e| serialize_hex(e.tx.as_ref()))
            .collect()
    };
    let file = path(datadir);
    if lines.is_empty() {
        if file.exists() {
            std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        }
        return Ok(0);
    }
    let tmp = file.with_extension("txt.tmp");
    std::fs::write(&tmp, lines.join("\n") + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("writing {}", file.display()))?;
    Ok(lines.len())
}

/// Submits the saved mempool again (transactions no longer valid, e.g. mined or conflicting,
/// are skipped with a warning) and removes the file; returns how many were accepted.
pub fn restore(node: &Node, datadir: &Path) -> anyhow::Result<usize> {
    let file = path(datadir);
    if !file.exists() {
        return Ok(0);
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let mut accepted = 0;
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let tx: Transaction = match deserialize_hex(line.trim()) {
            Ok(tx) => tx,
            Err(e) => {
                tracing::warn!(line = n + 1, error = %e, "skipping an unreadable saved mempool entry");
                continue;
            }
        };
        let txid = tx.compute_txid();
        match node.submit_tx(tx) {
            Ok(_) => accepted += 1,
            Err(reject) => {
                tracing::warn!(%txid, reason = %reject.core_message(), "saved mempool tx no longer accepted")
            }
        }
    }
    std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;
    use bitcoin::Amount;

    #[test]
    fn a_saved_mempool_is_back_after_the_chain_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let chain_dir = dir.path().join("chain");
        let payee = devnet::wallet::Wallet::from_seed(b"payee")
            .script_pubkey()
            .clone();
        let txid = {
            let node = Node::open(&chain_dir).unwrap();
            let txid = node
                .faucet(&payee, Amount::from_sat(50_000), false)
                .unwrap();
            assert_eq!(save(&node, dir.path()).unwrap(), 1);
            txid
        };
        let node = Node::open(&chain_dir).unwrap();
        assert!(
            node.lock().mempool.get(&txid).is_none(),
            "blocks.dat keeps no mempool"
        );
        assert_eq!(restore(&node, dir.path()).unwrap(), 1);
        assert!(node.lock().mempool.get(&txid).is_some());
        assert!(!path(dir.path()).exists(), "the file is consumed");
        // Nothing saved, nothing restored; an empty mempool leaves no file behind.
        assert_eq!(restore(&node, dir.path()).unwrap(), 0);
        node.mine_blocks(1, &payee).unwrap();
        assert_eq!(save(&node, dir.path()).unwrap(), 0);
        assert!(!path(dir.path()).exists());
    }

    #[test]
    fn a_saved_tx_that_was_mined_meanwhile_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::in_memory();
        let payee = devnet::wallet::Wallet::from_seed(b"payee")
            .script_pubkey()
            .clone();
        node.faucet(&payee, Amount::from_sat(50_000), false)
            .unwrap();
        assert_eq!(save(&node, dir.path()).unwrap(), 1);
        node.mine_blocks(1, &payee).unwrap();
        assert_eq!(restore(&node, dir.path()).unwrap(), 0);
        assert!(node.lock().mempool.is_empty());
    }
}
