//! One async lock per workload, so two operations on the same pool never interleave while
//! different workloads proceed in parallel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Per-workload state `T` behind its own `tokio` mutex, created on first use.
pub(crate) struct WorkloadLocks<T> {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<T>>>>,
}

impl<T> Default for WorkloadLocks<T> {
    fn default() -> Self {
        Self {
            map: Mutex::default(),
        }
    }
}

impl<T: Default> WorkloadLocks<T> {
    /// The lock of `workload` (held only for the lookup: the map lock is never held across
    /// an await).
    pub(crate) fn get(&self, workload: &str) -> Arc<tokio::sync::Mutex<T>> {
        // A panic elsewhere while holding the map lock leaves the map itself intact.
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(workload.to_string()).or_default().clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_workload_shares_a_lock_others_do_not() {
        let locks = WorkloadLocks::<u32>::default();
        let web = locks.get("web");
        *web.lock().await += 1;
        assert!(Arc::ptr_eq(&web, &locks.get("web")));
        assert!(!Arc::ptr_eq(&web, &locks.get("api")));
        let _held = web.lock().await;
        assert!(locks.get("web").try_lock().is_err());
        assert!(locks.get("api").try_lock().is_ok());
    }
}
