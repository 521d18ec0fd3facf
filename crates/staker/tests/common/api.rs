//! The real staking API (`api::run_with` on SQLite with the in-process transport) for the
//! staker's tests. The test plays the indexer: it publishes the active and unbonding events the
//! indexer would, built from the chain, so every step the staker CLI takes goes through the
//! API's real validation, storage and consumers.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use events::messages::{ActiveStakingEvent, UnbondingStakingEvent};
use events::{EventsMetrics, InProcessTransport, QueueName, Transport};
use serde_json::Value;
use staking_core::bitcoin::{Transaction, Txid};
use staking_core::params::BlockHeight;
use staking_core::staking_tx::{classify, ParsedStaking, StakingTxClass};
use tokio_util::sync::CancellationToken;

use super::{params, Env, UNBONDING_TIME};

const FPS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/api-fixtures/finality-providers-test.json"
);

/// The API service running inside the test's runtime.
pub struct RealApi {
    pub transport: Transport,
    /// The API's store, to read what the API stored (the unbonding request).
    pub store: store::api::ApiStore,
    /// The API's database, for the unbonding pipeline.
    pub database_url: String,
    shutdown: CancellationToken,
}

impl Drop for RealApi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Starts the API on SQLite in the test's directory with the test params and points the
/// staker CLI at it.
pub fn start_api(env: &mut Env) -> RealApi {
    let db = env.dir.path().join("api.db");
    let toml = format!(
        r#"
params = "{params}"
finality_providers = "{FPS}"
[server]
listen = "127.0.0.1:0"
network = "regtest"
[db]
url = "sqlite://{db}"
max_connections = 4
[queue]
url = "in-process"
max_retry_attempts = 3
requeue_delay_secs = 1
processing_timeout_secs = 10
"#,
        params = env.params_path.display(),
        db = db.display(),
    );
    let config = api::Config::from_toml(&toml).unwrap();
    let service = env.rt.block_on(api::Service::build(&config)).unwrap();
    let store = service.store.clone();
    let transport = Transport::InProcess(InProcessTransport::new(EventsMetrics::default()));
    let shutdown = CancellationToken::new();
    let addr = free_port();
    env.rt.spawn(api::run_with(
        service,
        transport.clone(),
        addr,
        None,
        config.consumer(),
        shutdown.clone(),
    ));
    let url = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the API did not start on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    env.api_url = Some(url);
    RealApi {
        transport,
        store,
        database_url: format!("sqlite://{}", db.display()),
        shutdown,
    }
}

/// The staking tx as the indexer parses it at its inclusion height.
pub fn parsed(tx: &Transaction, height: u64) -> ParsedStaking {
    match classify(tx, &params(), BlockHeight(height)) {
        StakingTxClass::Valid(p) => p,
        other => panic!("not a valid staking tx: {other:?}"),
    }
}

pub fn block_time(env: &Env, height: u64) -> i64 {
    let state = env.node.lock();
    let hash = state.chain.hash_at(u32::try_from(height).unwrap()).unwrap();
    i64::from(state.chain.entry(&hash).unwrap().block.header.time)
}

/// Publishes what the indexer publishes once the staking tx has the confirmation depth.
pub fn publish_active(env: &Env, api: &RealApi, tx: &Transaction, height: u64) {
    let p = parsed(tx, height);
    let event = ActiveStakingEvent {
        staking_tx_hash: tx.compute_txid(),
        staker_pk: p.staker,
        finality_provider_pk: p.finality_provider,
        staking_value: p.staking_value,
        staking_start_height: height,
        staking_start_timestamp: block_time(env, height),
        staking_timelock: u64::from(p.staking_time),
        staking_output_index: u64::from(p.staking_output_index),
        staking_tx: tx.clone(),
        is_overflow: false,
    };
    let body = serde_json::to_vec(&event).unwrap();
    env.rt
        .block_on(api.transport.publish(QueueName::ActiveStaking, &body))
        .unwrap();
}

pub fn publish_unbonding(env: &Env, api: &RealApi, staking: Txid, tx: &Transaction, height: u64) {
    let event = UnbondingStakingEvent {
        staking_tx_hash: staking,
        unbonding_start_height: height,
        unbonding_start_timestamp: block_time(env, height),
        unbonding_timelock: u64::from(UNBONDING_TIME),
        unbonding_output_index: 0,
        unbonding_tx: tx.clone(),
        unbonding_tx_hash: tx.compute_txid(),
    };
    let body = serde_json::to_vec(&event).unwrap();
    env.rt
        .block_on(api.transport.publish(QueueName::UnbondingStaking, &body))
        .unwrap();
}

/// Polls `staker status --json` until the delegation is in `state`.
pub fn wait_state(env: &Env, txid: &Txid, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = env.staker_json(&["status"]);
        let found = s["delegations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["staking_tx_hash_hex"] == txid.to_string())
            .cloned();
        if let Some(d) = found.filter(|d| d["state"] == state) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "delegation {txid} never reached `{state}`: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
