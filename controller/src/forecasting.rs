//! The forecasting loop: refits every workload's demand forecast on a schedule as new history
//! arrives ("model training occurs continuously"), with the model re-chosen by backtest now
//! and then, and publishes it on the board and as metrics.

use std::collections::HashMap;

use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

use config::WorkloadPolicy;
use forecast::{EventWindow, ForecastOptions, Forecaster, ModelKind, Regressor, Selection, Series};
use tokio::sync::watch;

use crate::board::{Board, PublishedForecast};
use crate::metrics::ControllerMetrics;
use crate::store::{Resource, SeriesKey, Store};

/// Fewer points than this and there is nothing to learn from: the trigger works on observed
/// demand alone until history accumulates.
const MIN_POINTS: usize = 24;
/// Most history points handed to the forecaster.
const MAX_POINTS: usize = 4032;
/// Re-run model selection (the expensive backtest) after this many refits.
const RESELECT_EVERY: u32 = 20;

/// What the loop needs per workload.
#[derive(Clone)]
pub struct ForecastTarget {
    /// Workload.
    pub workload: String,
    /// Its policy (quantile, horizon).
    pub policy: Arc<WorkloadPolicy>,
}

/// Resamples raw samples onto a grid of `step_ms` ending at the bucket containing `now_ms`:
/// the mean of samples per bucket, NaN where there were none.
pub fn to_grid(
    samples: &[(i64, f64)],
    step_ms: i64,
    now_ms: i64,
    max_points: usize,
) -> Option<Series> {
    let first = samples.first()?.0;
    let last_bucket = now_ms.div_euclid(step_ms);
    let first_bucket = first
        .div_euclid(step_ms)
        .max(last_bucket - max_points as i64 + 1);
    let n = (last_bucket - first_bucket + 1) as usize;
    let mut sums = vec![0.0; n];
    let mut counts = vec![0u32; n];
    for &(t, v) in samples {
        let b = t.div_euclid(step_ms) - first_bucket;
        if (0..n as i64).contains(&b) && v.is_finite() {
            sums[b as usize] += v;
            counts[b as usize] += 1;
        }
    }
    let values = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| if c == 0 { f64::NAN } else { s / f64::from(c) })
        .collect();
    Some(Series::new(
        first_bucket * step_ms / 1000,
        step_ms / 1000,
        values,
    ))
}

/// Signals for one workload over `[from_s, to_s)`: events as holidays, campaign uplift as a
/// regressor on the grid (history + horizon).
pub fn signal_inputs(
    store: &Store,
    workload: &str,
    series: &Series,
    horizon: usize,
) -> (Vec<EventWindow>, Vec<Regressor>) {
    let from_ms = series.start * 1000;
    let to_ms = (series.end() + horizon as i64 * series.step) * 1000;
    let applies = |ws: &[String]| ws.is_empty() || ws.iter().any(|w| w == workload);
    let mut events = Vec::new();
    for kind in ["calendar", "deployment"] {
        for e in store.events(kind, from_ms, to_ms).unwrap_or_default() {
            if applies(&e.workloads) {
                events.push(EventWindow::new(e.name, e.start_ms / 1000, e.end_ms / 1000));
            }
        }
    }
    let campaigns: Vec<_> = store
        .events("campaign", from_ms, to_ms)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| applies(&e.workloads))
        .collect();
    let mut regressors = Vec::new();
    if !campaigns.is_empty() {
        let len = series.len() + horizon;
        let values = (0..len)
            .map(|i| {
                let t = (series.start + i as i64 * series.step) * 1000;
                campaigns
                    .iter()
                    .filter(|c| c.start_ms <= t && t < c.end_ms)
                    .filter_map(|c| c.value)
                    .sum()
            })
            .collect();
        regressors.push(Regressor::new("campaign_uplift", values));
    }
    (events, regressors)
}

struct Cached {
    selection: Selection,
    refits: u32,
}

/// Refits every target each `interval` and publishes the results.
pub async fn forecast_loop(
    targets: Vec<ForecastTarget>,
    store: Arc<Store>,
    board: Arc<Board>,
    metrics: Arc<ControllerMetrics>,
    step: Duration,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let forecaster = Forecaster::new();
    let mut cache: HashMap<String, Cached> = HashMap::new();
    // Refits are CPU-bound: one per core at a time, so a thousand series take a thousandth of
    // the cores' time each instead of queueing behind one another on one.
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    loop {
        let round = std::time::Instant::now();
        let jobs: Vec<(ForecastTarget, Option<Cached>)> = targets
            .iter()
            .map(|t| (t.clone(), cache.remove(&t.workload)))
            .collect();
        let step_ms = step.as_millis() as i64;
        let mut done = futures::stream::iter(jobs)
            .map(|(target, cached)| {
                let (store, forecaster) = (Arc::clone(&store), forecaster.clone());
                tokio::task::spawn_blocking(move || {
                    let out = forecast_one(
                        &store,
                        &forecaster,
                        &target,
                        step_ms,
                        crate::clock::unix_ms(),
                        cached,
                    );
                    (target, out)
                })
            })
            .buffer_unordered(parallel);
        while let Some(job) = done.next().await {
            match job {
                Ok((target, Ok(Some((published, cached))))) => {
                    publish_metrics(&metrics, &published, target.policy.quantile);
                    tracing::info!(
                        workload = %target.workload, model = %published.model, mase = ?published.mase,
                        next = published.point.first().copied().unwrap_or(f64::NAN),
                        peak_upper = published.upper.iter().copied().fold(f64::NAN, f64::max),
                        "forecast refitted"
                    );
                    board.publish_forecast(published);
                    cache.insert(target.workload, cached);
                }
                Ok((_, Ok(None))) => {}
                Ok((target, Err(e))) => {
                    metrics.error("forecast");
                    tracing::warn!(workload = %target.workload, error = %e, "forecast failed");
                }
                Err(e) => tracing::error!(error = %e, "forecast task failed"),
            }
        }
        metrics
            .forecast_round_seconds
            .set(round.elapsed().as_secs_f64());
        metrics.forecast_rounds.inc();
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Where a series' reselection count starts: a fixed spread over `0..RESELECT_EVERY` by name
/// (FNV-1a), so that the same workload lands in the same round after every restart.
fn stagger(workload: &str) -> u32 {
    let hash = workload.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % u64::from(RESELECT_EVERY)) as u32
}

fn forecast_one(
    store: &Store,
    forecaster: &Forecaster,
    target: &ForecastTarget,
    step_ms: i64,
    now_ms: i64,
    cached: Option<Cached>,
) -> anyhow::Result<Option<(PublishedForecast, Cached)>> {
    let key = SeriesKey::new(&target.workload, "all", Resource::Rps);
    let from = now_ms - step_ms * MAX_POINTS as i64;
    let samples = store.samples(&key, from, now_ms + 1)?;
    let Some(series) = to_grid(&samples, step_ms, now_ms, MAX_POINTS) else {
        return Ok(None);
    };
    if series.values.iter().filter(|v| v.is_finite()).count() < MIN_POINTS {
        return Ok(None);
    }
    let horizon = (target.policy.horizon.as_millis() as i64 / step_ms).max(1) as usize;
    let (events, regressors) = signal_inputs(store, &target.workload, &series, horizon);
    let options = ForecastOptions {
        model: ModelKind::Auto,
        level: (2.0 * target.policy.quantile - 1.0).clamp(0.05, 0.99),
        events,
        regressors,
        ..ForecastOptions::default()
    };
    let (selection, refits) = match cached {
        Some(c) if c.refits < RESELECT_EVERY && c.selection.horizon == horizon => {
            (c.selection, c.refits + 1)
        }
        // The first selection of each series starts its count at a different place, so
        // later reselections are spread over the rounds instead of all falling in one.
        None => (
            forecaster.select(&series, horizon, &options)?,
            stagger(&target.workload),
        ),
        Some(_) => (forecaster.select(&series, horizon, &options)?, 0),
    };
    let f = forecaster.fit_predict(&selection, &series, horizon, &options)?;
    let mase = selection
        .scores
        .iter()
        .find(|s| s.model == selection.model)
        .map(|s| s.mase)
        .filter(|m| m.is_finite());
    // Learned from the same history, so both move together at each refit.
    let rise = policies::startup_rise(
        &series.values,
        series.step as f64,
        target.policy.startup.as_secs_f64(),
        target.policy.sizing.rise_quantile(),
    );
    let published = PublishedForecast {
        workload: target.workload.clone(),
        pool: "all".into(),
        resource: "rps".into(),
        start_ms: f.start * 1000,
        step_ms: f.step * 1000,
        point: f.point,
        lower: f.lower,
        upper: f.upper,
        level: f.level,
        model: f.model,
        signals_used: f.signals_used,
        mase,
        members: f
            .members
            .iter()
            .map(|(k, w)| match w {
                Some(w) => format!("{k} {w:.2}"),
                None => k.to_string(),
            })
            .collect(),
        interval_coverage: Some(f.interval.held_out_coverage).filter(|c| c.is_finite()),
        interval_scale: f.interval.scale,
        rise,
        made_at_ms: now_ms,
    };
    Ok(Some((published, Cached { selection, refits })))
}

fn publish_metrics(m: &ControllerMetrics, f: &PublishedForecast, quantile: f64) {
    let labels = |q: &str| {
        [
            f.workload.clone(),
            f.pool.clone(),
            f.resource.clone(),
            q.to_string(),
        ]
    };
    let lower_q = format!("{:.2}", 1.0 - quantile);
    let upper_q = format!("{quantile:.2}");
    for (q, v) in [
        ("0.50", f.point.first()),
        (lower_q.as_str(), f.lower.first()),
        (upper_q.as_str(), f.upper.first()),
    ] {
        if let Some(v) = v {
            let l = labels(q);
            m.forecast
                .with_label_values(&[&l[0], &l[1], &l[2], &l[3]])
                .set(*v);
        }
    }
    m.learned_rise
        .with_label_values(&[&f.workload, &f.pool, &f.resource])
        .set(f.rise);
    if let Some(mase) = f.mase {
        m.forecast_mase
            .with_label_values(&[&f.workload, &f.pool, &f.resource])
            .set(mase);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reselections_are_spread_over_the_rounds() {
        let mut per_round = [0u32; RESELECT_EVERY as usize];
        for i in 0..1000 {
            per_round[stagger(&format!("w{i:04}")) as usize] += 1;
        }
        // 50 per round on average; none empty, none with more than twice its share.
        assert!(
            per_round.iter().all(|&n| n > 0 && n <= 100),
            "{per_round:?}"
        );
        assert_eq!(stagger("api"), stagger("api"));
    }

    #[test]
    fn grid_means_and_gaps() {
        // 10 s grid; two samples in the first bucket, none in the second.
        let s = to_grid(
            &[(0, 1.0), (5_000, 3.0), (20_000, 5.0)],
            10_000,
            25_000,
            100,
        )
        .expect("series");
        assert_eq!(s.start, 0);
        assert_eq!(s.step, 10);
        assert_eq!(s.values[0], 2.0);
        assert!(s.values[1].is_nan());
        assert_eq!(s.values[2], 5.0);
        assert_eq!(s.len(), 3);
        // Capped to the most recent points.
        assert_eq!(
            to_grid(&[(0, 1.0)], 10_000, 1_000_000, 5)
                .expect("series")
                .len(),
            5
        );
        assert!(to_grid(&[], 10_000, 0, 5).is_none());
    }
}
