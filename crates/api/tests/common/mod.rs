//! Test harness: a fresh database per test (SQLite temp file, or a randomly named PostgreSQL
//! database), the API router called in-process, and messages delivered through the consumer.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use api::consumer::Consumer;
use api::{Config, Service};
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use bitcoin::secp256k1::{Keypair, SecretKey, XOnlyPublicKey};
use events::{Message, QueueName};
use http_body_util::BodyExt;
use serde_json::Value;
use staking_core::keys::SECP;
use store::api::{ApiStore, Applied};
use tower::ServiceExt;

pub const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/api-fixtures");

#[derive(Debug, Clone, Copy)]
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
                let pg = testkit::PgTestDb::create_or_skip("api_test").await?;
                Some(TestDb {
                    url: pg.url.clone(),
                    _dir: None,
                    _pg: Some(pg),
                })
            }
        }
    }
}

/// The response of one request.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    /// Asserts an error response.
    pub fn assert_error(&self, status: u16, code: &str, message: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(
            self.json(),
            serde_json::json!({"errorCode": code, "message": message}),
        );
    }
}

pub struct Harness {
    pub db: TestDb,
    pub router: Router,
    pub store: ApiStore,
    pub consumer: Consumer,
    pub service: Service,
}

pub fn config_toml(db_url: &str, page_size: u32) -> String {
    format!(
        r#"
params = "{TESTDATA}/global-params-test.json"
finality_providers = "{TESTDATA}/finality-providers-test.json"
[server]
listen = "127.0.0.1:0"
network = "signet"
page_size = {page_size}
max_content_length = 4096
[db]
url = "{db_url}"
max_connections = 8
[queue]
url = "in-process"
max_retry_attempts = 2
requeue_delay_secs = 1
processing_timeout_secs = 10
[terms_acceptance_logging]
enabled = true
"#
    )
}

impl Harness {
    pub async fn new(backend: Backend) -> Option<Harness> {
        Harness::with_page_size(backend, 10).await
    }

    pub async fn with_page_size(backend: Backend, page_size: u32) -> Option<Harness> {
        let db = TestDb::new(backend).await?;
        let config = Config::from_toml(&config_toml(&db.url, page_size)).unwrap();
        let service = Service::build(&config).await.unwrap();
        let router = api::server::router(
            service.state.clone(),
            &service.settings,
            service.metrics.clone(),
        );
        Some(Harness {
            db,
            router,
            store: service.store.clone(),
            consumer: service.consumer(),
            service,
        })
    }

    pub async fn request(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.request(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&self, uri: &str, body: &str) -> Resp {
        self.request(
            Request::post(uri)
                .header("content-type", "application/json")
                .header("content-length", body.len())
                .body(Body::from(body.to_owned()))
                .unwrap(),
        )
        .await
    }

    /// Delivers one message to the consumer as the transport would.
    pub async fn deliver(&self, queue: QueueName, body: &Value) -> Applied {
        let message = Message {
            queue,
            body: serde_json::to_vec(body).unwrap(),
            attempts: 0,
            receipt: "1".into(),
        };
        self.consumer.apply(&message).await.unwrap()
    }

    pub async fn stats(&self) -> Value {
        let r = self.get("/v1/stats").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json()["data"].clone()
    }

    pub async fn state_of(&self, hash: &str) -> String {
        let r = self
            .get(&format!("/v1/delegation?staking_tx_hash_hex={hash}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json()["data"]["state"].as_str().unwrap().to_owned()
    }
}

pub fn golden() -> Value {
    let text = std::fs::read_to_string(format!("{TESTDATA}/unbonding-golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A deterministic staker / FP key.
pub fn key(n: u64) -> XOnlyPublicKey {
    let mut bytes = [0u8; 32];
    bytes[24..].copy_from_slice(&(n + 1).to_be_bytes());
    let sk = SecretKey::from_slice(&bytes).unwrap();
    Keypair::from_secret_key(&SECP, &sk).x_only_public_key().0
}

/// A synthetic txid from a number.
pub fn txid(n: u64) -> String {
    format!("{:064x}", n + 0xabc)
}

/// An active event for `hash`, reusing the golden staking tx bytes (the API stores them as is).
pub fn active_event(
    hash: &str,
    staker: &XOnlyPublicKey,
    fp: &str,
    value: u64,
    height: u64,
    overflow: bool,
) -> Value {
    let g = golden();
    let mut e = g["active_staking_event"].clone();
    e["staking_tx_hash_hex"] = hash.into();
    e["staker_pk_hex"] = staker.to_string().into();
    e["finality_provider_pk_hex"] = fp.into();
    e["staking_value"] = value.into();
    e["staking_start_height"] = height.into();
    e["is_overflow"] = overflow.into();
    e
}

pub fn unbonding_event(hash: &str, height: u64) -> Value {
    let g = golden();
    serde_json::json!({
        "event_type": 2,
        "staking_tx_hash_hex": hash,
        "unbonding_start_height": height,
        "unbonding_start_timestamp": 1714035259,
        "unbonding_timelock": 5,
        "unbonding_output_index": 0,
        "unbonding_tx_hex": g["unbonding_request"]["unbonding_tx_hex"],
        "unbonding_tx_hash_hex": g["unbonding_request"]["unbonding_tx_hash_hex"],
    })
}

pub fn expired_event(hash: &str, tx_type: &str) -> Value {
    serde_json::json!({"event_type": 4, "staking_tx_hash_hex": hash, "tx_type": tx_type})
}

pub fn withdraw_event(hash: &str) -> Value {
    serde_json::json!({"event_type": 3, "staking_tx_hash_hex": hash})
}

pub fn btc_info_event(height: u64, confirmed: u64, unconfirmed: u64) -> Value {
    serde_json::json!({"event_type": 6, "height": height, "confirmed_tvl": confirmed, "unconfirmed_tvl": unconfirmed})
}

/// Runs an async test body against SQLite and PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                $body(common::Backend::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                $body(common::Backend::Postgres).await;
            }
        }
    };
}
