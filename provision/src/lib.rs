//! Resource managers behind one trait: where shadow-pool instances come from.
//!
//! `process` (the embedded default) runs instances as local processes on free loopback ports,
//! `podman` as containers, `kubernetes` as a `<workload>-shadow` Deployment. The orchestrator
//! only ever talks to [`Provisioner`], so the same migration logic drives all three.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use async_trait::async_trait;

mod cgroup;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
#[cfg(feature = "kubernetes")]
mod kubernetes_objects;
pub mod podman;
mod podman_cli;
mod ports;
mod proc_identity;
pub mod process;
mod process_state;
mod process_stop;
mod template_id;
pub use template_id::deployment_id;
mod workload_locks;

/// CPU and memory given to one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// CPU in thousandths of a core (1000 = one core); 0 means no CPU limit.
    pub cpu_millis: u32,
    /// Memory limit in MiB; 0 means no memory limit.
    pub memory_mib: u32,
}

/// How to run one instance of a workload, whatever the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceTemplate {
    /// Workload name; instances are labelled with it so nothing leaks.
    pub workload: String,
    /// `process`: argv to start one instance. `{port}` and `{addr}` are replaced with the
    /// port / `127.0.0.1:port` the instance must listen on.
    pub command: Vec<String>,
    /// `podman` / `kubernetes`: the image to run.
    pub image: Option<String>,
    /// `podman` / `kubernetes`: the port the instance listens on inside its container.
    pub container_port: u16,
    /// HTTP path that answers 2xx when the instance is ready (`None`: TCP connect).
    pub health_path: Option<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
}

/// What the shadow pool of one workload should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShadowTarget {
    /// Number of instances.
    pub instances: u32,
    /// Size of each.
    pub resources: Resources,
}

/// One running (or starting) instance.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    /// Backend-specific identity (pid, container id, pod name).
    pub id: String,
    /// Where the proxy should send traffic.
    pub addr: SocketAddr,
    /// Its current size.
    pub resources: Resources,
    /// When it was started.
    pub started_at: SystemTime,
}

/// Why a provisioner could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The backend refused or failed (message says which call and why).
    #[error("{backend}: {message}")]
    Backend {
        /// `process`, `podman`, `kubernetes`.
        backend: &'static str,
        /// What failed, with the underlying error.
        message: String,
    },
    /// The template cannot run on this backend (e.g. no image for podman).
    #[error("{backend}: workload {workload}: {message}")]
    Template {
        /// Backend.
        backend: &'static str,
        /// Workload.
        workload: String,
        /// What is missing.
        message: String,
    },
}

/// A resource manager that keeps a workload's shadow pool at a target size.
///
/// Implementations must be idempotent (calling `scale` twice with the same target changes
/// nothing the second time) and must find their own instances again after a controller
/// restart (by label, pid file or state), so a `kill -9` of the controller leaks nothing.
///
/// How each backend resizes and reports readiness:
///
/// | backend | resize | `scale`/`instances` return |
/// |---|---|---|
/// | `process` | cgroup limits rewritten in place | every live process (maybe not listening yet) |
/// | `podman` | `podman update` in place (replacement if that fails) | every running container |
/// | `kubernetes` | rolling update of the Deployment's pods | ready EndpointSlice members only |
///
/// Instances started from a different template (command, image, port or environment) are
/// replaced by `scale` (`process`, `podman`) or rolled out (`kubernetes`).
#[async_trait]
pub trait Provisioner: Send + Sync {
    /// `process`, `podman` or `kubernetes`.
    fn name(&self) -> &'static str;

    /// Makes the shadow pool of `template.workload` exactly `target`: starts or stops instances
    /// and resizes existing ones (in place where the backend can, else by replacement).
    /// Returns the instances after the change (some may not be ready yet).
    async fn scale(
        &self,
        template: &InstanceTemplate,
        target: ShadowTarget,
    ) -> Result<Vec<Instance>, ProvisionError>;

    /// The workload's instances as the backend sees them now.
    async fn instances(&self, workload: &str) -> Result<Vec<Instance>, ProvisionError>;

    /// Stops and replaces one instance (it failed its health checks). Returns its successor.
    async fn replace(
        &self,
        template: &InstanceTemplate,
        instance_id: &str,
    ) -> Result<Instance, ProvisionError>;

    /// Stops every instance of the workload (shutdown, or a workload removed from config).
    async fn stop_all(&self, workload: &str) -> Result<(), ProvisionError>;
}

fn _assert_object_safe(_: &dyn Provisioner) {}
fn _assert_send_sync<T: Send + Sync>() {}
#[allow(dead_code)]
fn _contracts() {
    _assert_send_sync::<Box<dyn Provisioner>>();
}
