//! `umbra forecast` and `umbra backtest`: offline forecasting of a CSV series.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::DateTime;
use forecast::{
    BacktestReport, EventWindow, ForecastOptions, Forecaster, GridOptions, ModelKind, Regressor,
    Series, read_series,
};

/// Arguments of `umbra forecast`.
#[derive(Debug, Clone, clap::Args)]
pub struct ForecastArgs {
    /// Series CSV: `timestamp,value` (NAB) or `ds,y` (Prophet), header optional.
    #[arg(long)]
    pub input: PathBuf,
    /// Steps to forecast after the last input point (the step is inferred from the input).
    #[arg(long)]
    pub horizon: usize,
    /// Events, campaigns and regressors.
    #[command(flatten)]
    pub signals: SignalArgs,
    /// Model: auto, snaive, wnaive, median3, wmedian3, ets, mstl, mstl-clip, mstl-log1p,
    /// prophet, median-top3, median-all.
    #[arg(long, default_value = "auto")]
    pub model: ModelKind,
    /// Central prediction interval level; the upper bound is the (1+level)/2 quantile.
    #[arg(long, default_value_t = 0.8)]
    pub level: f64,
    /// Output CSV (`timestamp,yhat,yhat_lower,yhat_upper`); stdout when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Write an SVG chart of the history tail, forecast, band and events here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Arguments of `umbra backtest`.
#[derive(Debug, Clone, clap::Args)]
pub struct BacktestArgs {
    /// Series CSV: `timestamp,value` (NAB) or `ds,y` (Prophet), header optional.
    #[arg(long)]
    pub input: PathBuf,
    /// Steps per fold.
    #[arg(long)]
    pub horizon: usize,
    /// Number of folds: the last `folds * horizon` points are forecast, one fold at a time.
    #[arg(long, default_value_t = 3)]
    pub folds: usize,
    /// Events, campaigns and regressors.
    #[command(flatten)]
    pub signals: SignalArgs,
}

/// Known-future signals shared by both commands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SignalArgs {
    /// iCalendar file of events (repeatable); each SUMMARY is one kind of event.
    #[arg(long = "events")]
    pub events: Vec<PathBuf>,
    /// Campaign CSV (start, end, workloads, expected uplift); becomes the Prophet regressor
    /// `campaign_uplift`.
    #[arg(long)]
    pub campaigns: Option<PathBuf>,
    /// Extra regressor `NAME=FILE.csv` (`timestamp,value`), covering history and horizon
    /// (repeatable).
    #[arg(long = "regressor", value_parser = parse_regressor_arg)]
    pub regressors: Vec<(String, PathBuf)>,
    /// Hours each event window is widened before its start.
    #[arg(long, default_value_t = 0)]
    pub event_lead_hours: i64,
    /// Hours each event window is widened after its end.
    #[arg(long, default_value_t = 0)]
    pub event_lag_hours: i64,
    /// Longest gap (in steps) filled by interpolation; longer gaps are reported.
    #[arg(long, default_value_t = 12)]
    pub max_gap: usize,
}

/// Runs `umbra forecast`.
pub fn run_forecast(args: &ForecastArgs) -> anyhow::Result<()> {
    let series = load_series(&args.input, args.signals.max_gap)?;
    let options = ForecastOptions {
        model: args.model,
        level: args.level,
        ..signal_options(&args.signals, &series, args.horizon)?
    };
    let forecaster = Forecaster::new();
    let fc = forecaster
        .forecast(&series, args.horizon, &options)
        .with_context(|| format!("forecasting {}", args.input.display()))?;
    let signals = if fc.signals_used.is_empty() {
        "none".to_string()
    } else {
        fc.signals_used.join(", ")
    };
    eprintln!("model: {} (signals used: {signals})", fc.model);
    if !fc.members.is_empty() {
        eprintln!("combines: {}", members_text(&fc.members, &fc.ets_forms));
    }
    eprintln!("{}", interval_text(fc.level, &fc.interval));
    let mut csv = String::from("timestamp,yhat,yhat_lower,yhat_upper\n");
    for i in 0..fc.point.len() {
        csv.push_str(&format!(
            "{},{},{},{}\n",
            format_time(fc.time_at(i)),
            fc.point[i],
            fc.lower[i],
            fc.upper[i]
        ));
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout()
            .write_all(csv.as_bytes())
            .context("writing the forecast to stdout")?,
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "{}: {} steps, model {}",
            args.input.display(),
            args.horizon,
            fc.model
        );
        let svg = forecast::plot::render_svg(
            &series,
            &fc,
            &options.events,
            (args.horizon * 4).max(200),
            &title,
        );
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs `umbra backtest`: a progress bar on stderr, then the table on stdout.
pub fn run_backtest(args: &BacktestArgs) -> anyhow::Result<()> {
    let series = load_series(&args.input, args.signals.max_gap)?;
    let options = signal_options(&args.signals, &series, args.horizon)?;
    let bar = indicatif::ProgressBar::new(1);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = Forecaster::new()
        .backtest(&series, args.horizon, args.folds, &options, |p| {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            bar.set_message(p.label.to_string());
        })
        .with_context(|| format!("backtesting {}", args.input.display()))?;
    bar.finish_and_clear();
    print!("{}", format_report(&report));
    Ok(())
}

/// The backtest table as text.
pub fn format_report(report: &BacktestReport) -> String {
    let folds = report.fold_starts.len();
    let mut out = format!(
        "{folds} folds of {} steps, starting {}\n",
        report.horizon,
        report
            .fold_starts
            .iter()
            .map(|t| format_time(*t))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out.push_str(&format!(
        "{:<16} {:>9} {:>9} {:>8}  {}\n",
        "model",
        "MASE",
        "sMAPE%",
        format!("cover{:.0}%", 100.0 * report.level),
        "MASE per fold"
    ));
    for m in &report.models {
        let per_fold: Vec<String> = m.mase.iter().map(|v| format!("{v:.3}")).collect();
        let picks = if m.picks.is_empty() {
            String::new()
        } else {
            format!("  picked: {}", m.picks.join(", "))
        };
        out.push_str(&format!(
            "{:<16} {:>9.3} {:>9.2} {:>8.1}  {}{picks}\n",
            m.model,
            m.mean_mase,
            m.mean_smape,
            100.0 * m.mean_coverage,
            per_fold.join(" ")
        ));
    }
    out.push_str(&format!(
        "auto picks on the whole series: {}\n",
        report.auto_pick
    ));
    if !report.auto_members.is_empty() {
        out.push_str(&format!(
            "  combining {} (the best three by backtest MASE, weighted by its inverse square)\n",
            members_text(&report.auto_members, &report.auto_forms)
        ));
    }
    out.push_str(&format!(
        "  {}\n",
        interval_text(report.level, &report.interval)
    ));
    out
}

/// `mstl 0.52 (trend AAdN), ets 0.31 (MNN), snaive 0.17`: weights (a median's members have
/// none), and the ETS form each fitted, which refits keep until the next selection.
fn members_text(
    members: &[(forecast::ModelKind, Option<f64>)],
    forms: &[(forecast::ModelKind, forecast::EtsForm)],
) -> String {
    members
        .iter()
        .map(|(k, w)| {
            let weight = w.map(|w| format!(" {w:.2}")).unwrap_or_default();
            let form = match forms.iter().find(|(m, _)| m == k) {
                Some((forecast::ModelKind::Ets, f)) => format!(" ({f})"),
                Some((_, f)) => format!(" (trend {f})"),
                None => String::new(),
            };
            format!("{k}{weight}{form}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the cross-fold check of the interval found, in a line.
fn interval_text(level: f64, check: &forecast::IntervalCheck) -> String {
    let pct = 100.0 * level;
    if check.held_out_coverage.is_finite() {
        format!(
            "interval: the {pct:.0}% band built from the other backtest folds covered {:.0}% of \
             each fold's points; widened x{:.2}",
            100.0 * check.held_out_coverage,
            check.scale
        )
    } else {
        format!("interval: {pct:.0}% band from too few backtest folds to check")
    }
}

fn load_series(path: &Path, max_gap: usize) -> anyhow::Result<Series> {
    let grid = read_series(
        path,
        &GridOptions {
            step: None,
            max_gap_steps: max_gap,
        },
    )?;
    for gap in &grid.gaps {
        eprintln!(
            "warning: {}: no data from {} to {} (filled for fitting)",
            path.display(),
            format_time(gap.start),
            format_time(gap.end)
        );
    }
    Ok(grid.series)
}

fn signal_options(
    args: &SignalArgs,
    series: &Series,
    horizon: usize,
) -> anyhow::Result<ForecastOptions> {
    let from = series.start - 400 * 86_400;
    let to = series.end() + (horizon as i64 + 1) * series.step + 86_400;
    let mut events = Vec::new();
    for path in &args.events {
        events.extend(ics_events(path, from, to, series.step)?);
    }
    let mut regressors = args
        .regressors
        .iter()
        .map(|(name, path)| load_regressor(name, path, series, horizon))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(path) = &args.campaigns {
        regressors.push(campaign_regressor(path, series, horizon)?);
    }
    Ok(ForecastOptions {
        events,
        regressors,
        event_lead: args.event_lead_hours * 3600,
        event_lag: args.event_lag_hours * 3600,
        ..ForecastOptions::default()
    })
}

/// ADAPTER (signals::ics): calendar occurrences in `[from, to)` as forecast event windows,
/// named by their SUMMARY. Instants get one grid step of width.
fn ics_events(path: &Path, from: i64, to: i64, step: i64) -> anyhow::Result<Vec<EventWindow>> {
    let calendar = signals::load_ics(path)?;
    let (Some(from), Some(to)) = (
        DateTime::from_timestamp(from, 0),
        DateTime::from_timestamp(to, 0),
    ) else {
        bail!("{}: time range out of bounds", path.display());
    };
    let occurrences = calendar.occurrences(from, to, &signals::ExpandLimits::default());
    for uid in &occurrences.truncated {
        eprintln!(
            "warning: {}: event {uid} has more occurrences than the expansion limit",
            path.display()
        );
    }
    Ok(occurrences
        .events
        .into_iter()
        .map(|e| {
            let (start, end) = (e.start.timestamp(), e.end.timestamp());
            EventWindow::new(e.name, start, end.max(start + step))
        })
        .collect())
}

/// ADAPTER (signals::campaigns): the plan's expected uplift (a fraction, overlapping campaigns
/// adding up) on the series grid over history and horizon, as the regressor `campaign_uplift`.
/// Campaigns for any workload count: the offline command forecasts one series.
fn campaign_regressor(path: &Path, series: &Series, horizon: usize) -> anyhow::Result<Regressor> {
    let mut campaigns = signals::load_campaigns(path)?;
    for c in &mut campaigns {
        c.workloads.clear();
    }
    let grid = signals::Grid::new(series.start, series.step, series.len() + horizon)?;
    Ok(Regressor::new(
        "campaign_uplift",
        signals::campaign_uplift(&campaigns, "", &grid),
    ))
}

/// Reads a `timestamp,value` CSV and interpolates it onto the series grid for history plus
/// `horizon` steps; errors if it does not cover that span.
fn load_regressor(
    name: &str,
    path: &Path,
    series: &Series,
    horizon: usize,
) -> anyhow::Result<Regressor> {
    let obs = forecast::csv::read_observations(path)?;
    let mut points: Vec<(i64, f64)> = obs
        .times
        .into_iter()
        .zip(obs.values)
        .filter(|(_, v)| v.is_finite())
        .collect();
    points.sort_by_key(|p| p.0);
    let n = series.len() + horizon;
    let needed_end = series.time_at(n - 1);
    match (points.first(), points.last()) {
        (Some(first), Some(last)) if first.0 <= series.start && last.0 >= needed_end => {}
        _ => bail!(
            "regressor {name} ({}) must cover {} to {} (history and horizon)",
            path.display(),
            format_time(series.start),
            format_time(needed_end)
        ),
    }
    let mut values = Vec::with_capacity(n);
    let mut right = 0;
    for i in 0..n {
        let t = series.time_at(i);
        while right < points.len() && points[right].0 < t {
            right += 1;
        }
        let (tr, vr) = points[right.min(points.len() - 1)];
        let v = if tr == t || right == 0 {
            vr
        } else {
            let (tl, vl) = points[right - 1];
            vl + (vr - vl) * (t - tl) as f64 / (tr - tl) as f64
        };
        values.push(v);
    }
    Ok(Regressor::new(name, values))
}

fn parse_regressor_arg(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, file)) if !name.is_empty() && !file.is_empty() => {
            Ok((name.to_string(), PathBuf::from(file)))
        }
        _ => Err(format!("expected NAME=FILE.csv, got `{s}`")),
    }
}

fn format_time(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regressor_argument_needs_name_and_file() {
        assert_eq!(
            parse_regressor_arg("temp=t.csv").expect("valid"),
            ("temp".to_string(), PathBuf::from("t.csv"))
        );
        assert!(parse_regressor_arg("temp").is_err());
        assert!(parse_regressor_arg("=t.csv").is_err());
    }

    #[test]
    fn regressor_is_interpolated_onto_the_grid_and_must_cover_the_horizon() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.csv");
        std::fs::write(
            &path,
            "timestamp,value\n1970-01-01 00:00:00,0\n1970-01-01 00:10:00,10\n",
        )
        .expect("write");
        let series = Series::new(0, 300, vec![1.0, 2.0]);
        let r = load_regressor("r", &path, &series, 1).expect("covers");
        assert_eq!(r.values, vec![0.0, 5.0, 10.0]);
        let err = load_regressor("r", &path, &series, 2).expect_err("too short");
        assert!(err.to_string().contains("must cover"));
    }

    #[test]
    fn forecast_command_writes_csv_and_svg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.csv");
        let mut text = String::from("timestamp,value\n");
        for i in 0..(24 * 10) {
            let t = format_time(i * 3600);
            text.push_str(&format!("{t},{}\n", 10 + (i % 24)));
        }
        std::fs::write(&input, text).expect("write");
        let args = ForecastArgs {
            input,
            horizon: 24,
            signals: SignalArgs::default(),
            model: ModelKind::SeasonalNaive,
            level: 0.8,
            output: Some(dir.path().join("out.csv")),
            plot: Some(dir.path().join("out.svg")),
        };
        run_forecast(&args).expect("runs");
        let out = std::fs::read_to_string(dir.path().join("out.csv")).expect("csv");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "timestamp,yhat,yhat_lower,yhat_upper");
        assert_eq!(lines.len(), 25);
        assert!(
            lines[1].starts_with("1970-01-11 00:00:00,10,"),
            "{}",
            lines[1]
        );
        let svg = std::fs::read_to_string(dir.path().join("out.svg")).expect("svg");
        assert!(svg.contains("<polyline"));
    }

    #[test]
    fn members_show_their_weight_and_the_ets_form_refits_keep() {
        use forecast::{EtsForm, ModelKind};
        let form = |m, t, d| EtsForm {
            multiplicative_error: m,
            trend: t,
            damped: d,
        };
        let text = members_text(
            &[
                (ModelKind::Mstl, Some(0.5)),
                (ModelKind::Ets, Some(0.3)),
                (ModelKind::SeasonalNaive, Some(0.2)),
            ],
            &[
                (ModelKind::Mstl, form(false, true, true)),
                (ModelKind::Ets, form(true, false, false)),
            ],
        );
        assert_eq!(text, "mstl 0.50 (trend AAdN), ets 0.30 (MNN), snaive 0.20");
        assert_eq!(members_text(&[(ModelKind::Mstl, None)], &[]), "mstl");
    }
}
