//! Robust combinations of several forecasts.

use crate::metrics::median;

/// Pointwise median of equally long forecasts; empty when given none.
pub(crate) fn pointwise_median(forecasts: &[&[f64]]) -> Vec<f64> {
    let len = forecasts.iter().map(|f| f.len()).min().unwrap_or(0);
    (0..len)
        .map(|i| median(&forecasts.iter().map(|f| f[i]).collect::<Vec<_>>()))
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
}
