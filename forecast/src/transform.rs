//! Value transforms used by model variants: outlier clipping and log1p.

use crate::metrics::median;

/// Clips points further than `k` robust standard deviations (1.4826 * MAD of the residuals)
/// from a rolling median of `window` points (made odd, at least 3).
pub fn clip_outliers(values: &[f64], window: usize, k: f64) -> Vec<f64> {
    let n = values.len();
    let half = window.max(3) / 2;
    let rolling: Vec<f64> = (0..n)
        .map(|i| median(&values[i.saturating_sub(half)..(i + half + 1).min(n)]))
        .collect();
    let residuals: Vec<f64> = values.iter().zip(&rolling).map(|(v, m)| v - m).collect();
    let centre = median(&residuals);
    let deviations: Vec<f64> = residuals.iter().map(|r| (r - centre).abs()).collect();
    let spread = k * 1.4826 * median(&deviations);
    if spread.is_nan() || spread <= 0.0 {
        return values.to_vec();
    }
    values
        .iter()
        .zip(&rolling)
        .map(|(v, m)| v.clamp(m + centre - spread, m + centre + spread))
        .collect()
}

/// `ln(1 + x)` of every value; `None` when some value is <= -1.
pub fn log1p(values: &[f64]) -> Option<Vec<f64>> {
    values
        .iter()
        .map(|v| (*v > -1.0).then(|| v.ln_1p()))
        .collect()
}

/// Inverse of [`log1p`].
pub fn expm1(values: &mut [f64]) {
    for v in values {
        *v = v.exp_m1();
    }
}

/// Clamps a forecast to the training range widened by `margin` times that range; never below
/// zero when the training data never was.
pub fn clamp_to_training(point: &mut [f64], train: &[f64], margin: f64) {
    let (lo, hi) = train
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    if !(lo.is_finite() && hi.is_finite()) {
        return;
    }
    let pad = (hi - lo) * margin;
    let floor = if lo >= 0.0 {
        (lo - pad).max(0.0)
    } else {
        lo - pad
    };
    for p in point {
        *p = if p.is_finite() {
            p.clamp(floor, hi + pad)
        } else {
            (lo + hi) / 2.0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_removes_a_spike_and_keeps_the_rest() {
        let mut v: Vec<f64> = (0..50).map(|i| (i % 5) as f64).collect();
        v[20] = 1000.0;
        let c = clip_outliers(&v, 7, 5.0);
        assert!(c[20] < 20.0, "{}", c[20]);
        assert_eq!(c[21], v[21]);
    }

    #[test]
    fn log1p_round_trips_and_rejects_below_minus_one() {
        let mut l = log1p(&[0.0, 9.0]).expect("valid");
        expm1(&mut l);
        assert!((l[1] - 9.0).abs() < 1e-9);
        assert!(log1p(&[-2.0]).is_none());
    }

    #[test]
    fn clamp_keeps_forecasts_near_the_training_range() {
        let mut p = vec![-5.0, 5.0, 500.0, f64::NAN];
        clamp_to_training(&mut p, &[0.0, 10.0], 0.1);
        assert_eq!(p, vec![0.0, 5.0, 11.0, 5.0]);
    }
}
