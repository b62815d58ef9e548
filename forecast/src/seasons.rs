//! Finds a series' seasonal periods with augurs' periodogram, snapped to calendar periods.

use augurs::seasons::{Detector, PeriodogramDetector};

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;
const YEAR: i64 = 365 * DAY;

/// Calendar periods (day, week, year) expressed in steps, where they are whole and >= 2 steps.
pub fn calendar_periods(step: i64) -> Vec<usize> {
    [DAY, WEEK, YEAR]
        .iter()
        .filter(|p| step > 0 && *p % step == 0 && *p / step >= 2)
        .map(|p| (p / step) as usize)
        .collect()
}

/// The season used by seasonal naive and the MASE scale: one day for sub-daily data,
/// one week for daily data, 1 otherwise.
pub fn natural_season(step: i64) -> usize {
    calendar_periods(step).first().copied().unwrap_or(1)
}

/// The season of a series of `len` points: the calendar one ([`natural_season`]) when the data
/// holds two cycles of it, else the shortest detected period (a trace replayed faster than
/// real time has cycles, just not calendar ones), else 1.
pub fn season_of(step: i64, len: usize, periods: &[usize]) -> usize {
    let natural = natural_season(step);
    if natural > 1 && len >= 2 * natural {
        natural
    } else {
        periods.first().copied().unwrap_or(1)
    }
}

/// Seasonal periods (in steps) detected in `values`, shortest first.
///
/// Two tests, both on the data: augurs' periodogram, whose peaks within 15% of a calendar
/// period are snapped to it (its Welch segments resolve long periods coarsely: a daily cycle
/// of 288 steps shows up as 256 or 341), and, for calendar periods longer than the segments
/// can see (a week of half-hours, a year of days), the autocorrelation at that lag of the
/// linearly detrended data, which must be a local peak against the lags one shorter cycle
/// either side. Off-calendar peaks are kept only for series with no calendar period.
/// Only periods the data holds at least two full cycles of are returned.
pub fn detect_periods(values: &[f64], step: i64) -> Vec<usize> {
    let n = values.len();
    if n < 8 {
        return Vec::new();
    }
    // Only calendar periods the data can show twice count: on a series replayed faster than
    // real time (one point a second) a "day" of 86,400 points is meaningless, and the cycles the
    // periodogram finds are the real ones.
    let calendar: Vec<usize> = calendar_periods(step)
        .into_iter()
        .filter(|c| n >= 2 * c)
        .collect();
    let max_period = (n / 3).clamp(4, 4096) as u32;
    let detector = PeriodogramDetector::builder()
        .min_period(2)
        .max_period(max_period)
        .threshold(0.25)
        .build();
    let centred = detrend(values);
    let mut found: Vec<usize> = Vec::new();
    for raw in detector.detect(&centred) {
        let raw = raw as usize;
        let snapped = calendar
            .iter()
            .copied()
            .find(|c| (raw as f64 - *c as f64).abs() <= 0.15 * *c as f64);
        let period = match snapped {
            Some(c) => c,
            None if !calendar.is_empty() => continue,
            None => refine(&centred, raw),
        };
        if n >= 2 * period && !found.contains(&period) {
            found.push(period);
        }
    }
    for (i, c) in calendar.iter().enumerate() {
        if found.contains(c) || n < 2 * c + 1 {
            continue;
        }
        // Compare against lags one shorter cycle away (a day either side of a week, a month
        // either side of a year) so that a week is not "found" just because days repeat.
        let shorter = if i > 0 {
            calendar[i - 1]
        } else {
            (c / 2).max(1)
        };
        let shorter = if *c >= 300 && shorter < c / 12 {
            c / 12
        } else {
            shorter
        };
        let at = autocorrelation(&centred, *c);
        let before = autocorrelation(&centred, c - shorter.min(c - 1));
        let after = autocorrelation(&centred, (c + shorter).min(n - 1));
        if at > 0.3 && at > before + 0.02 && at > after + 0.02 {
            found.push(*c);
        }
    }
    found.sort_unstable();
    found
}

/// Values minus their least-squares line.
fn detrend(values: &[f64]) -> Vec<f64> {
    let n = values.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    values
        .iter()
        .enumerate()
        .map(|(i, y)| y - mean_y - slope * (i as f64 - mean_x))
        .collect()
}

/// The lag within -20%/+25% of a periodogram peak with the highest autocorrelation: Welch
/// segments place a 48-step cycle at 42 or 63, the autocorrelation puts it back at 48.
fn refine(centred: &[f64], raw: usize) -> usize {
    let lo = (raw * 4 / 5).max(2);
    let hi = (raw * 5 / 4).min(centred.len() / 2).max(lo);
    (lo..=hi)
        .max_by(|a, b| autocorrelation(centred, *a).total_cmp(&autocorrelation(centred, *b)))
        .unwrap_or(raw)
}

fn autocorrelation(centred: &[f64], lag: usize) -> f64 {
    let var: f64 = centred.iter().map(|v| v * v).sum();
    if var == 0.0 || lag >= centred.len() {
        return 0.0;
    }
    let cov: f64 = centred[lag..].iter().zip(centred).map(|(a, b)| a * b).sum();
    cov / var
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_periods_depend_on_step() {
        assert_eq!(calendar_periods(1800), vec![48, 336, 17_520]);
        assert_eq!(calendar_periods(86_400), vec![7, 365]);
        assert_eq!(natural_season(300), 288);
        assert_eq!(natural_season(86_400), 7);
        assert_eq!(natural_season(7 * 86_400 + 1), 1);
    }

    #[test]
    fn detects_a_daily_cycle_in_synthetic_half_hourly_data() {
        let values: Vec<f64> = (0..48 * 14)
            .map(|i| 10.0 + (2.0 * std::f64::consts::PI * i as f64 / 48.0).sin())
            .collect();
        assert_eq!(detect_periods(&values, 1800), vec![48]);
    }

    #[test]
    fn a_trace_replayed_at_one_point_a_second_keeps_its_cycle() {
        // A 48-point cycle on a 1 s grid: no calendar period fits, the data's own does.
        let values: Vec<f64> = (0..48 * 7)
            .map(|i| 10.0 + (2.0 * std::f64::consts::PI * i as f64 / 48.0).sin())
            .collect();
        let periods = detect_periods(&values, 1);
        assert!(periods.contains(&48), "{periods:?}");
        assert_eq!(season_of(1, values.len(), &periods), periods[0]);
        assert_eq!(season_of(1800, 48 * 7, &[48]), 48);
        assert_eq!(season_of(1, 10, &[]), 1);
    }

    #[test]
    fn noise_has_no_calendar_period() {
        // A deterministic pseudo-random walk-free sequence.
        let values: Vec<f64> = (0..2000u64)
            .map(|i| ((i.wrapping_mul(2_654_435_761) % 1000) as f64) / 1000.0)
            .collect();
        let periods = detect_periods(&values, 1800);
        assert!(!periods.contains(&48), "{periods:?}");
    }
}
