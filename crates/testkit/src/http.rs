//! A bare HTTP/1.1 GET for tests of the services' operations endpoints (`/metrics`,
//! `/health/ready`), and one sample read out of a Prometheus text exposition.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path` on `addr`: the status and the body; `None` when nothing answers within 10 s.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}

/// The value of the sample `series` (its name and labels exactly as exposed, e.g.
/// `si_total_staking_txs{tx_type="active"}`) in `exposition`; `None` when absent.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn a_sample_is_found_by_its_exact_name_and_labels() {
        let text = "# HELP a x\na_total{q=\"1\"} 3\na_total{q=\"2\"} 4\nb 1.5\n";
        assert_eq!(sample(text, r#"a_total{q="2"}"#), Some(4.0));
        assert_eq!(sample(text, "b"), Some(1.5));
        assert_eq!(sample(text, "a_total"), None);
    }
}
