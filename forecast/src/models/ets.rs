//! Non-seasonal AutoETS (augurs), for series without a usable cycle.

use augurs::ets::AutoETS;
use augurs::{Fit, Predict};

use crate::ForecastError;

/// Non-seasonal AutoETS point forecast; seasonal AutoETS at long periods is slow and picks a
/// non-seasonal model anyway (FORECAST-NOTES).
pub(crate) fn non_seasonal(values: &[f64], horizon: usize) -> Result<Vec<f64>, ForecastError> {
    let fitted = AutoETS::non_seasonal()
        .fit(values)
        .map_err(|e| ForecastError::model("ets", e))?;
    let forecast = fitted
        .predict(horizon, None)
        .map_err(|e| ForecastError::model("ets", e))?;
    Ok(forecast.point)
}
