//! The controller's latest view, shared by its loops and read by the API: what was observed,
//! what is forecast, and where each workload's migration stands.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::Serialize;

use crate::history::scrape::PoolRate;

/// Latest observed demand of one workload.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Observed {
    /// Unix ms of the scrape.
    pub at_ms: i64,
    /// Total requests/s.
    pub rps: f64,
    /// Requests/s per pool.
    pub pools: BTreeMap<String, PoolObserved>,
}

/// Latest observed rate and latency of one pool.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PoolObserved {
    /// Requests/s.
    pub rps: f64,
    /// p99 latency over the last scrape interval, ms.
    pub p99_ms: Option<f64>,
}

/// A forecast as published.
#[derive(Clone, Debug, Serialize)]
pub struct PublishedForecast {
    /// Workload.
    pub workload: String,
    /// Pool (`all` = the workload's total demand).
    pub pool: String,
    /// Resource.
    pub resource: String,
    /// Unix ms of the first forecast point (one step after the last observation).
    pub start_ms: i64,
    /// Step between points, ms.
    pub step_ms: i64,
    /// Point forecast.
    pub point: Vec<f64>,
    /// Lower bound of the interval.
    pub lower: Vec<f64>,
    /// Upper bound of the interval (the sizing quantile).
    pub upper: Vec<f64>,
    /// Interval level, e.g. 0.8 for a 10-90% band.
    pub level: f64,
    /// Model used.
    pub model: String,
    /// Signals the model used.
    pub signals_used: Vec<String>,
    /// Backtest MASE of the chosen model (how far to trust it; < 1 beats seasonal naive).
    pub mase: Option<f64>,
    /// What the model combines, each with its weight where it has one (`mstl 0.52`).
    pub members: Vec<String>,
    /// Share of backtest points the band covered when built from the other folds, before
    /// it was widened (`None` with fewer than two folds).
    pub interval_coverage: Option<f64>,
    /// How much the band was widened to cover its level on the backtest folds.
    pub interval_scale: f64,
    /// How far demand rose within one start-up time in the history this was fitted on, at the
    /// policy's `rise_quantile` ([`policies::startup_rise`]); 0 when not learned.
    pub rise: f64,
    /// When it was made, unix ms.
    pub made_at_ms: i64,
}

impl PublishedForecast {
    /// The highest upper bound within the next `ms` (all points if `ms` covers the horizon).
    pub fn upper_peak_within(&self, now_ms: i64, ms: i64) -> Option<f64> {
        self.window(now_ms, ms)
            .map(|(_, u)| u)
            .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
    }

    /// `(t, upper)` of points after `now_ms` and within `ms` of it.
    fn window(&self, now_ms: i64, ms: i64) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.upper
            .iter()
            .enumerate()
            .map(|(i, &u)| (self.start_ms + i as i64 * self.step_ms, u))
            .filter(move |(t, u)| *t > now_ms && *t <= now_ms + ms && u.is_finite())
    }

    /// Upper bounds from `now_ms` on, one per step (what the trigger reads).
    pub fn upper_from(&self, now_ms: i64) -> Vec<f64> {
        self.window(now_ms, i64::MAX / 4).map(|(_, u)| u).collect()
    }
}

/// Where one workload stands, as the orchestrator last saw it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkloadStatus {
    /// Migration phase name.
    pub migration_state: String,
    /// Shadow weight the controller has set.
    pub shadow_weight: f64,
    /// Shadow instances (address list).
    pub shadow_instances: Vec<String>,
    /// Planned shadow instances and whether they are at full size.
    pub planned_instances: u32,
    /// Whether the shadow is at full size.
    pub shadow_warm: bool,
    /// Primary capacity, requests/s.
    pub primary_capacity: f64,
    /// The last decision and why.
    pub last_reason: String,
    /// What the controller would do in observe mode (empty in act mode).
    pub would_do: Vec<String>,
}

/// The shared view.
#[derive(Default)]
pub struct Board {
    observed: RwLock<BTreeMap<String, Observed>>,
    forecasts: RwLock<BTreeMap<String, PublishedForecast>>,
    workloads: RwLock<BTreeMap<String, WorkloadStatus>>,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Board {
    /// Publishes one scrape's rates.
    pub fn observe(&self, rates: &[PoolRate], at_ms: i64) {
        let mut map = self.observed.write().unwrap_or_else(|p| p.into_inner());
        let mut fresh: BTreeMap<String, Observed> = BTreeMap::new();
        for r in rates {
            let o = fresh.entry(r.workload.clone()).or_insert_with(|| Observed {
                at_ms,
                ..Default::default()
            });
            o.rps += r.rps;
            o.pools.insert(
                r.pool.clone(),
                PoolObserved {
                    rps: r.rps,
                    p99_ms: r.p99_ms,
                },
            );
        }
        map.extend(fresh);
    }

    /// Latest observations.
    pub fn observed(&self) -> BTreeMap<String, Observed> {
        read(&self.observed)
    }

    /// The latest observation of one workload (each workload's tick asks for its own: cloning
    /// every workload's made a tick over N workloads cost N^2).
    pub fn observed_of(&self, workload: &str) -> Option<Observed> {
        self.observed
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(workload)
            .cloned()
    }

    /// Publishes a forecast (keyed by workload; the total-demand forecast drives decisions).
    pub fn publish_forecast(&self, f: PublishedForecast) {
        let key = format!("{}/{}/{}", f.workload, f.pool, f.resource);
        self.forecasts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, f);
    }

    /// Every published forecast.
    pub fn forecasts(&self) -> Vec<PublishedForecast> {
        read(&self.forecasts).into_values().collect()
    }

    /// The total-demand (rps) forecast of a workload.
    pub fn demand_forecast(&self, workload: &str) -> Option<PublishedForecast> {
        let key = format!("{workload}/all/rps");
        self.forecasts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
    }

    /// Publishes a workload's status.
    pub fn set_status(&self, workload: &str, s: WorkloadStatus) {
        self.workloads
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(workload.to_string(), s);
    }

    /// Every workload's status.
    pub fn statuses(&self) -> BTreeMap<String, WorkloadStatus> {
        read(&self.workloads)
    }
}
