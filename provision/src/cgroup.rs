//! CPU and memory limits for local instances through cgroups, v1 (`cpu` + `memory`
//! hierarchies) or v2 (unified), rewritten in place when an instance is resized.
//!
//! Groups go under an `umbra/<group>/<instance>` subtree of the controller's *own* group in
//! each hierarchy, not at the root: the instances then stay inside whatever limits and
//! accounting the controller itself runs under (a container, a systemd unit, a sandbox).
//! The process provisioner names the group `<workload>.<deployment>`, so two controllers on
//! one host never share one.

use std::io;
use std::path::{Path, PathBuf};

use super::Resources;

/// The CFS period written with every quota: 100 ms, the kernel's default.
const CFS_PERIOD_US: u64 = 100_000;
/// The kernel refuses quotas below 1 ms.
const MIN_CFS_QUOTA_US: u64 = 1_000;
/// v1 reports "no memory limit" as LONG_MAX rounded down to a page; anything this large is
/// no limit.
const V1_UNLIMITED_MEMORY: u64 = 1 << 62;
const MIB: u64 = 1024 * 1024;

/// Where umbra's groups are created, once detection succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CgroupRoot {
    /// `umbra` directories in the `cpu` and the `memory` hierarchy.
    V1 { cpu: PathBuf, memory: PathBuf },
    /// The `umbra` directory in the unified hierarchy, with `cpu` and `memory` delegated to it.
    V2 { dir: PathBuf },
}

/// One instance's group(s); stored in the state file so a restarted controller can resize and
/// remove them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "version", rename_all = "lowercase")]
pub(crate) enum InstanceCgroup {
    /// One directory per hierarchy.
    V1 { cpu: PathBuf, memory: PathBuf },
    /// One directory.
    V2 { dir: PathBuf },
}

impl CgroupRoot {
    /// Finds a writable cgroup hierarchy under `sys_root` (normally `/sys/fs/cgroup`) and creates
    /// umbra's parent group in it, below the group `self_cgroup` (the text of
    /// `/proc/self/cgroup`) puts the controller in. `Err` says why limits cannot be enforced.
    pub(crate) fn detect(sys_root: &Path, self_cgroup: &str) -> Result<Self, String> {
        if sys_root.join("cgroup.controllers").is_file() {
            let own = own_group(self_cgroup, None).ok_or("no v2 entry in /proc/self/cgroup")?;
            let dir = under(sys_root, &own).join("umbra");
            create_dir(&dir)?;
            enable_v2_controllers(&dir)?;
            return Ok(Self::V2 { dir });
        }
        let (cpu_mount, memory_mount) = (sys_root.join("cpu"), sys_root.join("memory"));
        if !cpu_mount.join("cpu.cfs_quota_us").is_file()
            || !memory_mount.join("memory.limit_in_bytes").is_file()
        {
            return Err(format!(
                "no cgroup v2 ({0}/cgroup.controllers) nor v1 cpu and memory hierarchies under {0}",
                sys_root.display()
            ));
        }
        let cpu_own = own_group(self_cgroup, Some("cpu")).unwrap_or_default();
        let memory_own = own_group(self_cgroup, Some("memory")).unwrap_or_default();
        let cpu = under(&cpu_mount, &cpu_own).join("umbra");
        let memory = under(&memory_mount, &memory_own).join("umbra");
        // Creating them proves they are writable; they are made again on first use, and
        // not left behind by a controller that never starts an instance.
        for dir in [&cpu, &memory] {
            create_dir(dir)?;
            let _in_use_by_another_controller = std::fs::remove_dir(dir);
        }
        Ok(Self::V1 { cpu, memory })
    }

    /// Creates (or reuses) the group of instance `name` of `workload`.
    pub(crate) fn create(&self, workload: &str, name: &str) -> io::Result<InstanceCgroup> {
        match self {
            Self::V1 { cpu, memory } => {
                let group = InstanceCgroup::V1 {
                    cpu: cpu.join(workload).join(name),
                    memory: memory.join(workload).join(name),
                };
                for dir in group.dirs() {
                    std::fs::create_dir_all(dir)?;
                }
                Ok(group)
            }
            Self::V2 { dir } => {
                let workload_dir = dir.join(workload);
                std::fs::create_dir_all(&workload_dir)?;
                // v2 only hands a controller to children whose parent lists it; `umbra` may
                // have been removed and made again since detection.
                write(&dir.join("cgroup.subtree_control"), "+cpu +memory")?;
                write(&workload_dir.join("cgroup.subtree_control"), "+cpu +memory")?;
                let dir = workload_dir.join(name);
                std::fs::create_dir_all(&dir)?;
                Ok(InstanceCgroup::V2 { dir })
            }
        }
    }

    /// Removes the (now empty) `umbra/<workload>` groups, and `umbra` itself once no other
    /// workload uses it: a leftover child group would keep whoever manages the controller's
    /// own group (a container runtime, a sandbox) from removing that group.
    pub(crate) fn remove_workload(&self, workload: &str) -> io::Result<()> {
        let roots = match self {
            Self::V1 { cpu, memory } => vec![cpu, memory],
            Self::V2 { dir } => vec![dir],
        };
        for root in roots {
            remove_dir(&root.join(workload))?;
            // Fails (busy, not empty) while another workload has groups there: that is fine.
            let _still_in_use = std::fs::remove_dir(root);
        }
        Ok(())
    }
}

impl InstanceCgroup {
    fn dirs(&self) -> Vec<&Path> {
        match self {
            Self::V1 { cpu, memory } => vec![cpu, memory],
            Self::V2 { dir } => vec![dir],
        }
    }

    /// Writes the limits for `resources` (0 means no limit); safe on a running instance.
    pub(crate) fn apply(&self, resources: Resources) -> io::Result<()> {
        let quota = cfs_quota_us(resources.cpu_millis);
        let memory = u64::from(resources.memory_mib) * MIB;
        match self {
            Self::V1 { cpu, memory: mem } => {
                write(&cpu.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
                let quota = quota.map_or("-1".to_string(), |q| q.to_string());
                write(&cpu.join("cpu.cfs_quota_us"), &quota)?;
                let bytes = if memory == 0 {
                    "-1".to_string()
                } else {
                    memory.to_string()
                };
                write(&mem.join("memory.limit_in_bytes"), &bytes)
            }
            Self::V2 { dir } => {
                let quota = quota.map_or("max".to_string(), |q| q.to_string());
                write(&dir.join("cpu.max"), &format!("{quota} {CFS_PERIOD_US}"))?;
                let bytes = if memory == 0 {
                    "max".to_string()
                } else {
                    memory.to_string()
                };
                write(&dir.join("memory.max"), &bytes)
            }
        }
    }

    /// Moves `pid` into the group (in every hierarchy).
    pub(crate) fn add(&self, pid: u32) -> io::Result<()> {
        for dir in self.dirs() {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The pids still in the group (anything an instance forked, even if it left the
    /// instance's process group).
    pub(crate) fn pids(&self) -> io::Result<Vec<u32>> {
        let Some(dir) = self.dirs().into_iter().next() else {
            return Ok(Vec::new());
        };
        match std::fs::read_to_string(dir.join("cgroup.procs")) {
            Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Reads the limits back from the kernel.
    pub(crate) fn read(&self) -> io::Result<Resources> {
        match self {
            Self::V1 { cpu, memory } => read_v1(cpu, memory),
            Self::V2 { dir } => read_v2(dir),
        }
    }

    /// Removes the group; it must be empty (its processes exited). Missing is fine.
    pub(crate) fn remove(&self) -> io::Result<()> {
        for dir in self.dirs() {
            remove_dir(dir)?;
        }
        Ok(())
    }
}

/// The limits of the group a running process is in (e.g. a container's), from
/// `/proc/<pid>/cgroup`; `None` when the pid or its groups cannot be read.
pub(crate) fn limits_of_pid(sys_root: &Path, pid: u32) -> Option<Resources> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    if sys_root.join("cgroup.controllers").is_file() {
        read_v2(&under(sys_root, &own_group(&text, None)?)).ok()
    } else {
        let cpu = under(&sys_root.join("cpu"), &own_group(&text, Some("cpu"))?);
        let memory = under(&sys_root.join("memory"), &own_group(&text, Some("memory"))?);
        read_v1(&cpu, &memory).ok()
    }
}

fn read_v1(cpu: &Path, memory: &Path) -> io::Result<Resources> {
    let quota: i64 = parse(&read(&cpu.join("cpu.cfs_quota_us"))?)?;
    let period: u64 = parse(&read(&cpu.join("cpu.cfs_period_us"))?)?;
    // The kernel reads back "-1" as a huge number, but a written "-1" may show as is.
    let bytes: i64 = parse(&read(&memory.join("memory.limit_in_bytes"))?)?;
    let cpu_millis = u64::try_from(quota).map_or(0, |q| q * 1000 / period.max(1));
    let memory = u64::try_from(bytes).unwrap_or(0);
    let memory = if memory >= V1_UNLIMITED_MEMORY {
        0
    } else {
        memory
    };
    Ok(resources(cpu_millis, memory))
}

fn read_v2(dir: &Path) -> io::Result<Resources> {
    let cpu_max = read(&dir.join("cpu.max"))?;
    let (quota, period) = cpu_max.split_once(' ').unwrap_or((&cpu_max, "100000"));
    let cpu_millis = if quota == "max" {
        0
    } else {
        parse::<u64>(quota)? * 1000 / parse::<u64>(period)?.max(1)
    };
    let memory_max = read(&dir.join("memory.max"))?;
    let memory = if memory_max == "max" {
        0
    } else {
        parse(&memory_max)?
    };
    Ok(resources(cpu_millis, memory))
}

fn resources(cpu_millis: u64, memory_bytes: u64) -> Resources {
    Resources {
        cpu_millis: u32::try_from(cpu_millis).unwrap_or(u32::MAX),
        memory_mib: u32::try_from(memory_bytes / MIB).unwrap_or(u32::MAX),
    }
}

/// The CFS quota for `cpu_millis` thousandths of a core; `None` (no limit) for 0.
fn cfs_quota_us(cpu_millis: u32) -> Option<u64> {
    (cpu_millis > 0).then(|| (u64::from(cpu_millis) * CFS_PERIOD_US / 1000).max(MIN_CFS_QUOTA_US))
}

/// The group path of `controller` (`None`: the v2 line) in `/proc/<pid>/cgroup` text.
fn own_group(text: &str, controller: Option<&str>) -> Option<String> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let wanted = match controller {
            None => controllers.is_empty(),
            Some(name) => controllers.split(',').any(|c| c == name),
        };
        wanted.then(|| path.to_string())
    })
}

/// `mount` joined with a group path; the mount itself when that group is not visible there
/// (a container whose cgroup mount starts at its own group, without a cgroup namespace).
fn under(mount: &Path, group: &str) -> PathBuf {
    let dir = mount.join(group.trim_start_matches('/'));
    if dir.is_dir() {
        dir
    } else {
        mount.to_path_buf()
    }
}

/// v2: lets `umbra`'s children use the cpu and memory controllers, which requires every
/// ancestor up to the controller's own group to delegate them too.
fn enable_v2_controllers(umbra: &Path) -> Result<(), String> {
    let own = umbra.parent().unwrap_or(umbra);
    write(&own.join("cgroup.subtree_control"), "+cpu +memory").map_err(|e| {
        format!(
            "cannot delegate cpu and memory below {} (v2 forbids it in a group that has \
             processes; run the controller in a leaf group of its own): {e}",
            own.display()
        )
    })?;
    write(&umbra.join("cgroup.subtree_control"), "+cpu +memory")
        .map_err(|e| format!("{}: {e}", umbra.display()))
}

fn create_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

fn remove_dir(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("writing {value:?} to {}: {e}", path.display()),
        )
    })
}

fn read(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", path.display())))
}

fn parse<T: std::str::FromStr>(text: &str) -> io::Result<T> {
    text.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a number: {text:?}"),
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    const SIZE: Resources = Resources {
        cpu_millis: 250,
        memory_mib: 64,
    };

    /// A fake v1 tree: plain files stand in for the kernel's, which is enough to check
    /// paths and formats (the real kernel is exercised by tests/provision_process.rs).
    fn fake_v1(root: &Path) {
        std::fs::create_dir_all(root.join("cpu")).unwrap();
        std::fs::write(root.join("cpu/cpu.cfs_quota_us"), "-1").unwrap();
        std::fs::create_dir_all(root.join("memory/sandbox/me")).unwrap();
        std::fs::write(root.join("memory/memory.limit_in_bytes"), "1").unwrap();
    }

    #[test]
    fn v1_groups_nest_under_the_controllers_own_group_per_hierarchy() {
        let tmp = tempfile::tempdir().unwrap();
        fake_v1(tmp.path());
        let self_cgroup = "4:memory:/sandbox/me\n2:cpu,cpuacct:/\n0::/\n";
        let root = CgroupRoot::detect(tmp.path(), self_cgroup).unwrap();
        let group = root.create("web", "web-1").unwrap();
        assert_eq!(
            group,
            InstanceCgroup::V1 {
                cpu: tmp.path().join("cpu/umbra/web/web-1"),
                memory: tmp.path().join("memory/sandbox/me/umbra/web/web-1"),
            }
        );
        group.apply(SIZE).unwrap();
        let InstanceCgroup::V1 { cpu, memory } = &group else {
            unreachable!()
        };
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap(),
            "25000"
        );
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.cfs_period_us")).unwrap(),
            "100000"
        );
        assert_eq!(
            std::fs::read_to_string(memory.join("memory.limit_in_bytes")).unwrap(),
            "67108864"
        );
        assert_eq!(group.read().unwrap(), SIZE);
        group
            .apply(Resources {
                cpu_millis: 0,
                memory_mib: 0,
            })
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap(),
            "-1"
        );
        assert_eq!(
            group.read().unwrap(),
            Resources {
                cpu_millis: 0,
                memory_mib: 0
            }
        );
    }

    #[test]
    fn v2_writes_cpu_max_and_memory_max_and_delegates_controllers() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("cgroup.controllers"), "cpu memory").unwrap();
        std::fs::create_dir_all(tmp.path().join("ctl.slice")).unwrap();
        let root = CgroupRoot::detect(tmp.path(), "0::/ctl.slice\n").unwrap();
        assert_eq!(
            root,
            CgroupRoot::V2 {
                dir: tmp.path().join("ctl.slice/umbra")
            }
        );
        let delegated = tmp.path().join("ctl.slice/cgroup.subtree_control");
        assert_eq!(std::fs::read_to_string(delegated).unwrap(), "+cpu +memory");
        let group = root.create("web", "web-1").unwrap();
        group.apply(SIZE).unwrap();
        let dir = tmp.path().join("ctl.slice/umbra/web/web-1");
        assert_eq!(
            std::fs::read_to_string(dir.join("cpu.max")).unwrap(),
            "25000 100000"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("memory.max")).unwrap(),
            "67108864"
        );
        assert_eq!(group.read().unwrap(), SIZE);
        group
            .apply(Resources {
                cpu_millis: 0,
                memory_mib: 0,
            })
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("cpu.max")).unwrap(),
            "max 100000"
        );
        assert_eq!(
            group.read().unwrap(),
            Resources {
                cpu_millis: 0,
                memory_mib: 0
            }
        );
    }

    #[test]
    fn no_hierarchy_is_an_explained_error() {
        let tmp = tempfile::tempdir().unwrap();
        let reason = CgroupRoot::detect(tmp.path(), "0::/\n").unwrap_err();
        assert!(reason.contains("no cgroup v2"), "{reason}");
    }

    #[test]
    fn tiny_cpu_shares_are_raised_to_the_kernel_minimum() {
        assert_eq!(cfs_quota_us(0), None);
        assert_eq!(cfs_quota_us(1), Some(MIN_CFS_QUOTA_US));
        assert_eq!(cfs_quota_us(1500), Some(150_000));
    }
}
