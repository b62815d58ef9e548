//! Every candidate's forecasts at each backtest origin and at the end, for selection research
//! (`forecast/examples/study.rs`): the same runner `auto` uses, nothing chosen.

use crate::grid::fill_missing;
use crate::runner::Runner;
use crate::seasons::{detect_periods, season_of};
use crate::{ForecastError, ForecastOptions, Forecaster, ModelKind, Series};

/// What [`Forecaster::study`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Study {
    /// Natural season in steps (the MASE scale's lag).
    pub season: usize,
    /// Detected periods in steps.
    pub periods: Vec<usize>,
    /// Forecast origins, oldest first: `folds` backtest origins, then the series' end.
    pub origins: Vec<usize>,
    /// Steps forecast at each backtest origin (the horizon, at least a season).
    pub fold_len: usize,
    /// The filled values the candidates saw.
    pub values: Vec<f64>,
    /// Per base candidate, one forecast per origin (`None` where it failed); the last is
    /// `horizon` steps long, the others `fold_len`.
    pub runs: Vec<(ModelKind, Vec<Option<Vec<f64>>>)>,
    /// Per base candidate, seconds spent on all its fits.
    pub seconds: Vec<(ModelKind, f64)>,
}

impl Forecaster {
    /// Runs every base candidate `auto` would consider at `folds` backtest origins and at the
    /// end of `series`. Research only: `auto` itself goes through `select`.
    #[doc(hidden)]
    pub fn study(
        &self,
        series: &Series,
        horizon: usize,
        folds: usize,
        options: &ForecastOptions,
    ) -> Result<Study, ForecastError> {
        options.validate()?;
        let values = fill_missing(&series.values);
        let from = values.len().saturating_sub(self.config().max_train_points);
        let periods = detect_periods(&values[from..], series.step);
        let runner = Runner {
            season: season_of(series.step, series.len(), &periods),
            values,
            start: series.start,
            step: series.step,
            periods: periods.clone(),
            events: options.widened_events(),
            regressors: &options.regressors,
            optimizer: None,
            config: self.config(),
            memo: Default::default(),
            forms: Default::default(),
            fitted_forms: Default::default(),
        };
        let n = runner.values.len();
        let fold_len = horizon.max(runner.season);
        let min_train = (2 * runner.season).max(2 * fold_len).max(8);
        let mut origins: Vec<usize> = (1..=folds)
            .rev()
            .filter_map(|f| n.checked_sub(f * fold_len))
            .filter(|o| *o >= min_train)
            .collect();
        origins.push(n);
        let mut seconds = Vec::new();
        let runs = ModelKind::ALL
            .into_iter()
            .filter(|k| !k.is_ensemble() && *k != ModelKind::Prophet)
            .map(|kind| {
                let started = std::time::Instant::now();
                let forecasts = origins
                    .iter()
                    .map(|&o| {
                        let h = if o == n { horizon } else { fold_len };
                        runner.run_base(kind, o, h).ok().map(|r| r.point)
                    })
                    .collect();
                seconds.push((kind, started.elapsed().as_secs_f64()));
                (kind, forecasts)
            })
            .collect();
        Ok(Study {
            season: runner.season,
            periods,
            origins,
            fold_len,
            values: runner.values,
            runs,
            seconds,
        })
    }
}
