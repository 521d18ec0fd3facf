//! The devnet's Esplora REST through a real third-party client: BDK's `esplora-client`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::{Amount, OutPoint, Sequence, TxOut};
use common::esplora::Rest;
use devnet::wallet::Wallet;
use esplora_client::{AsyncClient, Builder};

fn client(rest: &Rest) -> AsyncClient {
    Builder::new(&rest.api()).build_async().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_the_tip_blocks_headers_and_fee_estimates() {
    let rest = Rest::start().await;
    let mined = rest.mine(12).await;
    let esplora = client(&rest);

    assert_eq!(esplora.get_height().await.unwrap(), 12);
    assert_eq!(esplora.get_tip_hash().await.unwrap(), mined[11]);
    assert_eq!(esplora.get_block_hash(5).await.unwrap(), mined[4]);
    let header = esplora.get_header_by_hash(&mined[4]).await.unwrap();
    assert_eq!(header.block_hash(), mined[4]);
    let status = esplora.get_block_status(&mined[4]).await.unwrap();
    assert!(status.in_best_chain);
    assert_eq!(status.height, Some(5));
    assert_eq!(status.next_best, Some(mined[5]));
    let block = esplora.get_block_by_hash(&mined[4]).await.unwrap().unwrap();
    assert_eq!(block.block_hash(), mined[4]);

    let page = esplora.get_block_infos(None).await.unwrap();
    assert_eq!(page.len(), 10, "Esplora pages 10 blocks");
    assert_eq!(page[0].id, mined[11]);
    assert_eq!(page[0].height, 12);
    assert_eq!(page[0].previousblockhash, Some(mined[10]));
    assert_eq!(page[9].height, 3);
    let older = esplora.get_block_infos(Some(1)).await.unwrap();
    assert_eq!(older.len(), 2, "heights 1 and 0");
    assert_eq!(older[1].previousblockhash, None, "genesis has no parent");
    let info = esplora.get_block_info(&mined[4]).await.unwrap();
    assert_eq!(info.merkle_root, block.header.merkle_root);
    assert_eq!(info.tx_count, 1);
    let txids = esplora.get_block_txids(&mined[4]).await.unwrap();
    assert_eq!(txids, vec![block.txdata[0].compute_txid()]);
    let txs = esplora.get_block_txs(&mined[4], None).await.unwrap();
    assert!(txs[0].vin[0].is_coinbase);
    assert_eq!(txs[0].vin[0].prevout, None);

    let fees = esplora.get_fee_estimates().await.unwrap();
    assert_eq!(fees.get(&1), Some(&1.0));
    assert_eq!(fees.get(&1008), Some(&1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faucet_payment_is_seen_spent_through_a_broadcast_and_confirmed() {
    let rest = Rest::start().await;
    let esplora = client(&rest);
    let alice = Wallet::from_seed(b"esplora alice");
    let bob = Wallet::from_seed(b"esplora bob");
    let funding = rest.fund(alice.script_pubkey(), 1_000_000, true).await;

    let stats = esplora.get_address_stats(&alice.address()).await.unwrap();
    assert_eq!(stats.chain_stats.funded_txo_count, 1);
    assert_eq!(stats.chain_stats.funded_txo_sum, 1_000_000);
    assert_eq!(stats.chain_stats.tx_count, 1);
    assert_eq!(stats.mempool_stats.tx_count, 0);

    let info = esplora.get_tx_info(&funding).await.unwrap().unwrap();
    assert!(info.status.confirmed);
    let vout = info
        .vout
        .iter()
        .position(|o| o.scriptpubkey == *alice.script_pubkey())
        .unwrap() as u32;
    assert_eq!(info.to_tx().compute_txid(), funding);
    assert!(info.fee > 0, "the faucet pays a fee");
    assert!(info.vin.iter().all(|i| i.prevout.is_some()));

    // Alice pays Bob through the REST.
    let coin = OutPoint::new(funding, vout);
    let prevout = rest.output(coin);
    let payment = alice.spend(
        &[(coin, prevout)],
        vec![TxOut {
            value: Amount::from_sat(999_000),
            script_pubkey: bob.script_pubkey().clone(),
        }],
        Sequence::ENABLE_RBF_NO_LOCKTIME,
    );
    esplora.broadcast(&payment).await.unwrap();
    let txid = payment.compute_txid();
    assert!(!esplora.get_tx_status(&txid).await.unwrap().confirmed);
    let spent = esplora
        .get_output_status(&funding, vout.into())
        .await
        .unwrap()
        .unwrap();
    assert!(spent.spent);
    assert_eq!(spent.txid, Some(txid));
    let bob_stats = esplora.get_address_stats(&bob.address()).await.unwrap();
    assert_eq!(bob_stats.mempool_stats.funded_txo_sum, 999_000);
    let history = esplora
        .scripthash_txs(bob.script_pubkey(), None)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert!(!history[0].status.confirmed);

    let mined = rest.mine(1).await;
    let status = esplora.get_tx_status(&txid).await.unwrap();
    assert!(status.confirmed);
    assert_eq!(status.block_hash, Some(mined[0]));
    let alice_stats = esplora.get_address_stats(&alice.address()).await.unwrap();
    assert_eq!(alice_stats.chain_stats.spent_txo_sum, 1_000_000);
    assert_eq!(alice_stats.chain_stats.tx_count, 2);
    let info = esplora.get_tx_info(&txid).await.unwrap().unwrap();
    assert_eq!(info.fee, 1_000, "what the output leaves of the input");

    // The same script hash the client computes for `scripthash/{h}`.
    let hash = sha256::Hash::hash(bob.script_pubkey().as_bytes());
    let stats = esplora
        .get_scripthash_stats(bob.script_pubkey())
        .await
        .unwrap();
    assert_eq!(stats.chain_stats.funded_txo_sum, 999_000, "{hash}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_broadcast_carries_the_nodes_reason_as_mempool_space_words_it() {
    let rest = Rest::start().await;
    let esplora = client(&rest);
    let alice = Wallet::from_seed(b"esplora refused");
    let funding = rest.fund(alice.script_pubkey(), 100_000, true).await;
    let coin = OutPoint::new(funding, 0);
    let prevout = rest.output(coin);
    // Outputs worth more than the input.
    let overspend = alice.spend(
        &[(coin, prevout)],
        vec![TxOut {
            value: Amount::from_sat(200_000),
            script_pubkey: alice.script_pubkey().clone(),
        }],
        Sequence::ENABLE_RBF_NO_LOCKTIME,
    );
    match esplora.broadcast(&overspend).await {
        Err(esplora_client::Error::HttpResponse { status, message }) => {
            assert_eq!(status, 400);
            assert!(
                message.starts_with(
                    r#"sendrawtransaction RPC error: {"code":-26,"message":"bad-txns-in-belowout"#
                ),
                "{message}"
            );
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_transactions_are_absent_and_a_reorg_takes_a_payment_out_of_the_history() {
    let rest = Rest::start().await;
    let esplora = client(&rest);
    let unknown = bitcoin::Txid::from_byte_array([7; 32]);
    assert!(esplora.get_tx(&unknown).await.unwrap().is_none());
    assert!(esplora.get_tx_info(&unknown).await.unwrap().is_none());

    let carol = Wallet::from_seed(b"esplora carol");
    let funding = rest.fund(carol.script_pubkey(), 50_000, true).await;
    let block = esplora
        .get_tx_status(&funding)
        .await
        .unwrap()
        .block_hash
        .unwrap();
    rest.with_node(move |n| n.invalidate(&block))
        .await
        .unwrap()
        .unwrap();

    // Back in the mempool: unconfirmed, still Carol's.
    let utxos = esplora.get_address_utxos(&carol.address()).await.unwrap();
    assert_eq!(utxos.len(), 1);
    assert!(!utxos[0].status.confirmed);
    let stats = esplora.get_address_stats(&carol.address()).await.unwrap();
    assert_eq!(stats.chain_stats.tx_count, 0);
    assert_eq!(stats.mempool_stats.tx_count, 1);

    rest.with_node(move |n| n.reconsider(&block))
        .await
        .unwrap()
        .unwrap();
    let utxos = esplora.get_address_utxos(&carol.address()).await.unwrap();
    assert_eq!(utxos.len(), 1);
    assert!(utxos[0].status.confirmed);
    assert_eq!(utxos[0].status.block_hash, Some(block));
}
