//! Runs the real `umbra-proxy` and `umbra run` on one generated config, with a real trace slice
//! imported as recent history.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{binary, free_ports};

/// The token both processes use.
pub const TOKEN: &str = "test-admin-token";

/// A proxy + controller pair on fresh ports; both killed when dropped.
pub struct Stack {
    /// The temp dir holding config, policies, data and logs.
    pub dir: tempfile::TempDir,
    /// Config path.
    pub config: PathBuf,
    /// Proxy traffic address.
    pub listen: SocketAddr,
    /// Proxy admin address.
    pub admin: SocketAddr,
    /// Controller API address.
    pub api: SocketAddr,
    proxy: Option<Child>,
    controller: Option<Child>,
    /// `controller` is `umbra up`, which owns a proxy of its own.
    up: bool,
}

/// The shared traces directory (`../shared/data/traces` beside the repository).
pub fn traces() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/traces")
}

/// Writes rows `[from, to]` (0-based data rows) of a `timestamp,value` trace to `out`.
pub fn slice_trace(trace: &Path, from: usize, to: usize, out: &Path) {
    let text = std::fs::read_to_string(trace).expect("trace readable");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let body: Vec<&str> = lines.skip(from).take(to - from + 1).collect();
    std::fs::write(out, format!("{header}\n{}\n", body.join("\n"))).expect("write slice");
}

impl Stack {
    /// Writes the config (`[proxy]` and `[controller]` with fresh ports, then `body`) and the
    /// policy file `policies/test.toml` = `policy`. Nothing is started yet.
    pub fn new(controller_extra: &str, body: &str, policy: &str) -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        let [listen, admin, api] = free_ports::<3>().map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        std::fs::create_dir_all(dir.path().join("policies")).expect("policy dir");
        std::fs::write(dir.path().join("policies/test.toml"), policy).expect("policy");
        let text = format!(
            "[proxy]\nlisten = \"{listen}\"\nadmin_listen = \"{admin}\"\nadmin_token = \"env:UMBRA_TEST_TOKEN\"\nthreads = 2\n\n\
             [controller]\napi_listen = \"{api}\"\napi_token = \"env:UMBRA_TEST_TOKEN\"\ndata_dir = \"data\"\npolicy_dir = \"policies\"\n{controller_extra}\n\n{body}"
        );
        let config = dir.path().join("umbra.toml");
        std::fs::write(&config, text).expect("config");
        Stack {
            dir,
            config,
            listen,
            admin,
            api,
            proxy: None,
            controller: None,
            up: false,
        }
    }

    /// Makes the controller drive `extra` beside this stack's own proxy.
    pub fn add_proxy(&self, extra: SocketAddr) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let text = text.replacen(
            "[controller]\n",
            &format!(
                "[controller]\nproxies = [\"{}\", \"{extra}\"]\n",
                self.admin
            ),
            1,
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    fn spawn(&self, bin: &str, args: &[&str], log: &str) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(log))
            .expect("log file");
        Command::new(binary(bin))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("UMBRA_TEST_TOKEN", TOKEN)
            // `umbra up` would otherwise make a token of its own for the admin APIs.
            .env("UMBRA_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {bin}: {e}"))
    }

    /// Imports a CSV as the workload's recent history (last point = now, 1 s apart).
    pub fn import(&self, workload: &str, csv: &Path, scale: f64) {
        self.import_every(workload, csv, scale, "1s");
    }

    /// Imports a CSV as the workload's recent history, its points `step` apart (a humantime
    /// duration) and the last one now.
    pub fn import_every(&self, workload: &str, csv: &Path, scale: f64, step: &str) {
        let out = Command::new(binary("umbra"))
            .args([
                "import",
                "--workload",
                workload,
                "--step",
                step,
                "--end-now",
                "--scale",
            ])
            .arg(scale.to_string())
            .arg("--input")
            .arg(csv)
            .arg("--config")
            .arg(&self.config)
            .env("UMBRA_TEST_TOKEN", TOKEN)
            .output()
            .expect("run umbra import");
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the proxy and waits until it serves.
    pub async fn start_proxy(&mut self) {
        self.proxy = Some(self.spawn("umbra-proxy", &[], "proxy.log"));
        let url = format!("http://{}/readyz", self.admin);
        let ok = crate::http::answers_2xx(&url, Duration::from_secs(20)).await;
        assert!(ok, "proxy not ready:\n{}", self.log("proxy.log"));
    }

    /// Starts `umbra run` and waits until its API answers.
    pub async fn start_controller(&mut self) {
        self.controller = Some(self.spawn("umbra", &["run"], "controller.log"));
        let url = format!("http://{}/healthz", self.api);
        let ok = crate::http::answers_2xx(&url, Duration::from_secs(20)).await;
        assert!(ok, "controller not up:\n{}", self.log("controller.log"));
    }

    /// Starts `umbra up` (the proxy as its supervised child, the controller in-process)
    /// instead of the two processes, and waits until both answer. [`Stack::kill_controller`]
    /// then kills `umbra up`; dropping the stack stops it with SIGTERM first so it can stop
    /// its proxy.
    pub async fn start_up(&mut self) {
        let mut up = self.spawn("umbra", &["up"], "up.log");
        self.up = true;
        let api = format!("http://{}/healthz", self.api);
        let admin = format!("http://{}/readyz", self.admin);
        let ok = crate::http::answers_2xx(&api, Duration::from_secs(30)).await
            && crate::http::answers_2xx(&admin, Duration::from_secs(30)).await;
        if !ok {
            let _already_dead = up.kill();
        }
        assert!(ok, "umbra up not serving:\n{}", self.log("up.log"));
        self.controller = Some(up);
    }

    /// The proxy's pid, when this stack started it.
    pub fn proxy_pid(&self) -> Option<u32> {
        self.proxy.as_ref().map(Child::id)
    }

    /// The controller's pid (`umbra run`, or `umbra up` after [`Stack::start_up`]).
    pub fn controller_pid(&self) -> Option<u32> {
        self.controller.as_ref().map(Child::id)
    }

    /// SIGKILLs the proxy (a crash), leaving everything else running.
    pub fn kill_proxy(&mut self) {
        if let Some(mut p) = self.proxy.take() {
            let _already_dead = p.kill();
            let _reaped = p.wait();
        }
    }

    /// SIGKILLs the controller (a crash), leaving everything else running.
    pub fn kill_controller(&mut self) {
        if let Some(mut c) = self.controller.take() {
            let _already_dead = c.kill();
            let _reaped = c.wait();
        }
    }

    /// A log file's content.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Writes the e2e history: NYC taxi rows 155..=490 (a week ending at 05:00, before the
    /// morning rise) as `history.csv` in the stack's directory, for [`Stack::import`].
    pub fn morning_history(&self) -> PathBuf {
        let slice = self.dir.path().join("history.csv");
        slice_trace(&traces().join("numenta-NAB/nyc_taxi.csv"), 155, 490, &slice);
        slice
    }

    /// Waits until the primary answers through the proxy (the controller starts the primary
    /// backend, so the first requests may find nothing yet).
    pub async fn wait_serving(&self) {
        let url = format!("http://{}/", self.listen);
        let serving = crate::http::answers_2xx(&url, Duration::from_secs(20)).await;
        assert!(serving, "primary never served");
    }

    /// The controller's `/metrics` text.
    pub async fn controller_metrics(&self) -> String {
        let req = crate::http::client().get(format!("http://{}/metrics", self.api));
        crate::http::text(req, "controller metrics").await
    }

    /// `GET` a JSON document from the controller API.
    pub async fn api_json(&self, path: &str) -> serde_json::Value {
        let req = crate::http::client().get(format!("http://{}{path}", self.api));
        crate::http::json(req, "controller API").await
    }

    /// One workload of `/v1/status`.
    pub async fn status(&self, workload: &str) -> serde_json::Value {
        let s = self.api_json("/v1/status").await;
        s["workloads"]
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["name"] == workload).cloned())
            .unwrap_or_default()
    }

    /// The proxy's view of a workload.
    pub async fn proxy_workload(&self, workload: &str) -> serde_json::Value {
        let req =
            crate::http::client().get(format!("http://{}/v1/workloads/{workload}", self.admin));
        crate::http::json(req, "proxy admin").await
    }

    /// Pids of a workload's shadow instances, from the process provisioner's state file.
    pub fn shadow_pids(&self, workload: &str) -> Vec<i32> {
        let path = self
            .dir
            .path()
            .join(format!("data/instances/process/{workload}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let mut pids = Vec::new();
        collect_pids(&v, &mut pids);
        pids
    }
}

fn collect_pids(v: &serde_json::Value, out: &mut Vec<i32>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "pid" {
                    if let Some(p) = x.as_i64() {
                        out.push(p as i32);
                    }
                } else {
                    collect_pids(x, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_pids(x, out)),
        _ => {}
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let (true, Some(up)) = (self.up, self.controller.as_mut()) {
            stop_gracefully(up, Duration::from_secs(15));
        }
        for child in [self.controller.take(), self.proxy.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _already_dead = child.kill();
            let _reaped = child.wait();
        }
        // Instances run in their own process groups and outlive a SIGKILLed controller: stop them.
        for pid in self.shadow_pids_all() {
            let _gone = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if std::thread::panicking() {
            eprintln!("--- controller log ---\n{}", self.log("controller.log"));
            eprintln!(
                "--- proxy log (tail) ---\n{}",
                tail(&self.log("proxy.log"), 40)
            );
        }
    }
}

impl Stack {
    fn shadow_pids_all(&self) -> Vec<i32> {
        let dir = self.dir.path().join("data/instances/process");
        let mut pids = Vec::new();
        // Primary instances the controller ran (pid files beside their logs).
        for entry in std::fs::read_dir(self.dir.path().join("data/logs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.path().extension().is_some_and(|e| e == "pid") {
                if let Some(pid) = std::fs::read_to_string(entry.path())
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                {
                    pids.push(pid);
                }
            }
        }
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "json") {
                if let Some(stem) = entry.path().file_stem().and_then(|s| s.to_str()) {
                    pids.extend(self.shadow_pids(stem));
                }
            }
        }
        pids
    }
}

/// SIGTERM, then up to `grace` for the process to exit (the caller kills it after that).
fn stop_gracefully(child: &mut Child, grace: Duration) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
        return;
    }
    let start = std::time::Instant::now();
    while start.elapsed() < grace {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
