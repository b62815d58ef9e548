//! Runs the real `umbra-proxy` binary on a config written to a temp dir.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::{binary, free_ports};

/// The token tests use for mutating admin calls.
pub const TOKEN: &str = "test-admin-token";

/// A running proxy; killed when dropped. Its log is kept in the temp dir.
pub struct ProxyProcess {
    child: Child,
    /// Client traffic address.
    pub listen: SocketAddr,
    /// Admin API address.
    pub admin: SocketAddr,
    /// The config file (rewrite it and send SIGHUP to reload).
    pub config_path: PathBuf,
    dir: Arc<tempfile::TempDir>,
    log_name: String,
}

impl ProxyProcess {
    /// Writes `[proxy]` with fresh ports plus `body` (workloads and extra settings), starts
    /// the proxy and waits until it serves.
    pub async fn start(body: &str) -> ProxyProcess {
        Self::start_with_proxy_settings("", body).await
    }

    /// Like [`ProxyProcess::start`] with extra lines in the `[proxy]` table.
    pub async fn start_with_proxy_settings(proxy_extra: &str, body: &str) -> ProxyProcess {
        Self::start_in(tempfile::tempdir().expect("temp dir"), proxy_extra, body).await
    }

    /// Like [`ProxyProcess::start_with_proxy_settings`] in a directory the caller prepared
    /// (certificates, say); the proxy's upgrade socket lives there too.
    pub async fn start_in(dir: tempfile::TempDir, proxy_extra: &str, body: &str) -> ProxyProcess {
        Self::start_listening(dir, &[], proxy_extra, body).await
    }

    /// Like [`ProxyProcess::start_in`] with plain listeners beyond the first (`listen`).
    pub async fn start_listening(
        dir: tempfile::TempDir,
        more: &[SocketAddr],
        proxy_extra: &str,
        body: &str,
    ) -> ProxyProcess {
        let [listen, admin] = free_ports::<2>().map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        let listeners = std::iter::once(listen)
            .chain(more.iter().copied())
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            "[proxy]\nlisten = [{listeners}]\nadmin_listen = \"{admin}\"\nadmin_token = \"env:UMBRA_TEST_TOKEN\"\nthreads = 2\nupgrade_sock = \"upgrade.sock\"\n{proxy_extra}\n{body}"
        );
        let config_path = dir.path().join("umbra.toml");
        std::fs::write(&config_path, text).expect("write config");
        let p = Self::spawn(
            Arc::new(dir),
            config_path,
            listen,
            admin,
            "proxy.log",
            false,
        );
        p.wait_ready().await;
        p
    }

    fn spawn(
        dir: Arc<tempfile::TempDir>,
        config_path: PathBuf,
        listen: SocketAddr,
        admin: SocketAddr,
        log_name: &str,
        upgrade: bool,
    ) -> ProxyProcess {
        let log = std::fs::File::create(dir.path().join(log_name)).expect("log file");
        let mut cmd = Command::new(binary("umbra-proxy"));
        cmd.arg("--config").arg(&config_path);
        if upgrade {
            cmd.arg("--upgrade");
        }
        let child = cmd
            .env("UMBRA_TEST_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn umbra-proxy");
        ProxyProcess {
            child,
            listen,
            admin,
            config_path,
            dir,
            log_name: log_name.to_string(),
        }
    }

    /// A new `umbra-proxy --upgrade` on the same config, waiting for this one's sockets: send
    /// this one SIGQUIT next, as an operator would.
    pub fn start_upgrade(&self, log_name: &str) -> ProxyProcess {
        Self::spawn(
            Arc::clone(&self.dir),
            self.config_path.clone(),
            self.listen,
            self.admin,
            log_name,
            true,
        )
    }

    /// The directory the config, logs and upgrade socket are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("send signal");
    }

    /// Waits up to `deadline` for the process to exit.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Waits until `/readyz` answers 2xx (panics after 20 s with the log).
    pub async fn wait_ready(&self) {
        let url = format!("http://{}/readyz", self.admin);
        let ready = crate::http::answers_2xx(&url, Duration::from_secs(20)).await;
        assert!(ready, "proxy not ready in 20 s; log:\n{}", self.log());
    }

    /// `http://listen` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }

    /// `http://admin` + `path`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// The proxy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(&self.log_name)).unwrap_or_default()
    }

    /// Sends SIGHUP (reload).
    pub fn sighup(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("send SIGHUP");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// GET /v1/workloads/{name} as JSON.
    pub async fn workload(&self, name: &str) -> serde_json::Value {
        let req = crate::http::client().get(self.admin_url(&format!("/v1/workloads/{name}")));
        crate::http::json(req, "proxy admin").await
    }

    /// PUT the shadow weight with the token; returns the status code.
    pub async fn set_weight(&self, name: &str, weight: f64) -> u16 {
        crate::http::client()
            .put(self.admin_url(&format!("/v1/workloads/{name}/shadow-weight")))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "weight": weight }))
            .send()
            .await
            .expect("admin reachable")
            .status()
            .as_u16()
    }

    /// GET /metrics.
    pub async fn metrics(&self) -> String {
        let req = crate::http::client().get(self.admin_url("/metrics"));
        crate::http::text(req, "proxy metrics").await
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _already_gone = self.child.kill();
        let _reaped = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- umbra-proxy log ---\n{}", self.log());
        }
    }
}
