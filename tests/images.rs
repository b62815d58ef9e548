//! The container images (`deploy/container`), built with podman from this build's release
//! binaries and run as Kubernetes would run a pod: the proxy, an application and the
//! controller sharing one network namespace, each from its image's default config. A request
//! goes through the proxy to the application, the controller scrapes the proxy, everything runs
//! as uid 65532, and SIGTERM drains the proxy to a clean exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use umbra_e2e::binary;
use umbra_e2e::http::{answers_2xx, client, eventually};

const TOKEN: &str = "images-test-token";
/// Ceilings that catch an image carrying what it should not (a build tree, debug sections).
const PROXY_MAX_BYTES: u64 = 40 << 20;
const CONTROLLER_MAX_BYTES: u64 = 100 << 20;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// podman with the flags this machine needs (runc: crun fails on its cgroup v1 hybrid; no
/// systemd for cgroups or the event journal), as the podman provisioner uses it.
const PODMAN: &[&str] = &[
    "podman",
    "--runtime=runc",
    "--cgroup-manager=cgroupfs",
    "--events-backend=file",
];

fn podman(args: &[&str]) -> Output {
    Command::new(PODMAN[0])
        .args(&PODMAN[1..])
        .args(args)
        .output()
        .expect("run podman")
}

fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Limits runc can grant: podman's own defaults exceed what this process may set, and the
/// kernel refuses RLIMIT_NPROC above pid_max.
fn ulimits() -> Vec<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let hard = |name: &str, fallback: u64| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l[name.len()..].split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(fallback)
    };
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(u64::MAX);
    let nofile = hard("Max open files", 1024);
    let nproc = hard("Max processes", 4096).min(pid_max);
    vec![
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        format!("nproc={nproc}:{nproc}"),
    ]
}

/// Containers and images of this run, removed (dependents first) even when an assertion fails.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in self.containers.iter().rev() {
            if std::thread::panicking() {
                let logs = podman(&["logs", name]);
                eprintln!(
                    "--- {name} ---\n{}{}",
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            let _removed = podman(&["rm", "--force", "--time", "0", name]);
        }
        for image in &self.images {
            let _removed = podman(&["rmi", "--force", image]);
        }
    }
}

/// `deploy/container/build.sh` on this build's binaries: `(image, size in bytes)` per image.
fn build_images(tag: &str) -> Vec<(String, u64)> {
    let bin_dir = binary("umbra-proxy")
        .parent()
        .expect("binary directory")
        .to_path_buf();
    binary("umbra");
    let out = Command::new(repo().join("deploy/container/build.sh"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .args(["--tag", tag])
        .env("PODMAN", PODMAN.join(" "))
        .output()
        .expect("run deploy/container/build.sh");
    assert!(
        out.status.success(),
        "build.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, size) = l.split_once(' ')?;
            Some((name.to_string(), size.parse().ok()?))
        })
        .collect()
}

/// A `FROM scratch` image of Debian's static busybox: the pod's application (no registry here).
fn build_app_image(tag: &str) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "/bin/busybox (static) is missing: apt-get install busybox-static (scripts/deps test)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(busybox, dir.path().join("busybox")).expect("copy busybox");
    std::fs::create_dir(dir.path().join("www")).expect("www");
    std::fs::write(dir.path().join("www/index.html"), "hello from the app\n").expect("page");
    std::fs::write(
        dir.path().join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nUSER 65532:65532\n\
         ENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"127.0.0.1:8081\", \"-h\", \"/www\"]\n",
    )
    .expect("Containerfile");
    podman_ok(&[
        "build",
        "--quiet",
        "--tag",
        tag,
        dir.path().to_str().expect("utf-8 path"),
    ]);
}

/// A kubeconfig naming an API server nobody listens on: outside a cluster the `kubernetes`
/// provisioner needs a client to start, and the observing controller never calls it.
fn kubeconfig(dir: &Path) {
    std::fs::write(
        dir.join("config"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: none\n  cluster:\n    server: http://127.0.0.1:9\n\
         contexts:\n- name: none\n  context:\n    cluster: none\n    user: none\ncurrent-context: none\n\
         users:\n- name: none\n  user: {}\n",
    )
    .expect("kubeconfig");
}

fn uid_of(container: &str) -> String {
    let pid = podman_ok(&["inspect", "--format", "{{.State.Pid}}", container]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .expect("Uid line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_images_run_as_a_pod_from_their_default_config() {
    if Command::new("podman").arg("--version").output().is_err() {
        eprintln!(
            "skipped: podman is not installed (apt-get install podman runc busybox-static; scripts/deps test)"
        );
        return;
    }
    let began = Instant::now();
    let run = format!("e2e-{}", std::process::id());
    let mut cleanup = Cleanup::default();
    let built = build_images(&run);
    let app_image = format!("localhost/umbra-e2e-app:{run}");
    cleanup.images = built.iter().map(|(name, _)| name.clone()).collect();
    cleanup.images.push(app_image.clone());
    build_app_image(&app_image);
    let size = |name: &str| {
        built
            .iter()
            .find(|(image, _)| image.starts_with(&format!("localhost/{name}:")))
            .map(|(_, size)| *size)
            .unwrap_or_else(|| panic!("build.sh did not build {name}: {built:?}"))
    };
    let (proxy_size, controller_size) = (size("umbra-proxy"), size("umbra"));
    eprintln!(
        "image sizes: umbra-proxy {:.1} MB, umbra {:.1} MB",
        proxy_size as f64 / 1e6,
        controller_size as f64 / 1e6
    );
    assert!(
        proxy_size < PROXY_MAX_BYTES,
        "umbra-proxy is {proxy_size} bytes"
    );
    assert!(
        controller_size < CONTROLLER_MAX_BYTES,
        "umbra is {controller_size} bytes"
    );
    let proxy_image = format!("localhost/umbra-proxy:{run}");
    let controller_image = format!("localhost/umbra:{run}");
    for image in [&proxy_image, &controller_image] {
        let user = podman_ok(&["image", "inspect", "--format", "{{.Config.User}}", image]);
        assert_eq!(user, "65532:65532", "{image} runs as {user}");
    }

    // `umbra --version` straight from the image.
    let limits = ulimits();
    let limits: Vec<&str> = limits.iter().map(String::as_str).collect();
    let mut version = vec!["run", "--rm"];
    version.extend(&limits);
    version.extend([controller_image.as_str(), "--version"]);
    let printed = podman_ok(&version);
    assert!(printed.starts_with("umbra "), "{printed}");

    // The pod: the proxy owns the network namespace and publishes its ports on ephemeral
    // loopback ports; the application and the controller join it.
    let names = ["proxy", "app", "controller"].map(|c| format!("umbra-{run}-{c}"));
    cleanup.containers = names.to_vec();
    let token = format!("UMBRA_ADMIN_TOKEN={TOKEN}");
    let mut proxy = vec!["run", "--detach", "--name", &names[0], "--env", &token];
    proxy.extend(&limits);
    proxy.extend([
        "--publish",
        "127.0.0.1::8080",
        "--publish",
        "127.0.0.1::9901",
        "--publish",
        "127.0.0.1::9900",
        &proxy_image,
    ]);
    podman_ok(&proxy);
    let netns = format!("container:{}", names[0]);
    let mut app = vec!["run", "--detach", "--name", &names[1], "--network", &netns];
    app.extend(&limits);
    app.push(&app_image);
    podman_ok(&app);
    let kube = tempfile::tempdir().expect("temp dir");
    kubeconfig(kube.path());
    let mount = format!("{}:/kube:ro", kube.path().display());
    let mut controller = vec![
        "run",
        "--detach",
        "--name",
        &names[2],
        "--network",
        &netns,
        "--env",
        &token,
        "--env",
        "KUBECONFIG=/kube/config",
        "--volume",
        &mount,
    ];
    controller.extend(&limits);
    controller.push(&controller_image);
    podman_ok(&controller);
    let published = |port: &str| podman_ok(&["port", &names[0], &format!("{port}/tcp")]);
    let (traffic, admin, api) = (published("8080"), published("9901"), published("9900"));

    let ready = answers_2xx(&format!("http://{admin}/readyz"), Duration::from_secs(20)).await;
    assert!(ready, "the proxy never became ready");
    assert!(
        answers_2xx(&format!("http://{admin}/healthz"), Duration::from_secs(5)).await,
        "proxy /healthz"
    );
    // Through the proxy to the application (which may still be starting).
    let page = eventually(Duration::from_secs(15), || {
        let req = client().get(format!("http://{traffic}/")).send();
        async move {
            let answer = req.await.ok().filter(|r| r.status().is_success())?;
            answer.text().await.ok()
        }
    })
    .await;
    assert_eq!(page.as_deref(), Some("hello from the app\n"));
    let metrics = client()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .expect("proxy metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains(r#"umbra_requests_total{code="200",pool="primary",workload="app"}"#),
        "{metrics}"
    );

    // The controller serves its API and sees the proxy's traffic by scraping it.
    assert!(
        answers_2xx(&format!("http://{api}/healthz"), Duration::from_secs(20)).await,
        "the controller never answered /healthz"
    );
    let observed = eventually(Duration::from_secs(20), || {
        let req = client().get(format!("http://{api}/v1/status")).send();
        async move {
            let status: serde_json::Value = req.await.ok()?.json().await.ok()?;
            let app = status["workloads"]
                .as_array()?
                .iter()
                .find(|w| w["name"] == "app")?
                .clone();
            (app["observed_rps"].as_f64()? > 0.0).then_some(status)
        }
    })
    .await
    .expect("the controller never observed the proxy's requests");
    assert_eq!(observed["mode"], "observe", "{observed}");

    for name in [&names[0], &names[2]] {
        assert!(
            uid_of(name).starts_with("65532 65532"),
            "{name} runs as uid {}",
            uid_of(name)
        );
    }

    // SIGTERM (what the kubelet sends after preStop) drains the proxy to a clean exit.
    let stopping = Instant::now();
    podman_ok(&["stop", "--time", "20", &names[0]]);
    let took = stopping.elapsed();
    let exit = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", &names[0]]);
    assert_eq!(exit, "0", "the proxy's exit code after SIGTERM");
    assert!(
        took < Duration::from_secs(10),
        "SIGTERM took {took:?}: podman had to SIGKILL"
    );
    eprintln!("images test took {:?}", began.elapsed());
}
