//! Runs one model on one training prefix of a series: window, fit, event uplift, clamp.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use augurs::prophet::wasmstan::WasmstanOptimizer;

use crate::events::{History, apply_uplift};
use crate::models::{
    BaseFit, EtsForm, FitInput, ModelKind, pointwise_median, predict_base, same_forecast_as,
    weighted_mean,
};
use crate::transform::clamp_to_training;
use crate::{EventWindow, ForecastError, ForecasterConfig, Regressor};

/// An MSTL fit's identity: (model, window start, origin, horizon).
type MemoKey = (ModelKind, usize, usize, usize);

/// A series prepared once (filled, periods detected) and the signals that go with it.
pub(crate) struct Runner<'a> {
    /// All values, `NaN` filled.
    pub values: Vec<f64>,
    /// Timestamp of `values[0]`.
    pub start: i64,
    /// Grid step in seconds.
    pub step: i64,
    /// Detected periods in steps.
    pub periods: Vec<usize>,
    /// Natural season in steps.
    pub season: usize,
    /// Events, already widened by lead and lag.
    pub events: Vec<EventWindow>,
    /// Regressors on the grid of `values[0]`.
    pub regressors: &'a [Regressor],
    /// Prophet's optimizer, if built.
    pub optimizer: Option<&'a WasmstanOptimizer>,
    /// Forecaster tuning.
    pub config: &'a ForecasterConfig,
    /// MSTL forecasts made, by (model, window start, origin, horizon): a selection that
    /// backtests `mstl-clip` beside `mstl` on data with nothing to clip, then refits the
    /// members, would otherwise fit the same MSTL up to three times.
    pub memo: RefCell<HashMap<MemoKey, Rc<BaseFit>>>,
    /// The ETS form to refit each model in (a selection's choice); searched where absent.
    pub forms: BTreeMap<ModelKind, EtsForm>,
    /// The ETS form each model fitted, by (model, origin).
    pub fitted_forms: RefCell<BTreeMap<(ModelKind, usize), EtsForm>>,
}

/// One model's forecast and the signals that changed it.
pub(crate) struct Run {
    pub point: Vec<f64>,
    pub signals: Vec<String>,
}

impl Runner<'_> {
    /// First index of the training window that ends at `origin`.
    fn window_start(&self, kind: ModelKind, origin: usize) -> usize {
        let limit = match kind {
            // A level/trend model needs recent data only, and its cost grows with length.
            ModelKind::Ets => self.config.max_train_points.min((4 * self.season).max(200)),
            _ => self.config.max_train_points,
        };
        origin.saturating_sub(limit)
    }

    /// Forecast of `kind` for `horizon` steps after `values[..origin]`; an ensemble combines
    /// `members` (those that fail are left out), [`ModelKind::WeightedTop3`] with `weights`
    /// (one per member).
    pub fn run(
        &self,
        kind: ModelKind,
        members: &[ModelKind],
        weights: &[f64],
        origin: usize,
        horizon: usize,
    ) -> Result<Run, ForecastError> {
        if !kind.is_ensemble() {
            return self.run_base(kind, origin, horizon);
        }
        let mut runs = Vec::new();
        let mut used_weights = Vec::new();
        let mut last_error = None;
        for (i, m) in members.iter().enumerate() {
            match self.run_base(*m, origin, horizon) {
                Ok(r) => {
                    runs.push(r);
                    used_weights.push(weights.get(i).copied().unwrap_or(1.0));
                }
                Err(e) => last_error = Some(e),
            }
        }
        if runs.is_empty() {
            return Err(last_error
                .unwrap_or_else(|| ForecastError::model(kind.name(), "no members to combine")));
        }
        let points: Vec<&[f64]> = runs.iter().map(|r| r.point.as_slice()).collect();
        let point = if kind == ModelKind::WeightedTop3 {
            weighted_mean(&points, &used_weights)
        } else {
            pointwise_median(&points)
        };
        if point.is_empty() {
            return Err(ForecastError::model(
                kind.name(),
                "no member with a positive weight",
            ));
        }
        let mut signals: Vec<String> = runs.iter().flat_map(|r| r.signals.clone()).collect();
        signals.sort();
        signals.dedup();
        Ok(Run { point, signals })
    }

    /// A base model's forecast after `values[..origin]`.
    pub fn run_base(
        &self,
        kind: ModelKind,
        origin: usize,
        horizon: usize,
    ) -> Result<Run, ForecastError> {
        let from = self.window_start(kind, origin);
        let train = &self.values[from..origin];
        let regressors: Vec<Regressor> = if kind.uses_signals_natively() {
            self.regressors_for(from, origin + horizon)?
        } else {
            Vec::new()
        };
        let start = self.start + from as i64 * self.step;
        let input = FitInput {
            values: train,
            start,
            step: self.step,
            periods: &self.periods,
            season: self.season,
            events: if kind.uses_signals_natively() {
                &self.events
            } else {
                &[]
            },
            regressors: &regressors,
            optimizer: self.optimizer,
            prophet_max_points: self.config.prophet_max_points,
            form: self.forms.get(&kind).copied(),
        };
        let fit = self.predict_memoised(kind, &input, from, origin, horizon)?;
        if let Some(form) = fit.form {
            self.fitted_forms.borrow_mut().insert((kind, origin), form);
        }
        let mut point = fit.point.clone();
        let mut signals = Vec::new();
        if kind.uses_signals_natively() {
            let (t0, t1) = (start, start + (train.len() + horizon) as i64 * self.step);
            signals.extend(
                self.events
                    .iter()
                    .filter(|e| e.end > t0 && e.start < t1)
                    .map(|e| format!("event:{}", e.name)),
            );
            signals.extend(regressors.iter().map(|r| format!("regressor:{}", r.name)));
        } else if !self.events.is_empty() {
            let week = (7 * 86_400 / self.step.max(1)) as usize;
            let baseline_lag = if self.step <= 86_400 && origin >= 4 * week {
                week
            } else {
                self.season
            };
            // Learn event effects from all history, not just the model's window: holidays
            // are rare, and the last one is usually months back.
            let history = History {
                values: &self.values[..origin],
                start: self.start,
                step: self.step,
                baseline_lag,
            };
            signals.extend(
                apply_uplift(&history, &self.events, &mut point)
                    .into_iter()
                    .map(|n| format!("event:{n}")),
            );
        }
        clamp_to_training(&mut point, train, self.config.clamp_margin);
        signals.sort();
        signals.dedup();
        Ok(Run { point, signals })
    }

    /// [`predict_base`], reusing an MSTL forecast already made on the same window.
    fn predict_memoised(
        &self,
        kind: ModelKind,
        input: &FitInput<'_>,
        from: usize,
        origin: usize,
        horizon: usize,
    ) -> Result<Rc<BaseFit>, ForecastError> {
        if !matches!(
            kind,
            ModelKind::Mstl | ModelKind::MstlClipped | ModelKind::MstlLog
        ) {
            return predict_base(kind, input, horizon).map(Rc::new);
        }
        let kind = same_forecast_as(kind, input);
        let key = (kind, from, origin, horizon);
        if let Some(fit) = self.memo.borrow().get(&key) {
            return Ok(Rc::clone(fit));
        }
        let fit = Rc::new(predict_base(kind, input, horizon)?);
        self.memo.borrow_mut().insert(key, Rc::clone(&fit));
        Ok(fit)
    }

    /// The ETS form `kind` fitted on the training window that ends at `origin`, if it ran
    /// there and has one.
    pub fn fitted_form(&self, kind: ModelKind, origin: usize) -> Option<EtsForm> {
        self.fitted_forms.borrow().get(&(kind, origin)).copied()
    }

    fn regressors_for(&self, from: usize, to: usize) -> Result<Vec<Regressor>, ForecastError> {
        self.regressors
            .iter()
            .map(|r| {
                let values = r.values.get(from..to).ok_or_else(|| {
                    ForecastError::Invalid(format!(
                        "regressor `{}` has {} values; the forecast needs {to} (history + horizon)",
                        r.name,
                        r.values.len()
                    ))
                })?;
                Ok(Regressor::new(r.name.clone(), values.to_vec()))
            })
            .collect()
    }
}
