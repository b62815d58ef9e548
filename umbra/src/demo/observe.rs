//! Watches the controller and the proxy while the load runs: moves the story's phase on,
//! breaks the shadow pool once traffic is on it and demand is past its peak, and times the
//! proxy's rollback against the moment of the fault.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use super::load::{LivePhase, PhaseCell};
use super::plan::{DemoPlan, trace_label};
use super::stack::WORKLOAD;

/// The fault waits until demand is under this share of primary capacity, so that primary,
/// kept warm, can take everything back without queueing: the rollback is the story, not an
/// overload.
pub const FAULT_BELOW: f64 = 0.8;
/// With this little of the window left the fault is injected anyway, so the rollback (well
/// under a second) and the controller's reaction (a tick later) are still seen.
const LAST_CHANCE: Duration = Duration::from_secs(4);
/// Poll period; shorter while a rollback is awaited so its time is measured finely.
const POLL: Duration = Duration::from_millis(100);
const POLL_FAULT: Duration = Duration::from_millis(20);

/// How the shadow pool is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Every shadow response 300 ms late: slow, not failed.
    Delay,
    /// Every shadow response a 500.
    Error,
}

impl FaultKind {
    fn body(self) -> Value {
        match self {
            FaultKind::Delay => serde_json::json!({ "delay_ms": 300 }),
            FaultKind::Error => serde_json::json!({ "status": 500 }),
        }
    }

    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            FaultKind::Delay => "every shadow instance answers 300 ms late",
            FaultKind::Error => "every shadow instance answers 500",
        }
    }
}

/// What the controller reported, whenever its migration state changed.
#[derive(Clone, Debug, Serialize)]
pub struct StateChange {
    /// ms after the live window started.
    pub at_ms: i64,
    /// New migration state.
    pub state: String,
    /// Demand the controller observed then, requests/s.
    pub observed_rps: Option<f64>,
    /// Highest upper-quantile forecast over its horizon then, requests/s.
    pub forecast_peak_rps: Option<f64>,
}

/// One poll, for the report's chart.
#[derive(Clone, Debug, Serialize)]
pub struct Tick {
    /// ms after the live window started.
    pub at_ms: i64,
    /// The proxy's shadow weight.
    pub weight: f64,
    /// The controller's highest forecast over its horizon, requests/s.
    pub forecast_peak_rps: Option<f64>,
}

/// The fault and what it led to.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    /// Which fault.
    pub kind: FaultKind,
    /// Shadow instances broken.
    pub targets: Vec<String>,
    /// ms after the live window started (just before the first instance was broken).
    pub injected_at_ms: i64,
    /// Trace demand then, requests/s.
    pub demand_rps: f64,
    /// Injected because the window was ending, not because demand was past its peak.
    pub forced: bool,
    /// ms after the live window started, by the proxy's own clock.
    pub proxy_rollback_at_ms: Option<i64>,
    /// `proxy_rollback_at_ms - injected_at_ms`.
    pub rollback_after_ms: Option<i64>,
    /// The guard's reason label (`p99_ceiling`, `error_rate`, ...).
    pub proxy_reason: Option<String>,
    /// The numbers behind it.
    pub proxy_detail: Option<String>,
    /// When the controller reported `rolled_back` (ms after the live window started).
    pub controller_at_ms: Option<i64>,
}

/// Everything the observer saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Observations {
    /// Controller state changes.
    pub states: Vec<StateChange>,
    /// Polls.
    pub ticks: Vec<Tick>,
    /// The fault, if one was injected.
    pub fault: Option<FaultRecord>,
}

/// The observer's inputs.
pub struct Observer {
    /// HTTP client (short timeouts).
    pub http: reqwest::Client,
    /// Controller API.
    pub api: SocketAddr,
    /// Proxy admin API.
    pub admin: SocketAddr,
    /// The plan (trace clock, demand, capacity).
    pub plan: Arc<DemoPlan>,
    /// The fault to inject.
    pub fault: FaultKind,
    /// Print progress lines to stderr.
    pub progress: bool,
    /// Wall clock at the live window's start.
    pub started: Instant,
    /// Unix ms at the live window's start.
    pub started_unix_ms: i64,
}

impl Observer {
    fn since(&self) -> Duration {
        self.started.elapsed()
    }

    fn say(&self, text: &str) {
        if self.progress {
            let at = self.since();
            eprintln!(
                "  +{:>5.1}s  [{}]  {text}",
                at.as_secs_f64(),
                trace_label(self.plan.trace_at(at))
            );
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: String) -> Option<T> {
        let resp = self.http.get(&url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    /// Polls until `stop` flips, setting `phase` as the story moves on.
    pub async fn run(self, phase: PhaseCell, mut stop: watch::Receiver<bool>) -> Observations {
        let mut seen = Observations::default();
        let mut last_state = String::new();
        let mut last_progress = Duration::ZERO;
        let duration = self.plan.wall_duration();
        let capacity = self.plan.primary_capacity();
        loop {
            let proxy: Option<wire::Workload> = self
                .get(format!("http://{}/v1/workloads/{WORKLOAD}", self.admin))
                .await;
            let status = self
                .get::<Value>(format!("http://{}/v1/status", self.api))
                .await
                .and_then(|s| {
                    s["workloads"]
                        .as_array()?
                        .iter()
                        .find(|w| w["name"] == WORKLOAD)
                        .cloned()
                });
            let at = self.since();
            let at_ms = at.as_millis() as i64;
            let weight = proxy.as_ref().map_or(0.0, |p| p.shadow_weight);
            let state = status
                .as_ref()
                .and_then(|s| s["migration_state"].as_str())
                .unwrap_or("unknown")
                .to_string();
            let forecast_peak = status
                .as_ref()
                .and_then(|s| s["forecast_peak_rps"].as_f64());
            seen.ticks.push(Tick {
                at_ms,
                weight,
                forecast_peak_rps: forecast_peak,
            });
            if state != last_state && state != "unknown" {
                let observed = status.as_ref().and_then(|s| s["observed_rps"].as_f64());
                // The first state (idle, before any traffic) is no news.
                if !last_state.is_empty() {
                    self.say(&format!(
                    "controller: {state} (observed {} req/s, forecast peak {} req/s, shadow weight {weight:.1})",
                    fmt_rps(observed),
                    fmt_rps(forecast_peak)
                ));
                }
                seen.states.push(StateChange {
                    at_ms,
                    state: state.clone(),
                    observed_rps: observed,
                    forecast_peak_rps: forecast_peak,
                });
                last_state = state.clone();
            }

            match phase.get() {
                LivePhase::PrimaryOnly if weight > 0.0 => phase.set(LivePhase::Ramping),
                LivePhase::Ramping if state == "migrated" && weight >= 1.0 => {
                    phase.set(LivePhase::OnShadow)
                }
                // A rollback before the fault (the ramp's gate or the guard said no): the
                // story starts over on primary.
                LivePhase::Ramping | LivePhase::OnShadow if weight == 0.0 => {
                    phase.set(LivePhase::PrimaryOnly)
                }
                LivePhase::OnShadow => {
                    let demand = self.plan.rate_at(at);
                    let past_peak = self.plan.trace_at(at) >= self.plan.peak.0 as f64;
                    let calm = past_peak && demand <= FAULT_BELOW * capacity;
                    let forced = duration.saturating_sub(at) <= LAST_CHANCE;
                    if calm || forced {
                        let record = self.inject(proxy.as_ref(), at_ms, demand, forced).await;
                        phase.set(LivePhase::Fault);
                        seen.fault = Some(record);
                    }
                }
                LivePhase::Fault => {
                    if let Some(f) = seen.fault.as_mut() {
                        self.await_rollback(f, proxy.as_ref(), weight, &phase);
                    }
                }
                LivePhase::AfterRollback => {
                    if let Some(f) = seen.fault.as_mut() {
                        if f.controller_at_ms.is_none() && state == "rolled_back" {
                            f.controller_at_ms = Some(at_ms);
                        }
                    }
                }
                _ => {}
            }
            if self.progress && at >= last_progress + Duration::from_secs(10) {
                last_progress = at;
                self.say(&format!(
                    "{:.0} req/s sent, shadow weight {weight:.1}, controller {state}",
                    self.plan.rate_at(at)
                ));
            }
            let pause = if phase.get() == LivePhase::Fault {
                POLL_FAULT
            } else {
                POLL
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return seen,
            }
        }
    }

    async fn inject(
        &self,
        proxy: Option<&wire::Workload>,
        at_ms: i64,
        demand: f64,
        forced: bool,
    ) -> FaultRecord {
        let targets: Vec<String> = proxy
            .map(|p| {
                p.shadow
                    .upstreams
                    .iter()
                    .map(|u| u.address.clone())
                    .collect()
            })
            .unwrap_or_default();
        for t in &targets {
            let put = self
                .http
                .put(format!("http://{t}/_umbra/fault"))
                .json(&self.fault.body())
                .send()
                .await;
            match put {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    tracing::warn!(target_addr = %t, status = %r.status(), "fault not accepted")
                }
                Err(e) => tracing::warn!(target_addr = %t, error = %e, "fault not delivered"),
            }
        }
        tracing::warn!(targets = ?targets, kind = ?self.fault, forced, "shadow pool broken on purpose");
        self.say(&format!(
            "fault: {} ({} instances){}",
            self.fault.describe(),
            targets.len(),
            if forced {
                " - the window is ending"
            } else {
                ""
            }
        ));
        FaultRecord {
            kind: self.fault,
            targets,
            injected_at_ms: at_ms,
            demand_rps: demand,
            forced,
            proxy_rollback_at_ms: None,
            rollback_after_ms: None,
            proxy_reason: None,
            proxy_detail: None,
            controller_at_ms: None,
        }
    }

    fn await_rollback(
        &self,
        f: &mut FaultRecord,
        proxy: Option<&wire::Workload>,
        weight: f64,
        phase: &PhaseCell,
    ) {
        let Some(p) = proxy else { return };
        let rollback = p.last_rollback.as_ref();
        let at_unix = rollback.and_then(|r| i64::try_from(r.at_unix_ms).ok());
        let injected_unix = self.started_unix_ms + f.injected_at_ms;
        let fresh = at_unix.is_some_and(|t| t >= injected_unix);
        if !(fresh && p.state == wire::GuardStatus::RolledBack) && weight > 0.0 {
            return;
        }
        if let Some(t) = at_unix.filter(|_| fresh) {
            f.proxy_rollback_at_ms = Some(t - self.started_unix_ms);
            f.rollback_after_ms = Some(t - injected_unix);
            f.proxy_reason = rollback.map(|r| r.reason.as_str().to_string());
            f.proxy_detail = rollback.map(|r| r.detail.clone());
            self.say(&format!(
                "proxy guard rolled the shadow back {} ms after the fault: {}",
                t - injected_unix,
                f.proxy_detail.as_deref().unwrap_or("")
            ));
        } else {
            // Weight 0 without a rollback of the proxy's own: the controller got there first.
            self.say("shadow weight back to 0 (not by the proxy's guard)");
        }
        phase.set(LivePhase::AfterRollback);
    }
}

fn fmt_rps(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"))
}
