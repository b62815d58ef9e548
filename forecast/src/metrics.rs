//! Forecast error measures: MASE (seasonal-naive scale), sMAPE, pinball loss, coverage.

/// Mean absolute scaled error of `predicted` against `actual`, scaled by the in-sample
/// mean absolute error of the seasonal naive forecast (lag `season`) on `train`.
///
/// Returns `NaN` when the scale cannot be computed (training shorter than a season) and
/// `0` / `inf` on a perfectly constant training part.
pub fn mase(train: &[f64], actual: &[f64], predicted: &[f64], season: usize) -> f64 {
    let scale = naive_scale(train, season);
    let mae = mean_abs_error(actual, predicted);
    if scale > 0.0 {
        mae / scale
    } else if mae == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Mean |y[t] - y[t - season]| over the training part (the MASE denominator).
pub fn naive_scale(train: &[f64], season: usize) -> f64 {
    let season = season.max(1);
    if train.len() <= season {
        return f64::NAN;
    }
    let diffs = train[season..]
        .iter()
        .zip(train)
        .map(|(a, b)| (a - b).abs())
        .filter(|d| d.is_finite());
    mean(diffs)
}

/// Symmetric MAPE in percent (0..200); terms with both values zero count as zero.
pub fn smape(actual: &[f64], predicted: &[f64]) -> f64 {
    let terms = actual.iter().zip(predicted).map(|(a, p)| {
        let denom = a.abs() + p.abs();
        if denom == 0.0 {
            0.0
        } else {
            200.0 * (a - p).abs() / denom
        }
    });
    mean(terms.filter(|t| t.is_finite()))
}

/// Mean pinball (quantile) loss of `predicted` as the `q` quantile.
pub fn pinball(actual: &[f64], predicted: &[f64], q: f64) -> f64 {
    mean(actual.iter().zip(predicted).map(|(a, p)| {
        let d = a - p;
        if d >= 0.0 { q * d } else { (q - 1.0) * d }
    }))
}

/// Fraction of `actual` inside `[lower, upper]`.
pub fn coverage(actual: &[f64], lower: &[f64], upper: &[f64]) -> f64 {
    let inside = actual
        .iter()
        .zip(lower.iter().zip(upper))
        .filter(|(a, (l, u))| **l <= **a && **a <= **u)
        .count();
    inside as f64 / actual.len().max(1) as f64
}

/// Mean absolute error over pairs where both are finite.
pub fn mean_abs_error(actual: &[f64], predicted: &[f64]) -> f64 {
    mean(
        actual
            .iter()
            .zip(predicted)
            .map(|(a, p)| (a - p).abs())
            .filter(|d| d.is_finite()),
    )
}

/// Mean of an iterator; `NaN` when empty.
pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

/// Linear-interpolated quantile `q` in [0, 1] of finite values; `NaN` when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Median of finite values; `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mase_is_one_for_the_seasonal_naive_scale() {
        let train = [1.0, 2.0, 1.0, 2.0, 1.0, 3.0];
        // scale with season 2: |1-1|,|2-2|,|1-1|,|3-2| -> 0.25
        assert!((naive_scale(&train, 2) - 0.25).abs() < 1e-12);
        assert!((mase(&train, &[1.0, 2.0], &[1.25, 2.25], 2) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn mase_on_constant_training() {
        assert_eq!(mase(&[1.0; 5], &[1.0], &[1.0], 1), 0.0);
        assert!(mase(&[1.0; 5], &[1.0], &[2.0], 1).is_infinite());
    }

    #[test]
    fn smape_bounds() {
        assert_eq!(smape(&[1.0, 0.0], &[1.0, 0.0]), 0.0);
        assert!((smape(&[1.0], &[0.0]) - 200.0).abs() < 1e-12);
    }

    #[test]
    fn pinball_penalises_under_prediction_at_high_q() {
        let under = pinball(&[10.0], &[8.0], 0.9);
        let over = pinball(&[10.0], &[12.0], 0.9);
        assert!(under > over);
    }

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(quantile(&[0.0, 10.0], 0.25), 2.5);
        assert!(quantile(&[], 0.5).is_nan());
        assert_eq!(coverage(&[1.0, 5.0], &[0.0, 0.0], &[2.0, 2.0]), 0.5);
    }
}
