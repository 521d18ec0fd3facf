//! The benchmark's baseline: a bare loop that only fetches raw blocks over RPC (`getblockhash`
//! then `getblock <hash> 0`) and decodes them, sequentially, as a node client must. Also writes a
//! params file for the benchmark chain.
//!
//! `fetch_blocks URL USER PASSWORD FROM TO` prints `blocks=N secs=S blocks_per_sec=R`.
//! `fetch_blocks params ACTIVATION` prints a params JSON (test committee, depth 10).

use std::time::Instant;

use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin_rpc::{RpcAuth, RpcClient, RpcConfig};
use staking_core::keys::SECP;

fn usage() -> anyhow::Result<()> {
    anyhow::bail!("usage: fetch_blocks URL USER PASSWORD FROM TO | fetch_blocks params ACTIVATION")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("params") {
        let activation: u64 = args.get(1).map_or(Ok(1), |a| a.parse())?;
        let pks: Vec<String> = (1u8..=3)
            .map(|b| {
                SecretKey::from_slice(&[b; 32]).map(|sk| {
                    Keypair::from_secret_key(&SECP, &sk)
                        .public_key()
                        .to_string()
                })
            })
            .collect::<Result<_, _>>()?;
        let json = serde_json::json!({"versions": [{
            "version": 0, "activation_height": activation, "staking_cap": 100_000_000_000u64,
            "cap_height": 0, "tag": "62656e63", "covenant_pks": pks, "covenant_quorum": 2,
            "unbonding_time": 5, "unbonding_fee": 1000, "max_staking_amount": 1_000_000_000u64,
            "min_staking_amount": 10_000, "max_staking_time": 1000, "min_staking_time": 5,
            "confirmation_depth": 10
        }]});
        println!("{json}");
        return Ok(());
    }
    let [url, user, password, from, to] = args.as_slice() else {
        return usage();
    };
    let (from, to): (u32, u32) = (from.parse()?, to.parse()?);
    let rpc = RpcClient::new(RpcConfig::new(
        url.clone(),
        RpcAuth::UserPass {
            user: user.clone(),
            password: password.clone(),
        },
    ))?;
    let started = Instant::now();
    let mut txs = 0usize;
    for h in from..=to {
        let hash = rpc.get_block_hash(h).await?;
        let block = rpc.get_block(&hash).await?;
        txs += block.txdata.len();
    }
    let secs = started.elapsed().as_secs_f64();
    let n = f64::from(to - from + 1);
    println!(
        "blocks={} txs={txs} secs={secs:.3} blocks_per_sec={:.2}",
        to - from + 1,
        n / secs
    );
    Ok(())
}
