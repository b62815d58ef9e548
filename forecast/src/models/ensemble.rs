//! Combinations of several forecasts: a robust median and a weighted mean.

use crate::metrics::median;

/// Pointwise median of equally long forecasts; empty when given none.
pub(crate) fn pointwise_median(forecasts: &[&[f64]]) -> Vec<f64> {
    let len = forecasts.iter().map(|f| f.len()).min().unwrap_or(0);
    (0..len)
        .map(|i| median(&forecasts.iter().map(|f| f[i]).collect::<Vec<_>>()))
        .collect()
}

/// Pointwise mean of forecasts weighted by `weights` (renormalised over those given, so a
/// member left out because it failed does not shrink the forecast); empty when given none or
/// when no weight is positive.
pub(crate) fn weighted_mean(forecasts: &[&[f64]], weights: &[f64]) -> Vec<f64> {
    let len = forecasts.iter().map(|f| f.len()).min().unwrap_or(0);
    let total: f64 = weights
        .iter()
        .take(forecasts.len())
        .filter(|w| **w > 0.0)
        .sum();
    if !(total > 0.0) {
        return Vec::new();
    }
    (0..len)
        .map(|i| {
            forecasts
                .iter()
                .zip(weights)
                .filter(|(_, w)| **w > 0.0)
                .map(|(f, w)| f[i] * w)
                .sum::<f64>()
                / total
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_resists_one_wild_member() {
        let a = [1.0, 2.0];
        let b = [1.5, 2.5];
        let c = [100.0, -100.0];
        assert_eq!(pointwise_median(&[&a, &b, &c]), vec![1.5, 2.0]);
        assert!(pointwise_median(&[]).is_empty());
    }

    #[test]
    fn weighted_mean_renormalises_over_the_members_given() {
        let a = [0.0, 10.0];
        let b = [4.0, 2.0];
        assert_eq!(weighted_mean(&[&a, &b], &[3.0, 1.0]), vec![1.0, 8.0]);
        // One member: its forecast whatever its weight.
        assert_eq!(weighted_mean(&[&b], &[0.2]), vec![4.0, 2.0]);
        assert!(weighted_mean(&[], &[]).is_empty());
        assert!(weighted_mean(&[&a], &[0.0]).is_empty());
    }
}
