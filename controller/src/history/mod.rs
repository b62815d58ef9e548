//! Demand history: scraping proxies, reading Prometheus, importing CSV, all into the store.

pub mod exposition;
pub mod import;
pub mod prometheus;
pub mod scrape;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::board::Board;
use crate::metrics::ControllerMetrics;
use crate::proxies::Proxies;
use crate::store::{Resource, SeriesKey, Store};
use scrape::{RateTracker, Totals};

/// Scrapes every proxy's `/metrics` each `interval`, stores per-pool and total request rates
/// and p99 latency, and publishes the latest values on the board.
pub async fn scrape_loop(
    proxies: Proxies,
    store: Arc<Store>,
    board: Arc<Board>,
    metrics: Arc<ControllerMetrics>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tracker = RateTracker::default();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let mut scrapes = Vec::new();
        for &proxy in proxies.addrs() {
            match proxies.metrics(proxy).await {
                Ok(text) => scrapes.push((proxy, Totals::from_exposition(&text))),
                Err(e) => {
                    metrics.error("scrape");
                    tracing::warn!(%proxy, error = %e, "scrape failed");
                }
            }
        }
        let now = crate::clock::unix_ms();
        let rates = tracker.observe(scrapes, now);
        if rates.is_empty() {
            continue;
        }
        let mut rows = Vec::new();
        let mut totals: std::collections::BTreeMap<String, f64> = Default::default();
        for r in &rates {
            rows.push((
                SeriesKey::new(&r.workload, &r.pool, Resource::Rps),
                now,
                r.rps,
            ));
            if let Some(p99) = r.p99_ms {
                rows.push((
                    SeriesKey::new(&r.workload, &r.pool, Resource::LatencyMs),
                    now,
                    p99,
                ));
            }
            *totals.entry(r.workload.clone()).or_default() += r.rps;
        }
        for (w, rps) in &totals {
            rows.push((SeriesKey::new(w, "all", Resource::Rps), now, *rps));
        }
        board.observe(&rates, now);
        let store = Arc::clone(&store);
        let written = tokio::task::spawn_blocking(move || store.append(&rows)).await;
        match written {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                metrics.error("store");
                tracing::error!(error = %e, "storing scraped samples failed");
            }
            Err(e) => tracing::error!(error = %e, "store task failed"),
        }
    }
}
