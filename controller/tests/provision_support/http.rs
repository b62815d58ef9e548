//! A tiny HTTP/1.0 GET over a plain TCP stream, for checking that provisioned instances
//! really serve (no client library, nothing but loopback).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Status code and body of `GET path`, or `None` if the instance does not answer (yet).
pub async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

/// Waits (up to `timeout`) until `GET path` on `addr` answers 200, and returns the body.
pub async fn wait_for_200(addr: SocketAddr, path: &str, timeout: Duration) -> String {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some((200, body)) = get(addr, path).await {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr}{path} did not answer 200 within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
