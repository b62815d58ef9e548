//! Puts raw observations on a regular grid: infers the step, interpolates short gaps, reports long ones.

use std::path::Path;

use crate::csv::{Observations, read_observations};
use crate::{ForecastError, Series};

/// A run of grid points left missing: timestamps of the first and last missing point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// First missing grid timestamp.
    pub start: i64,
    /// Last missing grid timestamp (inclusive).
    pub end: i64,
}

/// How to build the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridOptions {
    /// Grid step in seconds; `None` infers it as the median spacing.
    pub step: Option<i64>,
    /// Longest run of missing grid points filled by linear interpolation; longer runs stay `NaN`.
    pub max_gap_steps: usize,
}

impl Default for GridOptions {
    /// Inferred step, gaps up to 12 steps interpolated.
    fn default() -> Self {
        Self {
            step: None,
            max_gap_steps: 12,
        }
    }
}

/// A regular series plus the gaps it still has.
#[derive(Debug, Clone, PartialEq)]
pub struct Regularised {
    /// The series on its grid.
    pub series: Series,
    /// Missing ranges longer than the interpolation limit.
    pub gaps: Vec<Gap>,
}

/// Reads a CSV file and regularises it.
pub fn read_series(path: &Path, options: &GridOptions) -> Result<Regularised, ForecastError> {
    let observations = read_observations(path)?;
    regularise(&observations, options).map_err(|e| match e {
        ForecastError::Invalid(m) => ForecastError::Invalid(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// Median spacing between consecutive distinct timestamps; `None` with fewer than two.
pub fn infer_step(times: &[i64]) -> Option<i64> {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let mut diffs: Vec<i64> = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0)
        .collect();
    if diffs.is_empty() {
        return None;
    }
    let mid = diffs.len() / 2;
    let (_, median, _) = diffs.select_nth_unstable(mid);
    Some(*median)
}

/// Builds the regular series from observations in any order (duplicates are averaged).
pub fn regularise(
    observations: &Observations,
    options: &GridOptions,
) -> Result<Regularised, ForecastError> {
    let mut points: Vec<(i64, f64)> = observations
        .times
        .iter()
        .copied()
        .zip(observations.values.iter().copied())
        .filter(|(_, v)| v.is_finite())
        .collect();
    points.sort_by_key(|p| p.0);
    let points = merge_duplicates(points);
    let step = match options.step {
        Some(s) if s > 0 => s,
        Some(s) => return Err(ForecastError::Invalid(format!("grid step {s} must be > 0"))),
        None => infer_step(&points.iter().map(|p| p.0).collect::<Vec<_>>()).ok_or(
            ForecastError::TooShort {
                got: points.len(),
                need: 2,
            },
        )?,
    };
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Err(ForecastError::TooShort { got: 0, need: 2 });
    };
    let start = first.0;
    let n = ((last.0 - start) / step) as usize + 1;
    let max_span = (options.max_gap_steps as i64 + 1) * step;
    let mut values = Vec::with_capacity(n);
    let mut right = 0;
    for i in 0..n {
        let t = start + i as i64 * step;
        while right < points.len() && points[right].0 < t {
            right += 1;
        }
        let value = match points.get(right) {
            Some(&(tr, vr)) if tr == t => vr,
            Some(&(tr, vr)) if right > 0 => {
                let (tl, vl) = points[right - 1];
                if tr - tl <= max_span {
                    vl + (vr - vl) * (t - tl) as f64 / (tr - tl) as f64
                } else {
                    f64::NAN
                }
            }
            _ => f64::NAN,
        };
        values.push(value);
    }
    let series = Series::new(start, step, values);
    let gaps = find_gaps(&series);
    Ok(Regularised { series, gaps })
}

fn merge_duplicates(points: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64, usize)> = Vec::with_capacity(points.len());
    for (t, v) in points {
        match out.last_mut() {
            Some(last) if last.0 == t => {
                last.1 += v;
                last.2 += 1;
            }
            _ => out.push((t, v, 1)),
        }
    }
    out.into_iter().map(|(t, v, c)| (t, v / c as f64)).collect()
}

/// Runs of `NaN` in a series.
pub fn find_gaps(series: &Series) -> Vec<Gap> {
    let mut gaps = Vec::new();
    let mut open: Option<usize> = None;
    for (i, v) in series.values.iter().enumerate() {
        match (v.is_nan(), open) {
            (true, None) => open = Some(i),
            (false, Some(s)) => {
                gaps.push(Gap {
                    start: series.time_at(s),
                    end: series.time_at(i - 1),
                });
                open = None;
            }
            _ => {}
        }
    }
    if let Some(s) = open {
        gaps.push(Gap {
            start: series.time_at(s),
            end: series.time_at(series.len() - 1),
        });
    }
    gaps
}

/// Fills every `NaN` by linear interpolation (edges take the nearest value) so models can fit.
pub fn fill_missing(values: &[f64]) -> Vec<f64> {
    let mut out = values.to_vec();
    let known: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_finite()).collect();
    let (Some(&first), Some(&last)) = (known.first(), known.last()) else {
        return vec![0.0; out.len()];
    };
    for v in &mut out[..first] {
        *v = values[first];
    }
    for v in &mut out[last + 1..] {
        *v = values[last];
    }
    for pair in known.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        for (offset, v) in out[a + 1..b].iter_mut().enumerate() {
            let i = a + 1 + offset;
            *v = values[a] + (values[b] - values[a]) * (i - a) as f64 / (b - a) as f64;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(times: &[i64], values: &[f64]) -> Observations {
        Observations {
            times: times.to_vec(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn infers_median_step_despite_one_gap() {
        assert_eq!(infer_step(&[0, 300, 600, 900, 3000, 3300]), Some(300));
        assert_eq!(infer_step(&[5]), None);
    }

    #[test]
    fn interpolates_short_gaps_and_reports_long_ones() {
        let o = obs(&[0, 10, 20, 40, 50, 100], &[0.0, 1.0, 2.0, 4.0, 5.0, 10.0]);
        let options = GridOptions {
            step: None,
            max_gap_steps: 2,
        };
        let r = regularise(&o, &options).expect("regular");
        assert_eq!(r.series.step, 10);
        assert_eq!(r.series.len(), 11);
        assert!((r.series.values[3] - 3.0).abs() < 1e-12);
        assert!(r.series.values[6].is_nan());
        assert_eq!(r.gaps, vec![Gap { start: 60, end: 90 }]);
    }

    #[test]
    fn drifting_timestamps_are_interpolated_onto_the_grid() {
        // NAB-style minute drift: 0, 300, 660 (one minute late), 900.
        let o = obs(&[0, 300, 660, 900], &[0.0, 3.0, 6.6, 9.0]);
        let r = regularise(&o, &GridOptions::default()).expect("regular");
        assert_eq!(r.series.values.len(), 4);
        assert!((r.series.values[2] - 6.0).abs() < 1e-9);
    }

    #[test]
    fn nan_and_unsorted_input_and_duplicates() {
        let o = obs(&[20, 0, 10, 10], &[2.0, 0.0, f64::NAN, 1.0]);
        let r = regularise(&o, &GridOptions::default()).expect("regular");
        assert_eq!(r.series.values, vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn fill_missing_interpolates_and_extends_edges() {
        let v = fill_missing(&[f64::NAN, 1.0, f64::NAN, 3.0, f64::NAN]);
        assert_eq!(v, vec![1.0, 1.0, 2.0, 3.0, 3.0]);
    }

    #[test]
    fn too_few_points_is_an_error() {
        let o = obs(&[0], &[1.0]);
        assert!(regularise(&o, &GridOptions::default()).is_err());
    }
}
