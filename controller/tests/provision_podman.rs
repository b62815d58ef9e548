//! The `podman` provisioner against real podman (runc, cgroupfs): a `FROM scratch` image
//! built here from Debian's static busybox serves HTTP on published loopback ports; resize
//! in place, find-again from a new provisioner, replace, scale down and stop_all leaving no
//! container. Fails (never skips) when podman or busybox-static is missing.
#![allow(clippy::unwrap_used)] // in tests a panic is the failure report

#[path = "provision_support/http.rs"]
mod http;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use provision::podman::{PodmanOptions, PodmanProvisioner};
use provision::{Instance, InstanceTemplate, Provisioner, Resources, ShadowTarget};

const IMAGE: &str = "localhost/umbra-test-busybox-httpd:1";
const INSTALL: &str = "install them with: apt-get install -y podman runc busybox-static";
const IDLE: Resources = Resources {
    cpu_millis: 250,
    memory_mib: 64,
};
const FULL: Resources = Resources {
    cpu_millis: 1000,
    memory_mib: 128,
};
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

fn podman() -> Command {
    let mut command = Command::new("podman");
    command.args(PodmanOptions::default().global_args);
    command
}

/// Fails loudly, naming the packages, when this machine cannot run the test.
fn require_podman_and_busybox() {
    let version = Command::new("podman").arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|out| out.status.success()),
        "podman is not usable here ({version:?}); {INSTALL}"
    );
    assert!(
        Path::new("/usr/sbin/runc").exists() || Path::new("/usr/bin/runc").exists(),
        "runc is missing; {INSTALL}"
    );
    assert!(
        Path::new("/bin/busybox").is_file(),
        "/bin/busybox (static) is missing; {INSTALL}"
    );
}

/// `FROM scratch` + static busybox running `httpd` on 8080 (no registry is reachable).
fn build_image() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox")).unwrap();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    std::fs::write(
        dir.path().join("www/index.html"),
        "hello from umbra's podman test\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n\
         ENTRYPOINT [\"/bin/busybox\"]\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    let out = podman()
        .args(["build", "--quiet", "--tag", IMAGE])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Container names of `workload`, straight from podman (not through the provisioner).
fn containers_of(workload: &str) -> Vec<String> {
    let out = podman()
        .args(["ps", "--all", "--format", "{{.Names}}", "--filter"])
        .arg(format!("label=umbra.workload={workload}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// Removes the test's containers even when an assertion failed half-way.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let names = containers_of(&self.0);
        if !names.is_empty() {
            let _ = podman()
                .args(["rm", "--force", "--time", "0"])
                .args(&names)
                .output();
        }
    }
}

/// The container's cgroup limits, read from the kernel (v1 layout, as on this machine).
fn kernel_limits(container_id: &str) -> Resources {
    let out = podman()
        .args(["inspect", "--format", "{{.State.Pid}}", container_id])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = |controller: &str| {
        cgroups
            .lines()
            .find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|c| c == controller)
                    .then(|| path.trim_start_matches('/').to_string())
            })
            .unwrap()
    };
    let read = |file: std::path::PathBuf| -> u64 {
        std::fs::read_to_string(&file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let cpu = Path::new("/sys/fs/cgroup/cpu").join(path("cpu"));
    let memory = Path::new("/sys/fs/cgroup/memory").join(path("memory"));
    let millis = read(cpu.join("cpu.cfs_quota_us")) * 1000 / read(cpu.join("cpu.cfs_period_us"));
    Resources {
        cpu_millis: millis as u32,
        memory_mib: (read(memory.join("memory.limit_in_bytes")) >> 20) as u32,
    }
}

fn options() -> PodmanOptions {
    // busybox as PID 1 ignores SIGTERM: keep the wait before SIGKILL short.
    PodmanOptions {
        stop_timeout: Duration::from_secs(1),
        ..PodmanOptions::default()
    }
}

fn ids(instances: &[Instance]) -> Vec<String> {
    instances.iter().map(|i| i.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_serve_resize_in_place_are_found_again_and_leave_nothing() {
    require_podman_and_busybox();
    build_image();
    let workload = format!("ptest-{}", std::process::id());
    let _cleanup = Cleanup(workload.clone());
    let template = InstanceTemplate {
        workload: workload.clone(),
        command: vec![],
        image: Some(IMAGE.into()),
        container_port: 8080,
        health_path: Some("/".into()),
        env: BTreeMap::from([("UMBRA_LISTEN".to_string(), "{addr}".to_string())]),
    };
    let provisioner = PodmanProvisioner::new(options());
    assert!(provisioner.version().await.unwrap().contains("podman"));

    let started = provisioner
        .scale(
            &template,
            ShadowTarget {
                instances: 2,
                resources: IDLE,
            },
        )
        .await
        .unwrap();
    assert_eq!(started.len(), 2);
    let mut names = containers_of(&workload);
    names.sort();
    assert_eq!(
        names,
        [
            format!("umbra-default-{workload}-1"),
            format!("umbra-default-{workload}-2")
        ]
    );
    for instance in &started {
        assert!(
            instance.addr.ip().is_loopback(),
            "published on loopback only: {}",
            instance.addr
        );
        assert_eq!(instance.resources, IDLE);
        assert_eq!(kernel_limits(&instance.id), IDLE);
        let body = http::wait_for_200(instance.addr, "/", HTTP_TIMEOUT).await;
        assert!(body.contains("hello from umbra"), "{body}");
    }

    // Idempotent.
    let again = provisioner
        .scale(
            &template,
            ShadowTarget {
                instances: 2,
                resources: IDLE,
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&again), ids(&started));

    // Resize in place: same containers, new cgroup limits, still serving.
    let full = provisioner
        .scale(
            &template,
            ShadowTarget {
                instances: 2,
                resources: FULL,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&full),
        ids(&started),
        "podman update resizes without replacing"
    );
    for instance in &full {
        assert_eq!(instance.resources, FULL);
        assert_eq!(kernel_limits(&instance.id), FULL);
        http::wait_for_200(instance.addr, "/", HTTP_TIMEOUT).await;
    }

    // A new provisioner (a restarted controller) finds them by label, at their new size.
    let next = PodmanProvisioner::new(options());
    let found = next.instances(&workload).await.unwrap();
    assert_eq!(ids(&found), ids(&started));
    assert!(found.iter().all(|i| i.resources == FULL), "{found:?}");

    // Another controller on this host (another deployment) with a workload of the same name
    // neither adopts nor stops these: it starts its own, named apart, and removes only those.
    let other = PodmanProvisioner::new(PodmanOptions {
        deployment: "other".into(),
        ..options()
    });
    assert!(other.instances(&workload).await.unwrap().is_empty());
    let theirs = other
        .scale(
            &template,
            ShadowTarget {
                instances: 1,
                resources: IDLE,
            },
        )
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1);
    assert!(containers_of(&workload).contains(&format!("umbra-other-{workload}-1")));
    assert_eq!(
        ids(&next.instances(&workload).await.unwrap()),
        ids(&started)
    );
    other.stop_all(&workload).await.unwrap();
    assert_eq!(containers_of(&workload).len(), 2);
    assert_eq!(
        ids(&next.instances(&workload).await.unwrap()),
        ids(&started)
    );

    // Replace one: a new container under the same name, same size, serving.
    let successor = next.replace(&template, &started[0].id).await.unwrap();
    assert_ne!(successor.id, started[0].id);
    assert_eq!(successor.resources, FULL);
    http::wait_for_200(successor.addr, "/", HTTP_TIMEOUT).await;
    assert_eq!(containers_of(&workload).len(), 2);

    // Scale down keeps the oldest (the one not replaced).
    let one = next
        .scale(
            &template,
            ShadowTarget {
                instances: 1,
                resources: FULL,
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&one), [started[1].id.clone()]);

    next.stop_all(&workload).await.unwrap();
    assert!(
        containers_of(&workload).is_empty(),
        "stop_all leaves no container"
    );
    assert!(next.instances(&workload).await.unwrap().is_empty());
    next.stop_all(&workload).await.unwrap();
}

#[tokio::test]
async fn a_missing_podman_binary_is_an_error_that_says_what_to_install() {
    let provisioner = PodmanProvisioner::new(PodmanOptions {
        program: "/nonexistent/podman".into(),
        ..PodmanOptions::default()
    });
    let err = provisioner.version().await.unwrap_err().to_string();
    assert!(err.contains("apt-get install podman runc"), "{err}");
    let err = provisioner.instances("web").await.unwrap_err().to_string();
    assert!(err.contains("/nonexistent/podman"), "{err}");
}
