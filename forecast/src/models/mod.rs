//! The candidate models, named by [`ModelKind`], and one entry point that runs any of them.

mod ensemble;
mod ets;
mod mstl;
mod naive;
mod prophet;

use std::fmt;
use std::str::FromStr;

use augurs::prophet::wasmstan::WasmstanOptimizer;

pub(crate) use ensemble::{pointwise_median, weighted_mean};
pub use ets::EtsForm;

use crate::{EventWindow, ForecastError, Regressor};

/// A forecasting model, or `Auto` to choose one per series by backtest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelKind {
    /// Choose per series by rolling-origin backtest.
    Auto,
    /// Repeat the last natural season (a day for sub-daily data, a week for daily data).
    SeasonalNaive,
    /// Repeat the last week.
    WeeklyNaive,
    /// Pointwise median of the last three natural seasons.
    MedianOfPeriods,
    /// Pointwise median of the last three weeks.
    WeeklyMedian,
    /// Non-seasonal AutoETS.
    Ets,
    /// MSTL on the detected periods, AutoETS (non-seasonal) on the trend.
    Mstl,
    /// [`ModelKind::Mstl`] on data with outliers clipped.
    MstlClipped,
    /// [`ModelKind::Mstl`] on `log1p` of the data.
    MstlLog,
    /// Prophet (augurs, wasmstan optimizer) with events as holidays and regressors.
    Prophet,
    /// Pointwise median of the three base models that backtested best.
    MedianTop3,
    /// Pointwise median of all base models that fit.
    MedianAll,
    /// Mean of the three base models that backtested best, each weighted by the inverse
    /// square of its backtest MASE (what `Auto` forecasts with).
    WeightedTop3,
}

impl ModelKind {
    /// Every concrete (non-`Auto`) model, simplest first: ties go to the earlier one.
    pub const ALL: [ModelKind; 12] = [
        ModelKind::SeasonalNaive,
        ModelKind::WeeklyNaive,
        ModelKind::MedianOfPeriods,
        ModelKind::WeeklyMedian,
        ModelKind::Ets,
        ModelKind::Mstl,
        ModelKind::MstlClipped,
        ModelKind::MstlLog,
        ModelKind::MedianTop3,
        ModelKind::MedianAll,
        ModelKind::WeightedTop3,
        ModelKind::Prophet,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Auto => "auto",
            ModelKind::SeasonalNaive => "snaive",
            ModelKind::WeeklyNaive => "wnaive",
            ModelKind::MedianOfPeriods => "median3",
            ModelKind::WeeklyMedian => "wmedian3",
            ModelKind::Ets => "ets",
            ModelKind::Mstl => "mstl",
            ModelKind::MstlClipped => "mstl-clip",
            ModelKind::MstlLog => "mstl-log1p",
            ModelKind::Prophet => "prophet",
            ModelKind::MedianTop3 => "median-top3",
            ModelKind::MedianAll => "median-all",
            ModelKind::WeightedTop3 => "weighted-top3",
        }
    }

    /// True for the combinations of other models.
    pub fn is_ensemble(self) -> bool {
        matches!(
            self,
            ModelKind::MedianTop3 | ModelKind::MedianAll | ModelKind::WeightedTop3
        )
    }

    /// True for models that take events and regressors themselves (others get the
    /// learned event uplift applied afterwards).
    pub fn uses_signals_natively(self) -> bool {
        self == ModelKind::Prophet
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = ForecastError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        std::iter::once(ModelKind::Auto)
            .chain(ModelKind::ALL)
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = std::iter::once(ModelKind::Auto)
                    .chain(ModelKind::ALL)
                    .map(ModelKind::name)
                    .collect();
                ForecastError::Invalid(format!(
                    "unknown model `{s}`; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// Everything a base model needs to fit one training window.
pub(crate) struct FitInput<'a> {
    /// Training values, no `NaN`.
    pub values: &'a [f64],
    /// Timestamp of `values[0]`.
    pub start: i64,
    /// Grid step in seconds.
    pub step: i64,
    /// Detected seasonal periods in steps.
    pub periods: &'a [usize],
    /// Natural season (see `seasons::natural_season`).
    pub season: usize,
    /// Known events.
    pub events: &'a [EventWindow],
    /// Regressors aligned with `values[0]`, covering training and horizon.
    pub regressors: &'a [Regressor],
    /// Prophet's optimizer, when it could be built.
    pub optimizer: Option<&'a WasmstanOptimizer>,
    /// Longest window Prophet fits on (it slows down fast with length).
    pub prophet_max_points: usize,
    /// The ETS form to refit (ETS, and MSTL's trend) when a selection already chose one;
    /// searched when `None`.
    pub form: Option<EtsForm>,
}

/// A base model's point forecast, and the ETS form it fitted (ETS and MSTL only).
pub(crate) struct BaseFit {
    pub point: Vec<f64>,
    pub form: Option<EtsForm>,
}

impl From<Vec<f64>> for BaseFit {
    fn from(point: Vec<f64>) -> BaseFit {
        BaseFit { point, form: None }
    }
}

impl From<(Vec<f64>, Option<EtsForm>)> for BaseFit {
    fn from((point, form): (Vec<f64>, Option<EtsForm>)) -> BaseFit {
        BaseFit { point, form }
    }
}

/// The model whose forecast `kind`'s is on this input: [`ModelKind::Mstl`] for
/// [`ModelKind::MstlClipped`] when clipping changes nothing, `kind` otherwise.
pub(crate) fn same_forecast_as(kind: ModelKind, input: &FitInput<'_>) -> ModelKind {
    if kind == ModelKind::MstlClipped && mstl::clipping_changes_nothing(input) {
        ModelKind::Mstl
    } else {
        kind
    }
}

/// Point forecast of a base (non-ensemble) model for `horizon` steps after the training data.
pub(crate) fn predict_base(
    kind: ModelKind,
    input: &FitInput<'_>,
    horizon: usize,
) -> Result<BaseFit, ForecastError> {
    let week = input.season_for(7 * 86_400);
    let form = input.form;
    let fit = match kind {
        ModelKind::SeasonalNaive => {
            naive::seasonal_naive(input.values, input.season, horizon)?.into()
        }
        ModelKind::WeeklyNaive => naive::seasonal_naive(input.values, week?, horizon)?.into(),
        ModelKind::MedianOfPeriods => {
            naive::median_of_periods(input.values, input.season, 3, horizon)?.into()
        }
        ModelKind::WeeklyMedian => {
            naive::median_of_periods(input.values, week?, 3, horizon)?.into()
        }
        ModelKind::Ets => ets::non_seasonal(input.values, horizon, form)?.into(),
        ModelKind::Mstl => mstl::forecast(input, mstl::Variant::Raw, horizon, form)?.into(),
        ModelKind::MstlClipped => {
            mstl::forecast(input, mstl::Variant::Clipped, horizon, form)?.into()
        }
        ModelKind::MstlLog => mstl::forecast(input, mstl::Variant::Log1p, horizon, form)?.into(),
        ModelKind::Prophet => prophet::forecast(input, horizon)?.into(),
        ModelKind::Auto
        | ModelKind::MedianTop3
        | ModelKind::MedianAll
        | ModelKind::WeightedTop3 => {
            return Err(ForecastError::model(
                kind.name(),
                "not a base model; resolve it first",
            ));
        }
    };
    Ok(fit)
}

impl FitInput<'_> {
    /// `period_seconds` in steps, when the grid divides it and at least one cycle fits.
    fn season_for(&self, period_seconds: i64) -> Result<usize, ForecastError> {
        let steps = (self.step > 0 && period_seconds % self.step == 0)
            .then(|| (period_seconds / self.step) as usize)
            .filter(|s| *s >= 2 && *s <= self.values.len());
        steps.ok_or_else(|| {
            ForecastError::model(
                "weekly",
                format!("{period_seconds} s is not a whole number of steps within the data"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in std::iter::once(ModelKind::Auto).chain(ModelKind::ALL) {
            assert_eq!(k.name().parse::<ModelKind>().expect("parses"), k);
        }
        let err = "arima".parse::<ModelKind>().expect_err("unknown");
        assert!(err.to_string().contains("snaive"));
    }
}
