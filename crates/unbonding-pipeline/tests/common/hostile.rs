//! Committee members that attack the pipeline with their answers: endless, dripping,
//! NUL-laden, redirecting, wrongly shaped, or a valid signature by another member's key.
//! Plain axum servers: they play remote parties, not our services.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use covenant_signer::fixture::Fixture;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Member;

/// The size of the endless answer: 1 GiB in 64 KiB chunks.
pub const HUGE_BYTES: u64 = 1 << 30;
const CHUNK: usize = 64 * 1024;

/// What the hostile members saw and did.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Bytes the `Huge` member produced before the pipeline hung up.
    pub huge_bytes_sent: Arc<AtomicU64>,
    /// Requests that reached the loopback-only page the `Redirect` member points at.
    pub redirect_target_hits: Arc<AtomicU64>,
}

async fn spawn(app: Router, shutdown: CancellationToken) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    (format!("http://{addr}"), task)
}

/// Starts member `index`'s hostile server when `behaviour` is a hostile one; its URL.
pub async fn serve(
    behaviour: Member,
    index: usize,
    fx: &Fixture,
    real_urls: &[String],
    counters: &Counters,
    shutdown: CancellationToken,
) -> Option<(String, tokio::task::JoinHandle<()>)> {
    let app = match behaviour {
        Member::Huge => {
            let sent = Arc::clone(&counters.huge_bytes_sent);
            Router::new().fallback(move || {
                let sent = Arc::clone(&sent);
                async move {
                    let chunk = Bytes::from(vec![b'7'; CHUNK]);
                    let chunks = HUGE_BYTES / CHUNK as u64;
                    let stream = futures::stream::iter(0..chunks).map(move |_| {
                        sent.fetch_add(CHUNK as u64, Ordering::Relaxed);
                        Ok::<_, Infallible>(chunk.clone())
                    });
                    (StatusCode::OK, Body::from_stream(stream))
                }
            })
        }
        Member::SlowBody => Router::new().fallback(|| async {
            let stream = futures::stream::unfold(0u32, |n| async move {
                if n >= 1_000 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok::<_, Infallible>(Bytes::from_static(b" ")), n + 1))
            });
            (StatusCode::OK, Body::from_stream(stream))
        }),
        Member::NulBody => Router::new().fallback(|| async {
            let body = format!(
                "{{\"error\":\"no\0pe\u{1b}[2J\r\n{}\"}}",
                "\0\u{7}\u{1b}".repeat(7_000)
            );
            (StatusCode::INTERNAL_SERVER_ERROR, body)
        }),
        Member::Redirect => {
            let hits = Arc::clone(&counters.redirect_target_hits);
            let secret = Router::new().fallback(move || {
                hits.fetch_add(1, Ordering::Relaxed);
                async { "loopback-only page" }
            });
            let (secret_url, _task) = spawn(secret, shutdown.clone()).await;
            let location = format!("{secret_url}/admin");
            Router::new().fallback(move || {
                let location = location.clone();
                async move { (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response() }
            })
        }
        Member::WrongShape => Router::new().fallback(|| async {
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"data":{"signature":"00"},"note":"not the envelope"}"#,
            )
        }),
        Member::OtherKey => {
            // The next member's real server, asked for its own key's signature.
            let other = (index + 1) % real_urls.len();
            let target = format!("{}/v1/sign-unbonding-tx", real_urls[other]);
            let other_key = hex::encode(fx.member_key(other).unwrap().serialize());
            let client = reqwest::Client::new();
            Router::new().fallback(move |body: Bytes| {
                let (client, target, other_key) =
                    (client.clone(), target.clone(), other_key.clone());
                async move {
                    let mut request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    request["covenant_public_key"] = serde_json::Value::String(other_key);
                    let answer = client.post(target).json(&request).send().await.unwrap();
                    (
                        StatusCode::from_u16(answer.status().as_u16()).unwrap(),
                        [(header::CONTENT_TYPE, "application/json")],
                        answer.text().await.unwrap(),
                    )
                }
            })
        }
        Member::Honest
        | Member::Down
        | Member::Garbage
        | Member::WrongSignature
        | Member::Slow
        | Member::Delayed
        | Member::Tls => return None,
    };
    Some(spawn(app, shutdown).await)
}
