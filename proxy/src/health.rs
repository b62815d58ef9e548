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
pub async fn check(addr: SocketAddr, path: Option<&str>, timeout: Duration) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let Some(path) = path else { return Some(true) };
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
        Some((200..400).contains(&code))
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(true)))
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
