//! [`Forecaster`]: owns the reusable pieces and turns a series into a [`Forecast`].

use std::panic::catch_unwind;
use std::sync::{Arc, OnceLock};

use augurs::prophet::wasmstan::WasmstanOptimizer;

use crate::grid::fill_missing;
use crate::intervals::{IntervalCheck, band, check};
use crate::runner::Runner;
use crate::seasons::{detect_periods, natural_season, season_of};
use crate::select::{ModelScore, Selection, choose};
use crate::{EtsForm, ForecastError, ForecastOptions, ForecasterConfig, ModelKind, Series};

/// A forecast on the grid that continues the input series.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// Timestamp of the first forecast point (one step after the last input point).
    pub start: i64,
    /// Seconds between points.
    pub step: i64,
    /// Point forecast.
    pub point: Vec<f64>,
    /// Lower bound at `level`.
    pub lower: Vec<f64>,
    /// Upper bound at `level`.
    pub upper: Vec<f64>,
    /// Central interval level of `lower`/`upper`.
    pub level: f64,
    /// The model that produced it.
    pub model: String,
    /// Signals that changed the forecast (`event:NAME`, `regressor:NAME`).
    pub signals_used: Vec<String>,
    /// Backtest scores of the candidates, best first.
    pub scores: Vec<ModelScore>,
    /// What an ensemble combined, with each member's weight where it has one.
    pub members: Vec<(ModelKind, Option<f64>)>,
    /// The ETS form each model in the forecast fitted (ETS's own, or MSTL's trend's): the
    /// form its selection chose, which refits keep.
    pub ets_forms: Vec<(ModelKind, EtsForm)>,
    /// How the band at `level` held on the backtest folds, and how much it was widened.
    pub interval: IntervalCheck,
}

impl Forecast {
    /// Timestamp of point `i`.
    pub fn time_at(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
}

/// Forecasts series. Cheap to clone: the Prophet optimizer (a wasm module that takes ~0.5 s to
/// compile) is built on first use and shared by clones.
#[derive(Clone, Default)]
pub struct Forecaster {
    config: ForecasterConfig,
    optimizer: Arc<OnceLock<Option<WasmstanOptimizer>>>,
}

impl std::fmt::Debug for Forecaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forecaster")
            .field("config", &self.config)
            .field("prophet_ready", &self.optimizer.get().is_some())
            .finish()
    }
}

impl Forecaster {
    /// A forecaster with [`ForecasterConfig::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A forecaster with the given tuning.
    pub fn with_config(config: ForecasterConfig) -> Self {
        Self {
            config,
            optimizer: Arc::default(),
        }
    }

    /// The tuning in use.
    pub fn config(&self) -> &ForecasterConfig {
        &self.config
    }

    /// Chooses the model for `series` (a no-op choice unless `options.model` is `Auto` or an
    /// ensemble) and measures its backtest residuals.
    pub fn select(
        &self,
        series: &Series,
        horizon: usize,
        options: &ForecastOptions,
    ) -> Result<Selection, ForecastError> {
        options.validate()?;
        check_input(series, horizon)?;
        let periods = {
            let filled = fill_missing(&series.values);
            let from = filled.len().saturating_sub(self.config.max_train_points);
            detect_periods(&filled[from..], series.step)
        };
        // Prophet costs ~0.5 s to build and 0.3-1 s per fit, and without signals the other
        // candidates matched it on the benchmark traces, so `Auto` tries it only when there
        // are events or regressors for it to use.
        let prophet_candidate = self.config.prophet_in_auto
            && (!options.events.is_empty() || !options.regressors.is_empty());
        let needs_prophet = options.model == ModelKind::Prophet
            || (prophet_candidate
                && (options.model == ModelKind::Auto || options.model.is_ensemble()));
        let runner = self.runner(series, options, periods, needs_prophet);
        Ok(choose(
            &runner,
            options.model,
            horizon,
            prophet_candidate && runner.optimizer.is_some(),
        ))
    }

    /// Refits the selected model on `series` (which may have grown since the selection) and
    /// forecasts `horizon` steps. Falls back along `selection.fallbacks` if the model fails.
    pub fn fit_predict(
        &self,
        selection: &Selection,
        series: &Series,
        horizon: usize,
        options: &ForecastOptions,
    ) -> Result<Forecast, ForecastError> {
        options.validate()?;
        check_input(series, horizon)?;
        let chain: Vec<ModelKind> = std::iter::once(selection.model)
            .chain(selection.fallbacks.iter().copied())
            .collect();
        let needs_prophet = chain.first() == Some(&ModelKind::Prophet)
            || selection.members.contains(&ModelKind::Prophet);
        let mut runner = self.runner(series, options, selection.periods.clone(), needs_prophet);
        // Refit in the forms the selection's backtest chose: the parameters follow the new
        // data, the search over forms waits for the next selection.
        runner.forms = selection.ets_forms.iter().copied().collect();
        let mut last_error = None;
        for (i, kind) in chain.iter().enumerate() {
            if *kind == ModelKind::Prophet && runner.optimizer.is_none() && i > 0 {
                continue;
            }
            let (members, weights): (&[ModelKind], &[f64]) = if *kind == selection.model {
                (&selection.members, &selection.weights)
            } else {
                (&[], &[])
            };
            if kind.is_ensemble() && members.is_empty() {
                continue;
            }
            match runner.run(*kind, members, weights, runner.values.len(), horizon) {
                Ok(run) => {
                    // A fallback's band comes from seasonal-naive errors: the backtest
                    // residuals are the chosen model's.
                    let residuals: &[Vec<f64>] = if i == 0 { &selection.residuals } else { &[] };
                    let natural = natural_season(series.step);
                    let whole_cycles = natural <= 1 || selection.season == natural;
                    let (lower, upper) = band(
                        &run.point,
                        residuals,
                        &runner.values,
                        selection.season,
                        options.level,
                        whole_cycles,
                    );
                    let ets_forms = std::iter::once(*kind)
                        .chain(members.iter().copied())
                        .filter_map(|k| Some((k, runner.fitted_form(k, runner.values.len())?)))
                        .collect();
                    return Ok(Forecast {
                        start: series.end(),
                        step: series.step,
                        point: run.point,
                        lower,
                        upper,
                        level: options.level,
                        model: kind.name().to_string(),
                        signals_used: run.signals,
                        scores: selection.scores.clone(),
                        members: members
                            .iter()
                            .enumerate()
                            .map(|(m, k)| (*k, weights.get(m).copied()))
                            .collect(),
                        ets_forms,
                        interval: if i == 0 && whole_cycles {
                            check(&selection.residuals, options.level)
                        } else {
                            check(&[], options.level)
                        },
                    });
                }
                Err(e) => {
                    tracing::warn!(model = %kind, error = %e, "model failed, falling back");
                    last_error = Some(e);
                }
            }
        }
        Err(ForecastError::AllModelsFailed(last_error.map_or_else(
            || "no candidate".to_string(),
            |e| e.to_string(),
        )))
    }

    /// Selects a model for `series` and forecasts `horizon` steps after its last point.
    pub fn forecast(
        &self,
        series: &Series,
        horizon: usize,
        options: &ForecastOptions,
    ) -> Result<Forecast, ForecastError> {
        let selection = self.select(series, horizon, options)?;
        self.fit_predict(&selection, series, horizon, options)
    }

    fn runner<'a>(
        &'a self,
        series: &Series,
        options: &'a ForecastOptions,
        periods: Vec<usize>,
        needs_prophet: bool,
    ) -> Runner<'a> {
        Runner {
            values: fill_missing(&series.values),
            start: series.start,
            step: series.step,
            season: season_of(series.step, series.len(), &periods),
            periods,
            events: options.widened_events(),
            regressors: &options.regressors,
            optimizer: if needs_prophet {
                self.optimizer()
            } else {
                None
            },
            config: &self.config,
            memo: Default::default(),
            forms: Default::default(),
            fitted_forms: Default::default(),
        }
    }

    /// The Prophet optimizer, compiled on first use; `None` if it cannot be built.
    fn optimizer(&self) -> Option<&WasmstanOptimizer> {
        self.optimizer
            .get_or_init(|| {
                // `WasmstanOptimizer::new` panics if the embedded wasm is invalid; that must
                // disable Prophet, not take down the caller.
                let built = catch_unwind(WasmstanOptimizer::new);
                if built.is_err() {
                    tracing::warn!("the Prophet optimizer could not be built; Prophet disabled");
                }
                built.ok()
            })
            .as_ref()
    }
}

fn check_input(series: &Series, horizon: usize) -> Result<(), ForecastError> {
    if horizon == 0 {
        return Err(ForecastError::Invalid("horizon must be >= 1".into()));
    }
    if series.step <= 0 {
        return Err(ForecastError::Invalid(format!(
            "step {} must be > 0",
            series.step
        )));
    }
    let usable = series.values.iter().filter(|v| v.is_finite()).count();
    if usable < 3 {
        return Err(ForecastError::TooShort {
            got: usable,
            need: 3,
        });
    }
    Ok(())
}
