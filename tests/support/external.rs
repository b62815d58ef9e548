//! Real third-party servers the e2e tests run beside Umbra (Prometheus, Alertmanager),
//! each on ephemeral ports with a temp config. A missing package fails the test by name: a
//! test that skipped itself here would pass without testing anything.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;
use crate::http::{client, eventually};

/// The path of `program` on `PATH`, or a panic naming the Debian package that provides it.
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` is not installed: this test needs a real {program}. Install the Debian \
             package `{package}` (DEBIAN_FRONTEND=noninteractive apt-get install -y {package}; \
             `scripts/deps test` should install it)"
        )
    })
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A child process killed (and reaped) on drop, its log printed if the test failed.
struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Server {
    fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Server {
        let file = std::fs::File::create(&log).expect("server log file");
        let err = file.try_clone().expect("log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Server { name, child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&mut self, url: &str) {
        let ready = eventually(Duration::from_secs(20), || {
            let req = client().get(url).send();
            async move {
                req.await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;
        if ready.is_none() {
            panic!(
                "{} did not become ready at {url}:\n{}",
                self.name,
                self.log()
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _already_dead = self.child.kill();
        let _reaped = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- {} log (tail) ---\n{}",
                self.name,
                lines[lines.len().saturating_sub(30)..].join("\n")
            );
        }
    }
}

/// A real Prometheus server scraping itself and the given targets every second.
pub struct Prometheus {
    /// Its HTTP address.
    pub addr: SocketAddr,
    _server: Server,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on `addr` (pick it with [`free_port`] when a config must name it
    /// first) scraping `/metrics` of each `(job, target)` every second; waits until ready.
    pub async fn start(addr: SocketAddr, targets: &[(&str, SocketAddr)]) -> Prometheus {
        let bin = require("prometheus", "prometheus");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n",
        );
        let mut jobs = vec![("prometheus", addr)];
        jobs.extend_from_slice(targets);
        for (job, target) in jobs {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let mut server = Server::spawn(
            "prometheus",
            Command::new(bin)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=warn"),
            dir.path().join("prometheus.log"),
        );
        server.wait_ready(&format!("http://{addr}/-/ready")).await;
        Prometheus {
            addr,
            _server: server,
            _dir: dir,
        }
    }

    /// A free loopback address for [`Prometheus::start`].
    pub fn pick_addr() -> SocketAddr {
        loopback()
    }

    /// Evaluates an instant query: each series' value.
    pub async fn query(&self, promql: &str) -> Vec<f64> {
        let req = client()
            .get(format!("http://{}/api/v1/query", self.addr))
            .query(&[("query", promql)]);
        let v = crate::http::json(req, "prometheus").await;
        assert_eq!(v["status"], "success", "query {promql}: {v}");
        v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["value"][1].as_str()?.parse().ok())
            .collect()
    }

    /// `query_range` at a 1 s step: `(unix ms, value)` of the first series.
    pub async fn query_range(&self, promql: &str, start_s: i64, end_s: i64) -> Vec<(i64, f64)> {
        let req = client()
            .get(format!("http://{}/api/v1/query_range", self.addr))
            .query(&[
                ("query", promql),
                ("start", &start_s.to_string()),
                ("end", &end_s.to_string()),
                ("step", "1"),
            ]);
        let v = crate::http::json(req, "prometheus").await;
        assert_eq!(v["status"], "success", "query_range {promql}: {v}");
        v["data"]["result"][0]["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let t = p[0].as_f64()?;
                let v = p[1].as_str()?.parse().ok()?;
                Some(((t * 1000.0).round() as i64, v))
            })
            .collect()
    }
}

/// A real Alertmanager (`prometheus-alertmanager`) with one do-nothing receiver, clustering off.
pub struct Alertmanager {
    /// Its HTTP address.
    pub addr: SocketAddr,
    _server: Server,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts it and waits until ready.
    pub async fn start() -> Alertmanager {
        let bin = require("prometheus-alertmanager", "prometheus-alertmanager");
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
        )
        .expect("write alertmanager.yml");
        let addr = loopback();
        let mut server = Server::spawn(
            "alertmanager",
            Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                // Clustering would bind a fixed port (9094); one instance needs none.
                .arg("--cluster.listen-address=")
                .arg("--log.level=warn"),
            dir.path().join("alertmanager.log"),
        );
        server.wait_ready(&format!("http://{addr}/-/ready")).await;
        Alertmanager {
            addr,
            _server: server,
            _dir: dir,
        }
    }

    /// `GET /api/v2/alerts`.
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        let req = client().get(format!("http://{}/api/v2/alerts", self.addr));
        match crate::http::json(req, "alertmanager").await {
            serde_json::Value::Array(alerts) => alerts,
            other => panic!("alertmanager: alerts are not a list: {other}"),
        }
    }
}
