//! Posts counted and scored into fixed intervals, one post at a time or in a batch.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::grid::GridError;
use crate::sentiment::posts::{Post, VolumePoint};
use crate::sentiment::vader::polarity_scores;

/// One interval of social activity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SentimentBucket {
    /// Interval start, unix seconds.
    pub start: i64,
    /// Interval end (exclusive), unix seconds.
    pub end: i64,
    /// Posts in the interval.
    pub volume: u64,
    /// Mean VADER compound score of the scored posts; `None` when none was scored (no posts, or
    /// only pre-counted volume).
    pub mean_compound: Option<f64>,
}

/// Running totals of one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Totals {
    volume: u64,
    scored: u64,
    compound_sum: f64,
}

/// Counts posts into intervals `[origin + k·step, origin + (k+1)·step)`, accepting them in any
/// order. Memory grows with the number of distinct intervals seen; [`Aggregator::drain_before`]
/// hands finished intervals over and frees them.
#[derive(Debug, Clone)]
pub struct Aggregator {
    origin: i64,
    step: i64,
    intervals: BTreeMap<i64, Totals>,
}

impl Aggregator {
    /// Intervals of `step` seconds aligned on `origin` (unix seconds; 0 aligns on the epoch, so
    /// 3600 gives whole UTC hours). Fails unless `step > 0`.
    pub fn new(origin: i64, step: i64) -> Result<Self, GridError> {
        if step <= 0 {
            return Err(GridError::Step(step));
        }
        Ok(Self {
            origin,
            step,
            intervals: BTreeMap::new(),
        })
    }

    /// Scores `post` with VADER and counts it.
    pub fn push(&mut self, post: &Post) {
        self.push_scored(post.timestamp, polarity_scores(&post.text).compound);
    }

    /// Counts a post already scored elsewhere; a non-finite score counts as volume only.
    pub fn push_scored(&mut self, at: DateTime<Utc>, compound: f64) {
        let totals = self.intervals.entry(self.index(at)).or_default();
        totals.volume = totals.volume.saturating_add(1);
        if compound.is_finite() {
            totals.scored += 1;
            totals.compound_sum += compound;
        }
    }

    /// Adds a pre-counted volume (no sentiment), e.g. a row of a volume series.
    pub fn push_volume(&mut self, point: VolumePoint) {
        let totals = self.intervals.entry(self.index(point.at)).or_default();
        totals.volume = totals.volume.saturating_add(point.count);
    }

    /// True when nothing has been pushed since creation or the last full drain.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// Intervals that received something, in time order. Intervals in between had no posts.
    pub fn buckets(&self) -> Vec<SentimentBucket> {
        self.intervals
            .iter()
            .filter_map(|(&k, t)| self.bucket(k, *t))
            .collect()
    }

    /// Every interval overlapping `[from, to)`, empty ones included (volume 0, no mean).
    /// Returns nothing when the range holds more than `max` intervals, so a caller's bad range
    /// cannot exhaust memory.
    pub fn dense(&self, from: i64, to: i64, max: usize) -> Vec<SentimentBucket> {
        let (Some(first), Some(last)) = (self.index_of(from), self.index_of(to.saturating_sub(1)))
        else {
            return Vec::new();
        };
        if to <= from || usize::try_from(last - first).map_or(true, |n| n >= max) {
            return Vec::new();
        }
        (first..=last)
            .filter_map(|k| {
                let totals = self.intervals.get(&k).copied().unwrap_or_default();
                self.bucket(k, totals)
            })
            .collect()
    }

    /// Removes and returns the intervals that end at or before `t` (finished, when `t` is now),
    /// in time order.
    pub fn drain_before(&mut self, t: i64) -> Vec<SentimentBucket> {
        let done: Vec<i64> = self
            .intervals
            .keys()
            .copied()
            .take_while(|&k| self.bucket_end(k).is_some_and(|end| end <= t))
            .collect();
        done.iter()
            .filter_map(|k| {
                let totals = self.intervals.remove(k)?;
                self.bucket(*k, totals)
            })
            .collect()
    }

    /// Interval index of `at`.
    fn index(&self, at: DateTime<Utc>) -> i64 {
        // Saturating: unix seconds of any chrono time minus an i64 origin cannot be far from
        // i64 range, and a clamped index still lands in a (far-away) interval, never a panic.
        at.timestamp()
            .saturating_sub(self.origin)
            .div_euclid(self.step)
    }

    /// Interval index of unix second `t`.
    fn index_of(&self, t: i64) -> Option<i64> {
        Some(t.checked_sub(self.origin)?.div_euclid(self.step))
    }

    /// End of interval `k`, if representable.
    fn bucket_end(&self, k: i64) -> Option<i64> {
        k.checked_add(1)?
            .checked_mul(self.step)?
            .checked_add(self.origin)
    }

    /// Interval `k` as a bucket, if its bounds are representable.
    fn bucket(&self, k: i64, t: Totals) -> Option<SentimentBucket> {
        let start = k.checked_mul(self.step)?.checked_add(self.origin)?;
        Some(SentimentBucket {
            start,
            end: self.bucket_end(k)?,
            volume: t.volume,
            mean_compound: (t.scored > 0).then(|| t.compound_sum / t.scored as f64),
        })
    }
}

/// Batch form: scores and counts `posts` into intervals of `step` seconds aligned on `origin`.
pub fn aggregate_posts(
    posts: &[Post],
    origin: i64,
    step: i64,
) -> Result<Vec<SentimentBucket>, GridError> {
    let mut agg = Aggregator::new(origin, step)?;
    for post in posts {
        agg.push(post);
    }
    Ok(agg.buckets())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(secs: i64, text: &str) -> Post {
        Post {
            timestamp: DateTime::from_timestamp(secs, 0).unwrap_or_default(),
            text: text.into(),
        }
    }

    #[test]
    fn counts_and_means_per_interval_in_any_order() {
        let posts = [
            post(3_700, "I love this, great service"),
            post(100, "terrible outage, awful"),
            post(3_599, ""),
            post(7_300, "ok"),
        ];
        let got = aggregate_posts(&posts, 0, 3_600);
        let Ok(got) = got else { panic!("{got:?}") };
        let summary: Vec<(i64, u64)> = got.iter().map(|b| (b.start, b.volume)).collect();
        assert_eq!(summary, vec![(0, 2), (3_600, 1), (7_200, 1)]);
        let first = got[0].mean_compound.unwrap_or(f64::NAN);
        let awful = polarity_scores("terrible outage, awful").compound;
        assert!((first - awful / 2.0).abs() < 1e-12, "{first}");
        assert!(got[1].mean_compound.unwrap_or(0.0) > 0.5);
    }

    #[test]
    fn dense_fills_gaps_and_drain_hands_over_finished_intervals() {
        let Ok(mut agg) = Aggregator::new(30, 60) else {
            panic!("step")
        };
        agg.push(&post(40, "good"));
        agg.push_volume(VolumePoint {
            at: DateTime::from_timestamp(200, 0).unwrap_or_default(),
            count: 5,
        });
        let dense = agg.dense(30, 270, 100);
        let volumes: Vec<(i64, u64, bool)> = dense
            .iter()
            .map(|b| (b.start, b.volume, b.mean_compound.is_some()))
            .collect();
        assert_eq!(
            volumes,
            vec![
                (30, 1, true),
                (90, 0, false),
                (150, 5, false),
                (210, 0, false)
            ]
        );
        assert!(agg.dense(0, i64::MAX, 1_000).is_empty());
        let drained = agg.drain_before(150);
        assert_eq!(drained.len(), 1);
        assert_eq!(agg.buckets().len(), 1);
        assert!(Aggregator::new(0, 0).is_err());
    }
}
