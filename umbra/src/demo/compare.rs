//! The comparison `umbra simulate` prints, on the demo's own slice of the trace and in real
//! (not compressed) trace time: Umbra's forecast-driven migrations next to the Kubernetes HPA.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use config::WorkloadPolicy;
use forecast::{ForecastOptions, Forecaster, ForecasterConfig, GridOptions, ModelKind};
use policies::GuardThresholds;

use super::plan::{DemoPlan, trace_label};
use simulate::{Delays, DemandTrace, HpaConfig, Outcome, Settings, WalkForward, replay};

// `umbra simulate`'s defaults, so the table here is the one it prints for the same slice
// (the e2e test checks that against `umbra simulate --json`).
/// Instance start-up, seconds (`--startup 120s`).
const STARTUP_S: i64 = 120;
/// HPA target utilisation, percent (`--hpa-target 70`).
const HPA_TARGET: u32 = 70;
/// HPA replicas (`--hpa-min 1`, `--hpa-max 1000`).
const HPA_REPLICAS: (u32, u32) = (1, 1000);
/// HPA scale-down stabilisation, seconds (`--hpa-downscale-window 300s`).
const HPA_DOWN_WINDOW_S: i64 = 300;
/// Decision tick, seconds (`--tick 15s`).
const TICK_S: i64 = 15;
/// Model re-selection period, seconds (`--select-every 1d`).
const SELECT_EVERY_S: i64 = 86_400;
/// The proxy guard's error-rate ceiling (`--guard-max-error-rate 0.05`).
const GUARD_MAX_ERROR_RATE: f64 = 0.05;

/// The simulated comparison.
pub struct Comparison {
    /// Both strategies' results, timeline and decisions.
    pub outcome: Outcome,
    /// Model the walk-forward forecaster settled on.
    pub model: String,
    /// What was simulated, in words.
    pub lines: Vec<String>,
    /// The `umbra simulate` command that prints the same table.
    pub command: String,
}

/// Replays `slice_csv` (the demo's history + window, written by the demo) as `umbra simulate`
/// would: the built-in policy, instances of the demo's capacity, primary of the demo's size,
/// the history as warm-up so that only the replayed window is counted.
pub fn compare(plan: &DemoPlan, slice_csv: &Path) -> anyhow::Result<Comparison> {
    let grid = forecast::read_series(slice_csv, &GridOptions::default())
        .with_context(|| format!("reading {}", slice_csv.display()))?;
    let trace = DemandTrace::new(&grid.series, plan.scale)?;
    let policy = WorkloadPolicy::builtin();
    let warmup_s = plan.start() - plan.slice.start;
    let mut hpa = HpaConfig::new(HPA_TARGET, HPA_REPLICAS.0, HPA_REPLICAS.1);
    hpa.down_window_s = HPA_DOWN_WINDOW_S;
    let settings = Settings {
        policy: policy.clone(),
        instance_capacity: plan.instance_capacity,
        delays: Delays {
            startup: STARTUP_S,
            resize: STARTUP_S,
        },
        primary_instances: plan.primary_instances,
        tick_s: TICK_S,
        refit_every_s: trace.step().max(TICK_S),
        warmup_s,
        hpa,
        guard: GuardThresholds::new(20, None, None, Duration::ZERO, GUARD_MAX_ERROR_RATE)?,
    };
    let options = ForecastOptions {
        model: ModelKind::Auto,
        level: 2.0 * policy.quantile - 1.0,
        ..ForecastOptions::default()
    };
    let forecaster = Forecaster::with_config(ForecasterConfig::default());
    let mut walk = WalkForward::new(forecaster, options, SELECT_EVERY_S);
    let outcome = replay(&trace, &settings, &mut walk, &mut |_| {})
        .with_context(|| format!("simulating {}", slice_csv.display()))?;
    let model = walk.model().unwrap_or_else(|| "none".into());
    let lines = vec![
        format!(
            "same slice, real time (not compressed): counted {} to {}, the history before it \
             is warm-up",
            trace_label(plan.start() as f64),
            trace_label(plan.end() as f64)
        ),
        format!(
            "predictive: primary {} x {} req/s, the built-in policy (policies/default.toml), \
             forecast q{} over {} s, model {model}",
            plan.primary_instances,
            plan.instance_capacity,
            policy.quantile,
            policy.horizon.as_secs()
        ),
        format!(
            "reactive: Kubernetes HPA, target {HPA_TARGET}% CPU, replicas {}..={}, scale-down \
             window {HPA_DOWN_WINDOW_S} s; instances of both start in {STARTUP_S} s",
            HPA_REPLICAS.0, HPA_REPLICAS.1
        ),
    ];
    let command = format!(
        "umbra simulate --trace {} --scale {} --instance-capacity {} --primary-instances {} \
         --warmup {warmup_s}s",
        slice_csv.display(),
        plan.scale,
        plan.instance_capacity,
        plan.primary_instances
    );
    Ok(Comparison {
        outcome,
        model,
        lines,
        command,
    })
}
