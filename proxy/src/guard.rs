//! The rollback guard loop: judges every workload's shadow window every few tens of ms.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;

use crate::clock::now_ms;
use crate::state::Shared;

/// Background service that snaps shadow weights to 0 when the shadow degrades.
pub struct GuardService {
    shared: Arc<Shared>,
}

impl GuardService {
    /// The guard over shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        GuardService { shared }
    }

    /// One pass over every workload; returns how many were rolled back.
    pub fn tick(&self) -> usize {
        let table = self.shared.table.load();
        let now = now_ms();
        let mut rolled = 0;
        for w in table.workloads() {
            if let Some(reason) = w.evaluate_guard(now) {
                self.shared
                    .metrics
                    .rollback(w.name().as_str(), reason.label());
                rolled += 1;
            }
        }
        rolled
    }

    /// The shortest evaluation interval any workload asks for (50 ms when there are none).
    fn interval(&self) -> Duration {
        let table = self.shared.table.load();
        table
            .workloads()
            .iter()
            .map(|w| w.spec().guard.interval)
            .min()
            .unwrap_or(Duration::from_millis(50))
    }
}

#[async_trait]
impl BackgroundService for GuardService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut next = tokio::time::Instant::now();
        loop {
            self.tick();
            next += self.interval();
            // Never try to catch up a backlog of missed ticks after a stall.
            next = next.max(tokio::time::Instant::now());
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
        }
    }
}
