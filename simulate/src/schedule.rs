//! When a replay refits its forecast. The times depend on the trace's timestamps, the gaps in it
//! and the settings alone, never on a simulated decision, so every forecast of a replay can be
//! made before it starts (and in parallel) without changing what it decides.

use super::replay::STEP_S;
use super::settings::Settings;
use super::trace::DemandTrace;

/// Fewest samples a forecast is made from (the live forecasting loop's minimum).
const MIN_FORECAST_POINTS: usize = 24;

/// The forecasts a replay makes: at which simulated times, and how many steps each.
#[derive(Clone, Debug, PartialEq)]
pub struct RefitSchedule {
    /// Simulated times of the refits, ascending. The forecaster is shown
    /// `trace.history_at(t)` at each.
    pub times: Vec<i64>,
    /// Forecast length in trace steps: a full horizon ahead until the next refit.
    pub steps: usize,
}

impl RefitSchedule {
    /// The refits of a replay of `trace` with `settings`: at a controller tick, once
    /// `refit_every_s` passed since the last refit and a new sample arrived since, and only
    /// once the history holds a full natural season (a day of sub-daily data) of usable
    /// samples: the candidates need one to fit, and until then the trigger works on observed
    /// demand alone, as the live controller does before history accumulates.
    pub fn new(trace: &DemandTrace, settings: &Settings) -> Self {
        let step = trace.step();
        let horizon_s = settings.policy.horizon.as_secs() as i64;
        let steps = ((horizon_s + settings.refit_every_s) as f64 / step as f64).ceil() as usize + 1;
        let min_history = ((86_400 / step) as usize).max(MIN_FORECAST_POINTS);
        // usable[k]: finite samples among the first k.
        let mut usable = Vec::with_capacity(trace.series().len() + 1);
        usable.push(0usize);
        for v in &trace.series().values {
            usable.push(usable[usable.len() - 1] + usize::from(v.is_finite()));
        }
        let tick = settings.tick_s.max(STEP_S);
        let mut times = Vec::new();
        let mut last: Option<(i64, usize)> = None;
        let mut t = trace.start();
        while t <= trace.end() {
            let known = trace.known_at(t);
            let due = match last {
                None => true,
                Some((at, seen)) => t - at >= settings.refit_every_s && known > seen,
            };
            if due && usable[known] >= min_history {
                times.push(t);
                last = Some((t, known));
            }
            t += tick;
        }
        RefitSchedule { times, steps }
    }
}
