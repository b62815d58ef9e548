//! `[controller]` and `[workloads.instance]`: what the control plane (`umbra`) reads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{FieldPath, Invalid};
use crate::kubernetes::{LeaderElection, RawKubernetes};
use crate::proxy::{AdminToken, Env, ProxySettings, dur, token};
use crate::values::socket_addr;

/// `[controller]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawController {
    /// Controller API (status, forecasts, webhooks), e.g. "127.0.0.1:9900".
    api_listen: Option<String>,
    /// Bearer token for the controller's mutating endpoints (webhooks): literal or `env:NAME`.
    api_token: Option<String>,
    /// Where state lives (SQLite, instance logs), relative to this file's directory.
    data_dir: Option<String>,
    /// Admin addresses of the proxies to drive; default: this file's `proxy.admin_listen`.
    proxies: Option<Vec<String>>,
    /// Token for the proxies' admin APIs; default: `proxy.admin_token`.
    proxy_token: Option<String>,
    /// `act` (default) or `observe` (forecast and report, never change anything).
    mode: Option<String>,
    /// `process` (default), `podman` or `kubernetes`.
    provisioner: Option<String>,
    /// Resolution of recorded history and forecasts, e.g. "10s".
    step: Option<String>,
    /// How often proxies' metrics are scraped, e.g. "5s".
    scrape_interval: Option<String>,
    /// How often forecasts are refitted, e.g. "1m".
    forecast_interval: Option<String>,
    /// How often migrations are reconciled, e.g. "1s".
    tick: Option<String>,
    /// How much history is kept, e.g. "14d".
    retention: Option<String>,
    /// Directory of policy files, relative to this file's directory.
    policy_dir: Option<String>,
    /// Webhook that receives alerts (rollbacks, failed provisioning).
    alert_webhook: Option<String>,
    /// `alertmanager` (default) or `slack`.
    alert_format: Option<String>,
    /// Prometheus as a history source.
    prometheus: Option<RawPrometheus>,
    /// External signal files.
    signals: Option<RawSignals>,
    /// Kubernetes provisioner settings.
    kubernetes: Option<RawKubernetes>,
    /// How many workloads may migrate at once (ranked: stateless, demand, priority).
    max_concurrent_migrations: Option<usize>,
    /// Requests/s `umbra up` sends through the proxy to each workload, so a fresh start shows
    /// live figures; 0 (default) sends nothing.
    example_load_rps: Option<f64>,
}

/// `[controller.prometheus]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrometheus {
    /// Base URL, e.g. "http://127.0.0.1:9090".
    url: Option<String>,
    /// How far back to read on start-up, e.g. "7d".
    lookback: Option<String>,
    /// Resource name (`cpu`, `memory`, `storage`, `network`, `rps`) -> PromQL; `{workload}`
    /// is replaced by the workload name.
    queries: Option<BTreeMap<String, String>>,
}

/// `[controller.signals]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignals {
    /// iCalendar files of events (sports seasons, conferences, holidays).
    calendars: Option<Vec<String>>,
    /// Campaign schedules, CSV `start,end,workloads,expected_uplift`.
    campaigns: Option<Vec<String>>,
    /// Planned deployments, CSV.
    deployments: Option<Vec<String>>,
    /// Social posts, JSON Lines `{"timestamp", "text"}`.
    sentiment: Option<Vec<String>>,
    /// How long before an event its effect may start, e.g. "1h".
    lead: Option<String>,
    /// How long after an event its effect may last, e.g. "1h".
    lag: Option<String>,
}

/// `[workloads.instance]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInstance {
    /// argv of one instance (`process` provisioner); `{addr}`, `{port}` and `{umbra}` (the
    /// umbra binary) are substituted.
    command: Option<Vec<String>>,
    /// Container image (`podman`, `kubernetes`).
    image: Option<String>,
    /// Port the container listens on.
    container_port: Option<u16>,
    /// Readiness path (2xx = ready); absent = TCP connect.
    health_path: Option<String>,
    /// Run primary instances at the `primary` addresses too (`umbra up`).
    manage_primary: Option<bool>,
    /// Extra environment for instances.
    env: Option<BTreeMap<String, String>>,
}

/// How the controller acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forecast, provision and migrate.
    Act,
    /// Forecast and report what it would do; change nothing (run beside production).
    Observe,
}

/// Which resource manager provisions shadow instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProvisionerKind {
    /// Local processes with cgroup limits.
    Process,
    /// Podman containers.
    Podman,
    /// A Kubernetes Deployment per workload.
    Kubernetes,
}

/// Alert payload shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertFormat {
    /// Alertmanager `POST /api/v2/alerts` (a JSON array of alerts).
    Alertmanager,
    /// Slack incoming webhook (`{"text": ...}`).
    Slack,
}

/// Prometheus as a history source.
#[derive(Clone, Debug, PartialEq)]
pub struct PrometheusSource {
    /// Base URL.
    pub url: String,
    /// How far back to read on start-up.
    pub lookback: Duration,
    /// Resource -> PromQL with `{workload}`.
    pub queries: BTreeMap<String, String>,
}

/// Signal files, resolved to absolute paths.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignalFiles {
    /// `.ics` files.
    pub calendars: Vec<PathBuf>,
    /// Campaign CSVs.
    pub campaigns: Vec<PathBuf>,
    /// Deployment schedule CSVs.
    pub deployments: Vec<PathBuf>,
    /// Sentiment JSONL files.
    pub sentiment: Vec<PathBuf>,
    /// Effect may start this long before an event.
    pub lead: Duration,
    /// Effect may last this long after an event.
    pub lag: Duration,
}

/// The controller's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ControllerSettings {
    /// API listener. Default `127.0.0.1:9900`.
    pub api_listen: SocketAddr,
    /// Token for webhooks and other mutating calls; `None` = read-only API.
    pub api_token: Option<AdminToken>,
    /// State directory. Default `data` next to the config file.
    pub data_dir: PathBuf,
    /// Proxy admin addresses. Default: `[proxy.admin_listen]`.
    pub proxies: Vec<SocketAddr>,
    /// Token for the proxies. Default: `proxy.admin_token`.
    pub proxy_token: Option<AdminToken>,
    /// Act or only observe. Default act.
    pub mode: Mode,
    /// Provisioner. Default process.
    pub provisioner: ProvisionerKind,
    /// History/forecast resolution. Default 10 s.
    pub step: Duration,
    /// Scrape period. Default 5 s.
    pub scrape_interval: Duration,
    /// Refit period. Default 1 min.
    pub forecast_interval: Duration,
    /// Reconcile period. Default 1 s.
    pub tick: Duration,
    /// History kept. Default 14 days.
    pub retention: Duration,
    /// Policy directory. Default `policies` next to the config file.
    pub policy_dir: PathBuf,
    /// Alert webhook URL.
    pub alert_webhook: Option<String>,
    /// Alert payload shape. Default alertmanager.
    pub alert_format: AlertFormat,
    /// Prometheus history source.
    pub prometheus: Option<PrometheusSource>,
    /// Signal files.
    pub signals: SignalFiles,
    /// Kubernetes namespace. Default `default`.
    pub kubernetes_namespace: String,
    /// Leader election among replicas (`[controller.kubernetes] leader_election = true`);
    /// `None`: a single controller with its phases in SQLite. Default `None`.
    pub leader_election: Option<LeaderElection>,
    /// Workloads migrating at once. Default 1: when several shortages are predicted the
    /// ranking decides who moves first.
    pub max_concurrent_migrations: usize,
    /// Requests/s `umbra up` sends through the proxy to each workload (light example traffic
    /// so a fresh start is not empty). Default 0: none.
    pub example_load_rps: f64,
}

/// How to run one instance of a workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceSpec {
    /// argv with `{addr}`, `{port}`, `{umbra}` placeholders.
    pub command: Vec<String>,
    /// Container image.
    pub image: Option<String>,
    /// Container port. Default 8080.
    pub container_port: u16,
    /// Readiness path.
    pub health_path: Option<String>,
    /// Whether `umbra up` runs the primary instances too.
    pub manage_primary: bool,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
}

/// `dir/relative` unless `p` is absolute.
fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

pub(crate) fn validate(
    raw: Option<&RawController>,
    proxy: &ProxySettings,
    base: &Path,
    env: &Env<'_>,
) -> Result<ControllerSettings, Invalid> {
    let empty = RawController::default();
    let raw = raw.unwrap_or(&empty);
    let at = FieldPath::root("controller");
    let api_listen = socket_addr(raw.api_listen.as_deref().unwrap_or("127.0.0.1:9900"))
        .map_err(|m| Invalid::new(at.key("api_listen"), m))?;
    let api_token = raw
        .api_token
        .as_deref()
        .map(|t| token(t, env).map_err(|m| Invalid::new(at.key("api_token"), m)))
        .transpose()?;
    if !api_listen.ip().is_loopback() && api_token.is_none() {
        return Err(Invalid::new(
            at.key("api_listen"),
            format!("{api_listen} is not loopback: set controller.api_token"),
        ));
    }
    let proxies = match &raw.proxies {
        None => vec![proxy.admin_listen],
        Some(list) => {
            let mut out = Vec::new();
            for (i, p) in list.iter().enumerate() {
                out.push(socket_addr(p).map_err(|m| Invalid::new(at.key("proxies").index(i), m))?);
            }
            out
        }
    };
    let proxy_token = match &raw.proxy_token {
        Some(t) => Some(token(t, env).map_err(|m| Invalid::new(at.key("proxy_token"), m))?),
        None => proxy.admin_token.clone(),
    };
    let mode = match raw.mode.as_deref().unwrap_or("act") {
        "act" => Mode::Act,
        "observe" => Mode::Observe,
        other => {
            return Err(Invalid::new(
                at.key("mode"),
                format!("{other:?} is not one of act, observe"),
            ));
        }
    };
    let provisioner = match raw.provisioner.as_deref().unwrap_or("process") {
        "process" => ProvisionerKind::Process,
        "podman" => ProvisionerKind::Podman,
        "kubernetes" => ProvisionerKind::Kubernetes,
        other => {
            return Err(Invalid::new(
                at.key("provisioner"),
                format!("{other:?} is not one of process, podman, kubernetes"),
            ));
        }
    };
    let alert_format = match raw.alert_format.as_deref().unwrap_or("alertmanager") {
        "alertmanager" => AlertFormat::Alertmanager,
        "slack" => AlertFormat::Slack,
        other => {
            return Err(Invalid::new(
                at.key("alert_format"),
                format!("{other:?} is not one of alertmanager, slack"),
            ));
        }
    };
    if let Some(url) = &raw.alert_webhook {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Invalid::new(
                at.key("alert_webhook"),
                format!("{url:?} is not an http(s) URL"),
            ));
        }
    }
    let step = dur(&at, "step", &raw.step, "10s")?;
    let scrape_interval = dur(&at, "scrape_interval", &raw.scrape_interval, "5s")?;
    if scrape_interval > step {
        return Err(Invalid::new(
            at.key("scrape_interval"),
            "must not be longer than controller.step",
        ));
    }
    let kubernetes =
        crate::kubernetes::validate(&at.key("kubernetes"), raw.kubernetes.as_ref(), env)?;
    if kubernetes.leader_election.is_some() && provisioner != ProvisionerKind::Kubernetes {
        return Err(Invalid::new(
            at.key("kubernetes").key("leader_election"),
            "needs controller.provisioner = \"kubernetes\" (replicas share the cluster's state)",
        ));
    }
    let prometheus = raw
        .prometheus
        .as_ref()
        .map(|p| prometheus(&at.key("prometheus"), p))
        .transpose()?;
    Ok(ControllerSettings {
        api_listen,
        api_token,
        data_dir: resolve(base, raw.data_dir.as_deref().unwrap_or("data")),
        proxies,
        proxy_token,
        mode,
        provisioner,
        step,
        scrape_interval,
        forecast_interval: dur(&at, "forecast_interval", &raw.forecast_interval, "1m")?,
        tick: dur(&at, "tick", &raw.tick, "1s")?,
        retention: dur(&at, "retention", &raw.retention, "14d")?,
        policy_dir: resolve(base, raw.policy_dir.as_deref().unwrap_or("policies")),
        alert_webhook: raw.alert_webhook.clone(),
        alert_format,
        prometheus,
        signals: signals(&at.key("signals"), raw.signals.as_ref(), base)?,
        max_concurrent_migrations: match raw.max_concurrent_migrations {
            Some(0) => {
                return Err(Invalid::new(
                    at.key("max_concurrent_migrations"),
                    "must be at least 1",
                ));
            }
            n => n.unwrap_or(1),
        },
        kubernetes_namespace: kubernetes.namespace,
        leader_election: kubernetes.leader_election,
        example_load_rps: match raw.example_load_rps {
            Some(r) if !(0.0..=1000.0).contains(&r) => {
                return Err(Invalid::new(
                    at.key("example_load_rps"),
                    format!("{r} is not between 0 and 1000"),
                ));
            }
            r => r.unwrap_or(0.0),
        },
    })
}

fn prometheus(at: &FieldPath, raw: &RawPrometheus) -> Result<PrometheusSource, Invalid> {
    let url = raw
        .url
        .clone()
        .ok_or_else(|| Invalid::new(at.key("url"), "is required"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Invalid::new(
            at.key("url"),
            format!("{url:?} is not an http(s) URL"),
        ));
    }
    let queries = raw.queries.clone().unwrap_or_default();
    for name in queries.keys() {
        if !["rps", "cpu", "memory", "storage", "network"].contains(&name.as_str()) {
            return Err(Invalid::new(
                at.key("queries").key(name),
                format!("{name:?} is not one of rps, cpu, memory, storage, network"),
            ));
        }
    }
    Ok(PrometheusSource {
        url: url.trim_end_matches('/').to_string(),
        lookback: dur(at, "lookback", &raw.lookback, "7d")?,
        queries,
    })
}

fn signals(at: &FieldPath, raw: Option<&RawSignals>, base: &Path) -> Result<SignalFiles, Invalid> {
    let Some(raw) = raw else {
        return Ok(SignalFiles {
            lead: Duration::from_secs(3600),
            lag: Duration::from_secs(3600),
            ..Default::default()
        });
    };
    let files = |v: &Option<Vec<String>>| {
        v.iter()
            .flatten()
            .map(|p| resolve(base, p))
            .collect::<Vec<_>>()
    };
    Ok(SignalFiles {
        calendars: files(&raw.calendars),
        campaigns: files(&raw.campaigns),
        deployments: files(&raw.deployments),
        sentiment: files(&raw.sentiment),
        lead: dur(at, "lead", &raw.lead, "1h")?,
        lag: dur(at, "lag", &raw.lag, "1h")?,
    })
}

pub(crate) fn instance(raw: Option<&RawInstance>, at: &FieldPath) -> Result<InstanceSpec, Invalid> {
    let empty = RawInstance::default();
    let raw = raw.unwrap_or(&empty);
    let command = raw.command.clone().unwrap_or_default();
    if raw.command.is_some() && command.first().is_none_or(|c| c.trim().is_empty()) {
        return Err(Invalid::new(
            at.key("command"),
            "must name a program to run",
        ));
    }
    if let Some(p) = &raw.health_path {
        if !p.starts_with('/') {
            return Err(Invalid::new(
                at.key("health_path"),
                format!("must start with '/', got {p:?}"),
            ));
        }
    }
    let container_port = raw.container_port.unwrap_or(8080);
    if container_port == 0 {
        return Err(Invalid::new(at.key("container_port"), "must not be 0"));
    }
    let manage_primary = raw.manage_primary.unwrap_or(false);
    if manage_primary && command.is_empty() {
        return Err(Invalid::new(
            at.key("manage_primary"),
            "needs instance.command to run primary instances",
        ));
    }
    Ok(InstanceSpec {
        command,
        image: raw.image.clone(),
        container_port,
        health_path: raw.health_path.clone(),
        manage_primary,
        env: raw.env.clone().unwrap_or_default(),
    })
}
