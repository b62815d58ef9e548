//! The embedded default provisioner: instances are local child processes on free loopback
//! ports, each in its own process group and (where writable) its own cgroup with CPU and
//! memory limits, recorded in a state file so a restarted controller finds them again.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use super::cgroup::CgroupRoot;
use super::ports::{pick_free_port, substitute};
use super::proc_identity::{Identity, identify, read_stat};
use super::process_state::{self, InstanceRecord, PoolFile};
use super::process_stop::{self, has_exited};
use super::template_id::{check_local_name, deployment_id, fingerprint};
use super::workload_locks::WorkloadLocks;
use super::{Instance, InstanceTemplate, ProvisionError, Provisioner, Resources, ShadowTarget};

const BACKEND: &str = "process";

/// Settings of a [`ProcessProvisioner`].
#[derive(Clone, Debug)]
pub struct ProcessOptions {
    /// How long an instance gets between SIGTERM and SIGKILL. Default: 5 s.
    pub stop_grace: Duration,
    /// Whether to try cgroup limits at all. Default: `true` (used when writable).
    pub use_cgroups: bool,
    /// The cgroup filesystem. Default: `/sys/fs/cgroup`.
    pub cgroup_fs: PathBuf,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            stop_grace: Duration::from_secs(5),
            use_cgroups: true,
            cgroup_fs: PathBuf::from("/sys/fs/cgroup"),
        }
    }
}

/// Runs shadow-pool instances as local processes. See the module docs.
pub struct ProcessProvisioner {
    /// `<state_dir>/process`: one `<workload>.json` each, logs under `logs/`.
    dir: PathBuf,
    options: ProcessOptions,
    /// `None` when limits cannot be enforced here (the reason was logged once).
    cgroups: Option<CgroupRoot>,
    /// Names this controller's cgroups apart from another's on the same host.
    deployment: String,
    /// A `scale` and a `replace` of one workload never interleave.
    pools: WorkloadLocks<Pool>,
}

/// One workload's instances, loaded from its state file on first use.
#[derive(Default)]
struct Pool {
    loaded: bool,
    records: Vec<InstanceRecord>,
    /// Handles of the processes this controller spawned (adopted ones are not our children).
    children: HashMap<u32, Child>,
}

impl ProcessProvisioner {
    /// A provisioner keeping its state and instance logs under `state_dir/process/`.
    ///
    /// Detects cgroups (v2 when `<cgroup_fs>/cgroup.controllers` exists, else v1 `cpu` and
    /// `memory` hierarchies) and creates umbra's parent group below the controller's own; if
    /// that is impossible, instances run without limits and the reason is logged once (see
    /// [`limits_enforced`](Self::limits_enforced)). Instances from an earlier controller are
    /// adopted from the state files when a workload is first touched.
    pub fn new(state_dir: PathBuf, options: ProcessOptions) -> Result<Self, ProvisionError> {
        let dir = state_dir.join("process");
        std::fs::create_dir_all(dir.join("logs"))
            .map_err(|e| backend(format!("cannot create {}: {e}", dir.display())))?;
        let cgroups = if options.use_cgroups {
            let self_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            match CgroupRoot::detect(&options.cgroup_fs, &self_cgroup) {
                Ok(root) => {
                    tracing::info!(cgroups = ?root, "process instances get cgroup CPU and memory limits");
                    Some(root)
                }
                Err(reason) => {
                    tracing::warn!(%reason, "cgroups not writable: process instances run WITHOUT CPU or memory limits");
                    None
                }
            }
        } else {
            tracing::info!(
                "cgroups disabled by configuration: process instances run without limits"
            );
            None
        };
        // Two controllers on one host (two `umbra up`s, a test suite running stacks in
        // parallel) may both run a workload called `api`: their groups must never be the same,
        // or stopping one's `api-2` kills the other's. The state directory tells them apart.
        let deployment = deployment_id(&dir);
        Ok(Self {
            dir,
            options,
            cgroups,
            deployment,
            pools: WorkloadLocks::default(),
        })
    }

    /// Whether instances really get their CPU and memory limits (cgroups were writable).
    pub fn limits_enforced(&self) -> bool {
        self.cgroups.is_some()
    }

    /// The state file of `workload` (JSON, replaced atomically on every change).
    pub fn state_file(&self, workload: &str) -> PathBuf {
        process_state::path(&self.dir, workload)
    }

    /// The cgroup directory holding `workload`'s instances: `<workload>.<deployment>`.
    fn cgroup_group(&self, workload: &str) -> String {
        format!("{workload}.{}", self.deployment)
    }

    /// The file an instance's stdout and stderr go to.
    pub fn log_file(&self, workload: &str, slot: u32) -> PathBuf {
        self.dir.join("logs").join(format!("{workload}-{slot}.log"))
    }

    /// Loads the state file once, adopting live instances and forgetting dead ones, then
    /// drops instances that exited since (recorded in the state file at once).
    async fn refresh(&self, workload: &str, pool: &mut Pool) -> Result<(), ProvisionError> {
        let mut forgotten = Vec::new();
        if !pool.loaded {
            let file = process_state::load(&self.state_file(workload))
                .await
                .map_err(|e| backend(format!("reading state: {e}")))?;
            for record in file.map(|f| f.instances).unwrap_or_default() {
                let identity = identify(record.pid, record.start_ticks, &record.argv)
                    .map_err(|e| backend(format!("checking pid {}: {e}", record.pid)))?;
                match identity {
                    Identity::Ours => {
                        let mut record = record;
                        // The kernel's limits are the truth: a crash between writing them and
                        // saving the state file leaves the file one resize behind.
                        if let Some(Ok(actual)) = record.cgroup.as_ref().map(|g| g.read()) {
                            record.resources = actual;
                        }
                        tracing::info!(
                            workload,
                            pid = record.pid,
                            port = record.port,
                            "adopted running instance"
                        );
                        pool.records.push(record);
                    }
                    Identity::Gone => {
                        tracing::info!(
                            workload,
                            pid = record.pid,
                            "instance in the state file has exited; forgetting it"
                        );
                        forgotten.push(record);
                    }
                    Identity::Stranger(why) => {
                        // Never signal it: it is not ours. Our cgroup, though, only ever held ours.
                        tracing::warn!(workload, pid = record.pid, %why, "pid now belongs to another process; forgetting the instance");
                        forgotten.push(record);
                    }
                }
            }
            pool.loaded = true;
        }
        let Pool {
            records, children, ..
        } = pool;
        let (exited, alive): (Vec<_>, Vec<_>) = std::mem::take(records)
            .into_iter()
            .partition(|r| has_exited(r, children));
        *records = alive;
        for record in &exited {
            tracing::warn!(
                workload,
                pid = record.pid,
                port = record.port,
                "instance exited"
            );
            children.remove(&record.pid);
        }
        forgotten.extend(exited);
        if !forgotten.is_empty() {
            for record in &forgotten {
                process_stop::remove_cgroup(record).await;
            }
            self.persist(workload, pool).await?;
        }
        Ok(())
    }

    async fn persist(&self, workload: &str, pool: &Pool) -> Result<(), ProvisionError> {
        let mut file = PoolFile::new(workload);
        file.instances.clone_from(&pool.records);
        process_state::save(&self.state_file(workload), &file)
            .await
            .map_err(|e| backend(format!("writing state of {workload}: {e}")))
    }

    /// Starts one instance and records it before returning.
    async fn start(
        &self,
        template: &InstanceTemplate,
        template_id: &str,
        resources: Resources,
        pool: &mut Pool,
    ) -> Result<InstanceRecord, ProvisionError> {
        let workload = template.workload.as_str();
        let slot = (1..)
            .find(|n| pool.records.iter().all(|r| r.slot != *n))
            .unwrap_or_default();
        let taken: BTreeSet<u16> = pool.records.iter().map(|r| r.port).collect();
        let port = pick_free_port(&taken).map_err(|e| backend(format!("no free port: {e}")))?;
        let argv: Vec<String> = template
            .command
            .iter()
            .map(|a| substitute(a, port))
            .collect();
        let cgroup = match &self.cgroups {
            Some(root) => {
                let group = root
                    .create(&self.cgroup_group(workload), &format!("{workload}-{slot}"))
                    .and_then(|group| group.apply(resources).map(|()| group))
                    .map_err(|e| backend(format!("cgroup for {workload}-{slot}: {e}")))?;
                Some(group)
            }
            None => None,
        };
        let log_path = self.log_file(workload, slot);
        let (stdout, stderr) = open_log(&log_path, &argv)
            .await
            .map_err(|e| backend(format!("log file {}: {e}", log_path.display())))?;
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .envs(template.env.iter().map(|(k, v)| (k, substitute(v, port))))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own group: one signal stops everything it forked, and a ^C aimed at the
            // controller's terminal does not reach it.
            .process_group(0)
            // A controller crash must not take the pool down; the next controller adopts it.
            .kill_on_drop(false);
        let child = command.spawn().map_err(|e| {
            if let Some(group) = &cgroup {
                // Best effort: an empty leftover group costs nothing and is reused by the slot.
                let _best_effort = group.remove();
                if let (Some(root), true) = (&self.cgroups, pool.records.is_empty()) {
                    let _best_effort = root.remove_workload(&self.cgroup_group(workload));
                }
            }
            backend(format!("starting {argv:?}: {e}"))
        })?;
        let pid = child
            .id()
            .ok_or_else(|| backend(format!("{argv:?} exited at once")))?;
        let start_ticks = read_stat(pid)
            .ok()
            .flatten()
            .map(|stat| stat.start_ticks)
            .ok_or_else(|| backend(format!("{argv:?} (pid {pid}) exited at once")))?;
        let record = InstanceRecord {
            pid,
            start_ticks,
            argv,
            template: template_id.to_string(),
            slot,
            port,
            started_at: SystemTime::now(),
            resources,
            cgroup,
        };
        pool.children.insert(pid, child);
        // A moment unlimited, rather than the `unsafe` pre_exec hook it would take to join
        // the group before exec (the workspace forbids unsafe code).
        if let Some(Err(e)) = record.cgroup.as_ref().map(|group| group.add(pid)) {
            process_stop::stop_all(
                std::slice::from_ref(&record),
                &mut pool.children,
                Duration::ZERO,
            )
            .await;
            return Err(backend(format!("moving pid {pid} into its cgroup: {e}")));
        }
        pool.records.push(record.clone());
        self.persist(workload, pool).await?;
        tracing::info!(
            workload,
            pid,
            port,
            slot,
            cpu_millis = resources.cpu_millis,
            memory_mib = resources.memory_mib,
            limits_enforced = record.cgroup.is_some(),
            "started instance"
        );
        Ok(record)
    }

    /// Stops `victims` (already checked to be ours), then forgets them. Stopping before
    /// forgetting means a crash in between leaves a dead pid in the state file (forgotten on
    /// restart), never a live process missing from it.
    async fn stop(
        &self,
        workload: &str,
        victims: &[InstanceRecord],
        pool: &mut Pool,
    ) -> Result<(), ProvisionError> {
        process_stop::stop_all(victims, &mut pool.children, self.options.stop_grace).await;
        pool.records
            .retain(|r| victims.iter().all(|v| v.pid != r.pid));
        for victim in victims {
            tracing::info!(
                workload,
                pid = victim.pid,
                port = victim.port,
                "stopped instance"
            );
        }
        self.persist(workload, pool).await
    }
}

/// Opens (appending) the log file of an instance slot, marks where this start begins, and
/// returns it twice, for stdout and stderr.
async fn open_log(path: &Path, argv: &[String]) -> std::io::Result<(Stdio, Stdio)> {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    let stamp = humantime_like(SystemTime::now());
    file.write_all(format!("--- umbra: starting {argv:?} at {stamp} ---\n").as_bytes())
        .await?;
    let file = file.into_std().await;
    Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
}

/// Seconds since the epoch: enough to find a start in the log without a date library.
fn humantime_like(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("unix {secs}")
}

fn template_error(template: &InstanceTemplate, message: &str) -> ProvisionError {
    ProvisionError::Template {
        backend: BACKEND,
        workload: template.workload.clone(),
        message: message.to_string(),
    }
}

fn check_template(template: &InstanceTemplate) -> Result<(), ProvisionError> {
    check_local_name(BACKEND, &template.workload)?;
    match template.command.first() {
        Some(program) if !program.is_empty() => Ok(()),
        _ => Err(template_error(
            template,
            "no command to run (template.command is empty)",
        )),
    }
}

fn backend(message: String) -> ProvisionError {
    ProvisionError::Backend {
        backend: BACKEND,
        message,
    }
}

#[async_trait]
impl Provisioner for ProcessProvisioner {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn scale(
        &self,
        template: &InstanceTemplate,
        target: ShadowTarget,
    ) -> Result<Vec<Instance>, ProvisionError> {
        check_template(template)?;
        let workload = template.workload.as_str();
        let pool = self.pools.get(workload);
        let mut pool = pool.lock().await;
        self.refresh(workload, &mut pool).await?;
        let template_id = fingerprint(template);

        let outdated: Vec<_> = pool
            .records
            .iter()
            .filter(|r| r.template != template_id)
            .cloned()
            .collect();
        if !outdated.is_empty() {
            tracing::info!(
                workload,
                count = outdated.len(),
                "template changed; replacing instances started from the old one"
            );
            self.stop(workload, &outdated, &mut pool).await?;
        }

        let mut resized = false;
        for record in pool
            .records
            .iter_mut()
            .filter(|r| r.resources != target.resources)
        {
            if let Some(group) = &record.cgroup {
                group
                    .apply(target.resources)
                    .map_err(|e| backend(format!("resizing pid {} in place: {e}", record.pid)))?;
            }
            tracing::info!(
                workload,
                pid = record.pid,
                from_cpu_millis = record.resources.cpu_millis,
                from_memory_mib = record.resources.memory_mib,
                cpu_millis = target.resources.cpu_millis,
                memory_mib = target.resources.memory_mib,
                limits_enforced = record.cgroup.is_some(),
                "resized instance in place"
            );
            record.resources = target.resources;
            resized = true;
        }
        if resized {
            self.persist(workload, &pool).await?;
        }

        let wanted = usize::try_from(target.instances).unwrap_or(usize::MAX);
        if pool.records.len() > wanted {
            // Keep the oldest: they are warm.
            let mut by_age = pool.records.clone();
            by_age.sort_by_key(|r| std::cmp::Reverse(r.started_at));
            let surplus: Vec<_> = by_age
                .into_iter()
                .take(pool.records.len() - wanted)
                .collect();
            self.stop(workload, &surplus, &mut pool).await?;
        }
        while pool.records.len() < wanted {
            self.start(template, &template_id, target.resources, &mut pool)
                .await?;
        }
        Ok(pool.records.iter().map(InstanceRecord::instance).collect())
    }

    async fn instances(&self, workload: &str) -> Result<Vec<Instance>, ProvisionError> {
        check_local_name(BACKEND, workload)?;
        let pool = self.pools.get(workload);
        let mut pool = pool.lock().await;
        self.refresh(workload, &mut pool).await?;
        Ok(pool.records.iter().map(InstanceRecord::instance).collect())
    }

    async fn replace(
        &self,
        template: &InstanceTemplate,
        instance_id: &str,
    ) -> Result<Instance, ProvisionError> {
        check_template(template)?;
        let workload = template.workload.as_str();
        let pool = self.pools.get(workload);
        let mut pool = pool.lock().await;
        self.refresh(workload, &mut pool).await?;
        let Some(old) = pool
            .records
            .iter()
            .find(|r| r.pid.to_string() == instance_id)
            .cloned()
        else {
            return Err(backend(format!(
                "workload {workload} has no running instance {instance_id}"
            )));
        };
        self.stop(workload, std::slice::from_ref(&old), &mut pool)
            .await?;
        let new = self
            .start(template, &fingerprint(template), old.resources, &mut pool)
            .await?;
        tracing::info!(
            workload,
            old_pid = old.pid,
            pid = new.pid,
            port = new.port,
            "replaced instance"
        );
        Ok(new.instance())
    }

    async fn stop_all(&self, workload: &str) -> Result<(), ProvisionError> {
        check_local_name(BACKEND, workload)?;
        let pool = self.pools.get(workload);
        let mut pool = pool.lock().await;
        self.refresh(workload, &mut pool).await?;
        let all = pool.records.clone();
        self.stop(workload, &all, &mut pool).await?;
        process_state::remove(&self.state_file(workload))
            .await
            .map_err(|e| backend(format!("removing state of {workload}: {e}")))?;
        if let Some(root) = &self.cgroups {
            if let Err(e) = root.remove_workload(&self.cgroup_group(workload)) {
                tracing::warn!(workload, error = %e, "could not remove the workload's cgroup");
            }
        }
        tracing::info!(workload, count = all.len(), "stopped all instances");
        Ok(())
    }
}
