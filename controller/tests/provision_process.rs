//! The `process` provisioner against the real kernel: real HTTP servers (python3's
//! http.server), cgroup limits read back from /sys/fs/cgroup, a real `kill -9` of a
//! controller process and adoption by the next one, pid reuse, stop and cleanup.
#![allow(clippy::unwrap_used)] // in tests a panic is the failure report

#[path = "provision_support/http.rs"]
mod http;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use provision::process::{ProcessOptions, ProcessProvisioner};
use provision::{InstanceTemplate, ProvisionError, Provisioner, Resources, ShadowTarget};

const IDLE: Resources = Resources {
    cpu_millis: 250,
    memory_mib: 64,
};
const FULL: Resources = Resources {
    cpu_millis: 1000,
    memory_mib: 256,
};
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// A workload name unique to this test run, so parallel runs never share cgroups.
fn workload(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}

fn http_server(workload: &str) -> InstanceTemplate {
    InstanceTemplate {
        workload: workload.to_string(),
        command: [
            "python3",
            "-m",
            "http.server",
            "{port}",
            "--bind",
            "127.0.0.1",
        ]
        .map(String::from)
        .to_vec(),
        image: None,
        container_port: 0,
        health_path: Some("/".into()),
        env: BTreeMap::new(),
    }
}

/// SIGKILLs whatever a state file still lists when a test ends (even by a failed assertion),
/// so a failing test leaks no servers.
struct KillLeftovers(PathBuf);

impl Drop for KillLeftovers {
    fn drop(&mut self) {
        let Ok(bytes) = std::fs::read(&self.0) else {
            return;
        };
        let Ok(state) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return;
        };
        let records = state["instances"].as_array().cloned().unwrap_or_default();
        for record in &records {
            if let Some(pid) = record["pid"].as_i64() {
                let pgid = nix::unistd::Pid::from_raw(pid as i32);
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        // Their cgroups, then the workload's and umbra's groups if nothing else uses them.
        for record in &records {
            let cgroup = &record["cgroup"];
            for key in ["cpu", "memory", "dir"] {
                if let Some(dir) = cgroup[key].as_str() {
                    for dir in Path::new(dir).ancestors().take(3) {
                        let _ = std::fs::remove_dir(dir);
                    }
                }
            }
        }
    }
}

fn options() -> ProcessOptions {
    ProcessOptions {
        stop_grace: Duration::from_secs(3),
        ..ProcessOptions::default()
    }
}

fn target(instances: u32, resources: Resources) -> ShadowTarget {
    ShadowTarget {
        instances,
        resources,
    }
}

/// Whether this machine lets root write cgroups (then limits must be enforced, not skipped).
fn cgroups_expected() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let root = uids.split_whitespace().nth(2) == Some("0"); // Uid: real effective saved fs
    let v1 = Path::new("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").is_file()
        && Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").is_file();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").is_file();
    root && (v1 || v2)
}

fn pid_of(id: &str) -> u32 {
    id.parse().expect("process instance ids are pids")
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

async fn wait_dead(pid: u32) {
    for _ in 0..200 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("pid {pid} is still alive");
}

/// The limits the kernel applies to `pid`, read independently of the provisioner:
/// `/proc/<pid>/cgroup`, then the v1 or v2 files of those groups. Also returns the dirs.
fn kernel_limits(pid: u32) -> (Resources, Vec<PathBuf>) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let group = |wanted: &str| {
        text.lines()
            .find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                let hit = if wanted.is_empty() {
                    controllers.is_empty()
                } else {
                    controllers.split(',').any(|c| c == wanted)
                };
                hit.then(|| path.trim_start_matches('/').to_string())
            })
            .unwrap()
    };
    let read = |path: PathBuf| std::fs::read_to_string(&path).unwrap().trim().to_string();
    if Path::new("/sys/fs/cgroup/cgroup.controllers").is_file() {
        let dir = Path::new("/sys/fs/cgroup").join(group(""));
        let cpu_max = read(dir.join("cpu.max"));
        let (quota, period) = cpu_max.split_once(' ').unwrap();
        let bytes: u64 = read(dir.join("memory.max")).parse().unwrap();
        let millis = quota.parse::<u64>().unwrap() * 1000 / period.parse::<u64>().unwrap();
        (
            Resources {
                cpu_millis: millis as u32,
                memory_mib: (bytes >> 20) as u32,
            },
            vec![dir],
        )
    } else {
        let cpu = Path::new("/sys/fs/cgroup/cpu").join(group("cpu"));
        let memory = Path::new("/sys/fs/cgroup/memory").join(group("memory"));
        let quota: u64 = read(cpu.join("cpu.cfs_quota_us")).parse().unwrap();
        let period: u64 = read(cpu.join("cpu.cfs_period_us")).parse().unwrap();
        let bytes: u64 = read(memory.join("memory.limit_in_bytes")).parse().unwrap();
        let limits = Resources {
            cpu_millis: (quota * 1000 / period) as u32,
            memory_mib: (bytes >> 20) as u32,
        };
        (limits, vec![cpu, memory])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_serve_http_under_cgroup_limits_resized_in_place_and_stopped() {
    let state = tempfile::tempdir().unwrap();
    let provisioner = ProcessProvisioner::new(state.path().to_path_buf(), options()).unwrap();
    assert_eq!(provisioner.name(), "process");
    assert_eq!(
        provisioner.limits_enforced(),
        cgroups_expected(),
        "cgroups writable here but not used (or the reverse)"
    );
    let w = workload("serve");
    let _leftovers = KillLeftovers(provisioner.state_file(&w));
    let template = http_server(&w);

    let started = provisioner.scale(&template, target(2, IDLE)).await.unwrap();
    assert_eq!(started.len(), 2);
    assert_ne!(started[0].addr, started[1].addr);
    for instance in &started {
        assert!(instance.addr.ip().is_loopback());
        assert_eq!(instance.resources, IDLE);
        let listing = http::wait_for_200(instance.addr, "/", HTTP_TIMEOUT).await;
        assert!(listing.contains("Directory listing"), "{listing}");
    }
    let mut groups = Vec::new();
    if provisioner.limits_enforced() {
        for instance in &started {
            let (limits, dirs) = kernel_limits(pid_of(&instance.id));
            assert_eq!(limits, IDLE, "kernel limits of {}", instance.id);
            assert!(
                dirs.iter()
                    .all(|d| d.to_string_lossy().contains(&format!("umbra/{w}."))),
                "{dirs:?}"
            );
            groups.extend(dirs);
        }
    }

    // Idempotent: the same target changes nothing.
    let again = provisioner.scale(&template, target(2, IDLE)).await.unwrap();
    assert_eq!(again, started);

    // Resize in place: same processes, new limits.
    let full = provisioner.scale(&template, target(2, FULL)).await.unwrap();
    let ids = |list: &[provision::Instance]| list.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&full),
        ids(&started),
        "resizing must not restart instances"
    );
    assert!(full.iter().all(|i| i.resources == FULL));
    if provisioner.limits_enforced() {
        for instance in &full {
            assert_eq!(kernel_limits(pid_of(&instance.id)).0, FULL);
        }
    }
    for instance in &full {
        http::wait_for_200(instance.addr, "/", HTTP_TIMEOUT).await;
    }

    // Scale down keeps the oldest.
    let one = provisioner.scale(&template, target(1, FULL)).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, started[0].id);
    wait_dead(pid_of(&started[1].id)).await;

    let state_file = provisioner.state_file(&w);
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(recorded["instances"].as_array().unwrap().len(), 1);
    assert_eq!(recorded["instances"][0]["pid"].to_string(), one[0].id);

    provisioner.stop_all(&w).await.unwrap();
    wait_dead(pid_of(&one[0].id)).await;
    assert!(provisioner.instances(&w).await.unwrap().is_empty());
    assert!(!state_file.exists(), "stop_all removes the state file");
    for dir in &groups {
        assert!(!dir.exists(), "cgroup {} left behind", dir.display());
        assert!(
            !dir.parent().unwrap().exists(),
            "workload cgroup {} left behind",
            dir.parent().unwrap().display()
        );
    }
    let log = std::fs::read_to_string(provisioner.log_file(&w, 1)).unwrap();
    assert!(log.contains("--- umbra: starting"), "{log}");
}

/// Run by `survivors_of_a_kill_9_are_adopted_by_the_next_controller` as a separate "controller"
/// process: starts two instances, prints their ids, then waits to be killed.
#[tokio::test]
#[ignore = "helper process for survivors_of_a_kill_9_are_adopted_by_the_next_controller"]
async fn controller_helper_process() {
    let state = std::env::var("UMBRA_TEST_STATE_DIR")
        .expect("run only by the kill -9 test, which sets UMBRA_TEST_STATE_DIR");
    let w = std::env::var("UMBRA_TEST_WORKLOAD").expect("UMBRA_TEST_WORKLOAD");
    let provisioner = ProcessProvisioner::new(PathBuf::from(state), options()).unwrap();
    let started = provisioner
        .scale(&http_server(&w), target(2, IDLE))
        .await
        .unwrap();
    let line: Vec<String> = started
        .iter()
        .map(|i| format!("{}@{}", i.id, i.addr))
        .collect();
    println!("UMBRA-READY {}", line.join(" "));
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_of_a_kill_9_are_adopted_by_the_next_controller() {
    use std::io::BufRead;
    let state = tempfile::tempdir().unwrap();
    let w = workload("adopt");
    let _leftovers = KillLeftovers(state.path().join("process").join(format!("{w}.json")));
    let mut controller = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "controller_helper_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("UMBRA_TEST_STATE_DIR", state.path())
        .env("UMBRA_TEST_WORKLOAD", &w)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(controller.stdout.take().unwrap());
    let ready = stdout
        .lines()
        .map_while(Result::ok)
        // libtest may print "test controller_helper_process ... " on the same line first.
        .find_map(|line| {
            line.split_once("UMBRA-READY")
                .map(|(_, items)| items.to_string())
        })
        .expect("the helper controller printed its instances");
    let instances: Vec<(String, std::net::SocketAddr)> = ready
        .split_whitespace()
        .map(|item| {
            let (id, addr) = item.split_once('@').unwrap();
            (id.to_string(), addr.parse().unwrap())
        })
        .collect();
    assert_eq!(instances.len(), 2);

    controller.kill().unwrap(); // SIGKILL: no cleanup runs in the controller.
    controller.wait().unwrap();
    for (_, addr) in &instances {
        http::wait_for_200(*addr, "/", HTTP_TIMEOUT).await;
    }

    let next = ProcessProvisioner::new(state.path().to_path_buf(), options()).unwrap();
    let adopted = next.instances(&w).await.unwrap();
    let mut seen: Vec<_> = adopted.iter().map(|i| (i.id.clone(), i.addr)).collect();
    seen.sort();
    let mut expected = instances.clone();
    expected.sort();
    assert_eq!(
        seen, expected,
        "the new controller finds the same instances"
    );
    assert!(adopted.iter().all(|i| i.resources == IDLE));

    // Adopted instances are fully managed: resize and stop work on them.
    let resized = next.scale(&http_server(&w), target(2, FULL)).await.unwrap();
    assert_eq!(resized.len(), 2);
    if next.limits_enforced() {
        for instance in &resized {
            assert_eq!(kernel_limits(pid_of(&instance.id)).0, FULL);
        }
    }
    next.stop_all(&w).await.unwrap();
    for (id, _) in &instances {
        wait_dead(pid_of(id)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_and_reused_pids_are_forgotten_and_never_signalled() {
    let state = tempfile::tempdir().unwrap();
    let w = workload("reuse");
    let first = ProcessProvisioner::new(state.path().to_path_buf(), options()).unwrap();
    let started = first
        .scale(&http_server(&w), target(1, IDLE))
        .await
        .unwrap();
    let state_file = first.state_file(&w);
    let mut recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    drop(first); // like a crash: nothing is stopped

    // The instance dies while no controller runs.
    let pid = pid_of(&started[0].id);
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_dead(pid).await;

    // An unrelated process, which must survive the next controller.
    let mut stranger = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let stranger_pid = stranger.id();
    let stat = std::fs::read_to_string(format!("/proc/{stranger_pid}/stat")).unwrap();
    let stranger_ticks: u64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();

    // Three records: the dead instance; its pid reused by the stranger (start time differs);
    // the stranger's real start time but our command line (cmdline differs).
    let original = recorded["instances"][0].clone();
    let mut reused = original.clone();
    reused["pid"] = stranger_pid.into();
    let mut same_ticks = reused.clone();
    same_ticks["start_ticks"] = stranger_ticks.into();
    same_ticks["slot"] = 2.into();
    recorded["instances"] = serde_json::json!([original, reused, same_ticks]);
    std::fs::write(&state_file, serde_json::to_vec(&recorded).unwrap()).unwrap();

    let next = ProcessProvisioner::new(state.path().to_path_buf(), options()).unwrap();
    assert!(
        next.instances(&w).await.unwrap().is_empty(),
        "nothing is adopted"
    );
    let rewritten: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(
        rewritten["instances"],
        serde_json::json!([]),
        "forgotten records leave the state file"
    );
    assert!(alive(stranger_pid), "the stranger was not signalled");
    next.stop_all(&w).await.unwrap();
    assert!(alive(stranger_pid), "stop_all does not touch it either");
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_and_template_changes_start_successors() {
    let state = tempfile::tempdir().unwrap();
    let provisioner = ProcessProvisioner::new(state.path().to_path_buf(), options()).unwrap();
    let w = workload("replace");
    let _leftovers = KillLeftovers(provisioner.state_file(&w));
    let template = http_server(&w);
    let first = provisioner
        .scale(&template, target(1, FULL))
        .await
        .unwrap()
        .remove(0);
    http::wait_for_200(first.addr, "/", HTTP_TIMEOUT).await;

    let successor = provisioner.replace(&template, &first.id).await.unwrap();
    assert_ne!(successor.id, first.id);
    assert_eq!(successor.resources, FULL, "the successor keeps the size");
    wait_dead(pid_of(&first.id)).await;
    http::wait_for_200(successor.addr, "/", HTTP_TIMEOUT).await;
    assert_eq!(
        provisioner.instances(&w).await.unwrap(),
        vec![successor.clone()]
    );

    let unknown = provisioner
        .replace(&template, "999999999")
        .await
        .unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("no running instance 999999999"),
        "{unknown}"
    );

    // A new command replaces instances started from the old one.
    let mut changed = template.clone();
    changed.command.push("--directory".into());
    changed.command.push("/".into());
    let after = provisioner.scale(&changed, target(1, FULL)).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_ne!(after[0].id, successor.id);
    wait_dead(pid_of(&successor.id)).await;
    let listing = http::wait_for_200(after[0].addr, "/", HTTP_TIMEOUT).await;
    assert!(listing.contains("proc/"), "serves / now: {listing}");
    provisioner.stop_all(&w).await.unwrap();
    wait_dead(pid_of(&after[0].id)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exited_instances_drop_out_and_are_restarted_by_scale() {
    let state = tempfile::tempdir().unwrap();
    let provisioner = ProcessProvisioner::new(state.path().to_path_buf(), options()).unwrap();
    let w = workload("crash");
    let mut template = http_server(&w);
    template.command = ["sh", "-c", "echo crashing on {port} >&2; exit 3"]
        .map(String::from)
        .to_vec();
    let started = provisioner.scale(&template, target(1, IDLE)).await.unwrap();
    wait_dead(pid_of(&started[0].id)).await;
    assert!(provisioner.instances(&w).await.unwrap().is_empty());
    let log = std::fs::read_to_string(provisioner.log_file(&w, 1)).unwrap();
    assert!(
        log.contains(&format!("crashing on {}", started[0].addr.port())),
        "stderr goes to the log: {log}"
    );
    let restarted = provisioner.scale(&template, target(1, IDLE)).await.unwrap();
    assert_eq!(restarted.len(), 1);
    assert_ne!(restarted[0].id, started[0].id);
    provisioner.stop_all(&w).await.unwrap();
}

#[tokio::test]
async fn unusable_templates_are_rejected_naming_the_problem() {
    let state = tempfile::tempdir().unwrap();
    let provisioner = ProcessProvisioner::new(state.path().to_path_buf(), options()).unwrap();
    let mut template = http_server(&workload("web"));
    template.command.clear();
    let err = provisioner
        .scale(&template, target(1, IDLE))
        .await
        .unwrap_err();
    assert!(matches!(err, ProvisionError::Template { .. }), "{err:?}");
    assert!(
        err.to_string().contains("template.command is empty"),
        "{err}"
    );
    let err = provisioner.instances("../etc").await.unwrap_err();
    assert!(err.to_string().contains("A-Za-z0-9_.-"), "{err}");
    let mut missing = http_server("missing");
    missing.command = vec!["/nonexistent/umbra-test-binary".into()];
    let err = provisioner
        .scale(&missing, target(1, IDLE))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/umbra-test-binary"),
        "{err}"
    );
    assert!(provisioner.instances("missing").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_writable_cgroups_instances_run_unlimited_and_say_so() {
    let state = tempfile::tempdir().unwrap();
    let no_cgroups = tempfile::tempdir().unwrap(); // an empty "cgroup filesystem"
    let options = ProcessOptions {
        cgroup_fs: no_cgroups.path().to_path_buf(),
        ..options()
    };
    let provisioner = ProcessProvisioner::new(state.path().to_path_buf(), options).unwrap();
    assert!(!provisioner.limits_enforced());
    let w = workload("unlimited");
    let _leftovers = KillLeftovers(provisioner.state_file(&w));
    let started = provisioner
        .scale(&http_server(&w), target(1, IDLE))
        .await
        .unwrap();
    http::wait_for_200(started[0].addr, "/", HTTP_TIMEOUT).await;
    let groups = std::fs::read_to_string(format!("/proc/{}/cgroup", started[0].id)).unwrap();
    assert!(!groups.contains("umbra"), "no umbra cgroup: {groups}");
    // Resizing still records the size (nothing to enforce it with).
    let resized = provisioner
        .scale(&http_server(&w), target(1, FULL))
        .await
        .unwrap();
    assert_eq!(
        (resized[0].id.as_str(), resized[0].resources),
        (started[0].id.as_str(), FULL)
    );
    provisioner.stop_all(&w).await.unwrap();
    wait_dead(pid_of(&started[0].id)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controllers_on_one_host_never_stop_each_others_instances() {
    // Same workload name, two state directories: two `umbra up`s, or a test suite running
    // stacks in parallel. Each `api-1` must live in its own cgroup.
    let w = workload("neighbours");
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ProcessProvisioner::new(a_dir.path().to_path_buf(), options()).unwrap();
    let b = ProcessProvisioner::new(b_dir.path().to_path_buf(), options()).unwrap();
    let _leftovers = (
        KillLeftovers(a.state_file(&w)),
        KillLeftovers(b.state_file(&w)),
    );
    let template = http_server(&w);
    let a1 = a.scale(&template, target(1, IDLE)).await.unwrap();
    let b1 = b.scale(&template, target(1, IDLE)).await.unwrap();
    for instance in a1.iter().chain(&b1) {
        http::wait_for_200(instance.addr, "/", HTTP_TIMEOUT).await;
    }
    if a.limits_enforced() {
        let (_, a_groups) = kernel_limits(pid_of(&a1[0].id));
        let (_, b_groups) = kernel_limits(pid_of(&b1[0].id));
        assert!(
            a_groups.iter().all(|g| !b_groups.contains(g)),
            "{a_groups:?} vs {b_groups:?}"
        );
    }

    a.stop_all(&w).await.unwrap();
    wait_dead(pid_of(&a1[0].id)).await;
    assert!(
        alive(pid_of(&b1[0].id)),
        "stopping A's pool killed B's instance"
    );
    http::wait_for_200(b1[0].addr, "/", HTTP_TIMEOUT).await;
    assert_eq!(b.instances(&w).await.unwrap(), b1);
    b.stop_all(&w).await.unwrap();
    wait_dead(pid_of(&b1[0].id)).await;
}
