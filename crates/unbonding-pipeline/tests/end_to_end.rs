//! End to end on the devnet with a 9-member committee (quorum 6; one member down, one
//! answering garbage, one answering a signature that does not verify): the staker's request
//! goes through the API (`POST /v1/unbonding`), the pipeline broadcasts, the devnet mines, the
//! indexer reports the unbonding, and the API shows `unbonding`. Then the same flow with the
//! pipeline killed mid-run and restarted: every request completes exactly once. On SQLite and
//! PostgreSQL, with the in-process queues.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bitcoin::Transaction;
use common::{progress_of, Backend, Member, TestDb, World};
use serde_json::{json, Value};
use store::api::NewUnbondingRequest;
use store::{Db, DbOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use unbonding_pipeline::{check, signers::Committee, Pipeline};

const NINE_WITH_THREE_BAD: [Member; 9] = [
    Member::Honest,
    Member::Honest,
    Member::Down,
    Member::Honest,
    Member::Garbage,
    Member::Honest,
    Member::Honest,
    Member::WrongSignature,
    Member::Honest,
];

/// The API and the indexer on one database and one in-process transport.
struct Stack {
    api_url: String,
    /// The pipeline's side of the same database.
    db: Db,
    http: reqwest::Client,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    _files: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Stack {
    async fn start(world: &World, db: &TestDb) -> Stack {
        let files = tempfile::tempdir().unwrap();
        let params_path = files.path().join("params.json");
        std::fs::write(&params_path, world.fx.params.to_json().to_string()).unwrap();
        let fps_path = files.path().join("fps.json");
        let fps = json!({"finality_providers": [{
            "description": {"moniker": "devnet fp", "identity": "", "website": "",
                            "security_contact": "", "details": ""},
            "commission": "0.050000000000000000",
            "btc_pk": world.fx.finality_provider.to_string(),
        }]});
        std::fs::write(&fps_path, fps.to_string()).unwrap();
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let api_config = api::Config::from_toml(&format!(
            "params = {params:?}\nfinality_providers = {fps:?}\n\
             [server]\nlisten = \"{listen}\"\nnetwork = \"regtest\"\n\
             [db]\nurl = {db:?}\nmax_connections = 8\n\
             [queue]\nurl = \"in-process\"\nrequeue_delay_secs = 1\n",
            params = params_path.display().to_string(),
            fps = fps_path.display().to_string(),
            db = db.url,
        ))
        .unwrap();
        api_config.validate().unwrap();
        let service = api::Service::build(&api_config).await.unwrap();
        let store = Db::connect(&DbOptions::new(db.url.as_str())).await.unwrap();
        let transport = events::Transport::InProcess(events::InProcessTransport::new(
            events::EventsMetrics::new(),
        ));
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        {
            let transport = transport.clone();
            let token = shutdown.clone();
            let consumer = api_config.consumer();
            tasks.push(tokio::spawn(async move {
                api::run_with(service, transport, listen, None, consumer, token)
                    .await
                    .unwrap();
            }));
        }
        let rpc = &world.rpc_config;
        let (user, password) = match &rpc.auth {
            bitcoin_rpc::RpcAuth::UserPass { user, password } => (user.clone(), password.clone()),
            bitcoin_rpc::RpcAuth::Cookie(_) => unreachable!("the devnet uses user/password"),
        };
        let indexer_config = indexer::RawConfig::from_toml(&format!(
            "network = \"regtest\"\nparams = {params:?}\ndatabase_url = {db:?}\nmetrics_addr = \"off\"\n\
             [bitcoind]\nurl = {url:?}\nuser = {user:?}\npassword = {password:?}\npoll_interval_ms = 100\n\
             [queue]\nurl = \"inprocess\"\n",
            params = params_path.display().to_string(),
            db = db.url,
            url = rpc.url,
        ))
        .unwrap()
        .validate()
        .unwrap();
        {
            let token = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                let registry = prometheus::Registry::new();
                indexer::run_with(indexer_config, Some(transport), &registry, token)
                    .await
                    .unwrap();
            }));
        }
        let stack = Stack {
            api_url: format!("http://{listen}"),
            db: store,
            http: reqwest::Client::new(),
            shutdown,
            tasks,
            _files: files,
        };
        stack
            .wait("API health", || async {
                stack
                    .http
                    .get(format!("{}/healthcheck", stack.api_url))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            })
            .await;
        stack
    }

    async fn wait<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = std::time::Instant::now();
        while !done().await {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn state(&self, staking_tx: &Transaction) -> Option<String> {
        let response = self
            .http
            .get(format!(
                "{}/v1/delegation?staking_tx_hash_hex={}",
                self.api_url,
                staking_tx.compute_txid()
            ))
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        body["data"]["state"].as_str().map(str::to_owned)
    }

    async fn wait_state(&self, staking_tx: &Transaction, state: &str) {
        self.wait(&format!("delegation {state}"), || async {
            self.state(staking_tx).await.as_deref() == Some(state)
        })
        .await;
    }

    /// The staker's `POST /v1/unbonding`.
    async fn request_unbonding(&self, request: &NewUnbondingRequest) {
        let body = json!({
            "staking_tx_hash_hex": request.staking_tx_hash.to_string(),
            "unbonding_tx_hash_hex": request.unbonding_tx_hash.to_string(),
            "unbonding_tx_hex": request.unbonding_tx_hex,
            "staker_signed_signature_hex": request.staker_signature_hex,
        });
        let response = self
            .http
            .post(format!("{}/v1/unbonding", self.api_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            202,
            "{:?}",
            response.text().await
        );
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

/// Stakes `n`, mines them deep enough, and waits until the API shows them `active`.
async fn active_stakes(world: &World, stack: &Stack, n: usize) -> Vec<Transaction> {
    let (stakes, _) = world.stake_confirmed(n);
    for s in &stakes {
        stack.wait_state(s, "active").await;
    }
    stakes
}

async fn request_through_api_to_unbonding(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let world = World::start(&NINE_WITH_THREE_BAD, 6, 2).await;
    let stack = Stack::start(&world, &db).await;
    let stakes = active_stakes(&world, &stack, 2).await;
    let requests: Vec<_> = stakes.iter().map(|s| world.request_for(s)).collect();
    for (s, r) in stakes.iter().zip(&requests) {
        stack.request_unbonding(r).await;
        stack.wait_state(s, "unbonding_requested").await;
    }

    let token = CancellationToken::new();
    let pipeline = Pipeline::connect(world.config(&db.url)).await.unwrap();
    let daemon = {
        let pipeline = pipeline.clone();
        let token = token.clone();
        tokio::spawn(async move { pipeline.run_forever(&token).await })
    };
    stack
        .wait("both requests sent", || async {
            let p = stack.db.unbonding().progress().await.unwrap();
            p.len() == 2 && p.iter().all(|p| p.state == "sent")
        })
        .await;
    // The indexer reports what is `confirmation_depth` deep.
    world.mine(u32::from(world.fx.shape.confirmation_depth));
    for s in &stakes {
        stack.wait_state(s, "unbonding").await;
    }
    token.cancel();
    daemon.await.unwrap().unwrap();
    assert_eq!(pipeline.metrics().outcome_count("sent"), 2);
    for r in &requests {
        let info = world
            .rpc
            .get_raw_transaction_info(&r.unbonding_tx_hash)
            .await
            .unwrap();
        assert!(info.confirmed_in().is_some());
    }
    stack.stop().await;
    world.stop().await;
}
on_both_backends!(
    a_request_made_through_the_api_is_broadcast_mined_indexed_and_shown_as_unbonding,
    request_through_api_to_unbonding
);

async fn killed_mid_run_and_restarted(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    // One of the six honest members answers 300 ms late, so each request takes that long and the
    // kill below reliably lands with most requests still unfinished, however fast the machine.
    let mut members = NINE_WITH_THREE_BAD;
    members[0] = Member::Delayed;
    let world = World::start(&members, 6, 12).await;
    let stack = Stack::start(&world, &db).await;
    let stakes = active_stakes(&world, &stack, 12).await;
    let requests: Vec<_> = stakes.iter().map(|s| world.request_for(s)).collect();
    for r in &requests {
        stack.request_unbonding(r).await;
    }

    // First pipeline: killed (its task aborted, nothing finishes gracefully) as soon as it
    // has broadcast something, with requests still claimed under its leases.
    let mut config = world.config(&db.url);
    config.concurrency = 2;
    config.batch_size = 6;
    config.lease = Duration::from_secs(5);
    let first = Pipeline::connect(config.clone()).await.unwrap();
    let daemon = {
        let first = first.clone();
        tokio::spawn(async move { first.run_forever(&CancellationToken::new()).await })
    };
    stack
        .wait("a first broadcast", || async {
            !world.rpc.get_raw_mempool().await.unwrap().is_empty()
        })
        .await;
    daemon.abort();
    let _ = daemon.await;
    // A statement already on its way to the database when the task died still lands (as with
    // SIGKILL); give it a moment before taking the snapshot.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = stack.db.unbonding().progress().await.unwrap();
    assert!(
        before.iter().any(|p| p.state != "sent"),
        "the kill left work undone: {before:?}"
    );

    // Second pipeline, a fresh process: takes the abandoned claims over when their leases end.
    let second = Pipeline::connect(config).await.unwrap();
    let token = CancellationToken::new();
    let daemon = {
        let second = second.clone();
        let token = token.clone();
        tokio::spawn(async move { second.run_forever(&token).await })
    };
    stack
        .wait("every request sent", || async {
            let p = stack.db.unbonding().progress().await.unwrap();
            p.iter().all(|p| p.state == "sent")
        })
        .await;
    // The indexer reports what is `confirmation_depth` deep.
    world.mine(u32::from(world.fx.shape.confirmation_depth));
    for s in &stakes {
        stack.wait_state(s, "unbonding").await;
    }
    token.cancel();
    daemon.await.unwrap().unwrap();

    // The restarted pipeline recorded exactly the requests the killed one had not.
    let sent_before = before.iter().filter(|p| p.state == "sent").count() as u64;
    let m = second.metrics();
    assert_eq!(
        sent_before + m.outcome_count("sent") + m.outcome_count("already_sent"),
        12,
        "{before:?}"
    );
    assert_eq!(m.outcome_count("lease_lost"), 0);
    for r in &requests {
        let p = progress_of(&stack.db, r).await;
        assert_eq!(p.state, "sent");
        assert_eq!(p.sent_txid, Some(r.unbonding_tx_hash.to_string()));
        assert!(p.failure_reason.is_none());
    }
    // Exactly one unbonding tx per staking output is in the chain, and it is the request's.
    let depth = u32::from(world.fx.shape.confirmation_depth);
    let hash = world
        .rpc
        .get_block_hash(world.tip() - depth + 1)
        .await
        .unwrap();
    let block = world.rpc.get_block(&hash).await.unwrap();
    let unbondings: Vec<_> = block
        .txdata
        .iter()
        .filter(|tx| {
            tx.input.iter().any(|i| {
                stakes
                    .iter()
                    .any(|s| s.compute_txid() == i.previous_output.txid)
            })
        })
        .collect();
    assert_eq!(unbondings.len(), 12);
    stack.stop().await;
    world.stop().await;
}
on_both_backends!(
    a_pipeline_killed_mid_run_and_restarted_completes_every_request_exactly_once,
    killed_mid_run_and_restarted
);

async fn crash_after_broadcast(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let world = World::start(&NINE_WITH_THREE_BAD, 6, 1).await;
    let stack = Stack::start(&world, &db).await;
    let stakes = active_stakes(&world, &stack, 1).await;
    let request = world.request_for(&stakes[0]);
    stack.request_unbonding(&request).await;

    // A pipeline claims the request, broadcasts, and dies before recording anything: the
    // exact steps of `Pipeline::process`, stopped before the outcome is written.
    let claimed = stack
        .db
        .unbonding()
        .claim("dead pipeline", Duration::from_secs(2), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let rpc = bitcoin_rpc::RpcClient::new(world.rpc_config.clone()).unwrap();
    let prepared = check::prepare(&rpc, &world.fx.params, &request)
        .await
        .unwrap();
    let committee = Committee::new(&world.endpoints, Duration::from_secs(2)).unwrap();
    let metrics = unbonding_pipeline::metrics::Metrics::new().unwrap();
    let collected = committee.collect(&prepared, &metrics).await;
    let tx = unbonding_pipeline::broadcast::assemble(&prepared, &collected.signatures).unwrap();
    let outcome = unbonding_pipeline::broadcast::broadcast(&rpc, &prepared, &tx).await;
    assert_eq!(
        outcome,
        unbonding_pipeline::Outcome::Sent(request.unbonding_tx_hash)
    );
    assert_eq!(progress_of(&stack.db, &request).await.state, "claimed");

    // The restarted pipeline waits for the lease, finds the tx already out, records it once.
    let restarted = Pipeline::connect(world.config(&db.url)).await.unwrap();
    let token = CancellationToken::new();
    let early = restarted.run_pass(&token).await.unwrap();
    assert_eq!(early.claimed, 0, "the lease still holds: {early:?}");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let summary = restarted.run_pass(&token).await.unwrap();
    assert_eq!(summary.already_sent, 1, "{summary:?}");
    assert_eq!(summary.sent, 0, "not broadcast a second time: {summary:?}");
    let p = progress_of(&stack.db, &request).await;
    assert_eq!((p.state.as_str(), p.attempts), ("sent", 2), "{p:?}");
    // No signer was asked again: the spent check comes first.
    for e in &world.endpoints {
        assert_eq!(restarted.metrics().signer_count(&e.public_key, "valid"), 0);
    }
    // The indexer reports what is `confirmation_depth` deep.
    world.mine(u32::from(world.fx.shape.confirmation_depth));
    stack.wait_state(&stakes[0], "unbonding").await;
    stack.stop().await;
    world.stop().await;
}
on_both_backends!(
    a_pipeline_that_died_after_broadcasting_is_recorded_sent_once_without_a_second_broadcast,
    crash_after_broadcast
);
