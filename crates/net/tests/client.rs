//! The client's protections against a hostile or misconfigured server, over loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::{quick_limits, spawn, SelfSigned};
use net::{read_limited, ClientBuilder, ClientTls, ReadError, TlsServer};

const GIB: u64 = 1 << 30;
const MIB: usize = 1 << 20;

/// A handler streaming `total` bytes in 64 KiB chunks made on demand, counting what it made.
fn endless(total: u64, made: Arc<AtomicU64>) -> Router {
    Router::new().route(
        "/big",
        get(move || {
            let made = Arc::clone(&made);
            async move {
                let chunks = futures::stream::unfold(0u64, move |sent| {
                    let made = Arc::clone(&made);
                    async move {
                        if sent >= total {
                            return None;
                        }
                        made.fetch_add(65_536, Ordering::Relaxed);
                        Some((Ok::<_, std::io::Error>(vec![b'x'; 65_536]), sent + 65_536))
                    }
                });
                Body::from_stream(chunks)
            }
        }),
    )
}

#[tokio::test]
async fn a_1_gib_answer_is_read_only_up_to_the_limit() {
    let made = Arc::new(AtomicU64::new(0));
    let server = spawn(endless(GIB, Arc::clone(&made)), quick_limits(), None).await;
    let client = ClientBuilder::new("test").build().unwrap();
    let started = Instant::now();
    let response = client.get(&server.url("/big")).send().await.unwrap();
    let read = read_limited(response, MIB).await;
    assert!(
        matches!(read, Err(ReadError::TooLarge { limit: MIB })),
        "{read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The server stops once the connection's buffers are full and the client has gone: far
    // from the gigabyte it offered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let offered = made.load(Ordering::Relaxed);
    assert!(offered < 64 * MIB as u64, "{offered} bytes were produced");
    server.stop().await;
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let app = Router::new().route(
        "/declared",
        get(|| async { ([(header::CONTENT_LENGTH, "2000")], vec![b'y'; 2000]) }),
    );
    let server = spawn(app, quick_limits(), None).await;
    let client = ClientBuilder::new("test").build().unwrap();
    let response = client.get(&server.url("/declared")).send().await.unwrap();
    assert!(matches!(
        read_limited(response, 1000).await,
        Err(ReadError::TooLarge { limit: 1000 })
    ));
    let response = client.get(&server.url("/declared")).send().await.unwrap();
    assert_eq!(read_limited(response, 2000).await.unwrap().len(), 2000);
    server.stop().await;
}

#[tokio::test]
async fn a_303_redirect_is_not_followed() {
    let hits = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&hits);
    let app = Router::new()
        .route(
            "/sign",
            get(|| async { (StatusCode::SEE_OTHER, [(header::LOCATION, "/internal")]) }),
        )
        .route(
            "/internal",
            get(move || {
                counted.fetch_add(1, Ordering::Relaxed);
                async { "loopback-only page" }
            }),
        );
    let server = spawn(app, quick_limits(), None).await;
    let client = ClientBuilder::new("test").build().unwrap();
    let response = client.get(&server.url("/sign")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(hits.load(Ordering::Relaxed), 0);
    server.stop().await;
}

#[tokio::test]
async fn https_to_a_self_signed_server_works_with_its_ca_file_and_fails_clearly_without() {
    let cert = SelfSigned::new("server");
    let tls = TlsServer::from_files(&cert.files()).unwrap();
    let app = Router::new().route("/hello", get(|| async { "hello over tls" }));
    let server = spawn(app, quick_limits(), Some(tls)).await;
    let url = format!("https://localhost:{}/hello", server.addr.port());

    let trusting = ClientBuilder::new("test")
        .tls(ClientTls::with_ca_file(&cert.cert))
        .build()
        .unwrap();
    let answer = trusting.get(&url).send().await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "hello over tls");

    let system_roots_only = ClientBuilder::new("test").build().unwrap();
    let error = system_roots_only.get(&url).send().await.unwrap_err();
    let text = net::error_chain(&error);
    assert!(text.contains("certificate"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    server.stop().await;
}

#[test]
fn a_ca_file_without_a_certificate_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = ClientBuilder::new("test")
        .tls(ClientTls::with_ca_file(&empty))
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty.pem"), "{e}");
    let half = ClientBuilder::new("test")
        .tls(ClientTls {
            cert_file: Some(empty.clone()),
            ..ClientTls::default()
        })
        .build()
        .unwrap_err();
    assert!(matches!(half, net::ClientError::HalfIdentity));
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_fails_as_a_timeout() {
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late".into_response()
        }),
    );
    let server = spawn(app, quick_limits(), None).await;
    let client = ClientBuilder::new("test")
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let error = client.get(&server.url("/slow")).send().await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
    server.stop().await;
}

/// Log lines written while `f` runs.
fn logs_of(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = sink.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn plain_http_to_another_machine_warns_once_per_client_and_loopback_never() {
    // Requests are only built here, never sent: no traffic leaves the machine.
    let client = ClientBuilder::new("covenant signers").build().unwrap();
    let local = logs_of(|| {
        for url in [
            "http://127.0.0.1:9791/v1/sign-unbonding-tx",
            "http://localhost:9791/x",
            "http://[::1]:9791/x",
            "https://signer.example/v1/sign-unbonding-tx",
        ] {
            drop(client.post(url));
        }
    });
    assert!(local.is_empty(), "{local}");
    assert!(!client.warned_plaintext());
    let remote = logs_of(|| {
        drop(client.post("http://signer.example:9791/v1/sign-unbonding-tx"));
        drop(client.post("http://other.example:9791/v1/sign-unbonding-tx"));
    });
    assert_eq!(remote.matches("WARN").count(), 1, "{remote}");
    assert!(remote.contains("signer.example"), "{remote}");
    assert!(remote.contains("covenant signers"), "{remote}");
    assert!(client.warned_plaintext());
}
