//! Event uplift for models that cannot take events: learned from past occurrences, applied to
//! future ones.

use std::collections::BTreeSet;

use crate::EventWindow;
use crate::metrics::median;

/// Training data the uplift is learned from.
pub(crate) struct History<'a> {
    /// Training values, no `NaN`.
    pub values: &'a [f64],
    /// Timestamp of `values[0]`.
    pub start: i64,
    /// Grid step in seconds.
    pub step: i64,
    /// Lag in steps for the "normal day" baseline (a week where the data allows).
    pub baseline_lag: usize,
}

/// Shifts `point` (the forecast starting at `history`'s end) on steps inside a future event by
/// the effect that event's kind had in the past: the mean ratio (or difference, for series that
/// reach zero or below) between the actual value and a baseline of the same phase in the three
/// previous cycles. Kinds never seen before borrow the pooled effect of all past events, shrunk
/// harder; where events overlap, the strongest effect wins. Returns the names of the events
/// that moved the forecast.
pub(crate) fn apply_uplift(
    history: &History<'_>,
    events: &[EventWindow],
    point: &mut [f64],
) -> Vec<String> {
    let n = history.values.len();
    let step = history.step;
    let forecast_start = history.start + n as i64 * step;
    let forecast_end = forecast_start + point.len() as i64 * step;
    let multiplicative = history.values.iter().all(|v| *v > 0.0);
    let past: Vec<&EventWindow> = events
        .iter()
        .filter(|e| e.start >= history.start && e.end <= forecast_start)
        .collect();
    // Per step, the strongest effect of the events covering it: overlapping kinds (a playoff
    // that is also the Super Bowl) must not stack.
    let mut strongest: Vec<Option<(f64, &str)>> = vec![None; point.len()];
    for future in events
        .iter()
        .filter(|e| e.end > forecast_start && e.start < forecast_end)
    {
        let same: Vec<&EventWindow> = past
            .iter()
            .copied()
            .filter(|e| e.name == future.name)
            .collect();
        let (occurrences, pooled) = if same.is_empty() {
            (past.clone(), true)
        } else {
            (same, false)
        };
        let Some(profile) = effect_profile(history, &occurrences, events, multiplicative) else {
            continue;
        };
        let k = profile.count as f64;
        let shrink = if pooled { k / (k + 2.0) } else { k / (k + 1.0) };
        for (i, slot) in strongest.iter_mut().enumerate() {
            let t = forecast_start + i as i64 * step;
            if !future.contains(t) {
                continue;
            }
            let offset = ((t - future.start) / step) as usize;
            let Some(effect) = profile
                .effect
                .get(offset)
                .copied()
                .filter(|e| e.is_finite())
            else {
                continue;
            };
            // As a shift from "no effect": ratio - 1 or a difference.
            let shift = shrink * if multiplicative { effect - 1.0 } else { effect };
            if slot.is_none_or(|(s, _)| shift.abs() > s.abs()) {
                *slot = Some((shift, future.name.as_str()));
            }
        }
    }
    let mut used = BTreeSet::new();
    for (p, slot) in point.iter_mut().zip(strongest) {
        if let Some((shift, name)) = slot {
            *p = if multiplicative {
                *p * (1.0 + shift)
            } else {
                *p + shift
            };
            used.insert(name.to_string());
        }
    }
    used.into_iter().collect()
}

struct Profile {
    effect: Vec<f64>,
    count: usize,
}

fn effect_profile(
    history: &History<'_>,
    occurrences: &[&EventWindow],
    all_events: &[EventWindow],
    multiplicative: bool,
) -> Option<Profile> {
    let lag = history.baseline_lag.max(1);
    let step = history.step;
    let in_event = |i: usize| {
        let t = history.start + i as i64 * step;
        all_events.iter().any(|e| e.contains(t))
    };
    let mut sums: Vec<(f64, usize)> = Vec::new();
    let mut count = 0;
    for occurrence in occurrences {
        let first = ((occurrence.start - history.start + step - 1) / step).max(0) as usize;
        let last = ((occurrence.end - history.start) / step) as usize;
        if first < 3 * lag || last > history.values.len() {
            continue;
        }
        count += 1;
        for i in first..last {
            let baseline_samples: Vec<f64> = (1..=3)
                .map(|c| i - c * lag)
                .filter(|&j| !in_event(j))
                .map(|j| history.values[j])
                .collect();
            let baseline = median(&baseline_samples);
            let actual = history.values[i];
            let effect = if multiplicative {
                (actual / baseline).clamp(0.2, 5.0)
            } else {
                actual - baseline
            };
            let offset = i - first;
            if sums.len() <= offset {
                sums.resize(offset + 1, (0.0, 0));
            }
            if effect.is_finite() {
                sums[offset].0 += effect;
                sums[offset].1 += 1;
            }
        }
    }
    (count > 0).then(|| Profile {
        effect: sums
            .into_iter()
            .map(|(s, c)| if c > 0 { s / c as f64 } else { f64::NAN })
            .collect(),
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    /// Daily series with level 10 and a doubling on every event day.
    fn series_with_events(days: usize, event_days: &[usize]) -> (Vec<f64>, Vec<EventWindow>) {
        let mut values = vec![10.0; days];
        for d in event_days {
            values[*d] = 20.0;
        }
        let events = event_days
            .iter()
            .map(|d| EventWindow::new("game", *d as i64 * DAY, (*d as i64 + 1) * DAY))
            .collect();
        (values, events)
    }

    #[test]
    fn learns_a_doubling_and_applies_it_shrunk() {
        let (values, mut events) = series_with_events(60, &[30, 40, 50]);
        events.push(EventWindow::new("game", 62 * DAY, 63 * DAY));
        let history = History {
            values: &values,
            start: 0,
            step: DAY,
            baseline_lag: 7,
        };
        let mut point = vec![10.0; 5];
        let used = apply_uplift(&history, &events, &mut point);
        assert_eq!(used, vec!["game".to_string()]);
        // three occurrences: shrink 3/4 of the +100% effect
        assert!((point[2] - 17.5).abs() < 1e-9, "{point:?}");
        assert_eq!(point[1], 10.0);
    }

    #[test]
    fn overlapping_kinds_do_not_stack() {
        let (values, mut events) = series_with_events(60, &[30, 40, 50]);
        events.push(EventWindow::new("game", 62 * DAY, 63 * DAY));
        events.push(EventWindow::new("final", 62 * DAY, 63 * DAY));
        let history = History {
            values: &values,
            start: 0,
            step: DAY,
            baseline_lag: 7,
        };
        let mut point = vec![10.0; 5];
        apply_uplift(&history, &events, &mut point);
        assert!((point[2] - 17.5).abs() < 1e-9, "{point:?}");
    }

    #[test]
    fn unseen_kind_borrows_the_pooled_effect_and_no_history_means_no_change() {
        let (values, mut events) = series_with_events(60, &[30, 40]);
        events.push(EventWindow::new("new-kind", 61 * DAY, 62 * DAY));
        let history = History {
            values: &values,
            start: 0,
            step: DAY,
            baseline_lag: 7,
        };
        let mut point = vec![10.0; 3];
        apply_uplift(&history, &events, &mut point);
        assert!((point[1] - 15.0).abs() < 1e-9, "{point:?}");

        let only_future = vec![EventWindow::new("x", 61 * DAY, 62 * DAY)];
        let mut point = vec![10.0; 3];
        assert!(apply_uplift(&history, &only_future, &mut point).is_empty());
        assert_eq!(point, vec![10.0; 3]);
    }
}
