//! Shared helpers of the `simulate_*` tests: trace slices by path, settings, a recording
//! forecaster.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use config::WorkloadPolicy;
use forecast::{
    ForecastError, ForecastOptions, Forecaster, ForecasterConfig, GridOptions, ModelKind, Series,
    read_series,
};
use policies::GuardThresholds;
use simulate::{Delays, DemandForecaster, DemandTrace, HpaConfig, Settings, WalkForward};

/// A shared trace by name (never copied into the repository).
pub fn trace_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/traces/numenta-NAB")
        .join(name)
}

/// The first `points` samples of a shared trace.
pub fn slice(name: &str, points: usize) -> Series {
    let grid = read_series(&trace_path(name), &GridOptions::default())
        .unwrap_or_else(|e| panic!("reading {name} from ../shared: {e}"));
    grid.series.head(points)
}

/// A policy for tests: the defaults with room for the shadow to grow, a lead time that
/// covers start-up plus ramp, and a short cooldown.
pub fn policy() -> WorkloadPolicy {
    policy_from(POLICY)
}

/// [`policy`], returning to primary once demand falls (`at_full = "decommission"`) instead of
/// staying on the shadow (the built-in `adopt`).
pub fn returning_policy() -> WorkloadPolicy {
    policy_from(&POLICY.replace("[ramp]\n", "[ramp]\nat_full = \"decommission\"\n"))
}

fn policy_from(text: &str) -> WorkloadPolicy {
    config::parse_policy(Path::new("test-policy.toml"), text)
        .unwrap_or_else(|e| panic!("test policy: {e}"))
}

const POLICY: &str = r#"
[forecast]
quantile = 0.9
horizon = "2h"

[sizing]
instance_capacity = 10.0
max_instances = 400
startup = "2m"

[trigger]
lead_time = "15m"
min_hold = "30m"

[ramp]
step = 0.25
interval = "30s"
retry_after = "5m"
"#;

/// Settings for a replay of `trace` with `primary` instances of 10 requests/s.
pub fn settings(primary: u32) -> Settings {
    Settings {
        policy: policy(),
        instance_capacity: 10.0,
        delays: Delays {
            startup: 120,
            resize: 120,
        },
        primary_instances: primary,
        tick_s: 15,
        refit_every_s: 1800,
        warmup_s: 86_400,
        hpa: HpaConfig::new(70, 1, 1000),
        guard: GuardThresholds::new(20, None, None, Duration::ZERO, 0.05)
            .unwrap_or_else(|e| panic!("guard: {e}")),
    }
}

/// The live controller's forecaster with `model`, re-selecting daily.
pub fn walk_forward(model: ModelKind) -> WalkForward {
    let options = ForecastOptions {
        model,
        level: 0.8,
        ..ForecastOptions::default()
    };
    WalkForward::new(
        Forecaster::with_config(ForecasterConfig {
            prophet_in_auto: false,
            ..ForecasterConfig::default()
        }),
        options,
        86_400,
    )
}

/// `DemandTrace::new` for tests.
pub fn demand(series: &Series) -> DemandTrace {
    DemandTrace::new(series, 1.0).unwrap_or_else(|e| panic!("trace: {e}"))
}

/// One call a forecaster received.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Simulated now.
    pub now: i64,
    /// Time of the last sample it was shown.
    pub last_seen: i64,
    /// Number of samples it was shown.
    pub seen: usize,
    /// What it answered.
    pub upper: Vec<f64>,
}

/// Wraps a forecaster and records every call.
pub struct Recording<F> {
    /// The wrapped forecaster.
    pub inner: F,
    /// Calls, in order.
    pub calls: Vec<Call>,
}

impl<F: DemandForecaster> DemandForecaster for Recording<F> {
    fn upper(
        &mut self,
        now: i64,
        history: &Series,
        steps: usize,
    ) -> Result<Vec<f64>, ForecastError> {
        let upper = self.inner.upper(now, history, steps)?;
        self.calls.push(Call {
            now,
            last_seen: history.time_at(history.len().saturating_sub(1)),
            seen: history.len(),
            upper: upper.clone(),
        });
        Ok(upper)
    }
}

/// A smooth daily pattern on a 5-minute grid: `base + amplitude * sin(...)`, peaking at 15:00.
pub fn daily(days: usize, base: f64, amplitude: f64) -> Vec<f64> {
    (0..days * 288)
        .map(|i| {
            let hour = (i % 288) as f64 / 12.0;
            base + amplitude * ((hour - 9.0) / 24.0 * std::f64::consts::TAU).sin()
        })
        .collect()
}

/// Writes the first `points` rows of a shared trace to `dir` (a run-time copy, never
/// committed) and returns its path.
pub fn write_slice(dir: &Path, name: &str, points: usize) -> PathBuf {
    let text = std::fs::read_to_string(trace_path(name))
        .unwrap_or_else(|e| panic!("reading {name} from ../shared: {e}"));
    let head: Vec<&str> = text.lines().take(points + 1).collect();
    let path = dir.join(name);
    std::fs::write(&path, head.join("\n") + "\n").unwrap_or_else(|e| panic!("writing: {e}"));
    path
}

/// Runs the `umbra` binary with `args`.
pub fn umbra(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_umbra"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running umbra: {e}"))
}
