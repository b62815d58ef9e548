//! Config reload: SIGHUP, a file watch, or `POST /v1/reload`. All or nothing: a new config is
//! validated completely before anything changes, and a bad one leaves the running one alone.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;

use config::{Config, ProxySettings, TlsSettings};

use crate::clock::{now_ms, unix_now};
use crate::state::Shared;
use crate::table::RouteTable;
use crate::threads::{Starter, deferred};
use crate::upstream::UpstreamRegistry;

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new file is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The change cannot be applied to a running process.
    #[error(
        "{field} changed from {old} to {new}: restart umbra-proxy to apply it (running config kept)"
    )]
    NeedsRestart {
        /// The field.
        field: &'static str,
        /// Running value.
        old: String,
        /// Requested value.
        new: String,
    },
}

/// What a successful reload applied.
#[derive(Debug)]
pub struct ReloadSummary {
    /// Workloads in the new table.
    pub workloads: usize,
}

/// Serialises reloads (signal, watcher, admin can race).
static RELOAD_LOCK: Mutex<()> = Mutex::new(());

/// Re-reads the config file and swaps in a new route table. `trigger` is logged.
pub fn reload(shared: &Shared, trigger: &str) -> Result<ReloadSummary, ReloadError> {
    let _serial = RELOAD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let result = apply(shared);
    shared.metrics.reload(result.is_ok());
    match &result {
        Ok(s) => {
            tracing::info!(trigger, workloads = s.workloads, path = %shared.config_path.display(), "config reloaded")
        }
        Err(e) => {
            tracing::error!(trigger, error = %e, "config reload rejected; still serving the previous config")
        }
    }
    result
}

fn apply(shared: &Shared) -> Result<ReloadSummary, ReloadError> {
    let path = &shared.config_path;
    let text = std::fs::read_to_string(path).map_err(|source| config::ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let old = shared.config.load_full();
    // Remembered good or bad, so the file watch reacts to the next change, not this one.
    shared.seen_content.store(
        fingerprint(text.as_bytes(), old.proxy.tls.as_ref()),
        Ordering::Relaxed,
    );
    let new = config::parse(path, &text)?;
    refuse_fixed_changes(&old.proxy, &new.proxy)?;
    // Certificates are read and checked before anything changes: a bad one keeps all the
    // running ones serving.
    let certs = match (&shared.tls, &new.proxy.tls) {
        (Some(_), Some(tls)) => Some(crate::tls::load_store(tls, path, unix_now())?),
        _ => None,
    };
    let registry_changed = new.proxy.timeouts != old.proxy.timeouts;
    if registry_changed {
        shared
            .registry
            .store(Arc::new(UpstreamRegistry::new(new.proxy.timeouts)));
    }
    let registry = shared.registry.load();
    let previous = shared.table.load();
    let table = RouteTable::build(
        &new,
        Some(&previous),
        &registry,
        registry_changed,
        &shared.metrics,
        now_ms(),
    );
    let workloads = table.workloads().len();
    shared.table.store(Arc::new(table));
    if let (Some(state), Some(store)) = (&shared.tls, certs) {
        crate::tls::publish_expiry(&shared.metrics, &store);
        state.replace(store);
    }
    shared.seen_content.store(
        fingerprint(text.as_bytes(), new.proxy.tls.as_ref()),
        Ordering::Relaxed,
    );
    shared.config.store(Arc::new(new));
    Ok(ReloadSummary { workloads })
}

/// Settings bound to sockets, threads or files opened at start-up: a change is refused until
/// restart (or a binary upgrade, which starts from the new file).
fn refuse_fixed_changes(old: &ProxySettings, new: &ProxySettings) -> Result<(), ReloadError> {
    let tls_listen = |p: &ProxySettings| p.tls.as_ref().map(|t| t.listen.clone());
    let fixed = [
        (
            "proxy.listen",
            format!("{:?}", old.listen),
            format!("{:?}", new.listen),
        ),
        (
            "proxy.tls.listen",
            format!("{:?}", tls_listen(old)),
            format!("{:?}", tls_listen(new)),
        ),
        (
            "proxy.admin_listen",
            old.admin_listen.to_string(),
            new.admin_listen.to_string(),
        ),
        (
            "proxy.threads",
            old.threads.to_string(),
            new.threads.to_string(),
        ),
        (
            "proxy.upgrade_sock",
            old.upgrade_sock.display().to_string(),
            new.upgrade_sock.display().to_string(),
        ),
        (
            "proxy.client",
            format!("{:?}", old.client),
            format!("{:?}", new.client),
        ),
        (
            "proxy.access_log",
            format!("{:?}", old.access_log),
            format!("{:?}", new.access_log),
        ),
    ];
    for (field, old, new) in fixed {
        if old != new {
            return Err(ReloadError::NeedsRestart { field, old, new });
        }
    }
    Ok(())
}

/// What the file watch compares: the config file's bytes and those of every certificate and
/// key it names, so rotating a certificate on disk reloads it too.
pub fn fingerprint(text: &[u8], tls: Option<&TlsSettings>) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    for pair in tls.iter().flat_map(|t| t.certificates.iter()) {
        std::fs::read(&pair.cert).ok().hash(&mut h);
        std::fs::read(&pair.key).ok().hash(&mut h);
    }
    h.finish()
}

/// The fingerprint of `config` as it is on disk now; `None` when its file cannot be read.
pub fn watched_hash(config: &Config) -> Option<u64> {
    let text = std::fs::read(&config.source).ok()?;
    Some(fingerprint(&text, config.proxy.tls.as_ref()))
}

/// Reloads on SIGHUP. The handler is installed now, before anything runs (an unhandled SIGHUP
/// would kill the process); its thread starts with the services.
pub fn sighup_reloader(shared: Arc<Shared>) -> std::io::Result<Starter> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    Ok(deferred("umbra-sighup", move || {
        for _ in signals.forever() {
            // The outcome is logged and counted inside `reload`.
            let _outcome = reload(&shared, "SIGHUP");
        }
    }))
}

/// Polls the config file and reloads when its content changes. Polling (not inotify) sees
/// editors that replace the file and works on every filesystem.
pub struct ConfigWatcher {
    shared: Arc<Shared>,
    period: Duration,
}

impl ConfigWatcher {
    /// Watches the shared config path every `period`.
    pub fn new(shared: Arc<Shared>, period: Duration) -> Self {
        ConfigWatcher { shared, period }
    }
}

#[async_trait]
impl BackgroundService for ConfigWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(self.period) => {}
            }
            if !self.shared.config.load().proxy.watch_config {
                continue;
            }
            // Compared with the content last tried by any trigger, good or bad: a bad file is
            // reported once, not every second, and a revert to the running content still counts.
            let Some(now) = watched_hash(&self.shared.config.load()) else {
                continue;
            };
            if now != self.shared.seen_content.load(Ordering::Relaxed) {
                let shared = Arc::clone(&self.shared);
                // Outcome logged and counted inside `reload`.
                let _outcome =
                    tokio::task::spawn_blocking(move || reload(&shared, "file change")).await;
            }
        }
    }
}
