//! Policy files (`policies/<name>.toml`): how big the shadow pool is, when to migrate, how
//! fast to ramp, what counts as healthy. Strict like the main config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use policies::{
    AtFull, GateLimits, InstanceSize, MigrationPolicy, RampError, RampPolicy, SizingError,
    SizingPolicy, TriggerError, TriggerPolicy,
};
use serde::Deserialize;

use crate::error::{ConfigError, FieldPath, Invalid};
use crate::load::{invalid_in, syntax_in};
use crate::proxy::dur;

/// A validated policy file.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadPolicy {
    /// The policy's name (file stem).
    pub name: String,
    /// Forecast quantile the shadow is sized for, e.g. 0.9.
    pub quantile: f64,
    /// How far ahead the controller forecasts.
    pub horizon: Duration,
    /// Time from starting an instance to it serving.
    pub startup: Duration,
    /// Shadow sizing.
    pub sizing: SizingPolicy,
    /// Migration trigger.
    pub trigger: TriggerPolicy,
    /// Ramp, gate, timeouts.
    pub migration: MigrationPolicy,
    /// Whether a stateful workload may be migrated (existing sessions then stay on primary,
    /// see the workload's `session_cookie`).
    pub allow_stateful: bool,
    /// The file it came from.
    pub source: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    /// Forecast settings.
    forecast: Option<RawForecast>,
    /// Shadow sizing.
    sizing: Option<RawSizing>,
    /// Migration trigger.
    trigger: Option<RawTrigger>,
    /// Ramp and gate.
    ramp: Option<RawRamp>,
    /// Stateful workloads.
    migration: Option<RawMigration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForecast {
    /// Upper quantile to size for, in (0.5, 1).
    quantile: Option<f64>,
    /// Forecast horizon, e.g. "2h".
    horizon: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSize {
    /// Thousandths of a core.
    cpu_millis: u32,
    /// MiB.
    memory_mib: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSizing {
    /// Demand one full-size instance serves (requests/s).
    instance_capacity: Option<f64>,
    /// Share of the predicted peak the shadow must carry.
    peak_fraction: Option<f64>,
    /// Headroom over observed demand while new instances start, e.g. 0.2.
    buffer: Option<f64>,
    /// Or at least the rise demand has shown within one start-up time, at this quantile of
    /// its recent history, e.g. 0.99 (0 = off).
    rise_quantile: Option<f64>,
    /// Fewest shadow instances (0 = no idle shadow).
    min_instances: Option<u32>,
    /// Most shadow instances.
    max_instances: Option<u32>,
    /// Instance size while idle.
    idle: Option<RawSize>,
    /// Instance size under load.
    full: Option<RawSize>,
    /// Switch to full size when predicted load within the lead time reaches this share of
    /// primary capacity.
    warm_at: Option<f64>,
    /// Time an instance takes to become ready, e.g. "20s".
    startup: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    /// Migrate when predicted demand exceeds this share of primary capacity.
    threshold: Option<f64>,
    /// Return when demand stays below this share.
    clear_below: Option<f64>,
    /// Act when the shortage is this close, e.g. "5m"; at least `sizing.startup`.
    lead_time: Option<String>,
    /// Stay migrated at least this long, e.g. "10m".
    min_hold: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRamp {
    /// First shadow weight, e.g. 0.1.
    start_weight: Option<f64>,
    /// Added per step, e.g. 0.1.
    step: Option<f64>,
    /// Time between steps, e.g. "30s".
    interval: Option<String>,
    /// Gate: shadow p99 ceiling, ms.
    max_p99_ms: Option<f64>,
    /// Gate: shadow failed share ceiling.
    max_error_rate: Option<f64>,
    /// Gate: instance CPU share of limit ceiling.
    max_cpu: Option<f64>,
    /// Gate: instance memory share of limit ceiling.
    max_memory: Option<f64>,
    /// Gate: requests a step needs before it can pass.
    min_requests: Option<u64>,
    /// `keep_warm`, `decommission` or `adopt`.
    at_full: Option<String>,
    /// Give up provisioning after, e.g. "5m".
    provision_timeout: Option<String>,
    /// Wait after a rollback before migrating again, e.g. "15m".
    retry_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMigration {
    /// Allow migrating a stateful workload.
    allow_stateful: Option<bool>,
}

/// Reads and validates a policy file.
pub fn load_policy(path: &Path) -> Result<WorkloadPolicy, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_policy(path, &text)
}

/// Validates policy `text`; `path` names it in errors and its stem names the policy.
pub fn parse_policy(path: &Path, text: &str) -> Result<WorkloadPolicy, ConfigError> {
    let raw: RawPolicy = serde_path_to_error::deserialize(toml::Deserializer::new(text))
        .map_err(|e| syntax_in(path, text, &e))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy")
        .to_string();
    validate(&raw, name, path).map_err(|e| invalid_in(path, text, e))
}

fn validate(raw: &RawPolicy, name: String, path: &Path) -> Result<WorkloadPolicy, Invalid> {
    let fc = FieldPath::root("forecast");
    let f = raw.forecast.as_ref();
    let quantile = f.and_then(|f| f.quantile).unwrap_or(0.9);
    if !(quantile > 0.5 && quantile < 1.0) {
        return Err(Invalid::new(
            fc.key("quantile"),
            format!("must be in (0.5, 1), got {quantile}"),
        ));
    }
    let horizon = dur(&fc, "horizon", &f.and_then(|f| f.horizon.clone()), "2h")?;

    let sz = FieldPath::root("sizing");
    let empty_sizing = RawSizing::default();
    let s = raw.sizing.as_ref().unwrap_or(&empty_sizing);
    let startup = dur(&sz, "startup", &s.startup, "20s")?;
    let size = |key: &str, v: &Option<RawSize>, cpu: u32, mem: u32| match v {
        None => Ok(InstanceSize {
            cpu_millis: cpu,
            memory_mib: mem,
        }),
        Some(r) if r.cpu_millis > 0 && r.memory_mib > 0 => Ok(InstanceSize {
            cpu_millis: r.cpu_millis,
            memory_mib: r.memory_mib,
        }),
        Some(_) => Err(Invalid::new(
            sz.key(key),
            "cpu_millis and memory_mib must be above 0",
        )),
    };
    let sizing = SizingPolicy::new(
        s.instance_capacity.unwrap_or(50.0),
        s.peak_fraction.unwrap_or(1.0),
        s.buffer.unwrap_or(0.2),
        s.min_instances.unwrap_or(1),
        s.max_instances.unwrap_or(u32::MAX),
        size("idle", &s.idle, 100, 64)?,
        size("full", &s.full, 1000, 256)?,
        s.warm_at.unwrap_or(0.9),
    )
    .and_then(|p| p.with_rise_quantile(s.rise_quantile.unwrap_or(0.9)))
    .map_err(|e| {
        let key = match e {
            SizingError::Capacity(_) => "instance_capacity",
            SizingError::PeakFraction(_) => "peak_fraction",
            SizingError::Buffer(_) => "buffer",
            SizingError::Bounds { .. } => "min_instances",
            SizingError::IdleAboveFull { .. } | SizingError::ZeroSize => "idle",
            SizingError::WarmAt(_) => "warm_at",
            SizingError::RiseQuantile(_) => "rise_quantile",
        };
        Invalid::new(sz.key(key), e)
    })?;

    let tr = FieldPath::root("trigger");
    let empty_trigger = RawTrigger::default();
    let t = raw.trigger.as_ref().unwrap_or(&empty_trigger);
    let lead = dur(&tr, "lead_time", &t.lead_time, "5m")?;
    let min_hold = dur(&tr, "min_hold", &t.min_hold, "10m")?;
    let trigger = TriggerPolicy::new(
        t.threshold.unwrap_or(0.9),
        t.clear_below.unwrap_or(0.7),
        millis(lead),
        millis(startup),
        millis(min_hold),
    )
    .map_err(|e| {
        let key = match e {
            TriggerError::Threshold(_) => "threshold",
            TriggerError::Hysteresis { .. } => "clear_below",
            TriggerError::LeadTime { .. } => "lead_time",
        };
        Invalid::new(tr.key(key), e)
    })?;
    if lead > horizon {
        return Err(Invalid::new(
            tr.key("lead_time"),
            "must not be longer than forecast.horizon",
        ));
    }

    let rp = FieldPath::root("ramp");
    let empty_ramp = RawRamp::default();
    let r = raw.ramp.as_ref().unwrap_or(&empty_ramp);
    let max_p99_ms = r.max_p99_ms.unwrap_or(250.0);
    if !(max_p99_ms.is_finite() && max_p99_ms > 0.0) {
        return Err(Invalid::new(
            rp.key("max_p99_ms"),
            format!("must be a positive number of milliseconds, got {max_p99_ms}"),
        ));
    }
    let at_full = match r.at_full.as_deref().unwrap_or("adopt") {
        "keep_warm" => AtFull::KeepWarm,
        "decommission" => AtFull::Decommission,
        "adopt" => AtFull::Adopt,
        other => {
            return Err(Invalid::new(
                rp.key("at_full"),
                format!("{other:?} is not one of keep_warm, decommission, adopt"),
            ));
        }
    };
    let gate = GateLimits {
        max_p99: Duration::from_secs_f64(max_p99_ms / 1000.0),
        max_error_rate: r.max_error_rate.unwrap_or(0.02),
        max_cpu: r.max_cpu.unwrap_or(0.9),
        max_memory: r.max_memory.unwrap_or(0.9),
        min_requests: r.min_requests.unwrap_or(20),
    };
    let interval = dur(&rp, "interval", &r.interval, "30s")?;
    let ramp = RampPolicy::new(
        r.start_weight.unwrap_or(0.1),
        r.step.unwrap_or(0.1),
        millis(interval),
        gate,
        at_full,
    )
    .map_err(|e| {
        let key = match &e {
            RampError::Start(_) => "start_weight",
            RampError::Step(_) => "step",
            RampError::Interval => "interval",
            RampError::Share { field, .. } => field,
        };
        Invalid::new(rp.key(key), e)
    })?;
    let migration = MigrationPolicy {
        ramp,
        provision_timeout_ms: millis(dur(&rp, "provision_timeout", &r.provision_timeout, "5m")?),
        retry_after_ms: millis(dur(&rp, "retry_after", &r.retry_after, "15m")?),
    };

    let m = raw.migration.as_ref();
    Ok(WorkloadPolicy {
        name,
        quantile,
        horizon,
        startup,
        sizing,
        trigger,
        migration,
        allow_stateful: m.and_then(|m| m.allow_stateful).unwrap_or(false),
        source: path.to_path_buf(),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl WorkloadPolicy {
    /// The rules the reconciler (`policies::reconcile`) applies.
    pub fn rules(&self) -> policies::Rules<'_> {
        policies::Rules {
            sizing: &self.sizing,
            trigger: &self.trigger,
            migration: &self.migration,
        }
    }

    /// The built-in policy (every default), for workloads that name none.
    pub fn builtin() -> Self {
        parse_policy(Path::new("default.toml"), "").unwrap_or_else(|e| {
            // The defaults above are constants; this cannot fail short of a coding error.
            panic!("built-in policy defaults are invalid: {e}")
        })
    }
}
