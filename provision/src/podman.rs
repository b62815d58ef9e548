//! Shadow-pool instances as podman containers, found again by label after a restart and
//! resized in place with `podman update` (replaced when that fails).
//!
//! Every container is named `umbra-<deployment>-<workload>-<n>`, labelled
//! `umbra.workload=<workload>`, `umbra.deployment=<deployment>` and `umbra.managed-by=umbra`
//! (only containers carrying all three are ever touched), publishes `template.container_port`
//! on a loopback port podman picks (race-free, unlike picking one first), and runs the image's
//! own entrypoint: `template.command` is the `process` backend's and is ignored here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::cgroup::limits_of_pid;
use super::podman_cli::{
    CPU_LABEL, DEPLOYMENT_LABEL, MANAGED_BY_LABEL, MEMORY_LABEL, PodmanCli, PsEntry,
    TEMPLATE_LABEL, WORKLOAD_LABEL, host_ulimits, parse_ps,
};
use super::ports::substitute_in_container;
use super::template_id::{check_local_name, fingerprint};
use super::workload_locks::WorkloadLocks;
use super::{Instance, InstanceTemplate, ProvisionError, Provisioner, Resources, ShadowTarget};

const BACKEND: &str = "podman";

/// How a running container gets a new size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodmanResize {
    /// `podman update --cpus --memory`: rewrites the container's cgroup, no restart (works
    /// with runc and cgroupfs on cgroup v1, checked by `tests/provision_podman.rs`). Falls
    /// back to replacement if `podman update` fails.
    InPlace,
    /// Remove the container and start a new one at the new size.
    Replace,
}

/// Settings of a [`PodmanProvisioner`].
#[derive(Clone, Debug)]
pub struct PodmanOptions {
    /// The podman binary. Default: `podman` (from `PATH`).
    pub program: PathBuf,
    /// Flags before every subcommand. Default: `--runtime=runc --cgroup-manager=cgroupfs
    /// --events-backend=file`, what works without systemd (crun fails on cgroup v1 hybrids).
    pub global_args: Vec<String>,
    /// `--ulimit` values for `podman run`. Default: this process's own hard limits for open
    /// files and processes (podman's defaults exceed them in containers, and runc then fails).
    pub ulimits: Vec<String>,
    /// Host address ports are published on. Default: 127.0.0.1.
    pub publish_ip: IpAddr,
    /// Seconds between SIGTERM and SIGKILL when a container is removed. Default: 5 s.
    pub stop_timeout: Duration,
    /// How containers are resized. Default: [`PodmanResize::InPlace`].
    pub resize: PodmanResize,
    /// Where cgroups are mounted, to read a container's current limits. Default:
    /// `/sys/fs/cgroup`.
    pub cgroup_fs: PathBuf,
    /// Which controller's containers these are ([`super::deployment_id`] of its state
    /// directory): part of every name and label. Default: `default`.
    pub deployment: String,
}

impl Default for PodmanOptions {
    fn default() -> Self {
        Self {
            program: PathBuf::from("podman"),
            global_args: [
                "--runtime=runc",
                "--cgroup-manager=cgroupfs",
                "--events-backend=file",
            ]
            .map(String::from)
            .to_vec(),
            ulimits: host_ulimits(),
            publish_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            stop_timeout: Duration::from_secs(5),
            resize: PodmanResize::InPlace,
            cgroup_fs: PathBuf::from("/sys/fs/cgroup"),
            deployment: "default".to_string(),
        }
    }
}

/// Runs shadow-pool instances as podman containers. See the module docs.
pub struct PodmanProvisioner {
    cli: PodmanCli,
    options: PodmanOptions,
    /// Serialises operations on one workload (e.g. two `scale`s picking the same name).
    locks: WorkloadLocks<()>,
}

/// One of umbra's containers, as read back from podman.
#[derive(Clone, Debug)]
struct Container {
    id: String,
    name: String,
    running: bool,
    addr: Option<SocketAddr>,
    template: String,
    resources: Resources,
    started_at: SystemTime,
}

impl Container {
    fn instance(&self) -> Option<Instance> {
        Some(Instance {
            id: self.id.clone(),
            addr: self.addr?,
            resources: self.resources,
            started_at: self.started_at,
        })
    }
}

impl PodmanProvisioner {
    /// A provisioner driving the podman CLI with `options`; nothing is run until used (see
    /// [`version`](Self::version) for an early check that podman works).
    pub fn new(options: PodmanOptions) -> Self {
        let cli = PodmanCli {
            program: options.program.clone(),
            global_args: options.global_args.clone(),
        };
        Self {
            cli,
            options,
            locks: WorkloadLocks::default(),
        }
    }

    /// `podman --version`: fails, naming what to install, when podman is missing.
    pub async fn version(&self) -> Result<String, ProvisionError> {
        let out = self.cli.run(&["--version".to_string()]).await?;
        Ok(out.trim().to_string())
    }

    /// All of umbra's containers of `workload`, running or not.
    async fn list(&self, workload: &str) -> Result<Vec<Container>, ProvisionError> {
        let mut args = args(&["ps", "--all", "--format", "json", "--filter"]);
        args.push(format!("label={WORKLOAD_LABEL}={workload}"));
        let json = self.cli.run(&args).await?;
        let entries =
            parse_ps(&json).map_err(|e| backend(format!("reading `podman ps` output: {e}")))?;
        Ok(entries
            .into_iter()
            // podman ORs repeated label filters, so the others are checked here.
            .filter(|e| {
                e.label(MANAGED_BY_LABEL) == Some("umbra")
                    && e.label(WORKLOAD_LABEL) == Some(workload)
                    && e.label(DEPLOYMENT_LABEL) == Some(self.options.deployment.as_str())
            })
            .map(|e| container(&e, &self.options.cgroup_fs))
            .collect())
    }

    /// `podman run -d` of one new container; returns its id.
    async fn run(
        &self,
        template: &InstanceTemplate,
        image: &str,
        name: &str,
        resources: Resources,
    ) -> Result<String, ProvisionError> {
        let workload = &template.workload;
        let mut run = args(&["run", "--detach", "--name", name]);
        run.extend(labels(
            workload,
            &self.options.deployment,
            &fingerprint(template),
            resources,
        ));
        run.extend(size_flags(resources));
        for ulimit in &self.options.ulimits {
            run.extend(["--ulimit".to_string(), ulimit.clone()]);
        }
        let publish = SocketAddr::new(self.options.publish_ip, 0);
        let publish_ip = match publish.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        run.extend([
            "--publish".to_string(),
            format!("{publish_ip}::{}", template.container_port),
        ]);
        for (key, value) in &template.env {
            run.extend([
                "--env".to_string(),
                format!(
                    "{key}={}",
                    substitute_in_container(value, template.container_port)
                ),
            ]);
        }
        run.push(image.to_string());
        let id = self.cli.run(&run).await?.trim().to_string();
        tracing::info!(
            workload = %workload,
            container = %name,
            id = %short(&id),
            cpu_millis = resources.cpu_millis,
            memory_mib = resources.memory_mib,
            "started container"
        );
        Ok(id)
    }

    /// Removes containers (SIGTERM, `stop_timeout`, SIGKILL), all in one podman call.
    async fn remove(&self, workload: &str, victims: &[Container]) -> Result<(), ProvisionError> {
        if victims.is_empty() {
            return Ok(());
        }
        let mut rm = args(&["rm", "--force", "--ignore", "--time"]);
        rm.push(self.options.stop_timeout.as_secs().to_string());
        rm.extend(victims.iter().map(|c| c.id.clone()));
        self.cli.run(&rm).await?;
        for victim in victims {
            tracing::info!(workload, container = %victim.name, id = %short(&victim.id), running = victim.running, "removed container");
        }
        Ok(())
    }

    /// Resizes one container in place; `Ok(false)` when it has to be replaced instead.
    async fn update(&self, workload: &str, container: &Container, to: Resources) -> bool {
        if self.options.resize == PodmanResize::Replace || to.cpu_millis == 0 || to.memory_mib == 0
        {
            // Lifting a limit ("0") is not something `podman update` flags express uniformly.
            return false;
        }
        let mut update = args(&["update"]);
        update.extend(size_flags(to));
        update.push(container.id.clone());
        match self.cli.run(&update).await {
            Ok(_) => {
                tracing::info!(
                    workload,
                    container = %container.name,
                    from_cpu_millis = container.resources.cpu_millis,
                    from_memory_mib = container.resources.memory_mib,
                    cpu_millis = to.cpu_millis,
                    memory_mib = to.memory_mib,
                    "resized container in place"
                );
                true
            }
            Err(e) => {
                tracing::warn!(workload, container = %container.name, error = %e, "podman update failed; replacing the container instead");
                false
            }
        }
    }

    /// Starts containers until `wanted` are running, named by the lowest free numbers.
    async fn start_missing(
        &self,
        template: &InstanceTemplate,
        image: &str,
        resources: Resources,
        existing: &[Container],
        wanted: usize,
    ) -> Result<Vec<String>, ProvisionError> {
        let mut names: Vec<String> = existing.iter().map(|c| c.name.clone()).collect();
        let mut started = Vec::new();
        for _ in existing.len()..wanted {
            let name = (1..)
                .map(|n| {
                    format!(
                        "umbra-{}-{}-{n}",
                        self.options.deployment, template.workload
                    )
                })
                .find(|name| !names.contains(name))
                .unwrap_or_default();
            started.push(self.run(template, image, &name, resources).await?);
            names.push(name);
        }
        Ok(started)
    }
}

fn check_template(template: &InstanceTemplate) -> Result<&str, ProvisionError> {
    check_local_name(BACKEND, &template.workload)?;
    match template.image.as_deref() {
        Some(image) if !image.is_empty() => Ok(image),
        _ => Err(ProvisionError::Template {
            backend: BACKEND,
            workload: template.workload.clone(),
            message: "no image to run (template.image is not set)".into(),
        }),
    }
}

fn container(entry: &PsEntry, cgroup_fs: &Path) -> Container {
    let running = entry.state == "running";
    let addr = entry
        .ports
        .iter()
        .flatten()
        .find(|p| p.protocol.is_empty() || p.protocol == "tcp")
        .and_then(|p| {
            let ip: IpAddr = p.host_ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            (p.host_port != 0).then_some(SocketAddr::new(ip, p.host_port))
        });
    let labelled = Resources {
        cpu_millis: entry
            .label(CPU_LABEL)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        memory_mib: entry
            .label(MEMORY_LABEL)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    };
    // The cgroup is the truth after `podman update` (podman 4.3's inspect still shows the
    // creation size, and labels cannot change).
    let resources = (running && entry.pid != 0)
        .then(|| limits_of_pid(cgroup_fs, entry.pid))
        .flatten()
        .unwrap_or(labelled);
    Container {
        id: entry.id.clone(),
        name: entry
            .names
            .first()
            .cloned()
            .unwrap_or_else(|| short(&entry.id).to_string()),
        running,
        addr,
        template: entry.label(TEMPLATE_LABEL).unwrap_or_default().to_string(),
        resources,
        started_at: SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(entry.started_at).unwrap_or(0)),
    }
}

fn labels(
    workload: &str,
    deployment: &str,
    template_id: &str,
    resources: Resources,
) -> Vec<String> {
    [
        (WORKLOAD_LABEL, workload.to_string()),
        (DEPLOYMENT_LABEL, deployment.to_string()),
        (MANAGED_BY_LABEL, "umbra".to_string()),
        (TEMPLATE_LABEL, template_id.to_string()),
        (CPU_LABEL, resources.cpu_millis.to_string()),
        (MEMORY_LABEL, resources.memory_mib.to_string()),
    ]
    .into_iter()
    .flat_map(|(key, value)| ["--label".to_string(), format!("{key}={value}")])
    .collect()
}

/// `--cpus 0.250 --memory 64m`; a 0 leaves that limit off.
fn size_flags(resources: Resources) -> Vec<String> {
    let mut flags = Vec::new();
    if resources.cpu_millis > 0 {
        let cpus = format!(
            "{}.{:03}",
            resources.cpu_millis / 1000,
            resources.cpu_millis % 1000
        );
        flags.extend(["--cpus".to_string(), cpus]);
    }
    if resources.memory_mib > 0 {
        flags.extend(["--memory".to_string(), format!("{}m", resources.memory_mib)]);
    }
    flags
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn backend(message: String) -> ProvisionError {
    ProvisionError::Backend {
        backend: BACKEND,
        message,
    }
}

#[async_trait]
impl Provisioner for PodmanProvisioner {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn scale(
        &self,
        template: &InstanceTemplate,
        target: ShadowTarget,
    ) -> Result<Vec<Instance>, ProvisionError> {
        let image = check_template(template)?;
        let workload = template.workload.as_str();
        let lock = self.locks.get(workload);
        let _held = lock.lock().await;
        let template_id = fingerprint(template);
        let (mut keep, mut doomed): (Vec<_>, Vec<_>) = self
            .list(workload)
            .await?
            .into_iter()
            .partition(|c| c.running && c.template == template_id);
        if doomed.iter().any(|c| c.running) {
            tracing::info!(
                workload,
                "template changed; replacing containers started from the old one"
            );
        }
        let wanted = usize::try_from(target.instances).unwrap_or(usize::MAX);
        if keep.len() > wanted {
            // Keep the oldest: they are warm.
            // podman reports start times in whole seconds: the name breaks ties.
            keep.sort_by(|a, b| (a.started_at, &a.name).cmp(&(b.started_at, &b.name)));
            doomed.extend(keep.split_off(wanted));
        }
        let mut resized = Vec::new();
        for container in keep {
            if container.resources == target.resources
                || self.update(workload, &container, target.resources).await
            {
                resized.push(container);
            } else {
                doomed.push(container);
            }
        }
        self.remove(workload, &doomed).await?;
        self.start_missing(template, image, target.resources, &resized, wanted)
            .await?;
        self.running(workload).await
    }

    async fn instances(&self, workload: &str) -> Result<Vec<Instance>, ProvisionError> {
        check_local_name(BACKEND, workload)?;
        self.running(workload).await
    }

    async fn replace(
        &self,
        template: &InstanceTemplate,
        instance_id: &str,
    ) -> Result<Instance, ProvisionError> {
        let image = check_template(template)?;
        let workload = template.workload.as_str();
        let lock = self.locks.get(workload);
        let _held = lock.lock().await;
        let containers = self.list(workload).await?;
        let Some(old) = containers
            .iter()
            .find(|c| c.id == instance_id || c.name == instance_id)
            .cloned()
        else {
            return Err(backend(format!(
                "workload {workload} has no container {instance_id}"
            )));
        };
        self.remove(workload, std::slice::from_ref(&old)).await?;
        let id = self.run(template, image, &old.name, old.resources).await?;
        let new = self
            .list(workload)
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .and_then(|c| c.instance())
            .ok_or_else(|| {
                backend(format!(
                    "container {} ({}) is not running after start",
                    old.name,
                    short(&id)
                ))
            })?;
        tracing::info!(workload, container = %old.name, old_id = %short(&old.id), id = %short(&id), "replaced container");
        Ok(new)
    }

    async fn stop_all(&self, workload: &str) -> Result<(), ProvisionError> {
        check_local_name(BACKEND, workload)?;
        let lock = self.locks.get(workload);
        let _held = lock.lock().await;
        let all = self.list(workload).await?;
        self.remove(workload, &all).await?;
        tracing::info!(workload, count = all.len(), "stopped all containers");
        Ok(())
    }
}

impl PodmanProvisioner {
    async fn running(&self, workload: &str) -> Result<Vec<Instance>, ProvisionError> {
        let mut containers = self.list(workload).await?;
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(containers
            .iter()
            .filter(|c| c.running)
            .filter_map(Container::instance)
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn size_flags_format_cpus_as_decimal_cores_and_memory_in_mib() {
        let flags = size_flags(Resources {
            cpu_millis: 250,
            memory_mib: 64,
        });
        assert_eq!(flags, ["--cpus", "0.250", "--memory", "64m"]);
        let flags = size_flags(Resources {
            cpu_millis: 1500,
            memory_mib: 0,
        });
        assert_eq!(flags, ["--cpus", "1.500"]);
    }

    #[test]
    fn labels_name_workload_deployment_owner_template_and_size() {
        let labels = labels(
            "web",
            "1a2b3c4d",
            "abc",
            Resources {
                cpu_millis: 250,
                memory_mib: 64,
            },
        );
        assert_eq!(
            labels,
            [
                "--label",
                "umbra.workload=web",
                "--label",
                "umbra.deployment=1a2b3c4d",
                "--label",
                "umbra.managed-by=umbra",
                "--label",
                "umbra.template=abc",
                "--label",
                "umbra.cpu-millis=250",
                "--label",
                "umbra.memory-mib=64"
            ]
        );
    }

    #[test]
    fn templates_without_an_image_are_rejected_naming_the_field() {
        let template = InstanceTemplate {
            workload: "web".into(),
            command: vec![],
            image: None,
            container_port: 8080,
            health_path: None,
            env: Default::default(),
        };
        let err = check_template(&template).unwrap_err().to_string();
        assert!(err.contains("template.image"), "{err}");
    }
}
