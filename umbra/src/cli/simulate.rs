//! `umbra simulate`: replays a demand trace through Umbra's forecaster and policies next to
//! the Kubernetes HPA and prints (or writes) what each would have missed and cost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::DateTime;
use config::WorkloadPolicy;
use forecast::{
    ForecastOptions, Forecaster, ForecasterConfig, GridOptions, ModelKind, read_series,
};
use policies::{AtFull, GuardThresholds};

use simulate::report::{ReportInfo, ratio, render_html};
use simulate::{
    Delays, DemandTrace, HpaConfig, Outcome, Settings, WalkForward, primary_from_first_day, replay,
};

/// Arguments of `umbra simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Demand trace CSV (`timestamp,value` or `ds,y`) on a regular grid.
    #[arg(long)]
    pub trace: PathBuf,
    /// Policy file (sizing, trigger, ramp, migration); the built-in policy when absent.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Requests/s one full-size instance serves, both strategies [default: the policy's
    /// sizing.instance_capacity].
    #[arg(long, value_name = "RPS")]
    pub instance_capacity: Option<f64>,
    /// Time from starting an instance to it serving, both strategies (replaces the policy's
    /// sizing.startup).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub startup: Duration,
    /// Time for a grown instance to serve at its new size (it serves at the old size
    /// meanwhile) [default: the start-up time, as a Kubernetes rolling update; 0s models an
    /// in-place resize (cgroup, podman update)].
    #[arg(long, value_parser = parse_duration)]
    pub resize_delay: Option<Duration>,
    /// Multiplies trace values into requests/s.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Size of the predictive strategy's primary pool [default: see --primary-percentile].
    #[arg(long)]
    pub primary_instances: Option<u32>,
    /// Primary is sized for this percentile of the warm-up's demand (what an operator knew
    /// before the counted replay starts) ...
    #[arg(long, default_value_t = 50.0)]
    pub primary_percentile: f64,
    /// ... at this utilisation, percent [default: the HPA's target].
    #[arg(long, value_name = "PERCENT")]
    pub primary_utilisation: Option<u32>,
    /// HPA target CPU utilisation, percent of the request (a pod at 100% serves
    /// --instance-capacity).
    #[arg(long, default_value_t = 70)]
    pub hpa_target: u32,
    /// HPA minReplicas.
    #[arg(long, default_value_t = 1)]
    pub hpa_min: u32,
    /// HPA maxReplicas.
    #[arg(long, default_value_t = 1000)]
    pub hpa_max: u32,
    /// HPA scale-down stabilisation window.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub hpa_downscale_window: Duration,
    /// Predictive controller's decision tick (a multiple of 15s, the simulation step).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub tick: Duration,
    /// Refit the forecast at most this often [default: whenever a new trace sample arrives].
    #[arg(long, value_parser = parse_duration)]
    pub refit_every: Option<Duration>,
    /// Re-select the model by backtest this often (refits in between reuse the choice).
    #[arg(long, default_value = "1d", value_parser = parse_duration)]
    pub select_every: Duration,
    /// Forecast model: auto (chosen by backtest) or a fixed one (snaive, mstl, ...).
    #[arg(long, default_value = "auto")]
    pub model: ModelKind,
    /// Models train on at most this many recent samples [default: the forecaster's own].
    #[arg(long)]
    pub max_train_points: Option<usize>,
    /// Simulated but not counted at the start: the forecaster's first history and the
    /// demand the primary pool is sized from.
    #[arg(long, default_value = "1d", value_parser = parse_duration)]
    pub warmup: Duration,
    /// The proxy's guard rolls the shadow back when more of its requests fail in a step
    /// (the workload guard's default).
    #[arg(long, default_value_t = 0.05)]
    pub guard_max_error_rate: f64,
    /// Threads that make the replay's forecasts (all of them are made before the replay
    /// steps through the trace; the results do not depend on it) [default: the machine's
    /// cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write a self-contained HTML report (chart and table) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print `{"predictive": {...}, "reactive": {...}, "settings": {...}}` instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `umbra simulate`.
pub fn run_simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let grid = read_series(&args.trace, &GridOptions::default())
        .with_context(|| format!("reading {}", args.trace.display()))?;
    for gap in &grid.gaps {
        eprintln!(
            "warning: {}: no data from {} to {} (demand interpolated; the forecaster sees a gap)",
            args.trace.display(),
            time_label(gap.start),
            time_label(gap.end)
        );
    }
    let trace = DemandTrace::new(&grid.series, args.scale)?;
    let mut policy = match &args.policy {
        Some(path) => config::load_policy(path)?,
        None => WorkloadPolicy::builtin(),
    };
    // --startup is the instances' real start-up here: the policy's own declaration (which
    // the learned rise and the lead time are read against) is replaced by it.
    policy.startup = args.startup;
    let capacity = args
        .instance_capacity
        .unwrap_or_else(|| policy.sizing.instance_capacity());
    let startup = args.startup.as_secs() as i64;
    if policy.trigger.lead_ms() < args.startup.as_millis() as u64 {
        eprintln!(
            "warning: the policy's trigger.lead_time is shorter than --startup: migrations \
             start too late for the shadow to be ready"
        );
    }
    let warmup_s = args.warmup.as_secs() as i64;
    let primary_utilisation = args.primary_utilisation.unwrap_or(args.hpa_target);
    let primary_instances = match args.primary_instances {
        Some(n) => n,
        None => primary_from_first_day(
            &trace,
            warmup_s.max(trace.step()),
            args.primary_percentile,
            capacity,
            f64::from(primary_utilisation) / 100.0,
        )?,
    };
    let mut hpa = HpaConfig::new(args.hpa_target, args.hpa_min, args.hpa_max);
    hpa.down_window_s = args.hpa_downscale_window.as_secs() as i64;
    let guard = GuardThresholds::new(20, None, None, Duration::ZERO, args.guard_max_error_rate)
        .context("--guard-max-error-rate")?;
    let settings = Settings {
        policy: policy.clone(),
        instance_capacity: capacity,
        delays: Delays {
            startup,
            resize: args.resize_delay.map_or(startup, |d| d.as_secs() as i64),
        },
        primary_instances,
        tick_s: args.tick.as_secs() as i64,
        refit_every_s: args
            .refit_every
            .map_or(trace.step(), |d| d.as_secs() as i64)
            .max(args.tick.as_secs() as i64),
        warmup_s,
        hpa,
        guard,
    };
    let options = ForecastOptions {
        model: args.model,
        // The policy's quantile q is the upper bound of the central interval 2q - 1.
        level: 2.0 * policy.quantile - 1.0,
        ..ForecastOptions::default()
    };
    let defaults = ForecasterConfig::default();
    let forecaster = Forecaster::with_config(ForecasterConfig {
        max_train_points: args.max_train_points.unwrap_or(defaults.max_train_points),
        ..defaults
    });
    let mut walk = WalkForward::new(forecaster, options, args.select_every.as_secs() as i64);
    if let Some(threads) = args.threads {
        walk = walk.with_threads(threads);
    }
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {percent}% replayed ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let outcome = replay(&trace, &settings, &mut walk, &mut |done| {
        bar.set_position((done * 1000.0) as u64)
    })
    .with_context(|| format!("replaying {}", args.trace.display()))?;
    bar.finish_and_clear();

    let model = walk.model().unwrap_or_else(|| "none".to_string());
    let lines = describe(args, &trace, &settings, &policy, &model, &outcome);
    if let Some(path) = &args.report {
        let info = ReportInfo {
            title: file_name(&args.trace),
            settings: lines.clone(),
        };
        std::fs::write(path, render_html(&outcome, &info))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        let json = serde_json::json!({
            "predictive": outcome.predictive,
            "reactive": outcome.reactive,
            "oracle": outcome.oracle,
            "episode_count": outcome.episode_count,
            "episodes": outcome.episodes,
            "settings": {
                "trace": args.trace.display().to_string(),
                "scale": args.scale,
                "instance_capacity": capacity,
                "primary_instances": primary_instances,
                "startup_s": settings.delays.startup,
                "resize_delay_s": settings.delays.resize,
                "hpa_target_percent": args.hpa_target,
                "policy": policy.source.display().to_string(),
                "at_full": policy.migration.ramp.at_full(),
                "model": model,
                "counted_from": outcome.counted_from,
                "forecasts": outcome.forecasts,
                "forecast_failures": outcome.forecast_failures,
            },
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for line in &lines {
            println!("{line}");
        }
        println!();
        print!("{}", format_table(&outcome));
        print!("{}", format_episodes(&outcome));
    }
    Ok(())
}

/// The four numbers (and extras) side by side, as text, and perfect foresight's cost.
pub fn format_table(outcome: &Outcome) -> String {
    let (predictive, reactive) = (&outcome.predictive, &outcome.reactive);
    let mut out = format!(
        "{:<28} {:>14} {:>16} {:>8}\n",
        "", "predictive", "reactive (HPA)", "ratio"
    );
    for (name, p, r, decimals) in simulate::four_numbers(predictive, reactive) {
        out.push_str(&format!(
            "{name:<28} {p:>14.decimals$} {r:>16.decimals$} {:>8}\n",
            ratio(p, r)
        ));
    }
    out.push_str(&format!(
        "migrations {} (attempts {}), rollbacks {}\n",
        predictive.migrations.unwrap_or(0),
        predictive.migration_attempts.unwrap_or(0),
        predictive.rollbacks.unwrap_or(0)
    ));
    let oracle = outcome.oracle.instance_hours;
    out.push_str(&format!(
        "perfect foresight {oracle:.1} instance-hours (never short): predictive {}x, HPA {}x of it\n",
        ratio(predictive.instance_hours, oracle),
        ratio(reactive.instance_hours, oracle)
    ));
    out
}

/// The predictive strategy's worst shortage episodes, each with what the forecast and the
/// controller said as it began.
pub fn format_episodes(outcome: &Outcome) -> String {
    if outcome.episodes.is_empty() {
        return "predictive: never short\n".to_string();
    }
    let mut out = format!(
        "\nworst shortages, predictive ({} of {} episodes):\n",
        outcome.episodes.len(),
        outcome.episode_count
    );
    for e in &outcome.episodes {
        let forecast = e
            .forecast_at_peak
            .map_or("no forecast".to_string(), |f| format!("forecast {f:.0}"));
        out.push_str(&format!(
            "  {}  {:>6.2} min  {:>10.0} unserved  at worst {:.0} rps demand, {:.0} served ({forecast})\n    {}: {}\n",
            time_label(e.start),
            e.minutes,
            e.unserved_requests,
            e.peak_demand,
            e.served_at_peak,
            e.phase,
            e.why
        ));
    }
    out
}

/// Which comparison the replay answers, from the policy's `ramp.at_full`.
fn at_full_says(policy: &WorkloadPolicy) -> &'static str {
    match policy.migration.ramp.at_full() {
        AtFull::Adopt => {
            "adopt: primary stopped and the shadow carries the workload from then on, \
             following the forecast (Umbra instead of a fixed primary)"
        }
        AtFull::Decommission => {
            "decommission: primary stopped, restored when demand falls back under it \
             (Umbra beside a fixed primary)"
        }
        AtFull::KeepWarm => "keep_warm: primary kept running beside the shadow",
    }
}

fn describe(
    args: &SimulateArgs,
    trace: &DemandTrace,
    settings: &Settings,
    policy: &WorkloadPolicy,
    model: &str,
    outcome: &Outcome,
) -> Vec<String> {
    let rates = trace.series().values.iter().filter(|v| v.is_finite());
    let (lo, hi) = rates.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(*v), hi.max(*v))
    });
    let primary_how = match args.primary_instances {
        Some(_) => "set by --primary-instances".to_string(),
        None => format!(
            "p{} of the warm-up's demand at {}% utilisation",
            args.primary_percentile,
            args.primary_utilisation.unwrap_or(args.hpa_target)
        ),
    };
    vec![
        format!(
            "trace {}: {} samples every {} s, x{} -> {lo:.1} to {hi:.1} requests/s",
            file_name(&args.trace),
            trace.series().len(),
            trace.step(),
            args.scale
        ),
        format!(
            "instances serve {} requests/s; start-up {} s, resize {} s; an idle-size instance \
             costs {:.2} of a full one",
            settings.instance_capacity,
            settings.delays.startup,
            settings.delays.resize,
            f64::from(policy.sizing.idle().cpu_millis)
                / f64::from(policy.sizing.full().cpu_millis.max(1))
        ),
        format!(
            "predictive: primary {} instances ({primary_how}); policy {}; forecast q{} over {} s, \
             model {model}; {} forecasts ({} failed)",
            settings.primary_instances,
            policy.source.display(),
            policy.quantile,
            policy.horizon.as_secs(),
            outcome.forecasts,
            outcome.forecast_failures
        ),
        format!("predictive, once migrated: {}", at_full_says(policy)),
        format!(
            "reactive: Kubernetes HPA, target {}% CPU, replicas {}..={}, scale-down window {} s",
            settings.hpa.target_percent,
            settings.hpa.min_replicas,
            settings.hpa.max_replicas,
            settings.hpa.down_window_s
        ),
        format!(
            "counted from {} (warm-up {} s simulated, not counted)",
            time_label(outcome.counted_from),
            settings.warmup_s
        ),
    ]
}

/// Parses `120s`, `5m`, `2h`, `1d`, `1500ms` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a duration like 120s, 5m, 2h or 1d, got `{s}`"))?;
    let seconds = |k: u64| {
        n.checked_mul(k)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("duration `{s}` is too long"))
    };
    match unit.trim() {
        "" | "s" => seconds(1),
        "ms" => Ok(Duration::from_millis(n)),
        "m" | "min" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        other => Err(format!(
            "unknown unit `{other}` in `{s}`; use ms, s, m, h or d"
        )),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn time_label(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("120s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("s").is_err());
    }
}
