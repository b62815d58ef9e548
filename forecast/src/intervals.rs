//! Prediction intervals from backtest residuals, widened by a cross-conformal check.
//!
//! Quantiles of a model's backtest errors alone under-cover (about 67-73% for an 80% band
//! on M4 hourly): the errors of the next day are larger than those of the days the model
//! was chosen on. So each fold is checked against the band built from the other folds, and
//! the band is scaled by how far it had to stretch to cover `level` of those held-out
//! errors. Nothing in it is tuned; the scale is measured per series.

use crate::metrics::quantile;

/// Fewer backtest residuals than this and the band comes from seasonal-naive errors instead.
const MIN_RESIDUALS: usize = 12;

/// The band is never narrowed by the check (a lucky fold is no evidence), and never
/// stretched past this: three folds are a small sample, and one wild fold must not make the
/// band useless.
const MAX_SCALE: f64 = 3.0;

/// The level the scale is measured at and applied to every level from: one factor for all
/// levels keeps the quantiles in order (the q0.6 the shadow is sized for never passes the
/// q0.9 bound), and at the 80% band the three folds' errors say something about its edge;
/// a 20% band's edge is mostly noise around zero.
pub const CHECK_LEVEL: f64 = 0.8;

/// Lower and upper bounds at central `level` around `point`.
///
/// The offsets are the `(1 - level) / 2` and `(1 + level) / 2` quantiles of the pooled
/// `residuals` (actual - forecast, one list per backtest fold), so the band is as wide as the
/// model's own recent misses and asymmetric where they were, times [`check`]'s scale at
/// [`CHECK_LEVEL`]. With
/// too few residuals it uses the errors of a seasonal naive forecast over the last training
/// cycles (`values`, `season`). Bounds never exclude the point and never go below zero for
/// series that never did.
///
/// `whole_cycles` says the folds each span the series' natural cycle (a day of sub-daily
/// data): only then are they alike enough to check against each other. Folds shorter than the
/// cycle sit at different phases of it (a series with under two days of history, whose season
/// is a detected period), so their errors differ by phase, not by how far the model can be
/// trusted, and the check would widen the band up to 3x for it.
pub(crate) fn band(
    point: &[f64],
    residuals: &[Vec<f64>],
    values: &[f64],
    season: usize,
    level: f64,
    whole_cycles: bool,
) -> (Vec<f64>, Vec<f64>) {
    let pooled: Vec<f64> = finite(residuals.iter().flatten());
    let (errors, scale) = if pooled.len() >= MIN_RESIDUALS {
        let scale = if whole_cycles {
            check(residuals, CHECK_LEVEL).scale
        } else {
            1.0
        };
        (pooled, scale)
    } else {
        (naive_errors(values, season), 1.0)
    };
    let (lo, hi) = offsets(&errors, level);
    let (lo, hi) = (lo * scale, hi * scale);
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

/// What the cross-fold check of a band found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalCheck {
    /// Share of each fold's errors inside the unscaled band built from the other folds'
    /// errors, over all folds (`NaN` with fewer than two folds).
    pub held_out_coverage: f64,
    /// Factor the band is widened by: the `level` quantile of how far each held-out error
    /// reached relative to that band, within `[1, 3]` (1 with fewer than two folds).
    pub scale: f64,
}

/// Checks the band at `level` fold by fold: each fold's errors against the band the other
/// folds' errors give.
pub fn check(residuals: &[Vec<f64>], level: f64) -> IntervalCheck {
    let folds: Vec<Vec<f64>> = residuals
        .iter()
        .map(|r| finite(r.iter()))
        .filter(|r| !r.is_empty())
        .collect();
    if folds.len() < 2 {
        return IntervalCheck {
            held_out_coverage: f64::NAN,
            scale: 1.0,
        };
    }
    let mut reach = Vec::new();
    let mut inside = 0usize;
    for (f, fold) in folds.iter().enumerate() {
        let rest: Vec<f64> = folds
            .iter()
            .enumerate()
            .filter(|(g, _)| *g != f)
            .flat_map(|(_, r)| r.iter().copied())
            .collect();
        let (lo, hi) = offsets(&rest, level);
        for r in fold {
            // How many times the band's own half-width this error needed (1 = on the edge).
            let needed = if *r >= 0.0 {
                r / hi.max(1e-12)
            } else {
                r / lo.min(-1e-12)
            };
            inside += usize::from(needed <= 1.0);
            reach.push(needed);
        }
    }
    let scale = quantile(&reach, level);
    IntervalCheck {
        held_out_coverage: inside as f64 / reach.len() as f64,
        scale: if scale.is_finite() {
            scale.clamp(1.0, MAX_SCALE)
        } else {
            MAX_SCALE
        },
    }
}

/// The `(1 - level) / 2` and `(1 + level) / 2` quantiles of `errors`, never excluding 0.
fn offsets(errors: &[f64], level: f64) -> (f64, f64) {
    let lo = quantile(errors, (1.0 - level) / 2.0).min(0.0);
    let hi = quantile(errors, (1.0 + level) / 2.0).max(0.0);
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 0.0)
    }
}

fn finite<'a>(values: impl Iterator<Item = &'a f64>) -> Vec<f64> {
    values.copied().filter(|v| v.is_finite()).collect()
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

    fn spread(n: usize, width: f64) -> Vec<f64> {
        (0..=n)
            .map(|i| (i as f64 / n as f64 - 0.5) * 2.0 * width)
            .collect()
    }

    #[test]
    fn band_uses_residual_quantiles_when_the_folds_agree() {
        let residuals: Vec<f64> = (0..=100).map(|i| i as f64 - 50.0).collect();
        // Three folds with the same errors: no fold surprises the others, no widening.
        let folds = vec![residuals.clone(), residuals.clone(), residuals];
        assert_eq!(check(&folds, 0.8).scale, 1.0);
        let (lo, hi) = band(&[100.0], &folds, &[1.0; 10], 1, 0.8, true);
        assert!((lo[0] - 60.0).abs() < 1e-9, "{lo:?}");
        assert!((hi[0] - 140.0).abs() < 1e-9, "{hi:?}");
    }

    #[test]
    fn a_fold_that_missed_by_more_widens_the_band() {
        // The newest fold's errors are three times as wide as the older two: the band from
        // the older two (±8) holds a quarter of them.
        let folds = vec![spread(50, 10.0), spread(50, 10.0), spread(50, 30.0)];
        let c = check(&folds, 0.8);
        assert!(c.scale > 1.0 && c.scale <= MAX_SCALE, "{c:?}");
        assert!(c.held_out_coverage < 0.8, "{c:?}");
        let (lo, hi) = band(&[0.0], &folds, &[-1.0, 1.0], 1, 0.8, true);
        let pooled: Vec<f64> = folds.concat();
        let (plo, phi) = offsets(&pooled, 0.8);
        assert!(lo[0] < plo && hi[0] > phi, "{lo:?} {hi:?} vs {plo} {phi}");
        // Folds shorter than the natural cycle are not checked against each other.
        let (lo, hi) = band(&[0.0], &folds, &[-1.0, 1.0], 1, 0.8, false);
        assert_eq!((lo[0], hi[0]), (plo, phi));
    }

    #[test]
    fn the_scale_is_bounded_and_one_fold_means_no_check() {
        let wild = vec![vec![0.0; 20], vec![0.0; 20], spread(20, 1e6)];
        assert_eq!(check(&wild, 0.8).scale, MAX_SCALE);
        let one = vec![spread(20, 5.0)];
        let c = check(&one, 0.8);
        assert_eq!(c.scale, 1.0);
        assert!(c.held_out_coverage.is_nan());
    }

    #[test]
    fn few_residuals_fall_back_to_naive_errors_and_respect_zero() {
        let values: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 0.0 } else { 4.0 })
            .collect();
        let (lo, hi) = band(&[1.0], &[vec![0.5]], &values, 1, 0.8, true);
        assert_eq!(lo[0], 0.0);
        assert!(hi[0] > 1.0);
    }

    #[test]
    fn higher_level_is_never_narrower() {
        let fold = |k: usize| -> Vec<f64> {
            (0..50)
                .map(|i| ((i * 37 + k * 5) % 11) as f64 - 5.0)
                .collect()
        };
        let folds = vec![fold(0), fold(1), fold(2)];
        let (l8, h8) = band(&[0.0], &folds, &[-1.0, 1.0], 1, 0.8, true);
        let (l9, h9) = band(&[0.0], &folds, &[-1.0, 1.0], 1, 0.95, true);
        assert!(l9[0] <= l8[0] && h9[0] >= h8[0]);
    }
}
