//! The server's protections, each tried the way an attacker (or a careless client) would, over
//! loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use axum::Router;
use common::{closed_within, get_on, quick_limits, spawn, SelfSigned};
use net::flood::{FloodConfig, IdleFlood};
use net::{ServerLimits, TlsServer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

fn app() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "slow"
            }),
        )
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
}

async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let server = spawn(app(), quick_limits(), None).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.stats.header_timeouts(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_header_dripped_byte_by_byte_is_cut_off_at_the_header_timeout() {
    let server = spawn(app(), quick_limits(), None).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /hello HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    let mut cut_off = false;
    for _ in 0..40 {
        if slow.write_all(b"X").await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cut_off || closed_within(&mut slow, Duration::from_millis(100)).await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.stats.header_timeouts(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_lives_until_the_idle_timeout_not_the_header_timeout() {
    let server = spawn(app(), quick_limits(), None).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get_on(&mut conn, "/hello").await.unwrap().0, 200);
    // Longer than the header timeout (400 ms), shorter than the idle timeout (1.5 s).
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(get_on(&mut conn, "/hello").await.unwrap().0, 200);
    let started = Instant::now();
    assert!(closed_within(&mut conn, Duration::from_secs(5)).await);
    assert!(
        started.elapsed() >= Duration::from_millis(1300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.stats.idle_timeouts(), 1);
    assert_eq!(server.stats.header_timeouts(), 0);
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_held_open_do_not_block_valid_requests() {
    let limits = ServerLimits {
        // Long header timeout: only the caps and eviction protect the server here.
        header_read_timeout: Duration::from_secs(60),
        max_connections: 40,
        max_connections_per_client: 8,
        ..ServerLimits::default()
    };
    let server = spawn(app(), limits, None).await;
    // 400 idle connections from 40 addresses: ten times the server's cap.
    let flood = IdleFlood::start(FloodConfig::loopback(server.addr, 400, 40));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = reqwest::Client::new();
    let mut answered = 0;
    for _ in 0..50 {
        let response = client.get(server.url("/hello")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        answered += 1;
    }
    assert_eq!(answered, 50);
    assert!(server.stats.open() <= 40, "{}", server.stats.open());
    assert!(server.stats.evicted() > 0);
    let counts = flood.stop().await;
    assert!(counts.closed_by_server > 0, "{counts:?}");
    server.stop().await;
}

#[tokio::test]
async fn over_the_per_client_cap_with_busy_connections_a_newcomer_is_closed_at_once() {
    let limits = ServerLimits {
        max_connections_per_client: 2,
        ..quick_limits()
    };
    let server = spawn(app(), limits, None).await;
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut c = connect_from("127.0.0.3", server.addr).await;
        c.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        busy.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect_from("127.0.0.3", server.addr).await;
    let started = Instant::now();
    assert!(get_on(&mut third, "/hello").await.is_none());
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(server.stats.refused_per_client(), 1);
    // Another address is not affected.
    let mut other = connect_from("127.0.0.4", server.addr).await;
    assert_eq!(get_on(&mut other, "/hello").await.unwrap().0, 200);
    drop(busy);
    server.stop().await;
}

#[tokio::test]
async fn at_the_overall_cap_with_every_connection_busy_a_newcomer_is_closed_at_once() {
    let limits = ServerLimits {
        max_connections: 3,
        max_connections_per_client: 3,
        ..quick_limits()
    };
    let server = spawn(app(), limits, None).await;
    let mut busy = Vec::new();
    for i in 0..3 {
        let mut c = connect_from(&format!("127.0.0.{}", 10 + i), server.addr).await;
        c.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        busy.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut late = connect_from("127.0.0.20", server.addr).await;
    assert!(get_on(&mut late, "/hello").await.is_none());
    assert_eq!(server.stats.refused_total(), 1);
    drop(busy);
    server.stop().await;
}

#[tokio::test]
async fn handlers_see_the_client_address() {
    let server = spawn(app(), quick_limits(), None).await;
    let mut c = connect_from("127.0.0.7", server.addr).await;
    assert_eq!(
        get_on(&mut c, "/peer").await.unwrap(),
        (200, "127.0.0.7".to_owned())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let limits = ServerLimits {
        max_body_bytes: 1000,
        ..quick_limits()
    };
    let server = spawn(app(), limits, None).await;
    let client = reqwest::Client::new();
    let small = client
        .post(server.url("/echo"))
        .body(vec![0u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(small.text().await.unwrap(), "1000");
    // Chunked (no Content-Length): the limit holds while reading.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    for _ in 0..10 {
        let chunk = format!("1f4\r\n{}\r\n", "a".repeat(500));
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut answer)
        .await
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
    server.stop().await;
}

#[tokio::test]
async fn a_handler_slower_than_the_request_timeout_gets_408() {
    let limits = ServerLimits {
        request_timeout: Duration::from_millis(300),
        ..quick_limits()
    };
    let server = spawn(app(), limits, None).await;
    let started = Instant::now();
    let answer = reqwest::get(server.url("/slow")).await.unwrap();
    assert_eq!(answer.status(), 408);
    assert!(started.elapsed() < Duration::from_secs(1));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_and_closes_idle_connections() {
    let server = spawn(app(), quick_limits(), None).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get_on(&mut idle, "/hello").await.unwrap().0, 200);
    let url = server.url("/slow");
    let in_flight = tokio::spawn(async move { reqwest::get(url).await.unwrap().text().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.shutdown.cancel();
    assert!(closed_within(&mut idle, Duration::from_millis(500)).await);
    assert_eq!(in_flight.await.unwrap().unwrap(), "slow");
    server.stop().await;
}

#[tokio::test]
async fn tls_serves_a_client_that_trusts_the_certificate_and_cuts_off_a_silent_handshake() {
    let cert = SelfSigned::new("server");
    let tls = TlsServer::from_files(&cert.files()).unwrap();
    let server = spawn(app(), quick_limits(), Some(tls)).await;
    let client = net::ClientBuilder::new("test")
        .tls(net::ClientTls::with_ca_file(&cert.cert))
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/hello", server.addr.port());
    let answer = client.get(&url).send().await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "hello");
    // A connection that never starts the handshake is closed at the handshake timeout.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    assert_eq!(server.stats.tls_failures(), 1);
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_answers_only_clients_with_a_certificate_of_the_client_ca() {
    let server_cert = SelfSigned::new("server");
    let client_cert = SelfSigned::new("client");
    let files = net::TlsFiles {
        client_ca_file: Some(client_cert.cert.clone()),
        ..server_cert.files()
    };
    let server = spawn(
        app(),
        quick_limits(),
        Some(TlsServer::from_files(&files).unwrap()),
    )
    .await;
    let url = format!("https://localhost:{}/hello", server.addr.port());
    let with = net::ClientBuilder::new("test")
        .tls(net::ClientTls {
            ca_file: Some(server_cert.cert.clone()),
            cert_file: Some(client_cert.cert.clone()),
            key_file: Some(client_cert.key.clone()),
        })
        .build()
        .unwrap();
    assert_eq!(with.get(&url).send().await.unwrap().status(), 200);
    let without = net::ClientBuilder::new("test")
        .tls(net::ClientTls::with_ca_file(&server_cert.cert))
        .build()
        .unwrap();
    assert!(without.get(&url).send().await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn a_mismatched_certificate_and_key_are_refused_with_both_paths_named() {
    let a = SelfSigned::new("a");
    let b = SelfSigned::new("b");
    let files = net::TlsFiles {
        cert_file: a.cert.clone(),
        key_file: b.key.clone(),
        client_ca_file: None,
    };
    let e = TlsServer::from_files(&files).unwrap_err().to_string();
    assert!(e.contains("a.crt") && e.contains("b.key"), "{e}");
    let missing = net::TlsFiles {
        cert_file: a.dir.path().join("nope.crt"),
        ..a.files()
    };
    let e = TlsServer::from_files(&missing).unwrap_err().to_string();
    assert!(e.contains("nope.crt"), "{e}");
}

#[tokio::test]
async fn requests_in_flight_are_counted_until_their_answer_is_written() {
    // A busy connection is never evicted: with one place, a second client is refused while the
    // first one's slow request runs, and admitted once it finished and went idle.
    let limits = ServerLimits {
        max_connections: 1,
        max_connections_per_client: 1,
        ..quick_limits()
    };
    let server = spawn(app(), limits, None).await;
    let mut first = connect_from("127.0.0.30", server.addr).await;
    let request = tokio::spawn(async move {
        let answer = get_on(&mut first, "/slow").await;
        (answer, first)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut second = connect_from("127.0.0.31", server.addr).await;
    assert!(get_on(&mut second, "/hello").await.is_none());
    let (answer, _first) = request.await.unwrap();
    assert_eq!(answer.unwrap().0, 200);
    let mut third = connect_from("127.0.0.32", server.addr).await;
    assert_eq!(get_on(&mut third, "/hello").await.unwrap().0, 200);
    assert_eq!(server.stats.evicted(), 1);
    server.stop().await;
}
