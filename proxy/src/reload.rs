//! Config reload: SIGHUP, a file watch, or `POST /v1/reload`. All or nothing: a new config is
//! validated completely before anything changes, and a bad one leaves the running one alone.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;

use crate::clock::now_ms;
use crate::state::Shared;
use crate::table::RouteTable;
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
    // Remembered good or bad, so the file watch reacts to the next change, not this one.
    shared
        .seen_content
        .store(content_hash(text.as_bytes()), Ordering::Relaxed);
    let new = config::parse(path, &text)?;
    let old = shared.config.load();
    let fixed = [
        (
            "proxy.listen",
            old.proxy.listen.to_string(),
            new.proxy.listen.to_string(),
        ),
        (
            "proxy.admin_listen",
            old.proxy.admin_listen.to_string(),
            new.proxy.admin_listen.to_string(),
        ),
        (
            "proxy.threads",
            old.proxy.threads.to_string(),
            new.proxy.threads.to_string(),
        ),
    ];
    for (field, old, new) in fixed {
        if old != new {
            return Err(ReloadError::NeedsRestart { field, old, new });
        }
    }
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
    shared.config.store(Arc::new(new));
    Ok(ReloadSummary { workloads })
}

/// Reloads on SIGHUP, from a plain thread so the handler is installed before anything runs
/// (an unhandled SIGHUP would kill the process).
pub fn spawn_sighup_reloader(shared: Arc<Shared>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("umbra-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                // The outcome is logged and counted inside `reload`.
                let _outcome = reload(&shared, "SIGHUP");
            }
        })?;
    Ok(())
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

/// A hash of config file content, to notice changes.
pub fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
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
            let Ok(bytes) = std::fs::read(&self.shared.config_path) else {
                continue;
            };
            if content_hash(&bytes) != self.shared.seen_content.load(Ordering::Relaxed) {
                let shared = Arc::clone(&self.shared);
                // Outcome logged and counted inside `reload`.
                let _outcome =
                    tokio::task::spawn_blocking(move || reload(&shared, "file change")).await;
            }
        }
    }
}
