//! The proxy + controller stack the migration scenarios run on: two primary backends and
//! shadow instances run by the controller (`umbra backend` processes), a steady load, and a
//! surge on top of it that makes the controller migrate.

use std::time::Duration;

use serde_json::Value;
use umbra_e2e::controller::Stack;
use umbra_e2e::http::eventually;
use umbra_e2e::store::StoreReader;

use crate::load::Load;
use crate::record::Recorder;
use crate::summary::Run;

/// Fast clocks so a whole migration takes seconds. A 10 s history step needs four minutes of
/// history before the forecaster has its 24 points, so in a scenario the trigger works on
/// observed demand alone and the surge decides when a migration starts.
pub const CONTROLLER: &str =
    "step = \"10s\"\nscrape_interval = \"500ms\"\nforecast_interval = \"5s\"\ntick = \"250ms\"\n";

/// Proxy settings every scenario uses: HTTP health checks (a black hole fails them) and a read
/// timeout short enough that a silent upstream is given up on, and the request retried, well
/// within the client's patience.
pub const PROXY_TABLES: &str = "[proxy.health]\npath = \"/healthz\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n\
     [proxy.timeouts]\nread = \"1s\"\n\n";

/// The guard of the chaos workload: a shadow p99 over 250 ms is rolled back.
pub const GUARD: &str = "[workloads.guard]\nwindow = \"2s\"\nmin_requests = 10\nmax_p99_ms = 250\nmax_error_rate = 0.5\ncooldown = \"5s\"\n";

/// The load on top of the base rate while demand surges, as a share of the base rate.
pub const SURGE: f64 = 0.8;

/// The policy: primary capacity is 1.5x the base rate, so the base load never migrates and the
/// surge (1.8x) does; demand back at the base rate (under 0.85 of capacity) returns.
pub fn policy(rate: f64, at_full: &str, retry_after: &str) -> String {
    let capacity = rate * 0.75;
    format!(
        "[forecast]\nquantile = 0.9\nhorizon = \"60s\"\n\n\
         [sizing]\ninstance_capacity = {capacity}\nbuffer = 0.1\nmin_instances = 1\nmax_instances = 4\nstartup = \"2s\"\n\
         idle = {{ cpu_millis = 200, memory_mib = 64 }}\nfull = {{ cpu_millis = 1000, memory_mib = 256 }}\n\n\
         [trigger]\nthreshold = 0.9\nclear_below = 0.85\nlead_time = \"20s\"\nmin_hold = \"10s\"\n\n\
         [ramp]\nstart_weight = 0.1\nstep = 0.1\ninterval = \"1s\"\nmin_requests = 2\nmax_p99_ms = 500\n\
         at_full = \"{at_full}\"\nprovision_timeout = \"30s\"\nretry_after = \"{retry_after}\"\n"
    )
}

/// The workload: two primaries and shadows run by the controller.
pub fn workload() -> String {
    let port = || umbra_e2e::free_port().to_string();
    format!(
        "{PROXY_TABLES}[[workloads]]\nname = \"api\"\nprimary = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\npolicy = \"test\"\n\n\
         [workloads.instance]\ncommand = [\"{{umbra}}\", \"backend\", \"--listen\", \"{{addr}}\", \"--capacity\", \"5000\", \"--name\", \"inst-{{port}}\"]\n\
         health_path = \"/healthz\"\nmanage_primary = true\n\n{GUARD}",
        port(),
        port()
    )
}

/// A running stack with its load.
pub struct ChaosStack {
    /// The processes.
    pub stack: Stack,
    /// Every request of the scenario.
    pub rec: Recorder,
    rate: f64,
    base: Option<Load>,
    surge: Option<Load>,
}

impl ChaosStack {
    /// Writes the config (nothing started yet), so a scenario can prepare the data dir.
    pub fn new(rate: f64, at_full: &str, retry_after: &str) -> ChaosStack {
        Self::with_controller(CONTROLLER, rate, at_full, retry_after)
    }

    /// Like [`ChaosStack::new`] with other `[controller]` settings.
    pub fn with_controller(
        controller: &str,
        rate: f64,
        at_full: &str,
        retry_after: &str,
    ) -> ChaosStack {
        ChaosStack {
            stack: Stack::new(controller, &workload(), &policy(rate, at_full, retry_after)),
            rec: Recorder::new(),
            rate,
            base: None,
            surge: None,
        }
    }

    /// Starts proxy and controller, waits for the primaries, then the base load.
    pub async fn start(&mut self) {
        self.stack.start_proxy().await;
        self.stack.start_controller().await;
        self.stack.wait_serving().await;
        self.start_base();
    }

    /// Starts the base load (after the processes were started some other way).
    pub fn start_base(&mut self) {
        let url = format!("http://{}/", self.stack.listen);
        self.base = Some(Load::start(&self.rec, url, self.rate));
    }

    /// Adds the surge that triggers a migration.
    pub fn surge(&mut self) {
        let url = format!("http://{}/", self.stack.listen);
        self.surge = Some(Load::start(&self.rec, url, self.rate * SURGE));
    }

    /// Ends the surge: demand is back at the base rate.
    pub async fn calm(&mut self) {
        if let Some(l) = self.surge.take() {
            l.stop().await;
        }
    }

    /// Stops all load and waits for the last requests.
    pub async fn stop_load(&mut self) {
        self.calm().await;
        if let Some(l) = self.base.take() {
            l.stop().await;
        }
    }

    /// The proxy's current shadow weight (`None` if its admin API does not answer).
    pub async fn weight(&self) -> Option<f64> {
        proxy_workload(&self.stack).await?["shadow_weight"].as_f64()
    }

    /// Waits until the proxy's weight is at least `w`.
    pub async fn weight_at_least(&self, w: f64, within: Duration) -> bool {
        eventually(within, || async {
            (self.weight().await? >= w - 1e-9).then_some(())
        })
        .await
        .is_some()
    }

    /// Waits until the proxy's weight is at most `w`.
    pub async fn weight_at_most(&self, w: f64, within: Duration) -> bool {
        eventually(within, || async {
            (self.weight().await? <= w + 1e-9).then_some(())
        })
        .await
        .is_some()
    }

    /// The controller's transition log from its store, oldest first: (from, to, reason).
    pub fn transitions(&self) -> Vec<(String, String, String)> {
        StoreReader::open(&self.stack.dir.path().join("data")).transitions("api")
    }

    /// Waits until the controller reports one of `states`; its status then.
    pub async fn wait_state(&self, states: &[&str], within: Duration) -> Option<Value> {
        eventually(within, || async {
            let w = status(&self.stack).await?;
            states
                .iter()
                .any(|s| w["migration_state"] == *s)
                .then_some(w)
        })
        .await
    }

    /// Gives up on a scenario whose premise did not happen (a ramp that never reached its
    /// weight): the load so far, and what the controller said, as a missed row.
    pub async fn abandon(&mut self, what: &str) -> Run {
        let at = self.rec.now();
        self.stop_load().await;
        let status = status(&self.stack).await.unwrap_or_default();
        let path: Vec<String> = self
            .transitions()
            .into_iter()
            .map(|(_, to, _)| to)
            .collect();
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        Run {
            samples: self.rec.snapshot(),
            fault_start: at,
            fault_end: at,
            state_ok: false,
            state: format!("{what}: {}", status["migration_state"]),
            exempt: false,
            notes: format!(
                "{what}; the controller's last reason: {}; transitions: {}",
                status["last_reason"],
                crate::scenario::path_of(&path)
            ),
        }
    }

    /// Addresses of the ready shadow instances, from the proxy's view.
    pub async fn shadow_members(&self) -> Vec<String> {
        let Some(w) = proxy_workload(&self.stack).await else {
            return Vec::new();
        };
        w["shadow"]["upstreams"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u["address"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Makes every instance at `members` answer `ms` late (`umbra backend`'s fault endpoint).
pub async fn set_delay(members: &[String], ms: u64) -> anyhow::Result<()> {
    for m in members {
        reqwest::Client::new()
            .put(format!("http://{m}/_umbra/fault"))
            .json(&serde_json::json!({ "delay_ms": ms }))
            .timeout(Duration::from_secs(2))
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(())
}

/// GET a JSON document, `None` on any failure (a process may be down on purpose).
pub async fn get_json(url: String) -> Option<Value> {
    serde_json::from_str(&get_text(url).await?).ok()
}

/// A text document (a metrics page), `None` if it does not come within two seconds.
pub async fn get_text(url: String) -> Option<String> {
    let answer = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    answer.text().await.ok()
}

/// The proxy's view of the workload.
pub async fn proxy_workload(s: &Stack) -> Option<Value> {
    get_json(format!("http://{}/v1/workloads/api", s.admin)).await
}

/// The controller's status of the workload.
pub async fn status(s: &Stack) -> Option<Value> {
    let all = get_json(format!("http://{}/v1/status", s.api)).await?;
    all["workloads"]
        .as_array()?
        .iter()
        .find(|w| w["name"] == "api")
        .cloned()
}
