//! With a data directory the chain survives a restart; the block file tolerates a torn tail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use devnet::DevnetConfig;
use serde_json::json;

#[tokio::test]
async fn the_chain_with_its_reorgs_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = DevnetConfig {
        datadir: Some(dir.path().to_owned()),
        ..DevnetConfig::default()
    };
    let (best, height, txid, invalidated) = {
        let d = common::start_with(config.clone()).await;
        let addr = devnet::wallet::Wallet::from_seed(b"persist")
            .address()
            .to_string();
        let txid = d.rpc.call("faucet", json!([addr, 2])).await;
        let mined = d.rpc.mine(3).await;
        d.rpc.call("invalidateblock", json!([mined[1]])).await;
        d.rpc.mine(1).await;
        let best = d.rpc.call("getbestblockhash", json!([])).await;
        let height = d.rpc.height().await;
        d.handle.shutdown().await;
        (best, height, txid, mined[1].clone())
    };
    // A crash in the middle of writing a record leaves a torn tail; it is cut off on start.
    let file = dir.path().join("blocks.dat");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(&[1, 0xff, 0, 0, 0, 9]);
    std::fs::write(&file, bytes).unwrap();

    let d = common::start_with(config).await;
    assert_eq!(d.rpc.call("getbestblockhash", json!([])).await, best);
    assert_eq!(d.rpc.height().await, height);
    assert_eq!(
        d.rpc.call("getblockheader", json!([invalidated])).await["confirmations"],
        -1
    );
    let tx = d.rpc.call("getrawtransaction", json!([txid, true])).await;
    assert!(tx["confirmations"].as_u64().unwrap() >= 1);
    let vout = tx["vout"][0]["n"].clone();
    assert_eq!(
        d.rpc.call("gettxout", json!([txid, vout])).await["value"],
        2.0
    );
    // The faucet still owns its coins after the restart and keeps paying.
    let addr = devnet::wallet::Wallet::from_seed(b"persist")
        .address()
        .to_string();
    d.rpc.call("faucet", json!([addr, 1])).await;
    assert_eq!(d.rpc.height().await, height + 1);
}

#[tokio::test]
async fn without_a_data_directory_nothing_is_written_and_a_restart_starts_from_genesis() {
    let d = common::start().await;
    d.rpc.mine(2).await;
    d.handle.shutdown().await;
    let d = common::start().await;
    assert_eq!(d.rpc.height().await, 0);
}

#[tokio::test]
async fn with_a_block_interval_blocks_are_mined_on_a_timer() {
    let config = DevnetConfig {
        block_interval: Some(std::time::Duration::from_millis(100)),
        ..DevnetConfig::default()
    };
    let d = common::start_with(config).await;
    tokio::time::sleep(std::time::Duration::from_millis(650)).await;
    assert!(d.rpc.height().await >= 3);
    d.handle.shutdown().await;
}
