//! Walk-forward forecasting for a replay: the forecaster is handed only what was known at
//! the simulated "now", and its answer is read as a demand outlook from then on.

use std::collections::HashMap;
use std::time::Instant;

use forecast::{ForecastError, ForecastOptions, Forecaster, Selection, Series};

use super::ahead::{Refit, parallel_map, resolve, selection_times};
use super::trace::DemandTrace;

/// What one selection weighs in the progress shown while forecasting ahead, in refits: a
/// selection backtests every candidate on two folds, a refit fits one model (or three).
const SELECTION_WEIGHT: usize = 10;

/// Produces upper-quantile demand forecasts during a replay.
///
/// `history` holds exactly the samples known at `now` (timestamps at or before it); the
/// answer is `steps` values on the history's grid, the first one step after its last sample.
pub trait DemandForecaster {
    /// The upper-quantile forecast after `history`.
    fn upper(
        &mut self,
        now: i64,
        history: &Series,
        steps: usize,
    ) -> Result<Vec<f64>, ForecastError>;

    /// Told once, before a replay, every `now` at which [`DemandForecaster::upper`] will be
    /// called (ascending, each with `trace.history_at(now)` and `steps`), so that the
    /// answers can be computed ahead, in parallel. An answer made ahead for `now` must
    /// come from `trace.history_at(now)` alone, and equal the one `upper` would give.
    /// `progress` is told the share done now and then. The default computes nothing ahead.
    fn prepare(
        &mut self,
        trace: &DemandTrace,
        times: &[i64],
        steps: usize,
        progress: &mut dyn FnMut(f64),
    ) {
        let _ = (trace, times, steps, progress);
    }
}

/// The live controller's forecaster: selects a model by backtest every `select_every`
/// seconds of simulated time and refits the selection at every call in between.
///
/// Every forecast depends only on the history it is given and on when the model was last
/// selected, which depends only on the times of the calls; so [`DemandForecaster::prepare`]
/// makes all of a replay's selections and refits ahead on `threads` threads, and `upper`
/// then hands them out in order. The answers are the ones the calls would have computed one
/// by one.
#[derive(Debug)]
pub struct WalkForward {
    forecaster: Forecaster,
    options: ForecastOptions,
    select_every: i64,
    selection: Option<(Selection, i64)>,
    threads: usize,
    prepared: Option<Prepared>,
}

/// Forecasts made ahead of a replay, handed out by `upper` in call order.
#[derive(Debug)]
struct Prepared {
    steps: usize,
    /// Each selection and the `now` it was made at; taken out when its first refit is used.
    selections: Vec<Option<(Selection, i64)>>,
    answers: HashMap<i64, Answer>,
}

/// What `upper` answers at one `now`.
#[derive(Debug)]
struct Answer {
    /// Samples in the history it was made from.
    seen: usize,
    /// The selection in force once it is made (an index into `Prepared::selections`).
    selection: Option<usize>,
    upper: Result<Vec<f64>, ForecastError>,
}

impl WalkForward {
    /// `options.level` is the central interval whose upper bound is used (quantile
    /// `(1 + level) / 2`). Forecasts ahead of a replay on as many threads as the machine
    /// has cores ([`WalkForward::with_threads`]).
    pub fn new(forecaster: Forecaster, options: ForecastOptions, select_every: i64) -> Self {
        WalkForward {
            forecaster,
            options,
            select_every,
            selection: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            prepared: None,
        }
    }

    /// Forecasts ahead of a replay on `threads` threads (at least one).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// The model in use, once one was selected.
    pub fn model(&self) -> Option<String> {
        self.selection.as_ref().map(|(s, _)| s.model.to_string())
    }

    /// Whether the selection made at `at` is due for renewal at `now`.
    fn stale(&self, at: i64, horizon: usize, now: i64, steps: usize) -> bool {
        now - at >= self.select_every || horizon != steps
    }

    /// The answer prepared for this call, if one was and it is this call's.
    fn take_prepared(&mut self, now: i64, history: &Series, steps: usize) -> Option<Answer> {
        let prepared = self.prepared.as_mut()?;
        let answer = prepared.answers.remove(&now);
        let fits = answer
            .as_ref()
            .is_some_and(|a| a.seen == history.len() && prepared.steps == steps);
        if !fits {
            // Not the call sequence it was prepared for: answer live from here on, from the
            // selection state the calls so far left behind.
            tracing::warn!(
                now,
                "simulate: a forecast was asked that was not prepared; computing live"
            );
            self.prepared = None;
            return None;
        }
        answer
    }
}

impl DemandForecaster for WalkForward {
    fn upper(
        &mut self,
        now: i64,
        history: &Series,
        steps: usize,
    ) -> Result<Vec<f64>, ForecastError> {
        if let Some(answer) = self.take_prepared(now, history, steps) {
            if let (Some(i), Some(prepared)) = (answer.selection, self.prepared.as_mut()) {
                if let Some(taken) = prepared.selections.get_mut(i).and_then(Option::take) {
                    self.selection = Some(taken);
                }
            }
            return answer.upper;
        }
        let stale = match &self.selection {
            Some((s, at)) => self.stale(*at, s.horizon, now, steps),
            None => true,
        };
        if stale {
            let started = Instant::now();
            let selection = self.forecaster.select(history, steps, &self.options)?;
            tracing::debug!(model = %selection.model, now, seconds = started.elapsed().as_secs_f64(), "simulate: model selected");
            self.selection = Some((selection, now));
        }
        let Some((selection, _)) = &self.selection else {
            return Err(ForecastError::Invalid("no model selected".into()));
        };
        let started = Instant::now();
        let fc = self
            .forecaster
            .fit_predict(selection, history, steps, &self.options)?;
        tracing::trace!(model = %fc.model, now, seconds = started.elapsed().as_secs_f64(), "simulate: refitted");
        Ok(fc.upper)
    }

    fn prepare(
        &mut self,
        trace: &DemandTrace,
        times: &[i64],
        steps: usize,
        progress: &mut dyn FnMut(f64),
    ) {
        // Ahead only from a fresh start: a selection held from before would shift the plan.
        if self.selection.is_some() || self.prepared.is_some() || times.is_empty() {
            return;
        }
        let started = Instant::now();
        let (forecaster, options) = (&self.forecaster, &self.options);
        let select = |now: i64| forecaster.select(&trace.history_at(now), steps, options);
        // The selections first (each a backtest of every candidate, worth about
        // SELECTION_WEIGHT refits in the progress shown), then every refit.
        let ahead = selection_times(times, self.select_every);
        let base = ahead.len() * SELECTION_WEIGHT;
        let total = (base + times.len()) as f64;
        let selected = parallel_map(
            &ahead,
            self.threads,
            &mut |done| progress((done * SELECTION_WEIGHT) as f64 / total),
            |&now| select(now),
        );
        let resolved = resolve(
            times,
            ahead.into_iter().zip(selected).collect(),
            |s: &Selection, at, now| self.stale(at, s.horizon, now, steps),
            select,
        );
        let fitted = parallel_map(
            &resolved.refits,
            self.threads,
            &mut |done| progress((base + done) as f64 / total),
            |refit| match refit {
                Refit::Fit { now, selection } => Some(
                    forecaster
                        .fit_predict(
                            &resolved.selections[*selection].0,
                            &trace.history_at(*now),
                            steps,
                            options,
                        )
                        .map(|fc| fc.upper),
                ),
                Refit::Failed { .. } => None,
            },
        );
        tracing::debug!(
            forecasts = times.len(),
            selections = resolved.selections.len(),
            threads = self.threads,
            seconds = started.elapsed().as_secs_f64(),
            "simulate: forecasts made ahead"
        );
        let answers = resolved
            .refits
            .into_iter()
            .zip(fitted)
            .map(|(refit, upper)| match refit {
                Refit::Fit { now, selection } => {
                    let upper = upper.unwrap_or_else(|| {
                        Err(ForecastError::Invalid("the refit was not made".into()))
                    });
                    (
                        now,
                        Answer {
                            seen: trace.known_at(now),
                            selection: Some(selection),
                            upper,
                        },
                    )
                }
                Refit::Failed { now, error } => (
                    now,
                    Answer {
                        seen: trace.known_at(now),
                        selection: None,
                        upper: Err(error),
                    },
                ),
            })
            .collect();
        self.prepared = Some(Prepared {
            steps,
            selections: resolved.selections.into_iter().map(Some).collect(),
            answers,
        });
    }
}

/// A forecast as the controller reads it between refits: the last known sample, then the
/// forecast points, linear in between (the same reading as the trace itself).
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastView {
    /// Time of the last known sample.
    anchor_time: i64,
    /// Its value.
    anchor_value: f64,
    /// Grid step, seconds.
    step: i64,
    /// Upper forecast at `anchor_time + (i + 1) * step`.
    upper: Vec<f64>,
}

impl ForecastView {
    /// A view from the history a forecast was made on and its upper values. `None` if the
    /// history is empty or ends in a gap (then the first forecast point is the anchor).
    pub fn new(history: &Series, upper: Vec<f64>) -> Option<Self> {
        let last = history.len().checked_sub(1)?;
        let anchor_value = match history.values[last] {
            v if v.is_finite() => v,
            _ => *upper.first()?,
        };
        Some(ForecastView {
            anchor_time: history.time_at(last),
            anchor_value,
            step: history.step,
            upper,
        })
    }

    /// Upper forecast at unix second `t`; `None` before the anchor or past the last point.
    pub fn at(&self, t: i64) -> Option<f64> {
        if t < self.anchor_time || self.step <= 0 {
            return None;
        }
        let offset = t - self.anchor_time;
        let i = (offset / self.step) as usize;
        let frac = (offset % self.step) as f64 / self.step as f64;
        let point = |k: usize| {
            if k == 0 {
                Some(self.anchor_value)
            } else {
                self.upper.get(k - 1).copied()
            }
        };
        let left = point(i)?;
        if frac == 0.0 {
            return Some(left);
        }
        let right = point(i + 1)?;
        Some(left + (right - left) * frac)
    }

    /// The trigger's outlook at `now`: upper demand at `now + (i + 1) * step_s` for
    /// `i < len`, stopping where the forecast ends.
    pub fn outlook(&self, now: i64, step_s: i64, len: usize) -> Vec<f64> {
        (1..=len as i64)
            .map_while(|i| self.at(now + i * step_s))
            .filter(|v| v.is_finite())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_interpolates_from_the_last_sample() {
        let history = Series::new(0, 300, vec![5.0, 10.0]);
        let v = ForecastView::new(&history, vec![20.0, 40.0]).expect("view");
        assert_eq!(v.at(299), None);
        assert_eq!(v.at(300), Some(10.0));
        assert_eq!(v.at(450), Some(15.0));
        assert_eq!(v.at(600), Some(20.0));
        assert_eq!(v.at(750), Some(30.0));
        assert_eq!(v.at(900), Some(40.0));
        assert_eq!(v.at(901), None);
        assert_eq!(
            v.outlook(420, 60, 10),
            vec![16.0, 18.0, 20.0, 24.0, 28.0, 32.0, 36.0, 40.0]
        );
    }

    #[test]
    fn a_history_ending_in_a_gap_anchors_on_the_first_forecast_point() {
        let history = Series::new(0, 60, vec![5.0, f64::NAN]);
        let v = ForecastView::new(&history, vec![8.0]).expect("view");
        assert_eq!(v.at(60), Some(8.0));
        assert!(ForecastView::new(&Series::new(0, 60, vec![]), vec![1.0]).is_none());
    }
}
