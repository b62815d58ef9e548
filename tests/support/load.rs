//! Steady client traffic at a fixed rate through a proxy, counting what succeeded and failed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::http::client;

/// Requests at `rps` to `http://{listen}/` until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    /// Starts sending; each request is its own task so a slow answer does not lower the rate.
    pub fn start(listen: SocketAddr, rps: f64) -> Load {
        let (stop, ok, failed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let task = tokio::spawn(async move {
            let c = client();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rps));
            while !s.load(Ordering::Relaxed) {
                tick.tick().await;
                let (c, o, f) = (c.clone(), o.clone(), f.clone());
                tokio::spawn(async move {
                    match c.get(format!("http://{listen}/")).send().await {
                        Ok(r) if r.status().is_success() => o.fetch_add(1, Ordering::Relaxed),
                        _ => f.fetch_add(1, Ordering::Relaxed),
                    };
                });
            }
        });
        Load {
            stop,
            ok,
            failed,
            task,
        }
    }

    /// Requests answered 2xx so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops, lets in-flight requests finish, and returns (ok, failed).
    pub async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _finished = self.task.await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
