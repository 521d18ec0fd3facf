//! How fast the API's hottest read is at the store: a page of 10 of one staker's delegations
//! (`/v1/staker/delegations`), first page and a page after a cursor, with 1,500 delegations
//! stored (500 of the staker's), on SQLite and on PostgreSQL when reachable (`DATABASE_URL`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench code: a panic is a failed run"
)]

use std::time::Duration;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey, XOnlyPublicKey};
use bitcoin::{Amount, Txid};
use criterion::{criterion_group, criterion_main, Criterion};
use store::api::{
    AddressMapping, ApiStore, ConsumedKey, Delegation, DelegationCursor, DelegationState, TxInfo,
};
use store::{Db, DbOptions};

const STAKERS: u32 = 21;
/// Delegations of staker 0; the others have 50 each.
const BROWSED: u32 = 500;

fn key(n: u32) -> XOnlyPublicKey {
    let mut bytes = [7u8; 32];
    bytes[..4].copy_from_slice(&(n + 1).to_be_bytes());
    let secp = Secp256k1::signing_only();
    Keypair::from_secret_key(&secp, &SecretKey::from_slice(&bytes).unwrap())
        .x_only_public_key()
        .0
}

async fn seed(api: &ApiStore) {
    let fp = key(1_000);
    for staker in 0..STAKERS {
        let pk = key(staker);
        let n = if staker == 0 { BROWSED } else { 50 };
        for i in 0..n {
            let mut hash = [0u8; 32];
            hash[..4].copy_from_slice(&staker.to_be_bytes());
            hash[4..8].copy_from_slice(&i.to_be_bytes());
            let d = Delegation {
                staking_tx_hash: Txid::from_byte_array(hash),
                staker_pk: pk,
                finality_provider_pk: fp,
                staking_value: Amount::from_sat(100_000),
                state: DelegationState::Active,
                staking_tx: TxInfo {
                    tx_hex: "00".repeat(120),
                    output_index: 0,
                    start_timestamp: 1_700_000_000,
                    start_height: 800_000 + u64::from(i % 97),
                    timelock: 64_000,
                },
                unbonding_tx: None,
                is_overflow: false,
            };
            let m = AddressMapping {
                staker_pk: pk,
                taproot: format!("tp{staker}"),
                native_segwit_odd: format!("odd{staker}"),
                native_segwit_even: format!("even{staker}"),
            };
            let consumed = ConsumedKey {
                queue: "active_staking_queue".into(),
                body_sha256: Txid::from_byte_array(hash).to_string(),
            };
            api.apply_active(&consumed, &d, &m).await.unwrap();
        }
    }
}

fn bench_backend(c: &mut Criterion, label: &str, rt: &tokio::runtime::Runtime, api: &ApiStore) {
    rt.block_on(seed(api));
    let staker = key(0);
    let page = rt
        .block_on(api.delegations_by_staker(&staker, None, None, 200))
        .unwrap();
    let last = page.last().unwrap();
    let cursor = DelegationCursor {
        start_height: last.staking_tx.start_height,
        staking_tx_hash: last.staking_tx_hash,
    };
    let mut group = c.benchmark_group(format!("{label}/delegations_by_staker"));
    group.bench_function("first_page_of_10", |b| {
        b.iter(|| {
            let got = rt
                .block_on(api.delegations_by_staker(&staker, None, None, 10))
                .unwrap();
            assert_eq!(got.len(), 10);
        });
    });
    group.bench_function("page_of_10_after_200", |b| {
        b.iter(|| {
            let got = rt
                .block_on(api.delegations_by_staker(&staker, None, Some(&cursor), 10))
                .unwrap();
            assert_eq!(got.len(), 10);
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("api.db").display());
    let sqlite = rt.block_on(async {
        let db = Db::connect(&DbOptions::new(url)).await.unwrap();
        db.migrate().await.unwrap();
        db.api()
    });
    bench_backend(c, "sqlite", &rt, &sqlite);

    let pg = rt.block_on(async {
        let pg = testkit::PgTestDb::create_or_skip("store_bench_api").await?;
        let db = Db::connect(&DbOptions::new(pg.url.clone())).await.ok()?;
        db.migrate().await.ok()?;
        Some((db.api(), pg))
    });
    match pg {
        Some((api, _dropped_at_the_end)) => bench_backend(c, "postgres", &rt, &api),
        None => eprintln!("PostgreSQL unreachable: only SQLite was measured"),
    }
}

criterion_group! {
    name = api_benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(api_benches);
