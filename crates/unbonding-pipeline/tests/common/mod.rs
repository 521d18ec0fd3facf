//! The world the pipeline runs in for tests and the benchmark: a fresh database (SQLite temp
//! file or a randomly named PostgreSQL database), the embedded devnet over RPC, and a
//! covenant committee of real `covenant-signer` servers on loopback, each member honest,
//! down, answering garbage or answering with a signature that does not verify, or one of the
//! hostile members of [`hostile`].
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::secp256k1::Message;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Witness};
use bitcoin_rpc::{RpcAuth, RpcClient, RpcConfig};
use covenant_signer::chain::CachedChain;
use covenant_signer::fixture::{Fixture, FixtureShape};
use covenant_signer::keystore::KeyBackend;
use covenant_signer::rpc_chain::RpcChain;
use devnet::wallet::Wallet;
use staking_core::keys::SECP;
use store::api::{AddressMapping, ConsumedKey, Delegation, DelegationState, TxInfo};
use store::api::{NewUnbondingRequest, RequestOutcome};
use store::{Db, DbOptions};
use tokio_util::sync::CancellationToken;
use unbonding_pipeline::{Config, SignerEndpoint};

pub mod hostile;

pub const STAKE: Amount = Amount::from_sat(100_000);
pub const STAKING_TIME: u16 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test; SQLite's temp dir and PostgreSQL's database live as long as this.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<testkit::PgTestDb>,
}

impl TestDb {
    /// `None` (test skipped with a note) only when PostgreSQL is unreachable outside CI.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("api.db").display());
                Some(TestDb {
                    url,
                    _dir: Some(dir),
                    _pg: None,
                })
            }
            Backend::Postgres => {
                let pg = testkit::PgTestDb::create_or_skip("pipeline_test").await?;
                Some(TestDb {
                    url: pg.url.clone(),
                    _dir: None,
                    _pg: Some(pg),
                })
            }
        }
    }

    /// A migrated handle on this database (a pool of its own).
    pub async fn store(&self) -> Db {
        let db = Db::connect(&DbOptions::new(self.url.as_str()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        db
    }
}

/// How one committee member behaves toward the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// A real signing server.
    Honest,
    /// Nothing listens on its port.
    Down,
    /// Answers 200 with a body that is not the signature envelope.
    Garbage,
    /// Answers 200 with a well-formed signature over another message.
    WrongSignature,
    /// Answers after 5 s (longer than the tests' signer timeout).
    Slow,
    /// A real signing server that answers 300 ms late (slow but within the timeout).
    Delayed,
    /// A real signing server serving HTTPS with a test certificate.
    Tls,
    /// Answers 200 with an endless body (1 GiB).
    Huge,
    /// Answers 200 and drips its body one byte every 100 ms.
    SlowBody,
    /// Answers 500 with 20 kB of text full of NUL and escape bytes.
    NulBody,
    /// Answers 303 to a loopback-only page.
    Redirect,
    /// Answers 200 with JSON of another shape.
    WrongShape,
    /// Forwards to the next member's real server, which signs the right tx with its own key.
    OtherKey,
}

/// Devnet, committee and funding for one test.
pub struct World {
    pub fx: Fixture,
    pub devnet: devnet::DevnetHandle,
    pub node: Arc<devnet::Node>,
    pub rpc_config: RpcConfig,
    pub rpc: RpcClient,
    funder: Wallet,
    coins: Mutex<Vec<(OutPoint, TxOut)>>,
    /// The real servers' URLs, by member index (every member has one).
    pub honest_urls: Vec<String>,
    /// What the pipeline is told, by member index, according to the members' behaviour.
    pub endpoints: Vec<SignerEndpoint>,
    pub payout: ScriptBuf,
    /// What the hostile members saw and did.
    pub hostile: hostile::Counters,
    /// The CA of the `Tls` members, for the pipeline's `signer_tls`.
    pub signer_tls: net::ClientTls,
    _cert: testkit::tls::TestCert,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn rpc_config(handle: &devnet::DevnetHandle) -> RpcConfig {
    let mut c = RpcConfig::new(
        handle.rpc_url.clone(),
        RpcAuth::UserPass {
            user: handle.rpc_user.clone(),
            password: handle.rpc_password.clone(),
        },
    );
    c.timeout = Duration::from_secs(30);
    c
}

fn signer_config(tls: &str) -> covenant_signer::config::Config {
    covenant_signer::config::Config::from_toml(&format!(
        r#"
        {tls}
        [server]
        port = 0
        [metrics]
        enabled = false
        [rate-limit]
        requests-per-second = 0
        burst = 0
        [btc-config]
        url = "http://127.0.0.1:1"
        user = "user"
        pass = "unused"
        [signer]
        backend = "file"
        key-file = "/nonexistent/key.json"
        "#
    ))
    .unwrap()
}

/// A loopback server answering every request with `status` and `body` after `delay`.
async fn fake_signer(
    status: u16,
    body: String,
    delay: Duration,
    shutdown: CancellationToken,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            tokio::time::sleep(delay).await;
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body,
            )
        }
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    (format!("http://{addr}"), task)
}

/// A proxy that forwards each request to `target` after `delay` and returns its answer.
async fn delaying_proxy(
    target: String,
    delay: Duration,
    shutdown: CancellationToken,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
        let client = client.clone();
        let url = format!("{target}{}", uri.path());
        async move {
            tokio::time::sleep(delay).await;
            let answer = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = axum::http::StatusCode::from_u16(answer.status().as_u16()).unwrap();
            (
                status,
                [("content-type", "application/json")],
                answer.text().await.unwrap(),
            )
        }
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    (format!("http://{addr}"), task)
}

/// A URL nothing listens on.
async fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

impl World {
    /// A committee of `members.len()` with `quorum`; `coins` funding outputs for staking txs.
    pub async fn start(members: &[Member], quorum: u32, coins: usize) -> World {
        Self::start_with(members, quorum, coins, |_| {}).await
    }

    pub async fn start_with(
        members: &[Member],
        quorum: u32,
        coins: usize,
        shape: impl FnOnce(&mut FixtureShape),
    ) -> World {
        let shutdown = CancellationToken::new();
        let devnet = devnet::spawn(devnet::DevnetConfig::default(), shutdown.clone())
            .await
            .unwrap();
        let node = Arc::clone(&devnet.chain);
        let mut fixture_shape = FixtureShape {
            members: members.len(),
            quorum,
            activation_height: 1,
            ..FixtureShape::default()
        };
        shape(&mut fixture_shape);
        let fx = Fixture::new(fixture_shape, 7).unwrap();
        let rpc_config = rpc_config(&devnet);
        let rpc = RpcClient::new(rpc_config.clone()).unwrap();
        let funder = Wallet::from_seed(b"unbonding pipeline test funder");
        let payout = Wallet::from_seed(b"unbonding pipeline test miner")
            .script_pubkey()
            .clone();
        let funded = {
            let node = Arc::clone(&node);
            let script = funder.script_pubkey().clone();
            let payer = Wallet::from_seed(b"unbonding pipeline test payer");
            tokio::task::spawn_blocking(move || {
                devnet::generator::fund(&node, &payer, &script, coins.max(1)).unwrap()
            })
            .await
            .unwrap()
        };

        let cert = testkit::tls::TestCert::new();
        let hostile = hostile::Counters::default();
        let mut honest_urls = Vec::new();
        let mut endpoints = Vec::new();
        let mut tasks = Vec::new();
        for (i, behaviour) in members.iter().enumerate() {
            let chain = CachedChain::new(
                RpcChain::new(RpcClient::new(rpc_config.clone()).unwrap()),
                Duration::from_secs(30),
                100_000,
            );
            let backend = KeyBackend::File(fx.member_covenant_key(i).unwrap());
            let (tx, rx) = tokio::sync::oneshot::channel();
            let token = shutdown.clone();
            let params = fx.params.clone();
            let tls = if *behaviour == Member::Tls {
                // `[server.tls]` before `[server]`: a sub-table may come first.
                cert.toml()
            } else {
                String::new()
            };
            tasks.push(tokio::spawn(async move {
                covenant_signer::serve(
                    signer_config(&tls),
                    params,
                    Arc::new(chain),
                    backend,
                    token,
                    move |bound| {
                        let _ = tx.send(bound);
                    },
                )
                .await
                .unwrap();
            }));
            let bound = rx.await.unwrap().api;
            // The test certificate names localhost.
            let real = if *behaviour == Member::Tls {
                format!("https://localhost:{}", bound.port())
            } else {
                format!("http://{bound}")
            };
            let key = fx.member_key(i).unwrap();
            let url = match behaviour {
                Member::Honest | Member::Tls => real.clone(),
                Member::Down => closed_port_url().await,
                Member::Delayed => {
                    let (url, task) =
                        delaying_proxy(real.clone(), Duration::from_millis(300), shutdown.clone())
                            .await;
                    tasks.push(task);
                    url
                }
                Member::Garbage => {
                    let (url, task) = fake_signer(
                        200,
                        "<html>upstream said hello</html>".into(),
                        Duration::ZERO,
                        shutdown.clone(),
                    )
                    .await;
                    tasks.push(task);
                    url
                }
                Member::WrongSignature => {
                    let other = SECP
                        .sign_schnorr_no_aux_rand(&Message::from_digest([7; 32]), &fx.members[i]);
                    let body = format!(
                        r#"{{"data":{{"signature_hex":"{}"}}}}"#,
                        hex::encode(other.serialize())
                    );
                    let (url, task) =
                        fake_signer(200, body, Duration::ZERO, shutdown.clone()).await;
                    tasks.push(task);
                    url
                }
                Member::Slow => {
                    let (url, task) =
                        fake_signer(500, "{}".into(), Duration::from_secs(5), shutdown.clone())
                            .await;
                    tasks.push(task);
                    url
                }
                // Replaced below, once every real server is up.
                Member::Huge
                | Member::SlowBody
                | Member::NulBody
                | Member::Redirect
                | Member::WrongShape
                | Member::OtherKey => real.clone(),
            };
            honest_urls.push(real);
            endpoints.push(SignerEndpoint::new(key, url));
        }
        // Hostile members answer in their own way; `OtherKey` needs every real server first.
        for (i, behaviour) in members.iter().enumerate() {
            if let Some((url, task)) =
                hostile::serve(*behaviour, i, &fx, &honest_urls, &hostile, shutdown.clone()).await
            {
                tasks.push(task);
                endpoints[i] = SignerEndpoint::new(endpoints[i].public_key, url);
            }
        }
        World {
            fx,
            devnet,
            node,
            rpc_config,
            rpc,
            funder,
            coins: Mutex::new(funded),
            honest_urls,
            endpoints,
            payout,
            hostile,
            signer_tls: net::ClientTls::with_ca_file(&cert.cert),
            _cert: cert,
            shutdown,
            tasks,
        }
    }

    /// Endpoints pointing at every member's real server.
    pub fn all_honest(&self) -> Vec<SignerEndpoint> {
        self.endpoints
            .iter()
            .zip(&self.honest_urls)
            .map(|(e, url)| SignerEndpoint::new(e.public_key, url.clone()))
            .collect()
    }

    /// A pipeline config for this world: short timeouts and backoff for tests.
    pub fn config(&self, database_url: &str) -> Config {
        let mut c = Config::new(
            database_url,
            self.rpc_config.clone(),
            self.fx.params.clone(),
            self.endpoints.clone(),
        );
        c.signer_timeout = Duration::from_millis(1_500);
        c.signer_tls = self.signer_tls.clone();
        c.lease = Duration::from_secs(10);
        c.backoff.base = Duration::from_millis(50);
        c.backoff.max = Duration::from_millis(200);
        c.poll_interval = Duration::from_millis(100);
        c
    }

    pub fn mine(&self, n: u32) {
        self.node.mine_blocks(n, &self.payout).unwrap();
    }

    pub fn tip(&self) -> u32 {
        self.node.tip().height
    }

    /// Builds, signs and submits `n` staking txs (not mined).
    pub fn stake(&self, n: usize) -> Vec<Transaction> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let (outpoint, prevout) = self.coins.lock().unwrap().pop().expect("funded coins left");
            let change = TxOut {
                value: prevout.value - STAKE - Amount::from_sat(2_000),
                script_pubkey: self.funder.script_pubkey().clone(),
            };
            let mut tx = self
                .fx
                .staking_tx(outpoint, STAKE, STAKING_TIME, Some(change))
                .unwrap();
            let signature = self.funder.sign_key_path(&tx, &[prevout], 0);
            tx.input[0].witness = Witness::from_slice(&[signature]);
            self.node.submit_tx(tx.clone()).unwrap();
            out.push(tx);
        }
        out
    }

    /// Stakes `n`, mines them and enough blocks for the signers' confirmation depth.
    pub fn stake_confirmed(&self, n: usize) -> (Vec<Transaction>, u32) {
        let txs = self.stake(n);
        self.mine(1);
        let height = self.tip();
        self.mine(u32::from(self.fx.shape.confirmation_depth));
        (txs, height)
    }

    /// The API's row for an unbonding request of output 0 of `staking_tx`.
    pub fn request_for(&self, staking_tx: &Transaction) -> NewUnbondingRequest {
        let unbonding = self.fx.unbonding_tx(staking_tx, STAKING_TIME).unwrap();
        let signature = self
            .fx
            .staker_signature(&unbonding, staking_tx, STAKING_TIME)
            .unwrap();
        NewUnbondingRequest {
            staking_tx_hash: staking_tx.compute_txid(),
            unbonding_tx_hash: unbonding.compute_txid(),
            unbonding_tx_hex: bitcoin::consensus::encode::serialize_hex(&unbonding),
            staker_pk: self.fx.staker.x_only_public_key().0,
            finality_provider_pk: self.fx.finality_provider,
            staker_signature_hex: hex::encode(signature.serialize()),
            staking_tx_hex: bitcoin::consensus::encode::serialize_hex(staking_tx),
            staking_output_index: 0,
            staking_timelock: u64::from(STAKING_TIME),
            staking_amount: STAKE,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.devnet.shutdown().await;
    }
}

/// Stores an `active` delegation and the request for it, as the API's consumer and
/// `POST /v1/unbonding` do.
pub async fn insert_request(db: &Db, request: &NewUnbondingRequest, start_height: u32) {
    let store = db.api();
    let delegation = Delegation {
        staking_tx_hash: request.staking_tx_hash,
        staker_pk: request.staker_pk,
        finality_provider_pk: request.finality_provider_pk,
        staking_value: request.staking_amount,
        state: DelegationState::Active,
        staking_tx: TxInfo {
            tx_hex: request.staking_tx_hex.clone(),
            output_index: request.staking_output_index,
            start_timestamp: 1_700_000_000,
            start_height: u64::from(start_height),
            timelock: request.staking_timelock,
        },
        unbonding_tx: None,
        is_overflow: false,
    };
    let mapping = AddressMapping {
        staker_pk: request.staker_pk,
        taproot: format!("tp-{}", request.staker_pk),
        native_segwit_odd: format!("odd-{}", request.staker_pk),
        native_segwit_even: format!("even-{}", request.staker_pk),
    };
    let key = ConsumedKey {
        queue: "active_staking_queue".into(),
        body_sha256: request.staking_tx_hash.to_string(),
    };
    store
        .apply_active(&key, &delegation, &mapping)
        .await
        .unwrap();
    assert_eq!(
        store.request_unbonding(request).await.unwrap(),
        RequestOutcome::Accepted
    );
}

/// The request's pipeline state by unbonding txid.
pub async fn progress_of(
    db: &Db,
    request: &NewUnbondingRequest,
) -> store::unbonding::UnbondingProgress {
    db.unbonding()
        .progress()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.unbonding_tx_hash == request.unbonding_tx_hash.to_string())
        .expect("request stored")
}

/// Runs a scenario on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                $body(Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                $body(Backend::Postgres).await;
            }
        }
    };
}
