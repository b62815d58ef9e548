//! Learned headroom: how far demand has risen within one start-up time, from its own history.

/// The `quantile` of demand's rise within `window_s` seconds after each sample of `values`
/// (one every `step_s` seconds, oldest first), read as a piecewise-linear curve: for each
/// sample, the highest value reached within the window minus the sample itself, never below
/// zero. NaN samples (gaps) are skipped, as start and as peak. 0 when no sample has a full
/// window after it, or when `quantile` is 0.
///
/// This is the headroom a pool needs over the demand it carries now so that it is not short
/// before an instance started now is ready: a forecast refitted every few minutes cannot see
/// a burst that starts between refits, and how big such bursts get is a property of each
/// series (a few percent for a smooth daily curve, several times the median for bursty
/// request counts) that one fixed percentage cannot capture for both.
pub fn startup_rise(values: &[f64], step_s: f64, window_s: f64, quantile: f64) -> f64 {
    if !(step_s > 0.0 && window_s > 0.0 && quantile > 0.0) || values.len() < 2 {
        return 0.0;
    }
    // Whole steps inside the window, and the fraction of one more step it reaches into.
    let whole = (window_s / step_s).floor() as usize;
    let frac = window_s / step_s - whole as f64;
    let mut rises: Vec<f64> = Vec::with_capacity(values.len());
    for (i, &start) in values.iter().enumerate() {
        if !start.is_finite() {
            continue;
        }
        // The window's end lies between samples i + whole and i + whole + 1 (or on the first).
        let last = i + whole + usize::from(frac > 0.0);
        if last >= values.len() {
            break;
        }
        let mut peak = start;
        // `last < len` above, so the whole steps are all inside `values`.
        for &v in values[i + 1..=i + whole].iter().filter(|v| v.is_finite()) {
            peak = peak.max(v);
        }
        if frac > 0.0 {
            let (a, b) = (values[i + whole], values[i + whole + 1]);
            if a.is_finite() && b.is_finite() {
                peak = peak.max(a + (b - a) * frac);
            }
        }
        rises.push(peak - start);
    }
    if rises.is_empty() {
        return 0.0;
    }
    rises.sort_by(f64::total_cmp);
    let rank = (quantile.min(1.0) * (rises.len() - 1) as f64).round() as usize;
    rises[rank]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_window_shorter_than_a_step_sees_its_share_of_the_next_rise() {
        // 5-minute samples, 2-minute start-up: 40% of each step's rise.
        let v = [100.0, 200.0, 150.0, 400.0, 400.0];
        // Rises: 40, 0 (falls), 100, 0.
        assert_eq!(startup_rise(&v, 300.0, 120.0, 1.0), 100.0);
        assert_eq!(startup_rise(&v, 300.0, 120.0, 0.0), 0.0);
        let median = startup_rise(&v, 300.0, 120.0, 0.5);
        assert!(median == 0.0 || median == 40.0, "{median}");
    }

    #[test]
    fn a_window_longer_than_a_step_takes_the_highest_point_inside_it() {
        // 1-minute samples, 150 s window: the next two samples and half of the third step.
        let v = [10.0, 30.0, 20.0, 60.0, 0.0];
        // From 10: max(30, 20, 20 + 40 * 0.5) = 40 -> 30. From 30: max(20, 60, 60 - 60 * 0.5)
        // = 60 -> 30. Later samples have no full window.
        assert_eq!(startup_rise(&v, 60.0, 150.0, 1.0), 30.0);
    }

    #[test]
    fn gaps_are_skipped_and_short_histories_give_nothing() {
        let v = [f64::NAN, 100.0, f64::NAN, 130.0];
        assert_eq!(startup_rise(&v, 60.0, 120.0, 1.0), 30.0);
        assert_eq!(startup_rise(&[5.0], 60.0, 120.0, 1.0), 0.0);
        assert_eq!(startup_rise(&[5.0, 9.0], 60.0, 120.0, 1.0), 0.0);
        assert_eq!(startup_rise(&[], 60.0, 120.0, 0.99), 0.0);
    }

    proptest! {
        #[test]
        fn never_negative_and_monotone_in_the_quantile(
            v in proptest::collection::vec(0.0f64..1e4, 0..200),
            step in 1.0f64..600.0,
            window in 1.0f64..1200.0,
            q in 0.0f64..1.0,
        ) {
            let low = startup_rise(&v, step, window, q);
            let high = startup_rise(&v, step, window, (q + 0.1).min(1.0));
            prop_assert!(low >= 0.0 && low.is_finite());
            prop_assert!(high >= low);
        }

        #[test]
        fn a_falling_series_never_rises(v in proptest::collection::vec(0.0f64..1e4, 2..100)) {
            let mut v = v;
            v.sort_by(|a, b| b.total_cmp(a));
            prop_assert_eq!(startup_rise(&v, 60.0, 120.0, 1.0), 0.0);
        }
    }
}
