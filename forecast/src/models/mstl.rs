//! MSTL decomposition on the detected periods with an AutoETS trend (augurs).

use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::{Fit, Predict};

use super::FitInput;
use crate::ForecastError;
use crate::transform::{clip_outliers, expm1, log1p};

/// What the data goes through before MSTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// The data as is.
    Raw,
    /// Outliers clipped to a rolling median +- 5 robust sd.
    Clipped,
    /// `log1p` of the data (only when every value is > -1).
    Log1p,
}

/// MSTL point forecast; fails when no detected period has two full cycles in the data.
pub(crate) fn forecast(
    input: &FitInput<'_>,
    variant: Variant,
    horizon: usize,
) -> Result<Vec<f64>, ForecastError> {
    let name = match variant {
        Variant::Raw => "mstl",
        Variant::Clipped => "mstl-clip",
        Variant::Log1p => "mstl-log1p",
    };
    let n = input.values.len();
    let periods: Vec<usize> = input
        .periods
        .iter()
        .copied()
        .filter(|p| *p >= 2 && n >= 2 * p)
        .collect();
    if periods.is_empty() {
        return Err(ForecastError::model(
            name,
            "no detected period with two full cycles",
        ));
    }
    let data = match variant {
        Variant::Raw => input.values.to_vec(),
        Variant::Clipped => {
            let window = (periods[0] / 8).clamp(3, 25) | 1;
            clip_outliers(input.values, window, 5.0)
        }
        Variant::Log1p => log1p(input.values)
            .ok_or_else(|| ForecastError::model(name, "values <= -1 have no log1p"))?,
    };
    let model = MSTLModel::new(periods, AutoETS::non_seasonal().into_trend_model());
    let fitted = model
        .fit(&data)
        .map_err(|e| ForecastError::model(name, e))?;
    let mut point = fitted
        .predict(horizon, None)
        .map_err(|e| ForecastError::model(name, e))?
        .point;
    if variant == Variant::Log1p {
        expm1(&mut point);
    }
    if point.iter().any(|p| !p.is_finite()) {
        return Err(ForecastError::model(name, "non-finite forecast"));
    }
    Ok(point)
}
