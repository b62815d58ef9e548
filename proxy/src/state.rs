//! State shared by the request path, the guard, health checks, reloads and the admin API.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use arc_swap::ArcSwap;
use config::Config;

use crate::access_log::AccessLog;
use crate::clock::now_ms;
use crate::drain::Drain;
use crate::metrics::Metrics;
use crate::table::RouteTable;
use crate::tls::TlsState;
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
    /// Hash of the config content (and certificate files) last read by any reload trigger.
    pub seen_content: AtomicU64,
    /// Requests in flight and whether a shutdown began.
    pub drain: Arc<Drain>,
    /// The served certificates, when `[proxy.tls]` is configured.
    pub tls: Option<Arc<TlsState>>,
    /// The access log, when configured.
    pub access_log: Option<Arc<AccessLog>>,
}

impl Shared {
    /// State for a validated config, with its TLS certificates and access log already opened.
    pub fn new(
        config: Config,
        metrics: Metrics,
        tls: Option<Arc<TlsState>>,
        access_log: Option<Arc<AccessLog>>,
    ) -> Arc<Self> {
        let registry = UpstreamRegistry::new(config.proxy.timeouts);
        let table = RouteTable::build(&config, None, &registry, false, &metrics, now_ms());
        let seen = crate::reload::watched_hash(&config).unwrap_or(0);
        Arc::new(Shared {
            seen_content: AtomicU64::new(seen),
            table: ArcSwap::from_pointee(table),
            registry: ArcSwap::from_pointee(registry),
            config_path: config.source.clone(),
            config: ArcSwap::from_pointee(config),
            metrics,
            drain: Drain::new(),
            tls,
            access_log,
        })
    }
}
