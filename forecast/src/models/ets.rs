//! Non-seasonal ETS (augurs): searched by AICc, or refitted in a form an earlier search chose.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex};

use augurs::ets::AutoETS;
use augurs::ets::model::{ErrorComponent, Model, TrendComponent};
use augurs::mstl::{FittedTrendModel, TrendModel};
use augurs::{Fit, Forecast, Predict};

use crate::ForecastError;

/// The form of a non-seasonal ETS model (seasonality is MSTL's job, or absent): what the AICc
/// search picks. Searching tries up to six forms, each with its own optimisation; refitting
/// one known form re-estimates its parameters on new data at a fraction of the cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EtsForm {
    /// Multiplicative error (else additive).
    pub multiplicative_error: bool,
    /// An additive trend (else none).
    pub trend: bool,
    /// The trend is damped.
    pub damped: bool,
}

impl EtsForm {
    /// The form of a fitted model, `None` for one a non-seasonal search cannot produce.
    fn of(model: &Model) -> Option<EtsForm> {
        let t = model.model_type();
        let multiplicative_error = matches!(t.error, ErrorComponent::Multiplicative);
        let trend = match t.trend {
            TrendComponent::None => false,
            TrendComponent::Additive => true,
            TrendComponent::Multiplicative => return None,
        };
        Some(EtsForm {
            multiplicative_error,
            trend,
            damped: model.damped(),
        })
    }

    /// A search over this one form.
    fn search(self) -> Result<AutoETS, ForecastError> {
        let spec = format!(
            "{}{}N",
            if self.multiplicative_error { 'M' } else { 'A' },
            if self.trend { 'A' } else { 'N' }
        );
        let err = |e: augurs::ets::Error| ForecastError::model("ets", e);
        AutoETS::new(1, spec.as_str())
            .map_err(err)?
            .damped(self.damped)
            .map_err(err)
    }
}

impl fmt::Display for EtsForm {
    /// `ANN`, `AAN`, `AAdN`, `MNN`, ... as in the ETS literature.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let error = if self.multiplicative_error { 'M' } else { 'A' };
        let trend = match (self.trend, self.damped) {
            (false, _) => "N",
            (true, false) => "A",
            (true, true) => "Ad",
        };
        write!(f, "{error}{trend}N")
    }
}

/// Fits `values` in `form` alone when it is known and valid for the data (a multiplicative
/// error needs positive values), with the full non-seasonal search otherwise, or when the
/// known form no longer fits (the data changed under it).
fn fit_in(
    form: Option<EtsForm>,
    values: &[f64],
) -> Result<augurs::ets::FittedAutoETS, augurs::ets::Error> {
    let alone = form
        .filter(|f| !f.multiplicative_error || values.iter().all(|v| *v > 0.0))
        .and_then(|f| f.search().ok());
    match alone.map(|search| search.fit(values)) {
        Some(Ok(fitted)) => Ok(fitted),
        _ => AutoETS::non_seasonal().fit(values),
    }
}

/// Non-seasonal ETS point forecast, and the form it fitted. Seasonal AutoETS at long periods is
/// slow and picks a non-seasonal model anyway (FORECAST-NOTES).
pub(crate) fn non_seasonal(
    values: &[f64],
    horizon: usize,
    form: Option<EtsForm>,
) -> Result<(Vec<f64>, Option<EtsForm>), ForecastError> {
    let fitted = fit_in(form, values).map_err(|e| ForecastError::model("ets", e))?;
    let chosen = EtsForm::of(fitted.model());
    let forecast = fitted
        .predict(horizon, None)
        .map_err(|e| ForecastError::model("ets", e))?;
    Ok((forecast.point, chosen))
}

/// MSTL's trend model: non-seasonal ETS in `form` (searched when `None`), noting the form it
/// fitted in `chosen` for the caller (MSTL keeps its trend model behind a trait object).
#[derive(Debug, Clone)]
pub(crate) struct TrendEts {
    form: Option<EtsForm>,
    chosen: Arc<Mutex<Option<EtsForm>>>,
}

impl TrendEts {
    pub(crate) fn new(form: Option<EtsForm>) -> TrendEts {
        TrendEts {
            form,
            chosen: Arc::default(),
        }
    }

    /// The form of the last fit.
    pub(crate) fn chosen(&self) -> Option<EtsForm> {
        *self.chosen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl TrendModel for TrendEts {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed("AutoETS")
    }

    fn fit(&self, y: &[f64]) -> Result<Box<dyn FittedTrendModel + Sync + Send>, BoxError> {
        let fitted = fit_in(self.form, y)?;
        *self.chosen.lock().unwrap_or_else(|e| e.into_inner()) = EtsForm::of(fitted.model());
        Ok(Box::new(FittedTrend(fitted)))
    }
}

/// A fitted ETS as MSTL's trend.
#[derive(Debug)]
struct FittedTrend(augurs::ets::FittedAutoETS);

impl FittedTrendModel for FittedTrend {
    fn predict_inplace(
        &self,
        horizon: usize,
        level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        Ok(self.0.predict_inplace(horizon, level, forecast)?)
    }

    fn predict_in_sample_inplace(
        &self,
        level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        Ok(self.0.predict_in_sample_inplace(level, forecast)?)
    }

    fn training_data_size(&self) -> Option<usize> {
        Some(self.0.training_data_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A level with a slow rise and deterministic noise.
    fn rising(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 100.0 + 0.2 * i as f64 + ((i * 37) % 11) as f64)
            .collect()
    }

    #[test]
    fn a_known_form_refits_to_that_form_and_forecasts_like_the_search() {
        let y = rising(300);
        let (searched, form) = non_seasonal(&y, 12, None).expect("search fits");
        let form = form.expect("a non-seasonal form");
        let (refitted, again) = non_seasonal(&y, 12, Some(form)).expect("form fits");
        assert_eq!(again, Some(form));
        // Same form, same data: the same optimisation, so the same forecast.
        for (a, b) in searched.iter().zip(&refitted) {
            assert!((a - b).abs() < 1e-6 * a.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn a_multiplicative_form_falls_back_to_the_search_on_non_positive_data() {
        let mut y = rising(200);
        y[50] = 0.0;
        let form = EtsForm {
            multiplicative_error: true,
            trend: false,
            damped: false,
        };
        let (point, chosen) = non_seasonal(&y, 6, Some(form)).expect("the search fits");
        assert_eq!(point.len(), 6);
        assert!(chosen.is_some_and(|f| !f.multiplicative_error));
    }

    #[test]
    fn forms_print_as_in_the_literature() {
        let f = |m, t, d| EtsForm {
            multiplicative_error: m,
            trend: t,
            damped: d,
        };
        assert_eq!(f(false, false, false).to_string(), "ANN");
        assert_eq!(f(false, true, true).to_string(), "AAdN");
        assert_eq!(f(true, true, false).to_string(), "MAN");
    }
}
