//! How fast the tip follower catches up, and what one RPC round trip costs, against the devnet
//! on loopback. The follower's catch-up speed bounds how fast the indexer can bootstrap.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench code: a panic is a failed run"
)]

use std::time::Duration;

use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Address, CompressedPublicKey, Network};
use bitcoin_rpc::{FollowerConfig, RpcAuth, RpcClient, RpcConfig, StartPoint, TipFollower};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokio_util::sync::CancellationToken;

const BLOCKS: u32 = 200;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let shutdown = CancellationToken::new();
    let (client, _devnet) = runtime.block_on(async {
        let handle = devnet::spawn(devnet::DevnetConfig::default(), shutdown.clone())
            .await
            .unwrap();
        let client = RpcClient::new(RpcConfig::new(
            handle.rpc_url.clone(),
            RpcAuth::UserPass {
                user: handle.rpc_user.clone(),
                password: handle.rpc_password.clone(),
            },
        ))
        .unwrap();
        let secret = SecretKey::from_slice(&[9; 32]).unwrap();
        let key = CompressedPublicKey(secret.public_key(&Secp256k1::new()));
        client
            .generate_to_address(BLOCKS, &Address::p2wpkh(&key, Network::Regtest))
            .await
            .unwrap();
        (client, handle)
    });

    let mut group = c.benchmark_group("follower");
    group.sample_size(10);
    group.throughput(Throughput::Elements(u64::from(BLOCKS)));
    group.bench_function("catch_up_blocks", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut follower = TipFollower::new(
                    client.clone(),
                    FollowerConfig {
                        poll_interval: Duration::from_millis(10),
                        zmq_endpoint: None,
                        start: StartPoint::FromHeight(1),
                        prefetch: 1,
                    },
                );
                for _ in 0..BLOCKS {
                    follower.next().await.unwrap();
                }
            });
        });
    });
    group.finish();

    let mut group = c.benchmark_group("client");
    group.bench_function("getblockcount_round_trip", |b| {
        b.iter(|| runtime.block_on(client.get_block_count()).unwrap());
    });
    group.finish();
    shutdown.cancel();
}

criterion_group!(benches, bench);
criterion_main!(benches);
