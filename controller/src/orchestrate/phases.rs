//! Where each workload's migration phase is kept: the local SQLite store (one controller), or
//! Kubernetes ConfigMaps (`ha::ConfigMapPhases`, replicas under leader election).

use async_trait::async_trait;
use policies::Phase;

use crate::store::{Store, StoreError};

/// Persisting a phase failed.
#[derive(Debug, thiserror::Error)]
pub enum PhaseStoreError {
    /// The SQLite store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Kubernetes API failed.
    #[error("phase ConfigMap {name}: {action}: {message}")]
    Kubernetes {
        /// ConfigMap name.
        name: String,
        /// What was being done.
        action: &'static str,
        /// The API's error.
        message: String,
    },
    /// Another replica wrote the phase since this one read it: it leads now, this one must
    /// not act on the phase it holds.
    #[error("phase ConfigMap {name} was written by another controller since it was read")]
    Fenced {
        /// ConfigMap name.
        name: String,
    },
}

/// The phase of each workload, as the orchestrator reads it on recovery and writes it on
/// every transition (before the transition's actions run).
#[async_trait]
pub trait PhaseStore: Send + Sync {
    /// `sqlite` or `configmap`, for logs.
    fn kind(&self) -> &'static str;

    /// The stored phase (`None`: never stored, or unreadable; recovery treats it as `Idle`).
    async fn load(&self, workload: &str) -> Result<Option<Phase>, PhaseStoreError>;

    /// Stores `to`, and logs the transition from `from` when they differ.
    async fn save(
        &self,
        workload: &str,
        from: &Phase,
        to: &Phase,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), PhaseStoreError>;
}

#[async_trait]
impl PhaseStore for Store {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn load(&self, workload: &str) -> Result<Option<Phase>, PhaseStoreError> {
        Ok(self.phase(workload)?)
    }

    async fn save(
        &self,
        workload: &str,
        from: &Phase,
        to: &Phase,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), PhaseStoreError> {
        Ok(self.transition(workload, from, to, reason, now_ms)?)
    }
}

fn _assert_object_safe(_: &dyn PhaseStore) {}
