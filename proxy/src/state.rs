//! State shared by the request path, the guard, health checks, reloads and the admin API.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use arc_swap::ArcSwap;
use config::Config;

use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::reload::content_hash;
use crate::table::RouteTable;
use crate::upstream::UpstreamRegistry;

/// Everything long-lived; cloned as `Arc<Shared>` into each service.
pub struct Shared {
    /// What the request path reads.
    pub table: ArcSwap<RouteTable>,
    /// Live upstream state by address.
    pub registry: ArcSwap<UpstreamRegistry>,
    /// The config the table was built from.
    pub config: ArcSwap<Config>,
    /// Metrics.
    pub metrics: Metrics,
    /// The file reloads read.
    pub config_path: PathBuf,
    /// Hash of the config content last read by any reload trigger (or at start-up).
    pub seen_content: AtomicU64,
}

impl Shared {
    /// State for a validated config.
    pub fn new(config: Config, metrics: Metrics) -> Arc<Self> {
        let registry = UpstreamRegistry::new(config.proxy.timeouts);
        let table = RouteTable::build(&config, None, &registry, false, &metrics, now_ms());
        let seen = std::fs::read(&config.source).map_or(0, |b| content_hash(&b));
        Arc::new(Shared {
            seen_content: AtomicU64::new(seen),
            table: ArcSwap::from_pointee(table),
            registry: ArcSwap::from_pointee(registry),
            config_path: config.source.clone(),
            config: ArcSwap::from_pointee(config),
            metrics,
        })
    }
}
