//! A BDK wallet (`bdk_wallet`, synced with `bdk_esplora` through `esplora-client`) lives on the
//! devnet through its Esplora REST alone: faucet-funded, synced, spends, sees its spend confirmed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use bdk_esplora::EsploraAsyncExt;
use bdk_wallet::{KeychainKind, SignOptions, Wallet};
use bitcoin::bip32::Xpriv;
use bitcoin::{Address, Amount, FeeRate, Network};
use common::esplora::Rest;

const STOP_GAP: usize = 5;
const PARALLEL_REQUESTS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bdk_wallet_syncs_its_faucet_coins_spends_them_and_sees_the_spend_confirmed() {
    let rest = Rest::start().await;
    let client = bdk_esplora::esplora_client::Builder::new(&rest.api())
        .build_async()
        .unwrap();
    let xprv = Xpriv::new_master(Network::Regtest, b"devnet esplora bdk wallet seed!!").unwrap();
    let mut wallet = Wallet::create(
        format!("tr({xprv}/86'/1'/0'/0/*)"),
        format!("tr({xprv}/86'/1'/0'/1/*)"),
    )
    .network(Network::Regtest)
    .create_wallet_no_persist()
    .unwrap();
    let receive = wallet.reveal_next_address(KeychainKind::External).address;
    // The dApp's wallets show the signet spelling; the faucet takes either.
    let signet = Address::from_script(&receive.script_pubkey(), Network::Testnet).unwrap();
    assert!(signet.to_string().starts_with("tb1p"));
    let funding = rest.fund(&receive.script_pubkey(), 2_000_000, true).await;

    let update = client
        .full_scan(
            wallet.start_full_scan().build(),
            STOP_GAP,
            PARALLEL_REQUESTS,
        )
        .await
        .unwrap();
    wallet.apply_update(update).unwrap();
    assert_eq!(wallet.balance().confirmed, Amount::from_sat(2_000_000));
    assert_eq!(wallet.local_chain().tip().height(), rest.node.tip().height);
    assert!(wallet.get_tx(funding).is_some());

    let payee = devnet::wallet::Wallet::from_seed(b"bdk payee");
    let mut builder = wallet.build_tx();
    builder
        .add_recipient(payee.script_pubkey().clone(), Amount::from_sat(500_000))
        .fee_rate(FeeRate::from_sat_per_vb(2).unwrap());
    let mut psbt = builder.finish().unwrap();
    assert!(wallet.sign(&mut psbt, SignOptions::default()).unwrap());
    let tx = psbt.extract_tx().unwrap();
    let fee = wallet.calculate_fee(&tx).unwrap();
    client.broadcast(&tx).await.unwrap();
    let txid = tx.compute_txid();

    let update = client
        .sync(
            wallet.start_sync_with_revealed_spks().build(),
            PARALLEL_REQUESTS,
        )
        .await
        .unwrap();
    wallet.apply_update(update).unwrap();
    assert!(!wallet.get_tx(txid).unwrap().chain_position.is_confirmed());

    rest.mine(1).await;
    let update = client
        .sync(
            wallet.start_sync_with_revealed_spks().build(),
            PARALLEL_REQUESTS,
        )
        .await
        .unwrap();
    wallet.apply_update(update).unwrap();
    assert!(wallet.get_tx(txid).unwrap().chain_position.is_confirmed());
    let left = Amount::from_sat(2_000_000 - 500_000) - fee;
    assert_eq!(wallet.balance().confirmed, left);
    assert_eq!(wallet.balance().trusted_pending, Amount::ZERO);
}
