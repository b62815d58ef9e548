//! Social volume and mean sentiment resampled onto a grid, carried forward where unknown.

use crate::grid::Grid;
use crate::grid::coverage::add_coverage;
use crate::sentiment::SentimentBucket;

/// Social signals on a grid, one value per grid point.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SentimentSeries {
    /// Posts per grid interval.
    pub volume: Vec<f64>,
    /// Volume-weighted mean VADER compound score, -1..=1.
    pub mean_compound: Vec<f64>,
}

/// Resamples `buckets` (any interval size, in any order, gaps meaning "no posts") onto `grid`.
///
/// The data is known from the first bucket's start to the last bucket's end. Inside that span a
/// bucket's volume is spread over the grid intervals it overlaps, in proportion. Outside it,
/// volume is carried: forward at the rate of the last `step` seconds of data (the future is
/// assumed to look like the latest known interval), backward at the rate of the first. An
/// interval straddling the edge gets its known part plus the carried rate for the rest. The mean
/// compound of an interval without scored posts is carried from the interval before it (for the
/// leading ones, from the first scored bucket; 0, neutral, when nothing was scored). Without any
/// bucket both series are all zeros.
pub fn sentiment_regressors(buckets: &[SentimentBucket], grid: &Grid) -> SentimentSeries {
    let mut buckets: Vec<SentimentBucket> = buckets
        .iter()
        .copied()
        .filter(|b| b.end > b.start)
        .collect();
    buckets.sort_by_key(|b| b.start);
    let (Some(span_start), Some(span_end)) = (
        buckets.iter().map(|b| b.start).min(),
        buckets.iter().map(|b| b.end).max(),
    ) else {
        return SentimentSeries {
            volume: vec![0.0; grid.len],
            mean_compound: vec![0.0; grid.len],
        };
    };
    let step = grid.step;
    let mut volume = vec![0.0; grid.len];
    let mut compound_sum = vec![0.0; grid.len];
    let mut compound_weight = vec![0.0; grid.len];
    for b in &buckets {
        // Volume per grid step while the bucket lasts; add_coverage scales by overlap / step.
        let rate = b.volume as f64 * step as f64 / (b.end - b.start) as f64;
        add_coverage(grid, b.start, b.end, rate, &mut volume);
        if let Some(mean) = b.mean_compound {
            add_coverage(grid, b.start, b.end, rate * mean, &mut compound_sum);
            add_coverage(grid, b.start, b.end, rate, &mut compound_weight);
        }
    }
    let head_rate = volume_in(&buckets, span_start, span_start.saturating_add(step));
    let tail_rate = volume_in(&buckets, span_end.saturating_sub(step), span_end);
    let mut known = vec![0.0; grid.len];
    add_coverage(grid, span_start, span_end, 1.0, &mut known);
    for (i, v) in volume.iter_mut().enumerate() {
        let missing = (1.0 - known[i]).max(0.0);
        if missing > 1e-12 {
            let carried = if grid.time_at(i) < span_start {
                head_rate
            } else {
                tail_rate
            };
            *v += missing * carried;
        }
    }

    let first_mean = buckets.iter().find_map(|b| b.mean_compound).unwrap_or(0.0);
    let mut last = first_mean;
    let mean_compound = compound_sum
        .iter()
        .zip(&compound_weight)
        .map(|(sum, weight)| {
            if *weight > 0.0 {
                last = (sum / weight).clamp(-1.0, 1.0);
            }
            last
        })
        .collect();
    SentimentSeries {
        volume,
        mean_compound,
    }
}

/// Posts in `[from, to)`, counting each bucket in proportion to its overlap.
fn volume_in(buckets: &[SentimentBucket], from: i64, to: i64) -> f64 {
    buckets
        .iter()
        .map(|b| {
            let overlap = b.end.min(to) - b.start.max(from);
            if overlap <= 0 {
                0.0
            } else {
                b.volume as f64 * overlap as f64 / (b.end - b.start) as f64
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(start: i64, volume: u64, mean: Option<f64>) -> SentimentBucket {
        SentimentBucket {
            start,
            end: start + 60,
            volume,
            mean_compound: mean,
        }
    }

    #[test]
    fn resamples_and_carries_forward() {
        let buckets = [
            bucket(60, 10, Some(0.5)),
            bucket(120, 20, Some(-0.5)),
            // 180..240 had no posts
            bucket(240, 4, None),
        ];
        let Ok(grid) = Grid::new(0, 120, 5) else {
            panic!("grid")
        };
        let got = sentiment_regressors(&buckets, &grid);
        // [0,120): 10 posts in its known half, plus the other half carried back at the rate
        // of the first 120 s of data (30 posts) = 25. [120,240): 20. [240,360): 4 known, plus
        // half carried at the rate of the last 120 s (0 + 4 posts) = 6. Later: 4 each.
        assert_eq!(got.volume, vec![25.0, 20.0, 6.0, 4.0, 4.0]);
        assert_eq!(got.mean_compound, vec![0.5, -0.5, -0.5, -0.5, -0.5]);
    }

    #[test]
    fn volume_weighted_mean() {
        let buckets = [bucket(0, 30, Some(0.6)), bucket(60, 10, Some(-0.2))];
        let Ok(grid) = Grid::new(0, 120, 1) else {
            panic!("grid")
        };
        let got = sentiment_regressors(&buckets, &grid);
        assert!((got.mean_compound[0] - 0.4).abs() < 1e-12);
        assert_eq!(got.volume, vec![40.0]);
    }

    #[test]
    fn no_data_is_all_zero() {
        let Ok(grid) = Grid::new(0, 60, 3) else {
            panic!("grid")
        };
        let got = sentiment_regressors(&[], &grid);
        assert_eq!(got.volume, vec![0.0; 3]);
        assert_eq!(got.mean_compound, vec![0.0; 3]);
    }
}
