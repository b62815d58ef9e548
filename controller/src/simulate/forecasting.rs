//! Walk-forward forecasting for a replay: the forecaster is handed only what was known at
//! the simulated "now", and its answer is read as a demand outlook from then on.

use std::time::Instant;

use forecast::{ForecastError, ForecastOptions, Forecaster, Selection, Series};

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
}

/// The live controller's forecaster: selects a model by backtest every `select_every`
/// seconds of simulated time and refits the selection at every call in between.
#[derive(Debug)]
pub struct WalkForward {
    forecaster: Forecaster,
    options: ForecastOptions,
    select_every: i64,
    selection: Option<(Selection, i64)>,
}

impl WalkForward {
    /// `options.level` is the central interval whose upper bound is used (quantile
    /// `(1 + level) / 2`).
    pub fn new(forecaster: Forecaster, options: ForecastOptions, select_every: i64) -> Self {
        WalkForward {
            forecaster,
            options,
            select_every,
            selection: None,
        }
    }

    /// The model in use, once one was selected.
    pub fn model(&self) -> Option<String> {
        self.selection.as_ref().map(|(s, _)| s.model.to_string())
    }
}

impl DemandForecaster for WalkForward {
    fn upper(
        &mut self,
        now: i64,
        history: &Series,
        steps: usize,
    ) -> Result<Vec<f64>, ForecastError> {
        let stale = match &self.selection {
            Some((s, at)) => now - at >= self.select_every || s.horizon != steps,
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
