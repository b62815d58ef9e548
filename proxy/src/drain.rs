//! Graceful drain: requests in flight are counted, and once Pingora begins its shutdown (SIGTERM,
//! or SIGQUIT after handing the listeners to a new binary) the process exits as soon as none are
//! left, instead of waiting out the whole `shutdown_grace`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use pingora_core::server::ExecutionPhase;
use tokio::sync::broadcast;

use crate::threads::{Starter, deferred};

/// How often the idle check runs during the grace period.
const POLL: Duration = Duration::from_millis(10);

/// Requests (and upgraded connections) in flight, and whether a shutdown has begun.
#[derive(Debug, Default)]
pub struct Drain {
    active: AtomicUsize,
    draining: AtomicBool,
}

/// One request in flight; counted until dropped.
#[derive(Debug)]
pub struct Active(Arc<Drain>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drain {
    /// Nothing in flight, not draining.
    pub fn new() -> Arc<Self> {
        Arc::new(Drain::default())
    }

    /// Counts a request until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> Active {
        self.active.fetch_add(1, Ordering::AcqRel);
        Active(Arc::clone(self))
    }

    /// Requests in flight now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Whether a shutdown or an upgrade has begun: responses then carry `Connection: close`
    /// and `/readyz` answers 503.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Marks the drain as begun (also for tests and the admin view).
    pub fn begin(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Follows Pingora's execution phases on a thread of its own: marks the drain on the first
    /// shutdown or upgrade phase, and once the grace period starts, calls `on_idle` and exits
    /// the process as soon as nothing is in flight. Pingora still ends the process itself when
    /// the grace period runs out.
    pub fn watch(
        self: &Arc<Self>,
        mut phases: broadcast::Receiver<ExecutionPhase>,
        on_idle: impl FnOnce() + Send + 'static,
    ) -> Starter {
        let drain = Arc::clone(self);
        deferred("umbra-drain", move || {
            loop {
                match phases.blocking_recv() {
                    Ok(
                        ExecutionPhase::GracefulTerminate
                        | ExecutionPhase::GracefulUpgradeTransferringFds
                        | ExecutionPhase::ShutdownStarted,
                    ) => drain.begin(),
                    Ok(ExecutionPhase::ShutdownGracePeriod) => break,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
            drain.begin();
            tracing::info!(in_flight = drain.active(), "draining");
            // Two idle readings in a row: a request whose headers were being parsed at
            // the first one has had time to count itself.
            let mut idle_readings = 0;
            while idle_readings < 2 {
                std::thread::sleep(POLL);
                idle_readings = if drain.active() == 0 {
                    idle_readings + 1
                } else {
                    0
                };
            }
            tracing::info!("drained: no request in flight, exiting");
            on_idle();
            std::process::exit(0);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_in_flight_requests() {
        let d = Drain::new();
        let a = d.enter();
        let b = d.enter();
        assert_eq!(d.active(), 2);
        drop(a);
        assert_eq!(d.active(), 1);
        drop(b);
        assert_eq!(d.active(), 0);
        assert!(!d.is_draining());
        d.begin();
        assert!(d.is_draining());
    }
}
