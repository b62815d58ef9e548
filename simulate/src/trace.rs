//! The demand a replay serves: a trace on its grid, scaled to requests/s, readable at any instant.

use forecast::Series;
use forecast::grid::fill_missing;

use super::SimulateError;

/// A demand trace. `values[i]` is the request rate at `start + i * step`; between grid points
/// the rate moves linearly (a trace sample is read as the rate at its timestamp, so the rate
/// between two samples depends only on those two).
#[derive(Debug, Clone)]
pub struct DemandTrace {
    /// Scaled samples, `NaN` where the trace has a gap: what a forecaster may be shown.
    series: Series,
    /// The same with gaps interpolated: the demand the pools actually face.
    filled: Vec<f64>,
}

impl DemandTrace {
    /// A trace from a regular series, every value multiplied by `scale` (requests/s per unit).
    pub fn new(series: &Series, scale: f64) -> Result<Self, SimulateError> {
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(SimulateError::setting(
                "scale",
                format!("must be a positive number, got {scale}"),
            ));
        }
        if series.step <= 0 {
            return Err(SimulateError::Trace(format!(
                "grid step {} s must be positive",
                series.step
            )));
        }
        let finite = series.values.iter().filter(|v| v.is_finite()).count();
        if finite < 3 {
            return Err(SimulateError::Trace(format!(
                "{finite} usable points; a replay needs at least 3"
            )));
        }
        if let Some(v) = series.values.iter().find(|v| v.is_finite() && **v < 0.0) {
            return Err(SimulateError::Trace(format!(
                "negative demand {v}: a request rate cannot be below 0"
            )));
        }
        let values: Vec<f64> = series.values.iter().map(|v| v * scale).collect();
        let filled = fill_missing(&values);
        Ok(DemandTrace {
            series: Series::new(series.start, series.step, values),
            filled,
        })
    }

    /// Unix seconds of the first sample.
    pub fn start(&self) -> i64 {
        self.series.start
    }

    /// Unix seconds of the last sample: the replay ends there.
    pub fn end(&self) -> i64 {
        self.series.time_at(self.series.len().saturating_sub(1))
    }

    /// Seconds between samples.
    pub fn step(&self) -> i64 {
        self.series.step
    }

    /// The scaled series (gaps as `NaN`).
    pub fn series(&self) -> &Series {
        &self.series
    }

    /// Requests/s at unix second `t` (clamped to the trace's span).
    pub fn rate_at(&self, t: i64) -> f64 {
        let offset = (t - self.series.start).max(0);
        let i = (offset / self.series.step) as usize;
        let Some(&left) = self.filled.get(i) else {
            return self.filled.last().copied().unwrap_or(0.0);
        };
        let right = self.filled.get(i + 1).copied().unwrap_or(left);
        let frac = (offset % self.series.step) as f64 / self.series.step as f64;
        left + (right - left) * frac
    }

    /// Number of samples whose timestamp is at or before `now`: all a forecaster may see then.
    pub fn known_at(&self, now: i64) -> usize {
        if now < self.series.start {
            return 0;
        }
        (((now - self.series.start) / self.series.step) as usize + 1).min(self.series.len())
    }

    /// The samples known at `now`, as a series of their own.
    pub fn history_at(&self, now: i64) -> Series {
        self.series.head(self.known_at(now))
    }

    /// The demand samples (gaps filled) with timestamps in `[from, to)`.
    pub fn samples_between(&self, from: i64, to: i64) -> impl Iterator<Item = f64> + '_ {
        (0..self.filled.len())
            .filter(move |&i| {
                let t = self.series.time_at(i);
                t >= from && t < to
            })
            .map(|i| self.filled[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace() -> DemandTrace {
        DemandTrace::new(&Series::new(1000, 300, vec![1.0, 4.0, f64::NAN, 10.0]), 2.0)
            .expect("valid")
    }

    #[test]
    fn rate_is_linear_between_samples_and_scaled() {
        let t = trace();
        assert_eq!(t.rate_at(1000), 2.0);
        assert_eq!(t.rate_at(1150), 5.0);
        assert_eq!(t.rate_at(1300), 8.0);
        // The gap is interpolated for the world: (8 + 20) / 2 at 1600.
        assert_eq!(t.rate_at(1600), 14.0);
        assert_eq!(t.rate_at(1900), 20.0);
        assert_eq!(t.rate_at(5000), 20.0);
    }

    #[test]
    fn history_holds_only_samples_at_or_before_now() {
        let t = trace();
        assert_eq!(t.known_at(999), 0);
        assert_eq!(t.known_at(1000), 1);
        assert_eq!(t.known_at(1299), 1);
        assert_eq!(t.known_at(1300), 2);
        let h = t.history_at(1650);
        assert_eq!(h.len(), 3);
        assert!(h.values[2].is_nan(), "the forecaster sees the gap as a gap");
        assert_eq!(t.history_at(99_999).len(), 4);
    }

    #[test]
    fn rejects_what_cannot_be_a_request_rate() {
        let s = Series::new(0, 60, vec![1.0, 2.0, 3.0]);
        assert!(DemandTrace::new(&s, 0.0).is_err());
        assert!(DemandTrace::new(&Series::new(0, 60, vec![1.0, -2.0, 3.0]), 1.0).is_err());
        assert!(DemandTrace::new(&Series::new(0, 60, vec![1.0, f64::NAN]), 1.0).is_err());
    }
}
