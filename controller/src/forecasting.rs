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
/// The least time a round spends starting selections (see [`select_budget`]).
const MIN_SELECT_BUDGET: Duration = Duration::from_secs(15);

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
    /// Seasonal naive standing in until the series' first selection has had its turn.
    provisional: bool,
}

impl Cached {
    fn wants_selection(&self) -> bool {
        self.provisional || self.refits >= RESELECT_EVERY
    }
}

/// What one series' turn in a round does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Refit the cached selection.
    Refit,
    /// Backtest every candidate; the reselection count then starts at `refits`.
    Select { refits: u32 },
    /// No selection yet and no time left for one this round: seasonal naive until there is.
    Provisional,
}

/// Decides a series' turn: a selection when one is due and the round's budget allows it,
/// otherwise the last selection refitted (a due one stays due and goes first next round).
fn turn(workload: &str, cached: Option<&Cached>, horizon: usize, may_select: bool) -> Turn {
    let usable = cached.filter(|c| c.selection.horizon == horizon);
    match usable {
        Some(c) if !c.wants_selection() => Turn::Refit,
        // The first selection of each series starts its count at a different place, so
        // later reselections are spread over the rounds instead of all falling in one.
        _ if may_select => Turn::Select {
            refits: match usable {
                Some(c) if !c.provisional => 0,
                _ => stagger(workload),
            },
        },
        Some(_) => Turn::Refit,
        None => Turn::Provisional,
    }
}

/// How long into a round selections may still start. A selection backtests every candidate
/// (~0.35 s of CPU for a week of 1-minute points against ~0.02 s for a refit), so a thousand
/// series selecting at once took 178 s on two cores; after the budget the rest refit what
/// they have, or forecast with seasonal naive until their turn, and go first next round.
/// Half the interval, and never less than enough for the selections that fall due in a
/// steady round (one series in `RESELECT_EVERY`).
fn select_budget(interval: Duration) -> Duration {
    (interval / 2).max(MIN_SELECT_BUDGET)
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
        let select_until = round + select_budget(interval);
        let mut jobs: Vec<(ForecastTarget, Option<Cached>)> = targets
            .iter()
            .map(|t| (t.clone(), cache.remove(&t.workload)))
            .collect();
        // Series waiting for a selection take the budget first, those with none yet before
        // those due a reselection (a stable sort: each group keeps the config's order).
        jobs.sort_by_key(|(_, c)| match c {
            None => 0,
            Some(c) if c.provisional => 0,
            Some(c) if c.wants_selection() => 1,
            Some(_) => 2,
        });
        let step_ms = step.as_millis() as i64;
        let mut done = futures::stream::iter(jobs)
            .map(|(target, cached)| {
                let (store, forecaster) = (Arc::clone(&store), forecaster.clone());
                tokio::task::spawn_blocking(move || {
                    let may_select = std::time::Instant::now() < select_until;
                    let out = forecast_one(
                        &store,
                        &forecaster,
                        &target,
                        step_ms,
                        crate::clock::unix_ms(),
                        cached,
                        may_select,
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
        let waiting = cache.values().filter(|c| c.provisional).count();
        metrics.forecast_awaiting_selection.set(waiting as i64);
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
    may_select: bool,
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
    let this_turn = turn(&target.workload, cached.as_ref(), horizon, may_select);
    let cached = match (this_turn, cached) {
        (Turn::Refit, Some(c)) => Cached {
            refits: (c.refits + 1).min(RESELECT_EVERY),
            ..c
        },
        (Turn::Select { refits }, _) => Cached {
            selection: forecaster.select(&series, horizon, &options)?,
            refits,
            provisional: false,
        },
        (Turn::Provisional | Turn::Refit, _) => {
            let naive = ForecastOptions {
                model: ModelKind::SeasonalNaive,
                ..options.clone()
            };
            Cached {
                selection: forecaster.select(&series, horizon, &naive)?,
                refits: 0,
                provisional: true,
            }
        }
    };
    let selection = &cached.selection;
    let f = forecaster.fit_predict(selection, &series, horizon, &options)?;
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
    Ok(Some((published, cached)))
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

    fn cached(horizon: usize, refits: u32, provisional: bool) -> Cached {
        Cached {
            selection: Selection {
                model: ModelKind::SeasonalNaive,
                members: Vec::new(),
                weights: Vec::new(),
                periods: Vec::new(),
                season: 24,
                scores: Vec::new(),
                residuals: Vec::new(),
                fallbacks: Vec::new(),
                horizon,
                ets_forms: Vec::new(),
            },
            refits,
            provisional,
        }
    }

    #[test]
    fn a_series_is_selected_once_the_budget_allows_and_forecast_meanwhile() {
        let first = Turn::Select {
            refits: stagger("api"),
        };
        // Never selected: a selection within the budget, seasonal naive after it.
        assert_eq!(turn("api", None, 60, true), first);
        assert_eq!(turn("api", None, 60, false), Turn::Provisional);
        // A stand-in keeps refitting until the budget lets it select, then starts its count
        // where a first selection does, so the stagger survives the wait.
        let standin = cached(60, 0, true);
        assert_eq!(turn("api", Some(&standin), 60, true), first);
        assert_eq!(turn("api", Some(&standin), 60, false), Turn::Refit);
        // A selection refits until it is due, budget or not...
        let fresh = cached(60, 3, false);
        assert_eq!(turn("api", Some(&fresh), 60, true), Turn::Refit);
        assert_eq!(turn("api", Some(&fresh), 60, false), Turn::Refit);
        // ...and when due is reselected, or kept a round longer when the budget is spent.
        let due = cached(60, RESELECT_EVERY, false);
        assert_eq!(
            turn("api", Some(&due), 60, true),
            Turn::Select { refits: 0 }
        );
        assert_eq!(turn("api", Some(&due), 60, false), Turn::Refit);
        assert!(due.wants_selection() && standin.wants_selection() && !fresh.wants_selection());
        // A selection made for another horizon cannot be refitted for this one.
        assert_eq!(turn("api", Some(&fresh), 30, true), first);
        assert_eq!(turn("api", Some(&fresh), 30, false), Turn::Provisional);
    }

    #[test]
    fn the_selection_budget_is_half_the_interval_with_a_floor() {
        assert_eq!(
            select_budget(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
        assert_eq!(select_budget(Duration::from_secs(1)), MIN_SELECT_BUDGET);
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
