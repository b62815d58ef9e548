//! MSTL decomposition on the detected periods with an AutoETS trend (augurs).

use augurs::mstl::MSTLModel;
use augurs::{Fit, Predict};

use super::FitInput;
use super::ets::{EtsForm, TrendEts};
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

/// The data with outliers clipped, on a rolling window an eighth of the shortest period.
fn clipped(values: &[f64], periods: &[usize]) -> Vec<f64> {
    let window = (periods.first().copied().unwrap_or(24) / 8).clamp(3, 25) | 1;
    clip_outliers(values, window, 5.0)
}

/// The detected periods MSTL can fit: those with two full cycles in the data.
fn fitting_periods(input: &FitInput<'_>) -> Vec<usize> {
    let n = input.values.len();
    input
        .periods
        .iter()
        .copied()
        .filter(|p| *p >= 2 && n >= 2 * p)
        .collect()
}

/// Whether [`Variant::Clipped`] would fit exactly the data [`Variant::Raw`] fits (no outlier
/// to clip, the usual case): then its forecast is the raw one, and need not be fitted again.
pub(crate) fn clipping_changes_nothing(input: &FitInput<'_>) -> bool {
    let periods = fitting_periods(input);
    !periods.is_empty() && clipped(input.values, &periods) == input.values
}

/// MSTL point forecast, and the form of its ETS trend (fitted in `form` when known, searched
/// otherwise); fails when no detected period has two full cycles in the data.
pub(crate) fn forecast(
    input: &FitInput<'_>,
    variant: Variant,
    horizon: usize,
    form: Option<EtsForm>,
) -> Result<(Vec<f64>, Option<EtsForm>), ForecastError> {
    let name = match variant {
        Variant::Raw => "mstl",
        Variant::Clipped => "mstl-clip",
        Variant::Log1p => "mstl-log1p",
    };
    let periods = fitting_periods(input);
    if periods.is_empty() {
        return Err(ForecastError::model(
            name,
            "no detected period with two full cycles",
        ));
    }
    let data = match variant {
        Variant::Raw => input.values.to_vec(),
        Variant::Clipped => clipped(input.values, &periods),
        Variant::Log1p => log1p(input.values)
            .ok_or_else(|| ForecastError::model(name, "values <= -1 have no log1p"))?,
    };
    let trend = TrendEts::new(form);
    let model = MSTLModel::new(periods, trend.clone());
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
    Ok((point, trend.chosen()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(values: &'a [f64], periods: &'a [usize]) -> FitInput<'a> {
        FitInput {
            values,
            start: 0,
            step: 3600,
            periods,
            season: 24,
            events: &[],
            regressors: &[],
            optimizer: None,
            prophet_max_points: 1000,
            form: None,
        }
    }

    #[test]
    fn clipping_is_known_to_change_nothing_only_without_outliers() {
        // A daily cycle with noise (on a smooth curve most rolling medians are exact, so the
        // robust spread is zero and nothing is ever clipped).
        let smooth: Vec<f64> = (0..24 * 7)
            .map(|i| {
                100.0
                    + 20.0 * (i as f64 / 24.0 * std::f64::consts::TAU).sin()
                    + ((i * 37) % 11) as f64 * 3.0
            })
            .collect();
        assert!(clipping_changes_nothing(&input(&smooth, &[24])));
        let mut spiky = smooth.clone();
        spiky[100] = 10_000.0;
        assert!(!clipping_changes_nothing(&input(&spiky, &[24])));
        // No period with two cycles: MSTL cannot run, so nothing is shared.
        assert!(!clipping_changes_nothing(&input(&smooth[..30], &[24])));
        // Where nothing changes, the two variants forecast the same.
        let (raw, clip) = (
            forecast(&input(&smooth, &[24]), Variant::Raw, 24, None).expect("raw"),
            forecast(&input(&smooth, &[24]), Variant::Clipped, 24, None).expect("clipped"),
        );
        assert_eq!(raw, clip);
    }

    #[test]
    fn a_refit_in_the_searched_trend_form_keeps_it_and_the_forecast() {
        let weekly: Vec<f64> = (0..24 * 14)
            .map(|i| {
                200.0
                    + 0.3 * i as f64
                    + 40.0 * (i as f64 / 24.0 * std::f64::consts::TAU).sin()
                    + ((i * 37) % 13) as f64 * 2.0
            })
            .collect();
        let input = input(&weekly, &[24]);
        let (searched, form) = forecast(&input, Variant::Raw, 24, None).expect("search");
        let form = form.expect("the trend's form is known");
        let (refitted, again) = forecast(&input, Variant::Raw, 24, Some(form)).expect("refit");
        assert_eq!(again, Some(form));
        for (a, b) in searched.iter().zip(&refitted) {
            assert!((a - b).abs() < 1e-6 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}
