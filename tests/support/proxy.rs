//! Runs the real `umbra-proxy` binary on a config written to a temp dir.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{binary, free_port};

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
    dir: tempfile::TempDir,
}

impl ProxyProcess {
    /// Writes `[proxy]` with fresh ports plus `body` (workloads and extra settings), starts
    /// the proxy and waits until it serves.
    pub async fn start(body: &str) -> ProxyProcess {
        Self::start_with_proxy_settings("", body).await
    }

    /// Like [`ProxyProcess::start`] with extra lines in the `[proxy]` table.
    pub async fn start_with_proxy_settings(proxy_extra: &str, body: &str) -> ProxyProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let text = format!(
            "[proxy]\nlisten = \"{listen}\"\nadmin_listen = \"{admin}\"\nadmin_token = \"env:UMBRA_TEST_TOKEN\"\nthreads = 2\n{proxy_extra}\n{body}"
        );
        let config_path = dir.path().join("umbra.toml");
        std::fs::write(&config_path, text).expect("write config");
        let log = std::fs::File::create(dir.path().join("proxy.log")).expect("log file");
        let child = Command::new(binary("umbra-proxy"))
            .arg("--config")
            .arg(&config_path)
            .env("UMBRA_TEST_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn umbra-proxy");
        let p = ProxyProcess {
            child,
            listen,
            admin,
            config_path,
            dir,
        };
        p.wait_ready().await;
        p
    }

    async fn wait_ready(&self) {
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
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
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
