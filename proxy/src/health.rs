//! Active health checks: TCP connect (or HTTP GET) every interval, with hysteresis.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use policies::PoolKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clock::now_ms;
use crate::state::Shared;
use crate::upstream::Upstream;

/// Background service that checks every pool member and publishes `umbra_upstream_healthy`.
pub struct HealthService {
    shared: Arc<Shared>,
}

impl HealthService {
    /// Health checks over shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        HealthService { shared }
    }
}

/// Whether `addr` accepts a connection (and, with a path, answers 2xx/3xx) within `timeout`.
///
/// With a path the rest of the answer is read too, until the upstream closes (`Connection:
/// close`) or the time is up: one that resets in the middle of it fails, since it would cut
/// clients' answers short where no retry can help. One that is merely slow to close passes.
pub async fn check(addr: SocketAddr, path: Option<&str>, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let head = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let Some(path) = path else {
            return Some((true, None));
        };
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: umbra-health\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut buf = [0u8; 32];
        let mut filled = 0;
        while filled < 12 {
            let n = stream.read(&mut buf[filled..]).await.ok()?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        // "HTTP/1.1 200": the status code is bytes 9..12.
        let code = std::str::from_utf8(buf.get(9..12)?)
            .ok()?
            .parse::<u16>()
            .ok()?;
        Some(((200..400).contains(&code), Some(stream)))
    };
    let (ok, stream) = match tokio::time::timeout_at(deadline, head).await {
        Ok(Some(answer)) => answer,
        Ok(None) | Err(_) => return false,
    };
    let Some(mut stream) = stream.filter(|_| ok) else {
        return ok;
    };
    let rest = async {
        let mut buf = [0u8; 4096];
        let mut read = 0usize;
        // A health answer is small; past 64 KiB it has shown enough.
        while read < 64 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(_) => return false,
            }
        }
        true
    };
    tokio::time::timeout_at(deadline, rest)
        .await
        .unwrap_or(true)
}

#[async_trait]
impl BackgroundService for HealthService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut published: HashSet<(String, PoolKind, String)> = HashSet::new();
        loop {
            let table = self.shared.table.load_full();
            let settings = table.settings.health.clone();
            let mut members: Vec<(String, PoolKind, Arc<Upstream>)> = Vec::new();
            let mut unique: HashMap<SocketAddr, Arc<Upstream>> = HashMap::new();
            for w in table.workloads() {
                for kind in PoolKind::ALL {
                    for u in w.pool(kind).members() {
                        unique.entry(u.addr()).or_insert_with(|| Arc::clone(u));
                        members.push((w.name().to_string(), kind, Arc::clone(u)));
                    }
                }
            }
            drop(table);

            let mut checks = tokio::task::JoinSet::new();
            for (addr, up) in unique {
                let path = settings.path.clone();
                checks.spawn(
                    async move { (check(addr, path.as_deref(), settings.timeout).await, up) },
                );
            }
            while let Some(joined) = checks.join_next().await {
                let Ok((ok, up)) = joined else { continue };
                if !ok {
                    self.shared.metrics.health_check_failed();
                }
                if let Some(healthy) =
                    up.observe_check(ok, settings.healthy_after, settings.unhealthy_after)
                {
                    tracing::info!(upstream = %up.addr(), healthy, "upstream health changed");
                }
            }

            let now = now_ms();
            let mut current = HashSet::new();
            for (workload, kind, up) in &members {
                self.shared.metrics.set_upstream_healthy(
                    workload,
                    *kind,
                    up.label(),
                    up.healthy(now),
                );
                current.insert((workload.clone(), *kind, up.label().to_string()));
            }
            for gone in published.difference(&current) {
                self.shared
                    .metrics
                    .forget_upstream(&gone.0, gone.1, &gone.2);
            }
            published = current;

            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(settings.interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// A one-connection server that reads the request and writes `answer`, then resets the
    /// connection (`reset`), closes it, or holds it open.
    async fn serve_once(answer: &'static [u8], end: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut req = [0u8; 1024];
            let _read = s.read(&mut req).await;
            let _sent = s.write_all(answer).await;
            match end {
                "reset" => {
                    let _linger = s.set_zero_linger();
                }
                "hold" => tokio::time::sleep(Duration::from_secs(5)).await,
                _ => {}
            }
        });
        addr
    }

    const WHOLE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
    const CUT: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\npartial";
    const TIMEOUT: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn a_whole_answer_passes_and_one_reset_midway_fails() {
        let ok = serve_once(WHOLE, "close").await;
        assert!(check(ok, Some("/healthz"), TIMEOUT).await);
        let cut = serve_once(CUT, "reset").await;
        assert!(!check(cut, Some("/healthz"), TIMEOUT).await);
    }

    #[tokio::test]
    async fn an_upstream_slow_to_close_passes_and_a_bad_status_fails() {
        let held = serve_once(WHOLE, "hold").await;
        assert!(check(held, Some("/healthz"), TIMEOUT).await);
        let failing = serve_once(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", "close").await;
        assert!(!check(failing, Some("/healthz"), TIMEOUT).await);
        let tcp_only = serve_once(CUT, "reset").await;
        assert!(
            check(tcp_only, None, TIMEOUT).await,
            "no path: connecting is enough"
        );
    }
}
