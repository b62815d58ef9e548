//! Prediction intervals calibrated from backtest residuals of the chosen model.

use crate::metrics::quantile;

/// Fewer backtest residuals than this and the band comes from seasonal-naive errors instead.
const MIN_RESIDUALS: usize = 12;

/// Lower and upper bounds at central `level` around `point`.
///
/// The offsets are the `(1 - level) / 2` and `(1 + level) / 2` quantiles of `residuals`
/// (actual - forecast from backtest folds), so the band is as wide as the model's own recent
/// misses, asymmetric where they were. With too few residuals it uses the errors of a seasonal
/// naive forecast over the last training cycles (`values`, `season`). Bounds never exclude the
/// point and never go below zero for series that never did.
pub(crate) fn band(
    point: &[f64],
    residuals: &[f64],
    values: &[f64],
    season: usize,
    level: f64,
) -> (Vec<f64>, Vec<f64>) {
    let fallback;
    let errors = if residuals.iter().filter(|r| r.is_finite()).count() >= MIN_RESIDUALS {
        residuals
    } else {
        fallback = naive_errors(values, season);
        &fallback
    };
    let lo = quantile(errors, (1.0 - level) / 2.0).min(0.0);
    let hi = quantile(errors, (1.0 + level) / 2.0).max(0.0);
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 0.0)
    };
    let non_negative = values.iter().all(|v| *v >= 0.0);
    let lower = point
        .iter()
        .map(|p| {
            let l = p + lo;
            if non_negative { l.max(0.0) } else { l }
        })
        .collect();
    let upper = point.iter().map(|p| p + hi).collect();
    (lower, upper)
}

/// Errors y[t] - y[t - season] over the last (up to) ten seasons.
fn naive_errors(values: &[f64], season: usize) -> Vec<f64> {
    let season = season.max(1);
    let n = values.len();
    let from = n.saturating_sub(10 * season).max(season);
    (from..n).map(|t| values[t] - values[t - season]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_uses_residual_quantiles() {
        let residuals: Vec<f64> = (0..=100).map(|i| i as f64 - 50.0).collect();
        let (lo, hi) = band(&[100.0], &residuals, &[1.0; 10], 1, 0.8);
        assert!((lo[0] - 60.0).abs() < 1e-9, "{lo:?}");
        assert!((hi[0] - 140.0).abs() < 1e-9, "{hi:?}");
    }

    #[test]
    fn few_residuals_fall_back_to_naive_errors_and_respect_zero() {
        let values: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 0.0 } else { 4.0 })
            .collect();
        let (lo, hi) = band(&[1.0], &[0.5], &values, 1, 0.8);
        assert_eq!(lo[0], 0.0);
        assert!(hi[0] > 1.0);
    }

    #[test]
    fn higher_level_is_never_narrower() {
        let residuals: Vec<f64> = (0..50).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
        let (l8, h8) = band(&[0.0], &residuals, &[-1.0, 1.0], 1, 0.8);
        let (l9, h9) = band(&[0.0], &residuals, &[-1.0, 1.0], 1, 0.95);
        assert!(l9[0] <= l8[0] && h9[0] >= h8[0]);
    }
}
