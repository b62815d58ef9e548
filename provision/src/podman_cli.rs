//! Running the podman CLI (never blocking the runtime) and reading what `podman ps` prints.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use super::ProvisionError;

/// Label every umbra container carries: the workload it belongs to.
pub(crate) const WORKLOAD_LABEL: &str = "umbra.workload";
/// Label every umbra container carries, so only umbra's containers are ever touched.
pub(crate) const MANAGED_BY_LABEL: &str = "umbra.managed-by";
/// The controller a container belongs to ([`super::deployment_id`]): two controllers on one
/// host never touch each other's containers.
pub(crate) const DEPLOYMENT_LABEL: &str = "umbra.deployment";
/// Fingerprint of the template a container was started from.
pub(crate) const TEMPLATE_LABEL: &str = "umbra.template";
/// Size at creation; `podman update` cannot change labels, so this is only a fallback when
/// the container's cgroup cannot be read.
pub(crate) const CPU_LABEL: &str = "umbra.cpu-millis";
/// See [`CPU_LABEL`].
pub(crate) const MEMORY_LABEL: &str = "umbra.memory-mib";

/// The podman binary plus the global flags every call gets.
#[derive(Clone, Debug)]
pub(crate) struct PodmanCli {
    pub program: PathBuf,
    pub global_args: Vec<String>,
}

impl PodmanCli {
    /// Runs `podman <global args> <args>` and returns its stdout; a failure names the call
    /// and carries podman's stderr.
    pub(crate) async fn run(&self, args: &[String]) -> Result<String, ProvisionError> {
        let output = tokio::process::Command::new(&self.program)
            .args(&self.global_args)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| self.spawn_error(&e))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(ProvisionError::Backend {
            backend: "podman",
            message: format!(
                "`podman {}` failed ({}): {}",
                args.join(" "),
                output.status,
                stderr.trim()
            ),
        })
    }

    fn spawn_error(&self, e: &io::Error) -> ProvisionError {
        let hint = if e.kind() == io::ErrorKind::NotFound {
            " (is podman installed? on Debian: apt-get install podman runc)"
        } else {
            ""
        };
        ProvisionError::Backend {
            backend: "podman",
            message: format!("cannot run {}: {e}{hint}", self.program.display()),
        }
    }
}

/// One container as `podman ps --format json` describes it (only the fields umbra reads;
/// podman adds fields between versions, so unknown ones are ignored here on purpose).
#[derive(Clone, Debug, serde::Deserialize)]
pub(crate) struct PsEntry {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Names", default)]
    pub names: Vec<String>,
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "State", default)]
    pub state: String,
    #[serde(rename = "Pid", default)]
    pub pid: u32,
    #[serde(rename = "Ports", default)]
    pub ports: Option<Vec<PsPort>>,
    #[serde(rename = "StartedAt", default)]
    pub started_at: i64,
}

/// One published port of a container.
#[derive(Clone, Debug, serde::Deserialize)]
pub(crate) struct PsPort {
    #[serde(default)]
    pub host_ip: String,
    pub host_port: u16,
    #[serde(default)]
    pub protocol: String,
}

impl PsEntry {
    /// The value of label `key`.
    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        self.labels.as_ref()?.get(key).map(String::as_str)
    }
}

/// Parses `podman ps --format json` output (an empty list prints `[]`, older podman nothing).
pub(crate) fn parse_ps(json: &str) -> Result<Vec<PsEntry>, serde_json::Error> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(json)
}

/// `--ulimit` values within what this process may grant.
///
/// Podman asks runc for its own defaults (1048576 open files, more processes than
/// `pid_max`), and runc's `setrlimit` fails with "operation not permitted" wherever the
/// caller's hard limits are lower, as in containers and sandboxes. Passing the caller's own
/// hard limits always works and loses nothing.
pub(crate) fn host_ulimits() -> Vec<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    ulimits_from(&limits, pid_max)
}

fn ulimits_from(limits: &str, pid_max: Option<u64>) -> Vec<String> {
    let nofile = hard_limit(limits, "Max open files").unwrap_or(1024);
    let nproc = hard_limit(limits, "Max processes")
        .unwrap_or(4096)
        // Some kernels (sandboxes) refuse RLIMIT_NPROC above pid_max even for root.
        .min(pid_max.unwrap_or(u64::MAX));
    vec![
        format!("nofile={nofile}:{nofile}"),
        format!("nproc={nproc}:{nproc}"),
    ]
}

/// The hard limit on the `/proc/<pid>/limits` line named `name`; `None` when unlimited.
fn hard_limit(limits: &str, name: &str) -> Option<u64> {
    let line = limits.lines().find(|line| line.starts_with(name))?;
    let mut values = line[name.len()..].split_whitespace();
    let _soft = values.next()?;
    values.next()?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn parses_podman_4_ps_json() {
        let json = r#"[{"AutoRemove":false,"Command":["httpd"],"Id":"542a","Labels":{"umbra.workload":"web","umbra.managed-by":"umbra"},
            "Names":["umbra-web-1"],"Pid":10391,"Ports":[{"host_ip":"127.0.0.1","container_port":8080,"host_port":18089,"range":1,"protocol":"tcp"}],
            "StartedAt":1795898142,"State":"running","Status":"Up 4 seconds ago"}]"#;
        let entries = parse_ps(json).unwrap();
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(
            (entry.id.as_str(), entry.pid, entry.state.as_str()),
            ("542a", 10391, "running")
        );
        assert_eq!(entry.label(WORKLOAD_LABEL), Some("web"));
        let port = &entry.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.host_ip.as_str(), port.host_port),
            ("127.0.0.1", 18089)
        );
        assert!(parse_ps("[]").unwrap().is_empty());
        assert!(parse_ps("\n").unwrap().is_empty());
        let exited =
            parse_ps(r#"[{"Id":"x","Labels":null,"Ports":null,"State":"exited"}]"#).unwrap();
        assert_eq!(exited[0].label(WORKLOAD_LABEL), None);
    }

    #[test]
    fn ulimits_follow_the_callers_hard_limits_and_pid_max() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             96365                96365                processes\n\
                      Max open files            20000                20000                files\n";
        assert_eq!(
            ulimits_from(limits, Some(32768)),
            ["nofile=20000:20000", "nproc=32768:32768"]
        );
        assert_eq!(
            ulimits_from(limits, None),
            ["nofile=20000:20000", "nproc=96365:96365"]
        );
        let unlimited =
            "Max processes             unlimited            unlimited            processes\n";
        assert_eq!(
            ulimits_from(unlimited, Some(4_194_304)),
            ["nofile=1024:1024", "nproc=4096:4096"]
        );
    }
}
