//! The `process` provisioner's state file: one JSON document per workload, replaced
//! atomically, so a controller killed at any point leaves a file naming every live instance.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::cgroup::InstanceCgroup;
use super::{Instance, Resources, ports};

/// Format version written into every file, so a future layout can migrate old ones.
const FORMAT_VERSION: u32 = 1;

/// Everything the controller knows about one workload's local instances.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PoolFile {
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// The workload these instances belong to.
    pub workload: String,
    /// Live instances, in start order.
    pub instances: Vec<InstanceRecord>,
}

/// One started process, with what is needed to recognise it after a restart.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstanceRecord {
    /// Process id; also the process group id (each instance leads its own group).
    pub pid: u32,
    /// Kernel start time of `pid` in clock ticks since boot: tells it from a reused pid.
    pub start_ticks: u64,
    /// The argv that was started, after `{port}`/`{addr}` substitution.
    pub argv: Vec<String>,
    /// Fingerprint of the template it was started from; a changed template replaces it.
    pub template: String,
    /// Small number naming its log files and cgroup (`<workload>-<slot>`), reused once free.
    pub slot: u32,
    /// Loopback port it listens on.
    pub port: u16,
    /// When it was started.
    pub started_at: SystemTime,
    /// Its current size.
    pub resources: Resources,
    /// Its cgroup, when limits are enforced.
    pub cgroup: Option<InstanceCgroup>,
}

impl InstanceRecord {
    /// The instance as the orchestrator sees it.
    pub fn instance(&self) -> Instance {
        Instance {
            id: self.pid.to_string(),
            addr: ports::loopback(self.port),
            resources: self.resources,
            started_at: self.started_at,
        }
    }
}

impl PoolFile {
    /// An empty pool for `workload`.
    pub fn new(workload: &str) -> Self {
        Self {
            format: FORMAT_VERSION,
            workload: workload.to_string(),
            instances: Vec::new(),
        }
    }
}

/// Where the state of `workload` lives under `dir`.
pub(crate) fn path(dir: &Path, workload: &str) -> PathBuf {
    dir.join(format!("{workload}.json"))
}

/// Reads a pool file; `Ok(None)` when there is none yet.
pub(crate) async fn load(path: &Path) -> io::Result<Option<PoolFile>> {
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let file: PoolFile = serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    if file.format != FORMAT_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: format {} (this controller reads {FORMAT_VERSION})",
                path.display(),
                file.format
            ),
        ));
    }
    Ok(Some(file))
}

/// Writes a pool file atomically: a temporary file beside it, flushed to disk, renamed over
/// the old one. A crash leaves either the old or the new file, never half of one.
pub(crate) async fn save(path: &Path, file: &PoolFile) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(file).map_err(io::Error::other)?;
    let tmp = path.with_extension(format!("json.tmp.{}", std::process::id()));
    let mut out = tokio::fs::File::create(&tmp).await?;
    tokio::io::AsyncWriteExt::write_all(&mut out, &bytes).await?;
    out.sync_all().await?;
    drop(out);
    tokio::fs::rename(&tmp, path).await
}

/// Deletes a pool file; a missing one is fine.
pub(crate) async fn remove(path: &Path) -> io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn record() -> InstanceRecord {
        InstanceRecord {
            pid: 4242,
            start_ticks: 987,
            argv: vec!["srv".into(), "8080".into()],
            template: "t1".into(),
            slot: 1,
            port: 8080,
            started_at: SystemTime::UNIX_EPOCH,
            resources: Resources {
                cpu_millis: 250,
                memory_mib: 64,
            },
            cgroup: Some(InstanceCgroup::V1 {
                cpu: "/sys/fs/cgroup/cpu/umbra/web/web-1".into(),
                memory: "/sys/fs/cgroup/memory/umbra/web/web-1".into(),
            }),
        }
    }

    #[tokio::test]
    async fn round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path(), "web");
        assert_eq!(load(&path).await.unwrap(), None);
        let mut file = PoolFile::new("web");
        file.instances.push(record());
        save(&path, &file).await.unwrap();
        file.instances.push(InstanceRecord {
            pid: 7,
            slot: 2,
            ..record()
        });
        save(&path, &file).await.unwrap();
        assert_eq!(load(&path).await.unwrap(), Some(file));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["web.json"], "no temporary file is left behind");
        remove(&path).await.unwrap();
        remove(&path).await.unwrap();
        assert_eq!(load(&path).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_corrupt_or_future_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path(), "web");
        std::fs::write(&path, "{ not json").unwrap();
        let err = load(&path).await.unwrap_err().to_string();
        assert!(err.contains("web.json"), "{err}");
        std::fs::write(&path, r#"{"format":99,"workload":"web","instances":[]}"#).unwrap();
        let err = load(&path).await.unwrap_err().to_string();
        assert!(err.contains("format 99"), "{err}");
    }

    #[test]
    fn record_becomes_a_loopback_instance_named_by_pid() {
        let instance = record().instance();
        assert_eq!(instance.id, "4242");
        assert_eq!(instance.addr.to_string(), "127.0.0.1:8080");
    }
}
