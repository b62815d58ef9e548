//! Seasonal naive and median-of-periods forecasts.

use crate::ForecastError;
use crate::metrics::median;

/// Repeats the last `season` values.
pub(crate) fn seasonal_naive(
    values: &[f64],
    season: usize,
    horizon: usize,
) -> Result<Vec<f64>, ForecastError> {
    let season = season.max(1);
    if values.len() < season {
        return Err(ForecastError::model(
            "snaive",
            format!("{} points, season {season}", values.len()),
        ));
    }
    let last = &values[values.len() - season..];
    Ok((0..horizon).map(|i| last[i % season]).collect())
}

/// Pointwise median of the last `cycles` seasons.
pub(crate) fn median_of_periods(
    values: &[f64],
    season: usize,
    cycles: usize,
    horizon: usize,
) -> Result<Vec<f64>, ForecastError> {
    let season = season.max(1);
    let n = values.len();
    if n < season * cycles {
        return Err(ForecastError::model(
            "median",
            format!("{n} points, need {cycles} seasons of {season}"),
        ));
    }
    Ok((0..horizon)
        .map(|i| {
            let phase = i % season;
            let samples: Vec<f64> = (1..=cycles)
                .map(|c| values[n - c * season + phase])
                .collect();
            median(&samples)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonal_naive_repeats_the_last_season() {
        let f = seasonal_naive(&[1.0, 2.0, 3.0, 4.0], 2, 3).expect("fits");
        assert_eq!(f, vec![3.0, 4.0, 3.0]);
        assert!(seasonal_naive(&[1.0], 2, 1).is_err());
    }

    #[test]
    fn median_of_periods_ignores_one_odd_cycle() {
        let v = [1.0, 10.0, 1.0, 10.0, 100.0, 100.0];
        assert_eq!(
            median_of_periods(&v, 2, 3, 2).expect("fits"),
            vec![1.0, 10.0]
        );
    }
}
