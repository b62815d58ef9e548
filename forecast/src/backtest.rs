//! Rolling-origin backtest of every model (and of `auto`) for `umbra backtest`.

use crate::metrics::{coverage, mase, mean, smape};
use crate::seasons::season_of;
use crate::{
    EtsForm, ForecastError, ForecastOptions, Forecaster, IntervalCheck, ModelKind, Series,
};

/// Scores of one model over the folds.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBacktest {
    /// Model name (`auto`, `auto-no-signals`, or a [`ModelKind`] name).
    pub model: String,
    /// MASE per fold, oldest fold first (`NaN` where the model failed).
    pub mase: Vec<f64>,
    /// sMAPE per fold (percent).
    pub smape: Vec<f64>,
    /// Mean MASE over the folds where it ran.
    pub mean_mase: f64,
    /// Mean sMAPE over the folds where it ran.
    pub mean_smape: f64,
    /// Share of each fold's actual values inside the forecast's interval (`NaN` where the
    /// model failed).
    pub coverage: Vec<f64>,
    /// Mean coverage over the folds where it ran.
    pub mean_coverage: f64,
    /// What `auto` chose on each fold (empty for fixed models).
    pub picks: Vec<String>,
}

/// The result of [`Forecaster::backtest`].
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestReport {
    /// Steps per fold.
    pub horizon: usize,
    /// Timestamps where each fold's forecast starts, oldest first.
    pub fold_starts: Vec<i64>,
    /// One row per model, in [`ModelKind::ALL`] order, then `auto`.
    pub models: Vec<ModelBacktest>,
    /// The model `auto` picks on the whole series.
    pub auto_pick: String,
    /// What `auto`'s pick combines on the whole series, with weights where it has them.
    pub auto_members: Vec<(ModelKind, Option<f64>)>,
    /// The ETS form each of those fitted (see [`crate::Forecast::ets_forms`]).
    pub auto_forms: Vec<(ModelKind, EtsForm)>,
    /// Central level of the intervals whose coverage is reported.
    pub level: f64,
    /// How `auto`'s band held on its own selection folds, and how much it was widened.
    pub interval: IntervalCheck,
}

/// Progress of a backtest: `done` of `total` model fits finished, `label` names the last.
#[derive(Debug, Clone, Copy)]
pub struct BacktestProgress<'a> {
    /// Fits finished.
    pub done: usize,
    /// Fits in total.
    pub total: usize,
    /// The fit just finished ("fold 2/3 mstl").
    pub label: &'a str,
}

impl Forecaster {
    /// Backtests every model (Prophet only if `prophet_in_auto`) and `auto` on the last `folds`
    /// windows of `horizon` steps.
    ///
    /// When `options` carries events or regressors, `auto` is also run without them
    /// (`auto-no-signals`) so the report shows what the signals are worth.
    pub fn backtest(
        &self,
        series: &Series,
        horizon: usize,
        folds: usize,
        options: &ForecastOptions,
        mut progress: impl FnMut(BacktestProgress<'_>),
    ) -> Result<BacktestReport, ForecastError> {
        options.validate()?;
        let n = series.len();
        let periods =
            crate::seasons::detect_periods(&crate::grid::fill_missing(&series.values), series.step);
        let season = season_of(series.step, n, &periods);
        let origins: Vec<usize> = (1..=folds)
            .rev()
            .filter_map(|f| n.checked_sub(f * horizon))
            .filter(|o| *o >= 2 * season.max(horizon))
            .collect();
        if origins.is_empty() {
            return Err(ForecastError::TooShort {
                got: n,
                need: 2 * season.max(horizon) + horizon,
            });
        }
        let has_signals = !options.events.is_empty() || !options.regressors.is_empty();
        let mut rows: Vec<(String, ForecastOptions)> = ModelKind::ALL
            .into_iter()
            .filter(|k| *k != ModelKind::Prophet || self.config().prophet_in_auto)
            .map(|k| {
                (
                    k.name().to_string(),
                    ForecastOptions {
                        model: k,
                        ..options.clone()
                    },
                )
            })
            .collect();
        rows.push(("auto".into(), options.clone()));
        if has_signals {
            rows.push((
                "auto-no-signals".into(),
                ForecastOptions {
                    events: Vec::new(),
                    regressors: Vec::new(),
                    ..options.clone()
                },
            ));
        }
        let total = rows.len() * origins.len() + 1;
        let mut done = 0;
        let mut models = Vec::new();
        for (name, row_options) in &rows {
            let mut result = ModelBacktest {
                model: name.clone(),
                mase: Vec::new(),
                smape: Vec::new(),
                mean_mase: f64::NAN,
                mean_smape: f64::NAN,
                coverage: Vec::new(),
                mean_coverage: f64::NAN,
                picks: Vec::new(),
            };
            for (f, origin) in origins.iter().enumerate() {
                let train = series.head(*origin);
                let actual: Vec<f64> = series.values[*origin..*origin + horizon].to_vec();
                match self.forecast(&train, horizon, row_options) {
                    // A fixed model that fell back is not that model's score.
                    Ok(fc) if row_options.model != ModelKind::Auto && fc.model != *name => {
                        tracing::info!(model = %name, fold = f, fell_back_to = %fc.model, "model could not fit");
                        result.mase.push(f64::NAN);
                        result.smape.push(f64::NAN);
                        result.coverage.push(f64::NAN);
                    }
                    Ok(fc) => {
                        let filled = crate::grid::fill_missing(&train.values);
                        let pairs: (Vec<f64>, Vec<f64>) = actual
                            .iter()
                            .zip(&fc.point)
                            .filter(|(a, _)| a.is_finite())
                            .map(|(a, p)| (*a, *p))
                            .unzip();
                        result.mase.push(mase(&filled, &pairs.0, &pairs.1, season));
                        result.smape.push(smape(&pairs.0, &pairs.1));
                        let (lower, upper): (Vec<f64>, Vec<f64>) = actual
                            .iter()
                            .zip(fc.lower.iter().zip(&fc.upper))
                            .filter(|(a, _)| a.is_finite())
                            .map(|(_, (l, u))| (*l, *u))
                            .unzip();
                        result.coverage.push(coverage(&pairs.0, &lower, &upper));
                        if row_options.model == ModelKind::Auto {
                            result.picks.push(fc.model);
                        }
                    }
                    Err(e) => {
                        tracing::info!(model = %name, fold = f, error = %e, "backtest fit failed");
                        result.mase.push(f64::NAN);
                        result.smape.push(f64::NAN);
                        result.coverage.push(f64::NAN);
                    }
                }
                done += 1;
                let label = format!("fold {}/{} {name}", f + 1, origins.len());
                progress(BacktestProgress {
                    done,
                    total,
                    label: &label,
                });
            }
            result.mean_mase = mean(result.mase.iter().copied().filter(|v| v.is_finite()));
            result.mean_smape = mean(result.smape.iter().copied().filter(|v| v.is_finite()));
            result.mean_coverage = mean(result.coverage.iter().copied().filter(|v| v.is_finite()));
            models.push(result);
        }
        let auto = self.forecast(series, horizon, options)?;
        progress(BacktestProgress {
            done: total,
            total,
            label: "auto pick",
        });
        Ok(BacktestReport {
            horizon,
            fold_starts: origins.iter().map(|o| series.time_at(*o)).collect(),
            models,
            auto_pick: auto.model,
            auto_members: auto.members,
            auto_forms: auto.ets_forms,
            level: options.level,
            interval: auto.interval,
        })
    }
}
